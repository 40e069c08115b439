"""Fixtures for the TUI tests: real clips, a second installed model, the recorded session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_support import SESSION, gtzan_clip, shared_dir, write_mixed_clip

from streamtag.modelmeta import ModelMeta, installed_models, resolve_model


@pytest.fixture(scope="session")
def shared() -> Path:
    d = shared_dir()
    if not (d / "data" / "gtzan-mini").is_dir():
        pytest.skip(f"shared data not found at {d} (set STREAMTAG_SHARED)")
    return d


@pytest.fixture
def clip(shared):
    """``clip("metal")`` -> path of gtzan-mini metal.00000."""
    return gtzan_clip


@pytest.fixture(scope="session")
def mixed_clip(shared, tmp_path_factory) -> Path:
    """15 s of classical then 15 s of metal (real GTZAN audio)."""
    return write_mixed_clip(tmp_path_factory.mktemp("clips") / "classical-then-metal.flac")


@pytest.fixture
def two_models(real_model, tmp_path, monkeypatch) -> str:
    """Install the real model a second time (so at least two exist); returns the name `m` switches to."""
    onnx, meta = resolve_model(real_model)
    name = "zeroshot-copy"
    (tmp_path / f"{name}.onnx").symlink_to(onnx)
    ModelMeta.from_dict({**meta.to_dict(), "name": name}).save(tmp_path / f"{name}.json")
    monkeypatch.setenv("STREAMTAG_MODELS", str(tmp_path))
    names = installed_models()
    return names[(names.index(meta.name) + 1) % len(names)]


@pytest.fixture(scope="session")
def session() -> dict:
    """The recorded real session (see tui_support.py)."""
    return json.loads(SESSION.read_text())
