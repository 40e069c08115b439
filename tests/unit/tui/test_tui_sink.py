"""TuiSink and the messages: at most ~10 Hz, newest state wins, no genre change lost."""

from __future__ import annotations

import asyncio
import time

from textual.app import App

from streamtag import events
from streamtag.tui.messages import GenreChange, Level, Prediction, Status, message_for
from streamtag.tui.sink import TuiSink

LABELS = ("classical", "metal")


def _genre(seq: int, genre: str) -> dict:
    return events.genre_event(stream="s", seq=seq, t_start=seq, t_end=seq + 3.0, genre=genre, confidence=0.9,
                              raw_genre=genre, probs={"classical": 0.1, "metal": 0.9}, latency_ms=5.0,
                              model="m")


class Recorder(App):
    """A real app that keeps every message it handles, with the time it arrived."""

    def __init__(self):
        super().__init__()
        self.got: list[tuple[float, object]] = []

    def on_prediction(self, m: Prediction) -> None:
        self.got.append((time.monotonic(), m))

    def on_genre_change(self, m: GenreChange) -> None:
        self.got.append((time.monotonic(), m))

    def on_level(self, m: Level) -> None:
        self.got.append((time.monotonic(), m))


def test_message_for_maps_every_topic():
    ev = _genre(4, "metal")
    p = message_for(events.GENRE, ev)
    assert isinstance(p, Prediction) and (p.genre, p.seq, p.t_end, p.probs["metal"]) == ("metal", 4, 7.0, 0.9)
    c = message_for(events.CHANGE, events.change_event(ev, "classical", at=6.0))
    assert isinstance(c, GenreChange) and (c.t, c.genre, c.previous) == (6.0, "metal", "classical")
    lv = message_for(events.LEVEL, events.level_event(stream="s", t=1.0, rms_dbfs=-20.0, peak_dbfs=-1.0,
                                                      clipping=False, silent=False))
    assert isinstance(lv, Level) and lv.rms_dbfs == -20.0
    st = message_for(events.STATUS, {"final": True, "uptime_s": 3.0})
    assert isinstance(st, Status) and st.final
    assert message_for("streamtag.other", {}) is None


def test_newer_state_supersedes_but_changes_do_not():
    a, b = Prediction(**_fields(1)), Prediction(**_fields(2))
    assert a.can_replace(b) and not a.can_replace(Level(-1.0, -1.0, False, False))
    change = GenreChange(3.0, "metal", "classical")
    assert not change.can_replace(GenreChange(4.0, "classical", "metal"))
    assert Status({}).can_replace(Status({"final": True}))


def test_a_clip_is_never_superseded_away():
    clipped, clean = Level(-6.0, 0.0, True, False), Level(-20.0, -9.0, False, False)
    assert not clipped.can_replace(clean) and clean.can_replace(clipped) and clipped.can_replace(clipped)
    merged = clean.absorb(clipped)
    assert (merged.rms_dbfs, merged.peak_dbfs, merged.clipping) == (-20.0, 0.0, True)
    later = Prediction(**_fields(2))
    assert later.absorb(Prediction(**_fields(1))) is later


def _fields(seq: int) -> dict:
    return dict(genre="metal", confidence=0.9, raw_genre="metal", probs={}, t_end=seq, seq=seq, model="m",
                latency_ms=1.0)


def test_sink_posts_at_most_10_hz_keeps_the_newest_and_every_change():
    async def scenario() -> Recorder:
        app = Recorder()
        sink = TuiSink()
        async with app.run_test() as pilot:
            sink.attach(app)
            start = time.monotonic()
            genre = "classical"
            for seq in range(600):  # 600 windows in ~0.6 s, far faster than any screen needs
                if seq % 100 == 50:
                    previous, genre = genre, "metal" if genre == "classical" else "classical"
                    sink.publish(events.CHANGE, events.change_event(_genre(seq, genre), previous, at=seq + 2.0))
                sink.publish(events.GENRE, _genre(seq, genre))
                sink.publish(events.LEVEL, events.level_event(stream="s", t=seq, rms_dbfs=-20.0, peak_dbfs=-3.0,
                                                              clipping=False, silent=False))
                sink.publish("streamtag.unknown", {})
                time.sleep(0.001)
            elapsed = time.monotonic() - start
            sink.close()
            await pilot.pause(0.2)
        app.elapsed = elapsed
        return app

    app = asyncio.run(scenario())
    predictions = [m for _, m in app.got if isinstance(m, Prediction)]
    changes = [m for _, m in app.got if isinstance(m, GenreChange)]
    levels = [m for _, m in app.got if isinstance(m, Level)]
    budget = app.elapsed / 0.1 + 2  # one per flush, plus the last flush at close
    assert 1 <= len(predictions) <= budget and 1 <= len(levels) <= budget
    assert predictions[-1].seq == 599 and levels[-1].rms_dbfs == -20.0  # the newest state always arrives
    assert [int(c.t) - 2 for c in changes] == [50, 150, 250, 350, 450, 550]  # every change, in order
    seqs = [p.seq for p in predictions]
    assert seqs == sorted(seqs)


def test_sink_holds_events_until_attached():
    async def scenario() -> Recorder:
        app = Recorder()
        sink = TuiSink()
        sink.publish(events.CHANGE, events.change_event(_genre(0, "metal"), None, at=0.0))
        sink.publish(events.GENRE, _genre(0, "metal"))
        assert sink.flush() == 0
        async with app.run_test() as pilot:
            sink.attach(app)
            await pilot.pause(0.3)
            sink.close()
        return app

    app = asyncio.run(scenario())
    kinds = [type(m) for _, m in app.got]
    assert kinds == [GenreChange, Prediction]


def test_app_queue_collapses_superseded_predictions():
    """Predictions queued faster than the app handles them collapse to the newest (can_replace)."""
    async def scenario() -> Recorder:
        app = Recorder()
        async with app.run_test() as pilot:
            for seq in range(200):
                app.post_message(Prediction(**_fields(seq)))
            app.post_message(GenreChange(1.0, "metal", "classical"))
            app.post_message(GenreChange(2.0, "classical", "metal"))
            await pilot.pause(0.2)
        return app

    app = asyncio.run(scenario())
    seqs = [m.seq for _, m in app.got if isinstance(m, Prediction)]
    assert seqs[-1] == 199 and len(seqs) < 10
    assert [m.t for _, m in app.got if isinstance(m, GenreChange)] == [1.0, 2.0]
