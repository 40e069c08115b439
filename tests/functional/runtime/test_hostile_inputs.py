"""Hostile inputs: files whose headers lie, absurd rates, truncations, NaN and huge floats, odd
channel counts, FIFOs and devices, odd names, hostile stdin, broken configs and environments,
broken model folders, and outputs that fail. Each case runs the real CLI (in this process where a
subprocess is not the point) and makes the checks of :func:`hostile.check`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import warnings

import numpy as np
import pytest
import soundfile as sf

from hostile import check, finish, flac_total_samples, music, patch, popen, run_cli, validate_event, wav
from streamtag import events
from streamtag.pipeline import Pipeline
from streamtag.settings import ListenSettings

RATE = 22050
LISTEN = ("listen", "--fast", "--no-tui", "--json", "--no-publish", "--model", "tiny")


@pytest.fixture(scope="module")
def nasty(tmp_path_factory):
    """Folder of generated hostile files (names are the case names)."""
    d = tmp_path_factory.mktemp("nasty")
    x = music(4.0)
    wav(d / "ok.wav", x)
    patch(wav(d / "rate_1hz.wav", x), 24, "<I", 1)
    patch(wav(d / "rate_4ghz.wav", x), 24, "<I", 0xFFFFFFFF)
    patch(wav(d / "zero_channels.wav", x), 22, "<H", 0)
    patch(wav(d / "data_size_lies.wav", x), 40, "<I", 0xFFFFFFF0)
    raw = (d / "ok.wav").read_bytes()
    (d / "truncated_mid_data.wav").write_bytes(raw[:len(raw) // 2 + 1])  # odd cut: half a sample
    (d / "header_only.wav").write_bytes(raw[:44])
    sf.write(d / "ok.flac", x, RATE)
    shutil.copy(d / "ok.flac", d / "flac_claims_2e36_samples.flac")
    flac_total_samples(d / "flac_claims_2e36_samples.flac", (1 << 36) - 1)
    fl = (d / "ok.flac").read_bytes()
    (d / "truncated.flac").write_bytes(fl[:len(fl) // 3])
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(d / "ok.wav"), str(d / "ok.mp3")],
                   check=True)
    mp3 = bytearray((d / "ok.mp3").read_bytes())
    rng = np.random.default_rng(0)
    mp3[len(mp3) // 3:len(mp3) // 3 + 6000] = rng.bytes(6000)
    (d / "corrupt_mid.mp3").write_bytes(bytes(mp3))
    (d / "garbage.mp3").write_bytes(rng.bytes(20000))
    (d / "truncated.mp3").write_bytes((d / "ok.mp3").read_bytes()[:5000])
    y = x.copy()
    y[1000:5000] = np.nan
    y[9000] = np.inf
    y[9001] = -np.inf
    y[20000:20100] = 3e38
    y[30000:30100] = -1e30
    wav(d / "nan_inf_huge.wav", y, subtype="FLOAT")
    wav(d / "hot_plus20dBFS.wav", 10 * x, subtype="FLOAT")
    wav(d / "random_f32.wav", np.frombuffer(rng.bytes(4 * 3 * RATE), dtype="<f4").copy(), subtype="FLOAT")
    for ch in (3, 7, 255):
        wav(d / f"{ch}ch.wav", np.stack([x * (k + 1) / ch for k in range(ch)], axis=1))
    wav(d / "one_sample.wav", x[:1])
    wav(d / "one_and_a_half.wav", x[:RATE * 3 // 2])
    return d


def _listen(capfd, path, *extra):
    return run_cli(capfd, *LISTEN, "--input", path, *extra)


@pytest.mark.parametrize("name, code, needle", [
    ("rate_1hz.wav", 2, "implausible sample rate 1 Hz"),
    ("rate_4ghz.wav", 2, "cannot decode audio"),
    ("zero_channels.wav", 2, "cannot decode audio"),
    ("header_only.wav", 2, "holds no audio samples"),
    ("garbage.mp3", 2, "not a recognised audio format"),
    ("corrupt_mid.mp3", 2, "corrupt audio data after"),
    ("truncated.flac", 2, "corrupt audio data after"),
    ("flac_claims_2e36_samples.flac", 2, "corrupt audio data after 4.0 s"),   # tagged up to where data ends
])
def test_listen_bad_file_is_one_line(capfd, tiny_env, nasty, name, code, needle):
    r = _listen(capfd, nasty / name)
    check(r, code, needle, bound=30)
    if r.lines:                                             # what decoded before the damage was tagged
        assert r.lines[-1]["topic"] == events.STATUS and r.lines[-1]["final"]


@pytest.mark.parametrize("name", ["data_size_lies.wav", "truncated_mid_data.wav", "truncated.mp3", "3ch.wav", "7ch.wav", "255ch.wav", "one_sample.wav"])
def test_listen_odd_but_decodable_file_is_tagged(capfd, tiny_env, nasty, name):
    r = _listen(capfd, nasty / name)
    check(r, 0, bound=30)
    genre = r.events(events.GENRE)
    assert genre and r.lines[-1]["final"]
    assert [e["seq"] for e in genre] == list(range(len(genre)))


@pytest.mark.parametrize("name", ["nan_inf_huge.wav", "hot_plus20dBFS.wav", "random_f32.wav"])
def test_nan_and_huge_floats_give_valid_events_and_count_clipping(tiny_env, nasty, name):
    got = []

    class Sink:
        def publish(self, topic, event):
            got.append((topic, event))

        def close(self):
            pass

    p = Pipeline(ListenSettings(input=str(nasty / name), fast=True, publish="", model="tiny"), [Sink()])
    p.start()
    assert p.wait(30)
    assert p.error is None
    for topic, e in got:
        events.encode(topic, e)                                     # strict JSON: raises on NaN/Infinity
        validate_event({"topic": topic, **e})
    levels = [e for t, e in got if t == events.LEVEL]
    assert levels and max(e["peak_dbfs"] for e in levels) == 0.0 and any(e["clipping"] for e in levels)
    assert got[-1][1]["final"] and got[-1][1]["clipped_samples"] > 0


def test_tail_of_a_file_is_analysed_and_hop_longer_than_the_window_works(capfd, tiny_env, nasty):
    r = _listen(capfd, nasty / "ok.wav", "--hop", "1.5")          # 4 s; tiny model: 1-s windows
    check(r, 0)
    assert [(e["t_start"], e["t_end"]) for e in r.events(events.GENRE)] == [(0, 1), (1.5, 2.5), (3, 4)]
    r = _listen(capfd, nasty / "one_and_a_half.wav")
    check(r, 0)
    assert [(e["t_start"], e["t_end"]) for e in r.events(events.GENRE)] == [(0, 1), (0.5, 1.5)]
    r = run_cli(capfd, "tag", nasty / "ok.wav", "--json", "--hop", "2.5", "--model", "tiny")
    check(r, 0)
    (res,) = r.lines
    assert res["windows"] == 3 and res["segments"][-1]["end"] == 4.0


def test_stdin_tail_is_analysed(capfd, tiny_env):
    pcm = (music(2.3) * 32767).astype("<i2").tobytes()
    r = run_cli(capfd, *LISTEN, "--input", "-", "--rate", RATE, stdin=pcm)
    check(r, 0)
    assert [e["t_end"] for e in r.events(events.GENRE)] == [1.0, 2.0, 2.3]


@pytest.mark.parametrize("path, needle", [("/dev/zero", "not a regular file"), ("/dev/null", "not a regular file"),
                                          ("FIFO", "not a regular file"), ("DIR", "is a directory"),
                                          ("LOOP", "cannot open")])
def test_fifos_devices_and_loops_fail_at_once(capfd, tiny_env, tmp_path, path, needle):
    if path == "FIFO":
        path = tmp_path / "fifo"
        os.mkfifo(path)                                               # no writer: opening it would block
    elif path == "DIR":
        path = tmp_path
    elif path == "LOOP":
        path = tmp_path / "loop.wav"
        os.symlink(path, path)
    check(run_cli(capfd, "listen", *LISTEN[1:], "--input", path), 2, needle, bound=10)
    tag_needle = "no files with an audio extension" if path == tmp_path else needle  # tag walks folders
    check(run_cli(capfd, "tag", path, "--model", "tiny"), 2, tag_needle, bound=10)


def test_odd_file_names(capfd, tiny_env, tmp_path, nasty):
    names = ["new\nline.wav", "tab\tand\rcr.wav", "-dash.wav", "ünïcødé 🎵.wav", "x" * 251 + ".wav"]
    paths = [tmp_path / n for n in names]
    for p in paths:
        shutil.copy(nasty / "ok.wav", p)
    r = run_cli(capfd, "tag", "--json", "--model", "tiny", "--", *paths, tmp_path / "missing\nfile.wav")
    errs = check(r, 2, "missing\\nfile.wav: no such file")
    assert "\n" not in errs[0]
    assert [o["path"] for o in r.lines] == [str(p) for p in paths] + [str(tmp_path / "missing\nfile.wav")]
    assert all(o.get("windows") == 4 for o in r.lines[:-1])
    human = run_cli(capfd, "tag", "--model", "tiny", "--", paths[0], paths[1])
    check(human, 0, jsonl=False)
    assert human.out.count("\n") == 2 and "new\\nline.wav\t" in human.out


def test_non_utf8_file_name_opens(tmp_path, tiny_env, nasty):
    name = os.fsencode(tmp_path) + b"/caf\xe9-\xff.wav"
    shutil.copy(nasty / "ok.wav", name)
    t0 = time.monotonic()
    human, js = popen("tag", name, "--model", "tiny", env=tiny_env), popen("tag", name, "--json", "--model", "tiny",
                                                                          env=tiny_env)
    r = finish(human, t0, 60)
    check(r, 0, jsonl=False)
    assert r.out.endswith("\t(4 windows)\n") and "\\udcff" in r.out   # escaped, not a UnicodeEncodeError
    r = finish(js, t0, 60)
    check(r, 0)
    assert os.fsencode(r.lines[0]["path"]) == name                  # the exact name, surrogate-escaped


@pytest.mark.parametrize("fmt, channels, data, code", [
    ("f32le", 1, np.full(40000, np.nan, dtype="<f4").tobytes(), 0),
    ("f32le", 2, np.array([3e38, -3e38, np.inf, 1e-45] * 20000, dtype="<f4").tobytes(), 0),
    ("f32le", 1, np.random.default_rng(1).bytes(4 * 60000), 0),
    ("s16le", 64, np.random.default_rng(2).bytes(2 * 64 * 30000), 0),
    ("s16le", 2, b"\x01\x02\x03", 2),                               # less than one frame: no audio
    ("f32le", 3, np.random.default_rng(3).bytes(4 * 3 * 20000 + 7), 0),  # trailing partial frame
])
def test_hostile_stdin_pcm(capfd, tiny_env, fmt, channels, data, code):
    r = run_cli(capfd, *LISTEN, "--input", "-", "--format", fmt, "--channels", channels, "--rate", 16000, stdin=data)
    check(r, code, *(["no audio samples"] if code else []))
    if code == 0:
        assert r.lines[-1]["final"] and r.events(events.GENRE)


@pytest.mark.parametrize("argv, env, needle", [
    (["--duration", "inf"], {}, "duration inf"),
    (["--duration", "nan"], {}, "duration nan"),
    (["--hop", "1e9"], {}, "hop 1000000000.0"),
    (["--hop", "-1"], {}, "hop -1.0"),
    (["--batch", "100000000"], {}, "batch 100000000"),
    (["--vote-window", "0"], {}, "vote_window 0"),
    (["--confirm", "99999999999999999999"], {}, "confirm"),
    (["--ema-alpha", "0"], {}, "ema_alpha 0.0"),
    (["--silence-db", "inf"], {}, "silence_db inf"),
    (["--status-interval", "1e-9"], {}, "status_interval"),
    (["--rate", "1"], {}, "rate 1"),
    (["--channels", "100000"], {}, "channels 100000"),
    (["--publish", "tcp://127.0.0.1:99999"], {}, "tcp://HOST:PORT"),
    (["--publish", "tcp://127.0.0.1:5556junk"], {}, "tcp://HOST:PORT"),
    (["--publish", "tcp://127.0.0.1:0"], {}, "tcp://HOST:PORT"),
    (["--publish", "udp://127.0.0.1:5556"], {}, "tcp://HOST:PORT"),
    (["--stream", "a\nb"], {}, "stream name"),
    (["--stall-timeout", "nan"], {}, "stall_timeout nan"),
    (["--retries", "-1"], {}, "retries -1"),
    (["--speech-threshold", "0"], {}, "speech_threshold 0.0"),
    (["--metrics-port", "70000"], {}, "metrics_port 70000"),
    ([], {"STREAMTAG_STALL_TIMEOUT": "inf"}, "stall_timeout inf"),
    ([], {"STREAMTAG_BUFFER_SECONDS": "1e9"}, "buffer_seconds"),
    ([], {"STREAMTAG_HOP": "nan"}, "hop nan"),
    ([], {"STREAMTAG_HOP": "1e999"}, "hop inf"),
    ([], {"STREAMTAG_BATCH": "9" * 5000}, "STREAMTAG_BATCH"),
    ([], {"STREAMTAG_RATE": "44100.5"}, "STREAMTAG_RATE"),
    ([], {"STREAMTAG_FAST": "2"}, "STREAMTAG_FAST"),
    ([], {"STREAMTAG_DURATION": "-0"}, "duration"),
])
def test_out_of_range_settings_are_one_line_usage_errors(capfd, monkeypatch, tiny_env, nasty, argv, env, needle):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    base = [a for a in LISTEN if a != "--no-publish" or "--publish" not in argv]
    r = run_cli(capfd, *base, "--input", nasty / "ok.wav", *argv)
    check(r, 2, needle, bound=10)
    assert r.out == ""


@pytest.mark.parametrize("text, needle", [
    ("batch = 1e23\n", "batch"),
    ("hop = 1e308\nbatch = 1\n", "hop"),
    ("confirm = 99999999999999999\n", "confirm"),
    ("model = ['a', 'b']\n", "model"),
    ("[listen]\nfrobnicate = 1\n", "unknown key 'frobnicate' in [listen]"),
    ("[listen]\nhop = 'fast'\n", "hop"),
    ("a = " + "[" * 3000 + "]" * 3000 + "\n", "unreadable config"),
    ("\x00\xff\xfe binary", "unreadable config"),
])
def test_broken_config_is_rejected_by_every_command(capfd, tiny_env, nasty, tmp_path, text, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text else b"\x00\xff\xfe binary")
    for argv in ((*LISTEN, "--input", nasty / "ok.wav"), ("tag", nasty / "ok.wav", "--model", "tiny")):
        check(run_cli(capfd, *argv, "--config", cfg), 2, needle, bound=10)


BROKEN_META = {
    "window_string": {"window_seconds": "3"},
    "window_null": {"window_seconds": None},
    "window_nan_text": "NAN",
    "window_huge": {"window_seconds": 1e300},
    "metrics_string": {"metrics": "great"},
    "name_int": {"name": 7},
    "name_newline": {"name": "a\nb"},
    "labels_string": {"labels": "rock"},
    "labels_dupes": {"labels": ["rock", "rock"]},
    "labels_mixed": {"labels": ["rock", 3]},
    "labels_empty": {"labels": []},
    "frontend_null": {"frontend": None},
    "frontend_rate_string": {"frontend": {"sample_rate": "16000"}},
    "frontend_rate_zero": {"frontend": {"sample_rate": 0}},
    "frontend_unknown": {"frontend": {"sample_rate": 16000, "warp": 9}},
    "newer_version": {"version": 99},
    "unknown_key": {"colour": "blue"},
    "not_object": "[1, 2, 3]",
    "binary": "\udcff\udcfe",
    "deep": "[" * 100000,
    "empty": "",
}


@pytest.fixture(scope="module")
def broken_models(tiny_models, tmp_path_factory):
    """A models folder: ``tiny`` and one copy of it per way of breaking the metadata."""
    d = tmp_path_factory.mktemp("broken-models")
    base = json.loads((tiny_models / "tiny.json").read_text())
    for name in ["tiny", *BROKEN_META]:
        shutil.copy(tiny_models / "tiny.onnx", d / f"{name}.onnx")
        change = BROKEN_META.get(name, {})
        if isinstance(change, str):
            text = change.replace("NAN", json.dumps({**base, "name": name})[:-1] + ', "window_seconds": NaN}')
            (d / f"{name}.json").write_bytes(text.encode("utf-8", "surrogateescape"))
        else:
            (d / f"{name}.json").write_text(json.dumps({**base, "name": name, **change}))
    (d / "DEFAULT").write_text("tiny\n")
    return d


def test_models_lists_the_good_ones_and_names_the_broken_ones(capfd, monkeypatch, broken_models):
    monkeypatch.setenv("STREAMTAG_MODELS", str(broken_models))
    r = run_cli(capfd, "models", "--json")
    errs = check(r, 2, errors=len(BROKEN_META))
    rows = {o["name"]: o for o in r.lines}
    assert len(rows["tiny"]["labels"]) == 10 and "error" not in rows["tiny"]
    assert {n for n, o in rows.items() if "error" in o} >= set(BROKEN_META)
    assert all(line.startswith("streamtag: error: model ") for line in errs)
    human = run_cli(capfd, "models")
    check(human, 2, errors=len(BROKEN_META), jsonl=False)
    assert human.out.startswith("tiny ") or "\ntiny " in human.out


@pytest.mark.parametrize("name", sorted(BROKEN_META))
def test_broken_model_metadata_is_one_line_for_tag(capfd, monkeypatch, broken_models, nasty, name):
    monkeypatch.setenv("STREAMTAG_MODELS", str(broken_models))
    check(run_cli(capfd, "tag", nasty / "ok.wav", "--model", name), 2, f"{name}.json", bound=10)


def test_model_that_outputs_nan_is_refused(capfd, tiny_env, tmp_path):
    torch = pytest.importorskip("torch")

    class NaNModel(torch.nn.Module):
        def forward(self, waveform):
            return waveform[:, :10] * float("nan")

    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(NaNModel(), (torch.zeros(2, 16000),), str(tmp_path / "nan.onnx"),
                          input_names=["waveform"], output_names=["logits"],
                          dynamic_axes={"waveform": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    (tmp_path / "nan.json").write_text(json.dumps({"name": "nan", "arch": "cnn", "labels": [str(i) for i in range(10)],
                                                   "window_seconds": 1.0, "frontend": {"sample_rate": 16000}}))
    r = run_cli(capfd, "tag", tmp_path / "x.wav", "--model", tmp_path / "nan.onnx")
    check(r, 2, "NaN or infinite logits")


# --- outputs that fail (subprocesses: the file descriptors are the point) --------------------------------

def test_output_failures(tiny_env, nasty, tmp_path):
    ok = str(nasty / "ok.wav")
    listen = [*LISTEN, "--input", ok]
    full = open("/dev/full", "wb")
    cases = {
        "tag>full": (["tag", ok, "--model", "tiny"], {"stdout": full}),
        "listen>full": (listen, {"stdout": full}),
        "models>full": (["models"], {"stdout": full}),
        "tag>&-": (["tag", ok, "--model", "tiny"], {"stdout": subprocess.DEVNULL, "close": 1}),
        "listen>&-": (listen, {"close": 1}),
        "listen2>&-": ([*listen, "--no-such-flag"], {"close": 2}),
    }
    procs = {}
    for name, (argv, kw) in cases.items():
        close = kw.pop("close", None)
        pre = (lambda fd=close: os.close(fd)) if close is not None else None
        procs[name] = (popen(*argv, env=tiny_env, preexec_fn=pre, **kw), time.monotonic())
    runs = {name: finish(p, t0, 60) for name, (p, t0) in procs.items()}
    full.close()
    for name in ("tag>full", "listen>full", "models>full"):
        check(runs[name], 1, "cannot write to standard output (No space left on device)")
    check(runs["tag>&-"], 0, jsonl=False)
    check(runs["listen>&-"], 0)                         # output to a closed stdout is discarded
    r = runs["listen2>&-"]
    assert r.code == 2 and r.out == "" and r.err == ""   # nothing strays onto stdout when stderr is closed


def test_reader_going_away_stops_listen_quietly(tiny_env, tmp_path):
    long = wav(tmp_path / "long.wav", music(600.0, 16000), 16000)
    proc = popen(*LISTEN, "--input", long, "--hop", "0.1", env=tiny_env)
    t0 = time.monotonic()
    assert proc.stdout.readline().startswith(b'{"topic":"streamtag.genre"')
    proc.stdout.close()                                   # like `| head -1`
    r = finish(proc, t0, 60)
    check(r, 0, bound=30)
    assert r.elapsed < 30                                 # 600 s of audio: it stopped, it did not tag on
