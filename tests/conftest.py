"""Shared test fixtures: tiny and real ONNX models, a private PulseAudio server.

Nothing is mocked: models are real ONNX files, capture goes through PortAudio into a PulseAudio
null sink. Helpers for running the CLI on real clips live in ``tests/functional/runtime/clitools.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_ONNX = REPO / "tests" / "data" / "tiny.onnx"
"""A tiny real ONNX graph (16 kHz, 1-s window, ten logits), made by ``tests/data/make_tiny_onnx.py``."""
REAL_MODEL = "audioset-zeroshot"
"""The shipped AudioSet zero-shot model: tests that check "the right genre" use it on real clips."""
SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
"""The shared data folder (real music: ``data/gtzan-mini``)."""
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")


HAVE_TORCH = importlib.util.find_spec("torch") is not None
"""The training extra is installed; without it the tests under ``*/training/`` are skipped."""


class _NeedsTorch(pytest.Module):
    """A training test module in an environment with the runtime extras only: skipped, not imported."""

    def collect(self):
        pytest.skip("needs the training extra (torch): pip install -e '.[train]'")


def pytest_pycollect_makemodule(module_path, parent):
    """Skip (rather than fail to import) training test modules when torch is not installed."""
    if not HAVE_TORCH and "training" in module_path.parts[len(Path(__file__).parent.parts):]:
        return _NeedsTorch.from_parent(parent, path=module_path)
    return None


@pytest.fixture(scope="session", autouse=True)
def private_config_home(tmp_path_factory):
    """``$XDG_CONFIG_HOME`` for this session and every command it starts: an empty folder of its own.

    No user config is read, and what clients keep there (PulseAudio's cookie) never lands in the checkout.
    """
    d = tmp_path_factory.mktemp("config-home")
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(d)
    yield d
    if old is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = old


@pytest.fixture(scope="session")
def real_model() -> str:
    """Name of the shipped real model (skip if the models/ folder lacks it)."""
    if not (REPO / "models" / f"{REAL_MODEL}.onnx").is_file():
        pytest.skip(f"models/{REAL_MODEL}.onnx not exported yet")
    return REAL_MODEL


@pytest.fixture(scope="session")
def music():
    """``music(rate, genre="rock", n=0)``: a real gtzan-mini track (~30 s) as mono float32 at ``rate`` Hz."""
    from streamtag.audio import load_mono

    cache = {}

    def load(rate: int, genre: str = "rock", n: int = 0):
        path = SHARED / "data" / "gtzan-mini" / genre / f"{genre}.{n:05d}.flac"
        if not path.is_file():
            pytest.fail(f"shared data missing: {path} (set STREAMTAG_SHARED)")
        if (rate, path) not in cache:
            cache[rate, path] = load_mono(path, rate)
        return cache[rate, path]

    return load


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """A models folder with ``tiny`` (16 kHz, 1-s window, ten labels) and deliberately bad models.

    ``broken``: garbage bytes as .onnx; ``wronglabels``: the tiny graph with 4 labels in its metadata;
    ``wrongwindow``: metadata claiming a 2-s window.
    """
    d = tmp_path_factory.mktemp("models")
    rate, seconds = 16000, 1.0
    shutil.copy(TINY_ONNX, d / "tiny.onnx")
    base = {"name": "tiny", "arch": "cnn", "labels": list(GENRES), "window_seconds": seconds,
            "frontend": {"sample_rate": rate}, "metrics": {"cv_track_acc": 0.5}}
    (d / "tiny.json").write_text(json.dumps(base))
    (d / "broken.onnx").write_bytes(b"this is not an onnx protobuf" * 10)
    (d / "broken.json").write_text(json.dumps({**base, "name": "broken"}))
    shutil.copy(d / "tiny.onnx", d / "wronglabels.onnx")
    (d / "wronglabels.json").write_text(json.dumps({**base, "name": "wronglabels", "labels": list(GENRES[:4])}))
    shutil.copy(d / "tiny.onnx", d / "wrongwindow.onnx")
    (d / "wrongwindow.json").write_text(json.dumps({**base, "name": "wrongwindow", "window_seconds": 2.0}))
    return d


@pytest.fixture
def tiny_env(tiny_models, monkeypatch) -> dict[str, str]:
    """``STREAMTAG_MODELS`` pointing at :func:`tiny_models` (in this process and for CLI children)."""
    monkeypatch.setenv("STREAMTAG_MODELS", str(tiny_models))
    return {"STREAMTAG_MODELS": str(tiny_models)}


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """A private PulseAudio server: null sink ``vsink`` (22050 Hz mono), default source its monitor.

    ``PULSE_SERVER`` is set for this process and its children. Skipped when pulseaudio is missing,
    unless ``STREAMTAG_REQUIRE_AUDIO=1`` (CI), where that is a failure.
    """
    required = os.environ.get("STREAMTAG_REQUIRE_AUDIO") == "1"
    if not (shutil.which("pulseaudio") and shutil.which("pactl") and shutil.which("paplay")):
        if required:
            pytest.fail("STREAMTAG_REQUIRE_AUDIO=1 but pulseaudio/pactl/paplay are missing")
        pytest.skip("pulseaudio not installed")
    d = tmp_path_factory.mktemp("pulse")
    sock = d / "native"
    env = {**os.environ, "HOME": str(d), "XDG_RUNTIME_DIR": str(d), "PULSE_SERVER": f"unix:{sock}"}
    server = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes",
         f"--load=module-native-protocol-unix auth-anonymous=1 socket={sock}",
         "--load=module-null-sink sink_name=vsink rate=22050 channels=1"],
        env=env, stdout=subprocess.DEVNULL, stderr=(d / "pulseaudio.log").open("w"))
    deadline = time.monotonic() + 15
    while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            msg = f"PulseAudio did not start: {(d / 'pulseaudio.log').read_text()[-500:]}"
            if required:
                pytest.fail(msg)
            pytest.skip(msg)
        time.sleep(0.1)
    for cmd in (["pactl", "set-default-sink", "vsink"], ["pactl", "set-default-source", "vsink.monitor"]):
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER",)}
    os.environ["PULSE_SERVER"] = env["PULSE_SERVER"]
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
