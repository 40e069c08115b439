"""MonitorApp: ``streamtag monitor``'s compact view, one row per station.

Columns: station, genre, confidence, input state (with outages), uptime, last change (local time where
the new genre began, from the change event's ``at``; ``previous → genre``), ICY title. A :class:`StationBoard` sink keeps the latest state per station
on the pipeline's thread; the app redraws the table from it twice a second, so the screen never
slows the pipeline, whatever the number of stations.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from .. import events
from ..clock import fmt_clock
from .format import fmt_percent

if TYPE_CHECKING:
    from ..pipeline import Pipeline

REFRESH_S = 0.5
"""Table redraw period."""
COLUMNS = {"station": 0, "genre": 10, "conf": 6, "state": 17, "up": 8, "last change": 32, "title": 40}
"""Column -> width (0: the longest station name)."""


@dataclass
class StationRow:
    """What the table shows for one station."""

    genre: str = "-"
    confidence: float | None = None
    state: str = "connecting"
    outages: int = 0
    uptime: float = 0.0
    changed_at: float | None = None
    change: str = ""
    title: str = ""


class StationBoard:
    """A sink holding the latest :class:`StationRow` per station (thread-safe snapshots)."""

    def __init__(self, names: list[str]):
        self._lock = threading.Lock()
        self._rows = {name: StationRow() for name in names}

    def publish(self, topic: str, event: dict) -> None:
        """Fold one event into its station's row."""
        base, name = events.base_topic(topic), event.get("stream", "")
        with self._lock:
            row = self._rows.setdefault(name, StationRow())
            if base == events.GENRE:
                row.genre, row.confidence = event["genre"], event["confidence"]
                row.title = event.get("title") or row.title
            elif base == events.CHANGE:  # dated by ``at``: when the new genre's segment began
                row.changed_at = event["wall"] - event["latency_ms"] / 1000 - (event["t_end"] - event["at"])
                row.change = f"{event['previous']} → {event['genre']}" if event["previous"] else event["genre"]
            elif base == events.STATUS:
                row.state, row.outages, row.uptime = event["state"], event["outages"], event["uptime_s"]
            elif base == events.OUTAGE:
                row.state, row.outages = event["state"], event["outages"]

    def snapshot(self) -> dict[str, StationRow]:
        """A copy of every row."""
        with self._lock:
            return {name: replace(row) for name, row in self._rows.items()}

    def close(self) -> None:
        """Nothing to release."""


def cells(row: StationRow) -> tuple[str, ...]:
    """The table cells of one row (without the station name)."""
    state = row.state + (f" ({row.outages})" if row.outages else "")
    when = time.strftime("%H:%M:%S", time.localtime(row.changed_at)) if row.changed_at else "-"
    change = f"{when} {row.change}" if row.change else when
    return (row.genre, fmt_percent(row.confidence), state, fmt_clock(row.uptime), change, row.title or "")


class MonitorApp(App[None]):
    """One row per station of a running monitor pipeline; ``q`` (or Ctrl+C, SIGTERM) stops it cleanly."""

    TITLE = "streamtag monitor"
    ENABLE_COMMAND_PALETTE = False
    CSS = "#summary { height: 1; padding: 0 1; background: $panel; } DataTable { height: 1fr; }"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+c", "quit", "Quit", show=False, priority=True)]

    def __init__(self, pipeline: Pipeline):
        super().__init__()
        self.pipeline = pipeline
        self.board = StationBoard([st.settings.stream for st in pipeline.stations])
        pipeline.add_sink(self.board)
        self._stopping = False

    def compose(self) -> ComposeResult:
        yield Static(id="summary")
        yield DataTable(id="stations", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        rows = self.board.snapshot()
        for col, width in COLUMNS.items():
            table.add_column(col, key=col, width=width or max(8, *(len(n) for n in rows)))
        for name, row in rows.items():
            table.add_row(name, *cells(row), key=name)
        self._refresh()
        self.set_interval(REFRESH_S, self._refresh)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.action_quit)

    def on_unmount(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)

    def _refresh(self) -> None:
        table = self.query_one(DataTable)
        rows = self.board.snapshot()
        for name, row in rows.items():
            for col, value in zip(list(COLUMNS)[1:], cells(row)):
                table.update_cell(name, col, value)
        p = self.pipeline
        up = sum(r.state in ("connected", "ended") for r in rows.values())
        done = " · finished, q quits" if p.wait(0) else ""
        self.query_one("#summary", Static).update(
            f"streamtag monitor │ {len(rows)} stations, {up} up │ {p.meta.name} on {p.provider or '-'}"
            f"{' │ ' + p.publish_address if p.publish_address else ''}{done}")

    def action_quit(self) -> None:
        """Stop the pipeline (final statuses, logs closed) on a worker thread, then leave."""
        if self._stopping:
            return
        self._stopping = True
        self.run_worker(self._stop_pipeline, thread=True, group="stop")

    def _stop_pipeline(self) -> None:
        self.pipeline.stop()
        self.call_from_thread(self.exit)
