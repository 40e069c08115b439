"""Small real-audio data sets for the training CLI tests (short crops of shared gtzan-mini clips)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import soundfile as sf

SHARED = Path(os.environ.get("STREAMTAG_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))
MINI = SHARED / "data" / "gtzan-mini"
GENRES = ("blues", "classical", "metal")
SECONDS = 6.0


@pytest.fixture(scope="session")
def mini_dir() -> Path:
    """The shared gtzan-mini folder."""
    return MINI


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    """``<root>/<genre>/<genre>.0000N.wav``: 4 six-second real crops per genre, tracks.csv with artist groups."""
    root = tmp_path_factory.mktemp("data") / "mini3"
    rows = []
    for g in GENRES:
        (root / g).mkdir(parents=True)
        for i in range(4):
            src = MINI / g / f"{g}.0000{i}.flac"
            x, sr = sf.read(str(src), dtype="float32", start=int(5 * 22050), frames=int(SECONDS * 22050))
            sf.write(str(root / g / f"{src.stem}.wav"), x, sr)
            # tracks 0 and 1 of a genre share an artist
            rows.append({"path": f"{g}/{src.stem}.wav", "genre": g, "artist_group": f"{g}-{min(i, 1)}"})
    with (root / "tracks.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["path", "genre", "artist_group"])
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="session")
def small_config(tmp_path_factory) -> Path:
    """A cnn config sized for tests: 2 epochs, 3-s hop, few crops."""
    f = tmp_path_factory.mktemp("cfg") / "cnn.toml"
    f.write_text('arch = "cnn"\nsplit = "group"\nfolds = 3\n[model]\ndropout = 0.0\n'
                 "[data]\nhop_seconds = 3.0\ntrain_crops_per_track = 4\n"
                 "[train]\nepochs = 2\nbatch_size = 8\nlr = 3e-3\npatience = 0\n")
    return f
