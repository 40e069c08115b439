"""Segment log (``--log PATH``): one row per genre segment per station, written at every change.

A segment is a run of windows with the same smoothed genre (``silence``, ``speech`` and
``outage`` included) on one station: ``station, genre, start/end`` (wall time, unix seconds and
ISO UTC), ``start_t/end_t`` (stream seconds), ``windows``, mean ``confidence`` and the ICY ``title``
current when it began. :class:`SegmentLog` is a sink: it builds the rows from the pipeline's events.

- ``.db`` (SQLite, the default format): the open segment is a row with ``state = 'open'``, its end
  refreshed at every status event; a change closes it and opens the next in one committed
  transaction. After a SIGKILL, the next run marks this process's stations' open rows
  ``recovered`` (their end is the last refresh).
- ``.csv`` / ``.jsonl``: a closed segment is appended and flushed at every change; the segment
  open at a SIGKILL is not in the file (it ends where the last row ends).

:func:`read_rows` and :func:`airtime` are what ``streamtag report`` prints.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from . import events, strictjson
from .errors import UsageError

OUTAGE_GENRE = "outage"
"""``genre`` of the rows covering the time a network input was down."""
COLUMNS = ("station", "genre", "start", "end", "start_wall", "end_wall", "start_t", "end_t", "windows",
           "confidence", "title", "state")
"""Row fields, in CSV column order."""


def iso(wall: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Row:
    """One segment."""

    station: str
    genre: str
    start_wall: float
    end_wall: float
    start_t: float
    end_t: float
    windows: int = 0
    confidence: float = 0.0
    title: str | None = None
    state: str = "open"

    def as_dict(self) -> dict:
        """All :data:`COLUMNS` (ISO times added, numbers rounded)."""
        d = asdict(self)
        d.update(start=iso(self.start_wall), end=iso(self.end_wall), start_wall=round(self.start_wall, 3),
                 end_wall=round(self.end_wall, 3), start_t=round(self.start_t, 3), end_t=round(self.end_t, 3),
                 confidence=round(self.confidence, 4))
        return {k: d[k] for k in COLUMNS}


class _Store:
    def recover(self, station: str) -> int:
        return 0

    def write(self, closed: Row | None, opened: Row | None) -> None: ...
    def refresh(self, row: Row) -> None: ...
    def close(self) -> None: ...


class _Sqlite(_Store):
    def __init__(self, path: Path):
        self.path = path
        try:
            self.db = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS segments (id INTEGER PRIMARY KEY, station TEXT NOT NULL, "
                "genre TEXT NOT NULL, start_wall REAL NOT NULL, end_wall REAL NOT NULL, start_t REAL NOT NULL, "
                "end_t REAL NOT NULL, windows INTEGER NOT NULL, confidence REAL NOT NULL, title TEXT, "
                "state TEXT NOT NULL)")
            self.db.execute("CREATE INDEX IF NOT EXISTS segments_station_start ON segments (station, start_wall)")
        except sqlite3.Error as exc:
            raise UsageError(f"{path}: cannot use as a segment log ({exc})") from None
        self.ids: dict[int, int] = {}

    def recover(self, station: str) -> int:
        with self.db:
            self.db.execute("BEGIN")
            return self.db.execute("UPDATE segments SET state = 'recovered' WHERE state = 'open' AND station = ?",
                                   (station,)).rowcount

    def write(self, closed: Row | None, opened: Row | None) -> None:
        with self.db:
            self.db.execute("BEGIN")
            if closed is not None:
                self._update(closed)
            if opened is not None:
                cur = self.db.execute(
                    "INSERT INTO segments (station, genre, start_wall, end_wall, start_t, end_t, windows, "
                    "confidence, title, state) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (opened.station, opened.genre, opened.start_wall, opened.end_wall, opened.start_t,
                     opened.end_t, opened.windows, opened.confidence, opened.title, opened.state))
                self.ids[id(opened)] = cur.lastrowid

    def _update(self, row: Row) -> None:
        rowid = self.ids.get(id(row))
        if rowid is None:
            return
        self.db.execute("UPDATE segments SET end_wall=?, end_t=?, windows=?, confidence=?, state=? WHERE id=?",
                        (row.end_wall, row.end_t, row.windows, row.confidence, row.state, rowid))
        if row.state != "open":
            del self.ids[id(row)]

    def refresh(self, row: Row) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self._update(row)

    def close(self) -> None:
        self.db.close()


class _Text(_Store):
    def __init__(self, path: Path):
        try:
            new = not path.exists() or path.stat().st_size == 0
            self.f = path.open("a", newline="", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot use as a segment log ({exc.strerror})") from None
        self.csv = csv.DictWriter(self.f, fieldnames=COLUMNS) if path.suffix.lower() == ".csv" else None
        if self.csv is not None and new:
            self.csv.writeheader()

    def write(self, closed: Row | None, opened: Row | None) -> None:
        if closed is None:
            return
        d = closed.as_dict()
        if self.csv is not None:
            self.csv.writerow(d)
        else:
            self.f.write(json.dumps(d, ensure_ascii=False, allow_nan=False) + "\n")  # strict JSON
        self.f.flush()

    def refresh(self, row: Row) -> None:
        pass

    def close(self) -> None:
        self.f.close()


class SegmentLog:
    """A sink that turns genre, outage and status events into segment rows (see the module docstring).

    A station's open SQLite rows from an earlier run are marked ``recovered`` at its first event here
    (so several processes, e.g. shards, can share one log).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._store = _Sqlite(self.path) if self.path.suffix.lower() == ".db" else _Text(self.path)
        self.recovered = 0
        """Open rows of earlier runs closed as ``recovered``."""
        self._seen: set[str] = set()
        self._open: dict[str, Row] = {}
        self._last: dict[str, Row] = {}
        self._conf: dict[str, float] = {}

    def _switch(self, stream: str, new: Row | None) -> None:
        old = self._open.pop(stream, None)
        if old is not None:
            old.state = "closed"
            self._last[stream] = old
        if new is not None:
            self._open[stream] = new
        if old is not None or new is not None:
            self._store.write(old, new)

    def publish(self, topic: str, event: dict) -> None:
        """Update the rows from one event (runs on the pipeline's worker thread)."""
        base, stream = events.base_topic(topic), event.get("stream", "")
        if stream not in self._seen:
            self._seen.add(stream)
            self.recovered += self._store.recover(stream)
        if base == events.GENRE:
            self._window(stream, event)
        elif base == events.OUTAGE:
            self._outage(stream, event)
        elif base == events.STATUS:
            row = self._open.get(stream)
            if event.get("final"):
                self._switch(stream, None)
            elif row is not None:
                self._store.refresh(row)

    def _window(self, stream: str, ev: dict) -> None:
        end_wall = ev["wall"] - ev["latency_ms"] / 1000
        row = self._open.get(stream)
        if row is not None and row.genre == ev["genre"]:
            row.end_wall, row.end_t = max(row.end_wall, end_wall), ev["t_end"]
            row.windows += 1
            self._conf[stream] += ev["confidence"]
            row.confidence = self._conf[stream] / row.windows
            if row.title is None and ev.get("title"):
                row.title = ev["title"]
        else:
            prev = row or self._last.get(stream)  # segments tile: the next starts where the last ended
            start_t = prev.end_t if prev is not None else ev["t_start"]
            start_wall = prev.end_wall if prev is not None else end_wall - (ev["t_end"] - ev["t_start"])
            self._conf[stream] = ev["confidence"]
            self._switch(stream, Row(stream, ev["genre"], start_wall, end_wall, start_t, ev["t_end"], windows=1,
                                     confidence=ev["confidence"], title=ev.get("title")))

    def _outage(self, stream: str, ev: dict) -> None:
        row = self._open.get(stream)
        if ev["state"] in ("reconnecting", "down"):
            if row is not None and row.genre == OUTAGE_GENRE:
                return
            t = row.end_t if row is not None else ev["t"]
            start = max(row.end_wall, ev["wall"]) if row is not None else ev["wall"]
            if row is not None:
                row.end_wall = start
            self._switch(stream, Row(stream, OUTAGE_GENRE, start, start, t, t, title=row.title if row else None))
        elif ev["state"] == "connected" and row is not None and row.genre == OUTAGE_GENRE:
            row.end_wall = ev["wall"]
            self._switch(stream, None)

    def close(self) -> None:
        """Close every open segment (a clean stop) and the file."""
        for stream in list(self._open):
            self._switch(stream, None)
        self._store.close()


def read_rows(path: str | Path) -> list[dict]:
    """Every row of a segment log (any of the three formats) as a dict of :data:`COLUMNS`."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such segment log")
    suffix = p.suffix.lower()
    try:
        if suffix == ".db":
            db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
            try:
                db.row_factory = sqlite3.Row
                rows = [dict(r) for r in db.execute("SELECT * FROM segments ORDER BY id")]
            finally:
                db.close()
        elif suffix == ".csv":
            with p.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        elif suffix == ".jsonl":
            with p.open(encoding="utf-8") as f:
                rows = [strictjson.loads(line) for line in f if line.strip()]
        else:
            raise UsageError(f"{path}: expected a .db, .csv or .jsonl segment log")
        return [_normal(r) for r in rows]
    except (sqlite3.Error, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: unreadable segment log ({type(exc).__name__}: {exc})") from None


def _normal(r: dict) -> dict:
    """A row of any format as :data:`COLUMNS` with numbers as numbers (CSV holds text)."""
    out = {k: r.get(k) for k in COLUMNS}
    for k in ("start_wall", "end_wall", "start_t", "end_t", "confidence"):
        out[k] = float(r[k])
    out["windows"] = int(r["windows"])
    out["title"] = r.get("title") or None
    out["start"], out["end"] = iso(out["start_wall"]), iso(out["end_wall"])
    return out


def airtime(rows: Iterable[dict], since: float | None = None, until: float | None = None) -> dict[str, dict[str, float]]:
    """Seconds of wall time per station and genre, each segment clipped to ``[since, until)``."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        a = r["start_wall"] if since is None else max(r["start_wall"], since)
        b = r["end_wall"] if until is None else min(r["end_wall"], until)
        if b > a:
            genres = out.setdefault(r["station"], {})
            genres[r["genre"]] = genres.get(r["genre"], 0.0) + (b - a)
    return out


def parse_time(text: str) -> float:
    """``--since/--until``: ISO 8601 (``2026-11-29``, ``2026-11-29T10:00``, UTC unless an offset is given)
    or unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"time {text!r}: expected ISO 8601 (2026-11-29T10:00) or unix seconds") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
