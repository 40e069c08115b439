"""The monitor's one-row-per-station view over a real two-station pipeline, and the listen header's link state."""

from __future__ import annotations

import asyncio

from tui_support import screen_text, wait_for

from streamtag.pipeline import Pipeline
from streamtag.settings import ListenSettings, MonitorSettings
from streamtag.tui.header import SessionHeader
from streamtag.tui.monitor import MonitorApp


def test_one_row_per_station_with_genre_state_and_change(clip, real_model):
    stations = [ListenSettings(stream=name, input=str(clip(genre)), fast=True, duration=6.0)
                for name, genre in (("left-fm", "classical"), ("right-am", "metal"))]
    pipeline = Pipeline(MonitorSettings(model=real_model, publish="", status_interval=1.0), stations=stations)
    app = MonitorApp(pipeline)
    pipeline.start()

    async def drive():
        async with app.run_test(size=(100, 12)) as pilot:
            await wait_for(pilot, lambda: pipeline.wait(0), what="both stations to end")
            await pilot.pause(1.2)                                    # a table refresh after the last events
            text = screen_text(app)
            rows = {line.split()[0]: line for line in text.splitlines() if line.split()[:1] in (["left-fm"],
                                                                                                ["right-am"])}
            assert "classical" in rows["left-fm"] and "metal" in rows["right-am"], text
            assert all("ended" in r and "→" not in r.split("ended")[0] for r in rows.values()), text
            assert "2 stations, 2 up" in text and "finished" in text
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, what="quit")

    asyncio.run(drive())
    assert pipeline.error is None


def test_header_shows_input_trouble_only_when_there_is_some():
    h = SessionHeader()
    h.show_link({"state": "connected", "outages": 0})
    assert h.link == ""
    h.show_link({"state": "reconnecting", "outages": 1})
    assert h.link == "reconnecting · 1 outage"
    h.show_link({"state": "connected", "outages": 3})
    assert h.link == "connected · 3 outages"
    h.show_link({})                                                      # an old publisher without the fields
    assert h.link == ""
