"""Property-based fuzzing (hypothesis): settings from the environment, config files and flags; model
metadata; ZeroMQ frames for ``subscribe``; raw PCM on stdin.

Invariants: no exception escapes (no traceback), the exit code is 0, 1 or 2, every error is one
``streamtag:`` line, every output line is strict JSON (no NaN) and every event schema-valid.
Examples are few and derandomised in CI (profile ``streamtag``); ``STREAMTAG_FUZZ_EXAMPLES=N``
scales every test (e.g. 20 for a long local run: N x the base counts below), and no example
database is written into the checkout.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from hostile import check, music, run_cli, wav
from streamtag import events, strictjson
from streamtag.errors import UsageError
from streamtag.modelmeta import MAX_WINDOW_SAMPLES, MODEL_RATES, ModelMeta
from streamtag.settings import BOUNDS, ListenSettings, MonitorSettings, TagSettings, load

SCALE = float(os.environ.get("STREAMTAG_FUZZ_EXAMPLES", "1"))
hsettings.register_profile("streamtag", deadline=None, database=None, derandomize=True, print_blob=True,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                  HealthCheck.data_too_large])
hsettings.load_profile("streamtag")


def examples(n: int):
    """``n`` examples in CI, scaled by ``STREAMTAG_FUZZ_EXAMPLES``."""
    return hsettings(max_examples=max(1, int(n * SCALE)))


NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e999", "-0", "0x10", "1_000", " 5 ", "", "9" * 5000, "1e-400",
                     "\u0665", "true", "٣"]),
    st.text(max_size=20))
ENV_KEYS = ["HOP", "BATCH", "VOTE_WINDOW", "CONFIRM", "EMA_ALPHA", "SILENCE_DB", "DURATION", "STATUS_INTERVAL",
            "BUFFER_SECONDS", "RATE", "CHANNELS", "FAST", "PUBLISH", "FORMAT", "VOTE", "PROVIDER", "STREAM",
            "STALL_TIMEOUT", "RETRIES", "SPEECH_THRESHOLD", "METRICS_PORT", "LOG", "SHARD"]


def _assert_valid(s) -> None:
    """A loaded settings object: every bounded number finite and within its bounds."""
    for name, (lo, hi, _) in BOUNDS.items():
        v = getattr(s, name, None)
        if v is not None:
            assert math.isfinite(v) and lo <= v <= hi, (name, v)


def _one_line(exc: UsageError) -> None:
    assert str(exc) and "\n" not in str(exc)


@examples(150)
@given(st.dictionaries(st.sampled_from(ENV_KEYS), NUMBER_TEXT, max_size=6))
def test_environment_values(values):
    env = {f"STREAMTAG_{k}": v.replace("\x00", "") for k, v in values.items()}
    for cls in (ListenSettings, MonitorSettings, TagSettings):
        try:
            _assert_valid(load(cls, {}, env=env))
        except UsageError as exc:
            _one_line(exc)


TOML_VALUE = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats().map(lambda f: "nan" if math.isnan(f) else ("inf" if f == math.inf else "-inf" if f == -math.inf
                                                            else repr(f))),
    st.booleans().map(lambda b: str(b).lower()), st.text(max_size=10).map(json.dumps),
    st.sampled_from(["[1, 2]", "{a = 1}", "1979-05-27", '"tcp://127.0.0.1:99999"', '"ipc:///tmp/x"', "[]"]))
TOML_KEY = st.sampled_from([*{f for n in BOUNDS for f in [n]}, "model", "provider", "vote", "publish", "input",
                            "json", "csv", "fast", "format", "stream", "nonsense"])


@examples(80)
@given(st.lists(st.tuples(st.sampled_from(["", "[listen]", "[monitor]", "[tag]"]), TOML_KEY, TOML_VALUE), max_size=6))
def test_config_files(tmp_path_factory, entries):
    by_table: dict[str, dict[str, str]] = {}
    for table, key, value in entries:
        by_table.setdefault(table, {})[key] = value
    text = "".join(f"{k} = {v}\n" for k, v in by_table.pop("", {}).items())
    text += "".join(f"{t}\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for t, kv in by_table.items())
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(text)
    outcomes = []
    for cls in (ListenSettings, MonitorSettings, TagSettings):
        try:
            _assert_valid(load(cls, {}, config=str(path), env={}))
            outcomes.append("ok")
        except UsageError as exc:
            _one_line(exc)
            outcomes.append(str(exc) if "unknown" in str(exc) or "unreadable" in str(exc) else "range")
    unknown = [o for o in outcomes if o not in ("ok", "range")]
    assert not unknown or all(o == unknown[0] for o in outcomes)     # a bad key is an error for every command


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=8), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
BASE_META = {"name": "m", "arch": "cnn", "labels": [f"genre{i}" for i in range(10)], "window_seconds": 1.0,
             "frontend": {"sample_rate": 16000}, "metrics": {"cv_track_acc": 0.5}}
META_KEYS = [*BASE_META, "input_name", "output_name", "training", "provenance", "licence", "version", "extra"]


@examples(200)
@given(st.dictionaries(st.sampled_from(META_KEYS), JSON, max_size=4), st.sets(st.sampled_from(list(BASE_META))),
       st.dictionaries(st.sampled_from(["sample_rate", "n_fft", "window", "center", "fmax", "bogus"]), JSON,
                       max_size=2))
def test_model_metadata(tmp_path_factory, changes, dropped, frontend):
    d = {k: v for k, v in BASE_META.items() if k not in dropped}
    d.update(changes)
    if frontend and isinstance(d.get("frontend"), dict):
        d["frontend"] = {**d["frontend"], **frontend}
    path = tmp_path_factory.mktemp("meta") / "m.json"
    path.write_text(json.dumps(d))
    try:
        meta = ModelMeta.load(path)
    except UsageError as exc:
        _one_line(exc)
        return
    assert isinstance(meta.name, str) and all(isinstance(x, str) for x in meta.labels)
    assert MODEL_RATES[0] <= meta.sample_rate <= MODEL_RATES[1] and 1 <= meta.window_samples <= MAX_WINDOW_SAMPLES
    strictjson.dumps(meta.to_dict())                                # what `models --json` prints is strict JSON


@examples(400)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200),
                 st.builds(lambda t, j: f"{t} {json.dumps(j)}", st.text(max_size=10), JSON)))
def test_frame_decoding(frame):
    try:
        topic, event = events.decode(frame)
    except events.BadFrame as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert topic.isprintable() and isinstance(event, dict)
    strictjson.dumps({"topic": topic, **event})                      # subscribe can always print it


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return wav(tmp_path_factory.mktemp("fuzz") / "c.wav", music(2.5))


FLAG_VALUE = st.one_of(st.floats().map(repr), st.integers(min_value=-10**12, max_value=10**12).map(str),
                       st.sampled_from(["nan", "inf", "0", "1", "0.1", "1e9", "-1", "3600", "256", "0.5"]))
FLAGS = ["--hop", "--batch", "--vote-window", "--confirm", "--ema-alpha", "--silence-db", "--duration",
         "--status-interval", "--stall-timeout", "--retries", "--speech-threshold"]
LISTEN_ONLY = ("--duration", "--status-interval", "--stall-timeout", "--retries", "--speech-threshold")


@examples(25)
@given(st.dictionaries(st.sampled_from(FLAGS), FLAG_VALUE, max_size=3), st.booleans())
def test_command_line_numbers(capfd, tiny_env, clip, flags, tag):
    argv = [x for kv in flags.items() for x in kv]
    if tag:
        argv = [a for i, a in enumerate(argv) if not (argv[i - (i % 2)] in LISTEN_ONLY)]
        r = run_cli(capfd, "tag", clip, "--json", "--model", "tiny", *argv)
    else:
        r = run_cli(capfd, "listen", "--input", clip, "--fast", "--no-tui", "--json", "--no-publish", "--model",
                    "tiny", *argv)
    assert r.code in (0, 2)
    check(r, r.code, bound=60)


@examples(20)
@given(st.binary(max_size=40000), st.sampled_from(["s16le", "f32le"]), st.integers(1, 8),
       st.sampled_from([8000, 16000, 44100]))
def test_stdin_pcm(capfd, tiny_env, data, fmt, channels, rate):
    if fmt == "f32le" and data:                                      # salt in the floats that hurt
        salt = np.array([np.nan, np.inf, -np.inf, 3e38, -1e30, 1e-45], dtype="<f4").tobytes()
        data = salt + data
    r = run_cli(capfd, "listen", "--input", "-", "--format", fmt, "--channels", channels, "--rate", rate,
                "--no-tui", "--json", "--no-publish", "--model", "tiny", stdin=data)
    assert r.code in (0, 2)
    check(r, r.code, *(["no audio samples"] if r.code else []), bound=60)
    if r.code == 0:
        final = r.lines[-1]
        assert final["final"] and final["windows"] == len(r.events(events.GENRE)) >= 1
