"""`streamtag listen` end to end on file, stdin and http inputs with the real model; clean SIGTERM stop."""

import functools
import http.server
import signal
import threading
import time

import jsonschema
import numpy as np
import pytest
import soundfile as sf

from clitools import json_lines, streamtag, streamtag_popen, write_clip
from streamtag import events


def _by_topic(lines, topic):
    return [e for e in lines if e["topic"] == topic]


def _valid(e):
    e = dict(e)
    topic = e.pop("topic")
    schema = events.schema()
    jsonschema.validate(e, schema)
    jsonschema.validate(e, {"$ref": f"#/$defs/{topic}", "$defs": schema["$defs"]})


@pytest.fixture(scope="module")
def metal_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "metal.wav", "metal", 8.0)


def test_file_fast_json_events(metal_clip, real_model):
    r = streamtag("listen", "--input", metal_clip, "--fast", "--no-tui", "--json", "--no-publish",
                  "--model", real_model)
    assert r.returncode == 0, r.stderr
    assert "on cpu" in r.stderr or "on cuda" in r.stderr    # provider printed at start
    lines = json_lines(r.stdout)
    genre = _by_topic(lines, events.GENRE)
    assert [e["seq"] for e in genre] == list(range(6))
    assert [e["t_end"] for e in genre] == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert all(e["genre"] == "metal" and e["stream"] == "metal.wav" and e["model"] == real_model for e in genre)
    change = _by_topic(lines, events.CHANGE)
    assert len(change) == 1 and change[0]["previous"] is None and change[0]["seq"] == 0
    status = lines[-1]
    assert status["topic"] == events.STATUS and status["final"] and status["windows"] == 6
    assert status["dropped_samples"] == 0 and status["latency_p50_ms"] <= status["latency_p99_ms"]
    assert not _by_topic(lines, events.LEVEL)                 # the console does not print the meter
    for e in lines:
        _valid(e)


def test_duration_and_hop_and_console_fallback_without_a_terminal(metal_clip, tiny_env):
    r = streamtag("listen", "--input", metal_clip, "--fast", "--json", "--no-publish",   # no --no-tui: not a TTY
                  "--model", "tiny", "--duration", "2.5", "--hop", "0.5", env=tiny_env)
    assert r.returncode == 0, r.stderr
    genre = _by_topic(json_lines(r.stdout), events.GENRE)
    assert [e["t_end"] for e in genre] == [1.0, 1.5, 2.0, 2.5]     # tiny model: 1-s windows


def test_file_is_paced_in_real_time_by_default(tmp_path, tiny_env):
    clip = write_clip(tmp_path / "pop.wav", "pop", 2.0)
    t0 = time.monotonic()
    r = streamtag("listen", "--input", clip, "--no-tui", "--json", "--no-publish", "--model", "tiny", env=tiny_env)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 >= 1.9
    assert len(_by_topic(json_lines(r.stdout), events.GENRE)) == 2


def test_stdin_pcm_gives_the_same_answers_as_the_file(metal_clip, real_model):
    x, rate = sf.read(metal_clip, dtype="int16")
    stereo = np.stack([x, x], axis=1)
    r = streamtag("listen", "--input", "-", "--rate", rate, "--channels", 2, "--format", "s16le", "--no-tui",
                  "--json", "--no-publish", "--model", real_model, stdin=stereo.astype("<i2").tobytes())
    assert r.returncode == 0, r.stderr
    from_stdin = _by_topic(json_lines(r.stdout), events.GENRE)
    f = streamtag("listen", "--input", metal_clip, "--fast", "--no-tui", "--json", "--no-publish", "--model", real_model)
    from_file = _by_topic(json_lines(f.stdout), events.GENRE)
    assert len(from_stdin) == len(from_file) == 6 and from_stdin[0]["stream"] == "stdin"
    for a, b in zip(from_stdin, from_file):
        assert a["genre"] == b["genre"]
        np.testing.assert_allclose(list(a["probs"].values()), list(b["probs"].values()), atol=2e-3)


@pytest.fixture
def http_dir(tmp_path):
    """A real HTTP server on a free port serving ``tmp_path``."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_url_decoded_in_process(http_dir, real_model):
    root, base = http_dir
    x, rate = sf.read(write_clip(root / "c.wav", "classical", 6.0))
    sf.write(root / "c.ogg", x, rate)                            # a compressed stream, decoded by PyAV
    r = streamtag("listen", "--input", f"{base}/c.ogg", "--fast", "--no-tui", "--json", "--no-publish",
                  "--model", real_model)
    assert r.returncode == 0, r.stderr
    genre = _by_topic(json_lines(r.stdout), events.GENRE)
    assert len(genre) == 4 and genre[-1]["genre"] == "classical" and genre[0]["stream"] == f"{base}/c.ogg"
    bad = streamtag("listen", "--input", f"{base}/missing.ogg", "--fast", "--no-tui", "--no-publish",
                    "--model", real_model)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == f"streamtag: error: {base}/missing.ogg: HTTP 404 File not found"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_a_final_status(tmp_path, tiny_env, sig):
    clip = write_clip(tmp_path / "rock.wav", "rock", 20.0)
    proc = streamtag_popen("listen", "--input", clip, "--no-tui", "--json", "--no-publish", "--model", "tiny",
                           env=tiny_env)
    try:
        first = proc.stdout.readline()                              # first window: ~1 s in (real time)
        assert '"streamtag.genre"' in first
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    last = json_lines(out)[-1]
    assert last["topic"] == events.STATUS and last["final"] and last["uptime_s"] < 10


def test_genre_change_is_reported_once_after_confirm_windows(tmp_path, real_model):
    a, rate = sf.read(write_clip(tmp_path / "a.wav", "classical", 8.0), dtype="float32")
    b, _ = sf.read(write_clip(tmp_path / "b.wav", "metal", 8.0), dtype="float32")
    sf.write(tmp_path / "ab.wav", np.concatenate([a, b]), rate)
    r = streamtag("listen", "--input", tmp_path / "ab.wav", "--fast", "--no-tui", "--json", "--no-publish",
                  "--model", real_model, "--confirm", "2", "--vote", "soft", "--vote-window", "3")
    assert r.returncode == 0, r.stderr
    lines = json_lines(r.stdout)
    change = _by_topic(lines, events.CHANGE)
    assert [(c["previous"], c["genre"]) for c in change] == [(None, "classical"), ("classical", "metal")]
    assert 9.0 < change[1]["t_end"] <= 13.0           # the cut is at 8 s; soft vote over 3 + confirm 2
    genre = _by_topic(lines, events.GENRE)
    switch = next(i for i, e in enumerate(genre) if e["genre"] == "metal")
    assert genre[switch - 1]["raw_genre"] == "metal"  # the raw winner led before the reported genre followed
    # dated where the new genre's segment starts (as the segment log and the TUI date it): the previous window's end
    assert change[0]["at"] == 0.0 and change[1]["at"] == genre[switch - 1]["t_end"] == change[1]["t_end"] - 1.0
