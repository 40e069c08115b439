"""Pilot tests: the real app over the real pipeline, real model and real GTZAN clips.

Each test drives ``App.run_test`` inside ``asyncio.run`` (no async pytest plugin needed).
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import soundfile as sf

import pytest

from tui_support import screen_text, wait_for

from streamtag.pipeline import Pipeline
from streamtag.settings import ListenSettings
from streamtag.tui import StreamtagApp
from streamtag.tui.genre_bars import GenreBars
from streamtag.tui.header import SessionHeader
from streamtag.tui.level_meter import LevelMeter
from streamtag.tui.now_playing import NowPlaying, spaced


class Windows:
    """A second sink on the same pipeline: every window the pipeline published, in order."""

    def __init__(self):
        self.genre: list[dict] = []
        self.levels: list[dict] = []
        self.final_status = False

    def publish(self, topic: str, event: dict) -> None:
        if topic == "streamtag.genre":
            self.genre.append(event)
        elif topic == "streamtag.level":
            self.levels.append(event)
        elif topic == "streamtag.status":
            self.final_status |= event["final"]

    def close(self) -> None:
        pass


def _pipeline(path, model: str, *, fast: bool, sink=None) -> Pipeline:
    settings = ListenSettings(input=str(path), model=model, fast=fast, publish="",
                              status_interval=1.0)
    return Pipeline(settings, [sink] if sink else [])


@pytest.mark.parametrize("genre", ["classical", "metal"])
def test_shows_the_genre_of_a_real_clip(clip, genre, real_model, tmp_path):
    pipeline = _pipeline(clip(genre), real_model, fast=True)
    app = StreamtagApp(pipeline, segments_dir=tmp_path)
    pipeline.start()
    asyncio.run(_show_genre(app, genre, real_model))
    assert pipeline.wait(0) and pipeline.error is None


async def _show_genre(app: StreamtagApp, genre: str, model: str) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.finished, 60, "the end of the clip")
        await pilot.pause(0.3)
        now = app.query_one(NowPlaying)
        assert now.genre == genre
        assert app.query_one(GenreBars).current == genre
        text = screen_text(app)
        assert spaced(genre, 40) in text            # the large genre name
        assert f"▶{app.query_one(GenreBars).letters[genre]} {genre}" in text  # its bar is marked
        assert "finished" in text
        assert app.query_one(SessionHeader).model == model
        for key in ("q Quit", "p Pause", "v Vote", "m Model", "s Save log", "? Help"):
            assert key in text
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, 10, "the app to exit")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["silent", "clipped"])
def test_input_meter_flags_silence_and_clipping(clip, kind, real_model, tmp_path):
    """Real time, 4 s: digital silence -> genre "silence" and SILENT; metal at 4x gain, hard-clipped -> CLIPPING."""
    metal, rate = sf.read(str(clip("metal")), dtype="float32")
    audio = np.zeros(4 * rate, np.float32) if kind == "silent" else np.clip(4 * metal[: 4 * rate], -1, 1)
    path = tmp_path / f"{kind}.wav"
    sf.write(str(path), audio, rate)
    pipeline = _pipeline(path, real_model, fast=False)
    app = StreamtagApp(pipeline, segments_dir=tmp_path)
    pipeline.start()
    asyncio.run(_check_meter(app, kind))


async def _check_meter(app: StreamtagApp, kind: str) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        meter, now = app.query_one(LevelMeter), app.query_one(NowPlaying)
        if kind == "silent":
            await wait_for(pilot, lambda: now.genre == "silence" and meter.silent, 15, "silence")
            text = screen_text(app)
            assert not meter.clipping
            assert "SILENT" in text and "-inf dBFS" in text and "S I L E N C E" in text
        else:
            await wait_for(pilot, lambda: meter.clipping and now.genre != "", 15, "clipping and a genre")
            text = screen_text(app)
            assert not meter.silent and meter.peak_dbfs > -0.01
            assert "CLIPPING" in text and "signal" in text and " 0.0 dBFS" in text
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, 10, "the app to exit")


@pytest.mark.slow
def test_keys_do_what_the_footer_says(mixed_clip, real_model, two_models, tmp_path):
    """Real-time playback: v, p, m, s and q each change the running pipeline as the footer promises."""
    windows = Windows()
    pipeline = _pipeline(mixed_clip, real_model, fast=False, sink=windows)
    app = StreamtagApp(pipeline, segments_dir=tmp_path)
    pipeline.start()
    asyncio.run(_press_keys(app, pipeline, windows, two_models, tmp_path))
    assert pipeline.wait(0), "q must stop the pipeline"
    assert windows.final_status and pipeline.error is None
    assert windows.genre[-1]["t_end"] < 29.0, "stopped before the end of the clip"


async def _press_keys(app, pipeline, windows, two_models, tmp_path) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        now = app.query_one(NowPlaying)
        await wait_for(pilot, lambda: now.genre != "", 15, "the first window")

        await pilot.press("v")
        assert pipeline.vote_mode == "soft" and now.vote_mode == "soft"
        await pilot.press("v")
        assert pipeline.vote_mode == "hard"
        assert "hard" in screen_text(app)

        # p pauses tagging: no new windows while capture (the level meter) runs on
        await pilot.press("p")
        assert pipeline.paused and now.state == "PAUSED"
        await pilot.pause(0.3)
        n_windows, n_levels = len(windows.genre), len(windows.levels)
        await pilot.pause(2.0)
        assert len(windows.genre) == n_windows
        assert len(windows.levels) > n_levels
        await pilot.press("p")
        assert not pipeline.paused and now.state == "tagging"
        await wait_for(pilot, lambda: len(windows.genre) > n_windows, 5, "tagging to resume")

        # m switches model; stream time runs on, so capture was never restarted
        before = windows.genre[-1]["t_end"]
        await pilot.press("m")
        await wait_for(pilot, lambda: windows.genre[-1]["model"] == two_models, 15, "the new model's first window")
        first_new = next(w for w in windows.genre if w["model"] == two_models)
        assert first_new["t_end"] > before
        assert app.query_one(SessionHeader).model == two_models
        assert pipeline.source_description.startswith("file ")

        await pilot.press("s")
        assert len(app.saved) == 1 and app.saved[0].parent == tmp_path
        segments = json.loads(app.saved[0].read_text())
        assert segments and segments[0]["start"] == 0.0 and all(s["genre"] for s in segments)

        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, 10, "the app to exit")
