"""Talk on air: real synthesised speech (espeak-ng) between and over real music is reported as ``speech``."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr

from clitools import json_lines, streamtag, write_clip
from streamtag import events

TEXT = ("Good morning, this is the traffic and weather report. The roads are clear on the motorway this "
        "morning, with light rain expected later in the afternoon. And now, a word from our sponsors.")


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    """About 10 s of espeak-ng speech at 22050 Hz."""
    if shutil.which("espeak-ng") is None:
        if os.environ.get("STREAMTAG_REQUIRE_AUDIO") == "1":
            pytest.fail("espeak-ng is not installed (CI installs it)")
        pytest.skip("espeak-ng not installed")
    d = tmp_path_factory.mktemp("talk")
    subprocess.run(["espeak-ng", "-w", str(d / "talk.wav"), TEXT], check=True, capture_output=True)
    x, rate = sf.read(d / "talk.wav", dtype="float32")
    return soxr.resample(x, rate, 22050).astype(np.float32)


def _stream(path, parts):
    sf.write(path, np.concatenate(parts), 22050)
    return path


def _genre(path, model, *extra):
    r = streamtag("listen", "--input", path, "--fast", "--no-tui", "--json", "--no-publish", "--model", model,
                  "--confirm", "2", *extra)
    assert r.returncode == 0, r.stderr
    lines = json_lines(r.stdout)
    return [e for e in lines if e["topic"] == events.GENRE], [e for e in lines if e["topic"] == events.CHANGE]


def test_a_talk_break_between_songs_is_speech_and_stays_out_of_the_music_vote(tmp_path, talk, real_model):
    metal, _ = sf.read(write_clip(tmp_path / "m.wav", "metal", 12.0), dtype="float32")
    a, b = len(metal) // 2, len(talk)
    path = _stream(tmp_path / "break.wav", [metal[:a], talk, metal[a:]])
    t0, t1 = a / 22050, (a + b) / 22050                                      # the talk: 6 s .. ~16.4 s
    genre, change = _genre(path, real_model)
    assert all("speech" in e for e in genre)
    talk_w = [e for e in genre if e["t_start"] >= t0 and e["t_end"] <= t1]
    music_w = [e for e in genre if e["t_end"] <= t0 or e["t_start"] >= t1]
    assert len(talk_w) >= 6 and all(e["speech"] >= 0.6 for e in talk_w)
    assert all(e["genre"] == "speech" for e in talk_w[1:])                   # confirmed after 2 in a row
    assert all(e["speech"] < 0.3 and e["genre"] == "metal" for e in music_w)
    assert [(c["previous"], c["genre"]) for c in change] == [(None, "metal"), ("metal", "speech"), ("speech", "metal")]
    back = change[-1]                   # music back at once (the talk left no vote to outvote), not later
    assert t0 < back["t_start"] <= min(e["t_start"] for e in music_w if e["t_start"] >= t1)


def test_talk_over_a_music_bed_is_speech(tmp_path, talk, real_model):
    metal, _ = sf.read(write_clip(tmp_path / "m.wav", "metal", 11.0), dtype="float32")
    bed = metal[:len(talk)] * 0.25 * np.sqrt(np.mean(talk ** 2) / np.mean(metal ** 2))  # 12 dB under the voice
    genre, _ = _genre(_stream(tmp_path / "advert.wav", [talk + bed]), real_model)
    assert sum(e["genre"] == "speech" for e in genre) >= 0.75 * len(genre)


def test_models_without_a_speech_output_never_report_speech(tmp_path, talk, tiny_env):
    r = streamtag("listen", "--input", _stream(tmp_path / "t.wav", [talk]), "--fast", "--no-tui", "--json",
                  "--no-publish", "--model", "tiny", env=tiny_env)
    genre = [e for e in json_lines(r.stdout) if e["topic"] == events.GENRE]
    assert r.returncode == 0 and genre and all("speech" not in e and e["genre"] != "speech" for e in genre)
