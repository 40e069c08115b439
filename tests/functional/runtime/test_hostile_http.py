"""Hostile HTTP servers for ``listen --input URL``: stalls before and after data, garbage, a long
corrupt MP3, a connection dropped mid-way, a stop signal while connecting.

A URL that was lost after it delivered audio is reconnected (forever by default): ``--retries 0``
makes the first loss final, so every case ends. Every case runs at once (one module fixture), so
the module costs one bound, not six.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest

from hostile import check, finish, music, popen, wav
from streamtag import events

URL_BOUND_S = 25.0
"""Longest a hostile URL may keep ``listen`` busy (the stall timeout is 10 s)."""
LISTEN = ("listen", "--no-tui", "--json", "--no-publish", "--model", "tiny", "--retries", "0")


class _Hostile(http.server.BaseHTTPRequestHandler):
    mp3: bytes = b""
    corrupt: bytes = b""
    release = threading.Event()

    def log_message(self, *args):
        pass

    def _head(self, length: int | None = None):
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self):
        kind = self.path.strip("/").split("/")[0]
        try:
            if kind == "stall-before":
                self.release.wait(120)
            elif kind == "stall-after":
                self._head()
                self.wfile.write(self.mp3[:len(self.mp3) // 2])
                self.wfile.flush()
                self.release.wait(120)
            elif kind == "garbage":
                self._head()
                self.wfile.write(np.random.default_rng(0).bytes(300_000))
            elif kind == "corrupt-mp3":
                self._head()
                self.wfile.write(self.corrupt)
            elif kind == "drop-midway":
                self._head(len(self.mp3))                   # promises the whole file, sends half, hangs up
                self.wfile.write(self.mp3[:len(self.mp3) // 2])
        except OSError:
            pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_models):
    d = tmp_path_factory.mktemp("http")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav(d / "m.wav", music(60.0))),
                    "-b:a", "128k", str(d / "m.mp3")], check=True)
    mp3 = (d / "m.mp3").read_bytes()
    corrupt = bytearray(mp3)
    rng = np.random.default_rng(1)
    for i in range(4000, len(corrupt) - 600, 1200):     # every other frame or so: a flood of decoder complaints
        corrupt[i:i + 600] = rng.bytes(600)
    _Hostile.mp3, _Hostile.corrupt = mp3, bytes(corrupt)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    env = {"STREAMTAG_MODELS": str(tiny_models)}
    token = uuid.uuid4().hex
    cases = {
        "stall-before": [*LISTEN, "--input", f"{base}/stall-before", "--fast"],
        "stall-after": [*LISTEN, "--input", f"{base}/stall-after", "--fast"],
        "garbage": [*LISTEN, "--input", f"{base}/garbage", "--fast"],
        "corrupt-mp3": [*LISTEN, "--input", f"{base}/corrupt-mp3", "--fast"],
        "drop-midway": [*LISTEN, "--input", f"{base}/drop-midway", "--fast"],
        "term-while-connecting": [*LISTEN, "--input", f"{base}/stall-before/{token}"],
    }
    t0 = time.monotonic()
    procs = {name: popen(*argv, env=env) for name, argv in cases.items()}
    time.sleep(3.0)
    term = procs.pop("term-while-connecting")
    term.send_signal(signal.SIGTERM)
    out = {"term-while-connecting": finish(term, time.monotonic(), URL_BOUND_S)}
    out.update({name: finish(p, t0, max(0.1, t0 + URL_BOUND_S - time.monotonic())) for name, p in procs.items()})
    time.sleep(0.5)
    out["term-while-connecting"].leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit()
                                              and token.encode() in _cmdline(pid)]
    _Hostile.release.set()
    server.shutdown()
    server.server_close()
    return out


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_server_that_never_answers_is_one_line_exit_2(runs):
    check(runs["stall-before"], 2, "/stall-before", bound=URL_BOUND_S)


@pytest.mark.parametrize("case", ["stall-after", "drop-midway"])
def test_stream_that_dies_after_data_is_a_runtime_failure_keeping_its_events(runs, case):
    r = runs[case]
    check(r, 1, bound=URL_BOUND_S)
    assert r.events(events.GENRE) and r.lines[-1]["final"]


def test_garbage_body_is_one_line_exit_2(runs):
    check(runs["garbage"], 2, "/garbage", bound=URL_BOUND_S)


def test_long_corrupt_mp3_never_hangs(runs):
    r = runs["corrupt-mp3"]
    assert r.code is not None, "hung"
    check(r, r.code, bound=URL_BOUND_S, errors=1 if r.code else 0)
    assert r.code in (0, 1, 2) and r.events(events.GENRE)


def test_stop_signal_while_connecting_exits_0_and_leaves_no_child(runs):
    r = runs["term-while-connecting"]
    check(r, 0, bound=5)
    assert r.leftovers == [], "a child process outlived streamtag"

