"""Rogue ZeroMQ publishers: ``streamtag subscribe`` skips every malformed message (saying so on stderr,
counted), prints only well-formed v1 events as strict JSON lines, and exits 0."""

from __future__ import annotations

import threading

import pytest
import zmq

from clitools import free_port
from hostile import check, run_cli
from streamtag import events

GARBAGE = [
    [b""], [b"\xff\xfe\x00"], [b"no-space"], [b" {}"], [b"streamtag.genre {"], [b"streamtag.genre [1, 2]"],
    [b'streamtag.genre {"v": 1, "x": NaN}'], [b'streamtag.genre {"v": 1, "x": Infinity}'],
    [b'streamtag.genre {"v": 1, "x": 1e999}'], [b'streamtag.genre {"v": 1, "x": ' + b"9" * 5000 + b"}"],
    [b"streamtag.genre " + b"[" * 50000], [b'streamtag.genre {"v": 2}'], [b'streamtag.genre {"no": "version"}'],
    [b"streamtag.genre", b'{"v": 1}'], [b"bell\x07 {\"v\": 1}"], [b'streamtag.genre "just a string"'],
]


def _event(**extra) -> bytes:
    status = events.status_event(stream="rogue", uptime_s=1.0, dropped_samples=0, overflows=0, clipped_samples=0,
                                 latency_p50_ms=None, latency_p99_ms=None, windows=0, windows_per_s=0.0,
                                 provider="cpu", model="m", published=0, final=False)
    return events.encode(events.STATUS, {**status, **extra}).encode()


class Rogue:
    """A PUB socket on a free port that sends ``rounds`` of frames every 20 ms until stopped."""

    def __init__(self, rounds: list[list[bytes]]):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.address)
        self.rounds, self.stop = rounds, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(0.02):
            for frames in self.rounds:
                try:
                    self.sock.send_multipart(frames, zmq.NOBLOCK)
                except zmq.Again:
                    pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sock.close(0)
        self.ctx.term()


def test_subscribe_skips_every_kind_of_malformed_frame(capfd):
    marker, final = _event(stream="marker"), _event(final=True, stream="end")
    spoof = _event(stream="spoof")[:-1] + b',"topic":"streamtag.forged"}'
    with Rogue([[marker], *GARBAGE, [spoof], [final]]) as rogue:
        r = run_cli(capfd, "subscribe", "--connect", rogue.address, "--until-final")
    check(r, 0, bound=20)
    streams = [e["stream"] for e in r.lines]
    assert streams[-1] == "end" and "marker" in streams     # it saw whole rounds, garbage included
    assert all(e["topic"] == events.STATUS for e in r.lines)  # a "topic" key in the body cannot forge the topic
    skipped = [line for line in r.err.splitlines() if "skipped" in line]
    assert "skipping malformed messages" in r.err and skipped and int(skipped[0].split()[2]) >= len(GARBAGE)


def test_oversized_frames_drop_the_rogue_connection_not_the_subscriber(capfd):
    big = [b"streamtag.genre " + b" " * (2 << 20) + b"{}"]
    with Rogue([[_event()], big]) as rogue:          # each round: a good event, then one over the 1-MiB limit
        r = run_cli(capfd, "subscribe", "--connect", rogue.address, "--count", "2")
    check(r, 0, bound=30)
    assert [e["topic"] for e in r.lines] == [events.STATUS] * 2   # it reconnected after the big one


@pytest.mark.parametrize("argv, needle", [
    (["--connect", "tcp://127.0.0.1:99999"], "tcp://HOST:PORT"),
    (["--connect", "garbage"], "tcp://HOST:PORT"),
    (["--count", "0"], "--count 0"),
])
def test_bad_subscribe_arguments(capfd, argv, needle):
    check(run_cli(capfd, "subscribe", *argv), 2, needle, bound=10)
