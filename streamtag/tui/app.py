"""StreamtagApp: the live dashboard of a running :class:`~streamtag.pipeline.Pipeline`."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer

from ..errors import StreamtagError
from ..modelmeta import ModelMeta, installed_models
from ..settings import VOTE_MODES
from .changes import ChangeList
from .cpu import CpuMeter
from .genre_bars import GenreBars
from .header import SessionHeader
from .health import HealthPanel
from .help import HelpScreen
from .history import GenreHistory
from .level_meter import LevelMeter
from .marks import genre_colours, genre_letters
from .messages import GenreChange, Level, Prediction, Status
from .now_playing import NowPlaying
from .sink import TuiSink
from .timeline import Timeline

if TYPE_CHECKING:
    from ..pipeline import Pipeline


class StreamtagApp(App[None]):
    """Shows what the pipeline hears and lets the user steer it; never blocks the pipeline.

    The pipeline reaches the app only through :class:`TuiSink` messages; the app calls the
    pipeline's control methods (pause, vote mode, model, save, stop), slow ones on worker threads.
    """

    CSS_PATH = Path(__file__).with_name("streamtag.tcss")
    TITLE = "streamtag"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("p", "pause", "Pause"),
        Binding("v", "vote", "Vote"),
        Binding("m", "model", "Model"),
        Binding("s", "save", "Save log"),
        Binding("o", "order", "Order"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, pipeline: Pipeline, *, cpu: Callable[[], float] | None = None,
                 timeline_minutes: float = 5.0, segments_dir: str | Path = "."):
        """``cpu`` returns this process's CPU % (default: a :class:`CpuMeter`); the timeline shows up to
        ``timeline_minutes``; ``s`` writes segment logs into ``segments_dir``."""
        super().__init__()
        self.pipeline = pipeline
        self.sink = TuiSink()
        pipeline.add_sink(self.sink)
        self.history = GenreHistory()
        self.segments_dir = Path(segments_dir)
        self._cpu = cpu or CpuMeter().sample
        self._max_span = 60.0 * timeline_minutes
        self._stopping = False
        self.finished = False
        """True once the source has ended (or the pipeline stopped)."""
        self.saved: list[Path] = []
        """Segment logs written with ``s``."""

    def compose(self) -> ComposeResult:
        yield SessionHeader(id="header")
        with Horizontal(id="top"):
            yield NowPlaying(id="now")
            yield GenreBars(id="bars")
        with Horizontal(id="middle"):
            yield Timeline(self.history, self._max_span, id="timeline")
            yield ChangeList(self.history, id="changes")
        with Horizontal(id="bottom"):
            yield LevelMeter(id="level")
            yield HealthPanel(id="health")
        yield Footer()

    def on_mount(self) -> None:
        titles = {"now": "now playing", "bars": "last window · sorted", "timeline": "timeline",
                  "changes": "changes", "level": "input", "health": "health"}
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        header = self.query_one(SessionHeader)
        header.source = self.pipeline.source_description
        self.query_one(HealthPanel).address = self.pipeline.publish_address or ""
        self.query_one(NowPlaying).vote_mode = self.pipeline.vote_mode
        self._show_model(self.pipeline.meta, self.pipeline.provider)
        self._show_state()
        self.sink.attach(self)
        self._tick()
        self.set_interval(1.0, self._tick)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.action_quit)

    def on_unmount(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        self.sink.close()  # stop the flusher thread (the pipeline closing it later is harmless)

    # -- pipeline -> screen -------------------------------------------------------------------

    def on_prediction(self, message: Prediction) -> None:
        self.history.observe(message.t_end, message.genre)
        now = self.query_one(NowPlaying)
        now.genre, now.confidence, now.raw_genre = message.genre, message.confidence, message.raw_genre
        bars = self.query_one(GenreBars)
        bars.current, bars.probs = message.genre, message.probs
        self.query_one(Timeline).refresh()

    def on_genre_change(self, message: GenreChange) -> None:
        self.history.change(message.t, message.genre, message.previous)
        self.query_one(Timeline).refresh()
        self.query_one(ChangeList).refresh()

    def on_level(self, message: Level) -> None:
        self.query_one(LevelMeter).show(message)

    def on_status(self, message: Status) -> None:
        self.query_one(HealthPanel).status = message.fields
        header = self.query_one(SessionHeader)
        header.uptime = float(message.fields.get("uptime_s", header.uptime))
        header.show_link(message.fields)
        header.source = self.pipeline.source_description  # a URL's format is known once it connects
        if message.fields.get("provider"):
            header.provider = message.fields["provider"]
        if message.final:
            self._finish()

    def _tick(self) -> None:
        self.query_one(HealthPanel).cpu_percent = self._cpu()
        if self.pipeline.wait(0):
            self._finish()

    def _finish(self) -> None:
        """The source ended or the pipeline stopped: say so, and show the pipeline's error if it hit one."""
        if self.finished:
            return
        self.finished = True
        self._show_state()
        if self.pipeline.error is not None:
            self.notify(str(self.pipeline.error), title="pipeline stopped", severity="error", timeout=3600)

    def _show_state(self) -> None:
        now = self.query_one(NowPlaying)
        if self._stopping:
            now.state = "stopping…"
        elif self.finished:
            now.state = "finished · q quits"
        else:
            now.state = "PAUSED" if self.pipeline.paused else "tagging"

    def _show_model(self, meta: ModelMeta, provider: str) -> None:
        header = self.query_one(SessionHeader)
        header.model, header.provider = meta.name, provider or header.provider
        # genres on the timeline from an earlier model keep a mark after the new model's labels
        marked = list(dict.fromkeys([*meta.labels, *(c.genre for c in self.history.changes)]))
        letters, colours = genre_letters(marked), genre_colours(marked)
        self.query_one(GenreBars).set_labels(list(meta.labels), letters, colours)
        self.query_one(NowPlaying).set_labels(letters, colours)
        self.query_one(Timeline).set_labels(letters, colours)

    # -- keys -----------------------------------------------------------------------------------

    def action_quit(self) -> None:
        """Stop the pipeline (flushes logs, last status) on a worker thread, then leave (q, Ctrl+C, SIGTERM)."""
        if self._stopping:
            return
        self._stopping = True
        self._show_state()
        self.run_worker(self._stop_pipeline, thread=True, group="stop")

    def _stop_pipeline(self) -> None:
        self.pipeline.stop()
        self.call_from_thread(self.exit)

    def action_pause(self) -> None:
        """Pause or resume tagging; capture keeps running."""
        if self._stopping or self.finished:
            return
        self.pipeline.set_paused(not self.pipeline.paused)
        self._show_state()

    def action_vote(self) -> None:
        """Next vote mode (resets the vote)."""
        current = self.pipeline.vote_mode
        mode = VOTE_MODES[(VOTE_MODES.index(current) + 1) % len(VOTE_MODES)] if current in VOTE_MODES else VOTE_MODES[0]
        self.pipeline.set_vote_mode(mode)
        self.query_one(NowPlaying).vote_mode = mode
        self.notify(f"vote mode: {mode}", timeout=2)

    def action_model(self) -> None:
        """Switch to the next installed model on a worker thread; capture keeps running."""
        names = installed_models()
        current = self.pipeline.meta.name
        if len(names) < 2 and current in names:
            self.notify("only one model installed", severity="warning", timeout=3)
            return
        target = names[(names.index(current) + 1) % len(names)] if current in names else names[0]
        self.notify(f"loading model {target}…", timeout=2)
        self.run_worker(lambda: self._switch_model(target), thread=True, group="model", exclusive=True)

    def _switch_model(self, name: str) -> None:
        try:
            meta = self.pipeline.switch_model(name)
        except StreamtagError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=5)
            return
        self.call_from_thread(self._model_switched, meta)

    def _model_switched(self, meta: ModelMeta) -> None:
        self._show_model(meta, self.pipeline.provider)
        self.notify(f"model: {meta.name}", timeout=3)

    def action_save(self) -> None:
        """Write the segment log as ``streamtag-segments-<UTC time>.json`` in ``segments_dir``."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        try:
            path = self.pipeline.save_segments(self.segments_dir / f"streamtag-segments-{stamp}.json")
        except (StreamtagError, OSError) as exc:
            self.notify(f"cannot save segments: {exc}", severity="error", timeout=5)
            return
        self.saved.append(Path(path))
        self.notify(f"saved {path}", timeout=4)

    def action_order(self) -> None:
        """Toggle the genre bars between probability order and model order."""
        bars = self.query_one(GenreBars)
        bars.sort_by_probability = not bars.sort_by_probability
        bars.border_title = "last window · " + ("sorted" if bars.sort_by_probability else "model order")

    def action_help(self) -> None:
        """Show the key reference."""
        self.push_screen(HelpScreen())
