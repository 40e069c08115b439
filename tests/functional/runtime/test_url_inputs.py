"""URL inputs against a hostile HTTP server: cut, dying, stalled, garbage and corrupt streams, redirects.

Each case ends within a bound with the documented outcome: a finite body that arrives in full is a
normal end (exit 0); a stream that played and then died past ``--retries`` is a runtime failure
(exit 1); one that never played audio is a bad input (exit 2); always one ``streamtag: error:``
line, never a hang or a traceback.
"""

import socketserver
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from clitools import assert_one_line_error, json_lines, streamtag, write_clip
from streamtag import events


class Hostile(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serves paths with misbehaviours; ``mp3`` is 6 s of real music (``/live-once`` plays once, then 404)."""
    d = tmp_path_factory.mktemp("http")
    wav = write_clip(d / "m.wav", "metal", 6.0)
    x, rate = sf.read(wav, dtype="float32")
    sf.write(d / "m.mp3", x, rate, format="MP3")
    mp3 = (d / "m.mp3").read_bytes()
    rng = np.random.default_rng(0)
    corrupt = bytearray(mp3)
    for at in rng.integers(len(mp3) // 4, 3 * len(mp3) // 4, 40):
        corrupt[at:at + 200] = rng.bytes(200)
    stop = threading.Event()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            path = self.rfile.readline().split()[1].decode()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            w = self.wfile.write
            if path == "/redirect":
                w(b"HTTP/1.0 302 Found\r\nLocation: /whole\r\n\r\n")
            elif path == "/whole":
                w(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: %d\r\n\r\n" % len(mp3) + mp3)
            elif path == "/cut":                          # says how long it is, stops half-way
                w(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: %d\r\n\r\n" % len(mp3)
                  + mp3[:len(mp3) // 2])
            elif path == "/live" or (path == "/live-once" and not served.get(path)):  # no length; it dies
                served[path] = True
                w(b"ICY 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n" + mp3[:len(mp3) // 2])
            elif path == "/stall":                        # plays a little, then goes quiet with the socket open
                w(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n" + mp3[:len(mp3) // 3])
                self.wfile.flush()
                stop.wait(30)
            elif path == "/garbage":
                w(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + rng.bytes(400_000))
            elif path == "/corrupt":
                w(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(corrupt) + bytes(corrupt))
            elif path == "/forbidden":
                w(b"HTTP/1.0 403 Forbidden\r\n\r\n")
            else:
                w(b"HTTP/1.0 404 Not Found\r\n\r\n")

    served = {}
    srv = Hostile(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    stop.set()
    srv.shutdown()
    srv.server_close()


def _listen(url, *extra, env):
    t0 = time.monotonic()
    r = streamtag("listen", "--input", url, "--no-tui", "--json", "--no-publish", "--model", "tiny", *extra,
                  env=env, timeout=60)
    return r, time.monotonic() - t0


def test_finite_body_and_redirect_end_normally(server, tiny_env):
    r, _ = _listen(f"{server}/redirect", "--fast", env=tiny_env)
    assert r.returncode == 0, r.stderr
    genre = [e for e in json_lines(r.stdout) if e["topic"] == events.GENRE]
    assert genre[0]["title"] is None                             # URL inputs carry the (absent) ICY title
    ends = [e["t_end"] for e in genre]                           # 6 s of music: 1-s windows, and one more ending at
    assert ends[:6] == [1, 2, 3, 4, 5, 6] and len(ends) <= 7 and all(6 < t < 6.2 for t in ends[6:])  # the MP3's end
    final = json_lines(r.stdout)[-1]
    assert final["final"] and final["state"] == "ended" and final["outages"] == 0


def test_corrupt_mp3_is_tagged_with_the_bad_frames_skipped(server, tiny_env):
    r, took = _listen(f"{server}/corrupt", "--fast", env=tiny_env)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert len([e for e in json_lines(r.stdout) if e["topic"] == events.GENRE]) >= 4 and took < 30


@pytest.mark.parametrize("path, extra, code, needle", [
    ("/cut", ["--fast"], 1, "stream cut after"),                        # played, then the body stopped short
    ("/live", ["--fast", "--retries", "0"], 1, "stream ended; gave up after 0 reconnect attempts"),
    ("/stall", ["--fast", "--stall-timeout", "1", "--retries", "0"], 1, "no data for 1 s"),
    ("/garbage", ["--fast"], 2, "cannot decode audio"),                 # never played: a bad input, no hang
    ("/forbidden", [], 2, "HTTP 403"),
    ("/missing", [], 2, "HTTP 404"),
])
def test_broken_streams_end_in_one_line_and_bounded_time(server, tiny_env, path, extra, code, needle):
    r, took = _listen(f"{server}{path}", *extra, env=tiny_env)
    assert_one_line_error(r, code, needle)
    assert took < 25
    final = json_lines(r.stdout)[-1]
    assert final["topic"] == events.STATUS and final["final"] and final["state"] == "down"


def test_live_stream_reconnects_then_gives_up_after_its_retries(server, tiny_env):
    r, took = _listen(f"{server}/live-once", "--retries", "1", env=tiny_env)  # real time: 3 s, then 404
    assert_one_line_error(r, 1, "gave up after 1 reconnect attempts")
    outage = [e for e in json_lines(r.stdout) if e["topic"] == events.OUTAGE]
    assert [e["state"] for e in outage] == ["reconnecting", "down"] and outage[0]["error"] == "stream ended"
    assert outage[0]["retry_in_s"] >= 0.75 and took < 20                 # it waited before retrying
