"""Bad and odd inputs, made from real audio: each gives a one-line error or the documented behaviour.

Documented behaviour: a file shorter than one window is zero-padded to one window; an all-silent
file is tagged ``silence``; NaN/inf samples are replaced by 0; any rate and channel count is mixed
to mono and soxr-resampled to the model's rate.
"""


import numpy as np
import pytest
import soundfile as sf
import soxr
import zmq

from clitools import assert_one_line_error, free_port, gtzan_track, json_lines, streamtag
from streamtag import events


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    """Odd files built from 8 s of a real metal track."""
    d = tmp_path_factory.mktemp("odd")
    x, r = sf.read(gtzan_track("metal", 1), dtype="float32")
    x = x[5 * r:13 * r]
    raw = gtzan_track("metal", 1).read_bytes()
    (d / "corrupt.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    (d / "truncated.flac").write_bytes(raw[:len(raw) // 3])
    (d / "empty.wav").write_bytes(b"")
    sf.write(d / "noframes.wav", np.zeros((0, 1), dtype=np.float32), r)
    sf.write(d / "half.wav", x[:r // 2], r)
    sf.write(d / "silent.wav", np.zeros(4 * r, dtype=np.float32), r)
    y = x.copy()
    y[3 * r:3 * r + r // 2] = np.nan
    y[6 * r] = np.inf
    sf.write(d / "nan.wav", y, r, subtype="FLOAT")
    m8 = soxr.resample(x, r, 8000)
    sf.write(d / "8k_stereo.wav", np.stack([m8, 0.5 * m8], axis=1), 8000)
    m96 = soxr.resample(x, r, 96000)
    sf.write(d / "96k_6ch.wav", np.stack([m96 * g for g in (1, .9, .8, .7, .6, .5)], axis=1), 96000,
             subtype="FLOAT")
    return d


def test_tag_reports_each_bad_file_and_tags_the_odd_ones(odd, real_model):
    names = ["missing.wav", "corrupt.flac", "truncated.flac", "empty.wav", "noframes.wav", "half.wav",
             "silent.wav", "nan.wav", "8k_stereo.wav", "96k_6ch.wav"]
    r = streamtag("tag", *(odd / n for n in names), "--json", "--model", real_model)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    res = {o["path"].rsplit("/", 1)[1]: o for o in json_lines(r.stdout)}
    assert list(res) == names
    expected_errors = {"missing.wav": "no such file", "corrupt.flac": "cannot decode audio",
                       "truncated.flac": "cannot decode audio", "empty.wav": "cannot decode audio",
                       "noframes.wav": "holds no audio samples"}
    for name, needle in expected_errors.items():
        assert needle in res[name]["error"] and "\n" not in res[name]["error"]
    assert len([line for line in r.stderr.splitlines() if line.startswith("streamtag: error:")]) == len(expected_errors)
    assert res["half.wav"]["windows"] == 1 and res["half.wav"]["segments"][-1]["end"] == 0.5
    assert res["silent.wav"]["genre"] == "silence" and res["silent.wav"]["probs"] == {}
    assert res["nan.wav"]["genre"] == "metal" and all(np.isfinite(list(res["nan.wav"]["probs"].values())))
    assert res["96k_6ch.wav"]["genre"] == "metal" and res["96k_6ch.wav"]["windows"] == 6
    assert res["8k_stereo.wav"]["genre"] in ("metal", "rock")   # 4-kHz band limit: still guitar music


@pytest.mark.parametrize("name, needle", [
    ("missing.wav", "no such file"), ("corrupt.flac", "cannot decode audio"), ("empty.wav", "cannot decode audio"),
    ("noframes.wav", "holds no audio samples")])
def test_listen_bad_file_is_a_one_line_usage_error(odd, tiny_env, name, needle):
    r = streamtag("listen", "--input", odd / name, "--fast", "--no-tui", "--no-publish", "--model", "tiny",
                  env=tiny_env)
    assert_one_line_error(r, 2, needle)


def test_listen_truncated_file_tags_what_decodes_then_fails(odd, tiny_env):
    r = streamtag("listen", "--input", odd / "truncated.flac", "--fast", "--no-tui", "--json", "--no-publish",
                  "--model", "tiny", env=tiny_env)
    assert_one_line_error(r, 2, "truncated.flac")
    lines = json_lines(r.stdout)
    assert lines[-1]["topic"] == events.STATUS and lines[-1]["final"]


def test_listen_odd_files(odd, tiny_env):
    def run(name):
        r = streamtag("listen", "--input", odd / name, "--fast", "--no-tui", "--json", "--no-publish",
                      "--model", "tiny", env=tiny_env)
        assert r.returncode == 0, r.stderr
        return [e for e in json_lines(r.stdout) if e["topic"] == events.GENRE]

    half = run("half.wav")
    assert len(half) == 1 and half[0]["t_end"] == 0.5 and half[0]["genre"] != "silence"
    assert {e["genre"] for e in run("silent.wav")} == {"silence"}
    assert all(np.isfinite(list(e["probs"].values())).all() for e in run("nan.wav"))
    assert len(run("96k_6ch.wav")) == 8 and len(run("8k_stereo.wav")) == 8   # tiny model: 1-s windows, 1-s hop


def test_stdin_without_audio(tiny_env):
    r = streamtag("listen", "--input", "-", "--no-tui", "--no-publish", "--model", "tiny", env=tiny_env, stdin=b"")
    assert_one_line_error(r, 2, "stdin", "no audio samples")


@pytest.mark.parametrize("device", ["no-such-device", "999"])
def test_unknown_device(device, tiny_env):
    r = streamtag("listen", "--device", device, "--no-tui", "--no-publish", "--model", "tiny", env=tiny_env)
    assert_one_line_error(r, 2, "streamtag devices")


def test_no_input_device_suggests_a_file(tiny_env):
    r = streamtag("listen", "--no-tui", "--no-publish", "--model", "tiny",
                  env={**tiny_env, "PULSE_SERVER": "unix:/nonexistent/native"})    # a machine without audio input
    assert_one_line_error(r, 2, "no usable default input device", "give --input FILE")


def test_port_in_use(odd, tiny_env):
    port = free_port()
    ctx = zmq.Context()
    holder = ctx.socket(zmq.PUB)
    holder.bind(f"tcp://127.0.0.1:{port}")
    try:
        r = streamtag("listen", "--input", odd / "half.wav", "--fast", "--no-tui", "--publish",
                      f"tcp://127.0.0.1:{port}", "--model", "tiny", env=tiny_env)
    finally:
        holder.close(0)
        ctx.term()
    assert_one_line_error(r, 2, f"tcp://127.0.0.1:{port}", "in use")


def test_bad_publish_address(odd, tiny_env):
    r = streamtag("listen", "--input", odd / "half.wav", "--fast", "--no-tui", "--publish", "nonsense",
                  "--model", "tiny", env=tiny_env)
    assert_one_line_error(r, 2, "publish 'nonsense'", "tcp://HOST:PORT")


@pytest.mark.parametrize("model, needle", [("broken", "cannot load broken.onnx"),
                                           ("wronglabels", "metadata has 4 labels"),
                                           ("nosuch", "unknown model")])
def test_bad_model(odd, tiny_models, tiny_env, model, needle):
    spec = str(tiny_models / f"{model}.onnx") if model == "broken" else model
    for cmd in (["tag", odd / "half.wav"], ["listen", "--input", odd / "half.wav", "--fast", "--no-tui",
                                              "--no-publish"]):
        r = streamtag(*cmd, "--model", spec, env=tiny_env)
        assert_one_line_error(r, 2, needle)


def test_bad_arguments_are_one_line(tiny_env):
    assert_one_line_error(streamtag("listen", "--hop", "0.01", env=tiny_env), 2, "at least 0.1")
    assert_one_line_error(streamtag("listen", "--vote", "median"), 2, "invalid choice")
    assert_one_line_error(streamtag("frobnicate"), 2, "invalid choice")
    assert_one_line_error(streamtag("listen", "--publish", "x", "--no-publish"), 2, "not allowed with")
