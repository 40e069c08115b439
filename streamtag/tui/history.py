"""The smoothed-genre history behind the timeline: change points, bucketing and the time axis (pure)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from ..clock import fmt_clock

SPAN_STEPS = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Timeline spans (s) the strip grows through until it reaches the configured maximum."""


@dataclass(frozen=True)
class Change:
    """The smoothed genre became ``genre`` at stream time ``t`` (``previous`` is ``None`` for the first)."""

    t: float
    genre: str
    previous: str | None


@dataclass
class GenreHistory:
    """Change points of the smoothed genre and the latest stream time seen (``now``)."""

    changes: list[Change] = field(default_factory=list)
    now: float = 0.0

    def observe(self, t: float, genre: str) -> None:
        """A prediction ending at ``t``: the first one starts the history at stream time 0."""
        if not self.changes:
            self.changes.append(Change(0.0, genre, None))
        self.now = max(self.now, t)

    def change(self, t: float, genre: str, previous: str | None) -> None:
        """The smoothed genre became ``genre`` at ``t``; the first genre seen is taken to start at 0."""
        if not self.changes:
            self.changes.append(Change(0.0, genre if previous is None else previous, None))
        if self.changes[-1].genre != genre:
            self.changes.append(Change(t, genre, previous))
        self.now = max(self.now, t)

    def recent(self, n: int) -> list[Change]:
        """The last ``n`` change points, newest first (the first genre heard included)."""
        return self.changes[::-1][:n]


def span_for(elapsed: float, max_span: float) -> float:
    """Seconds the strip covers: the smallest step holding ``elapsed``, at most ``max_span``."""
    for step in SPAN_STEPS:
        if step >= max_span:
            return max_span
        if elapsed <= step:
            return step
    return max_span


def window(now: float, span: float) -> tuple[float, float]:
    """Time range ``(t0, t1)`` of the strip: starts at 0 until ``now`` exceeds the span, then slides."""
    t1 = max(now, span)
    return t1 - span, t1


def buckets(history: GenreHistory, t0: float, t1: float, width: int) -> list[str | None]:
    """Genre of each of ``width`` columns over ``t0..t1``, sampled at the column midpoint.

    ``None`` where nothing was heard yet (before the first genre or after ``history.now``).
    """
    if width <= 0 or t1 <= t0:
        return []
    times = [c.t for c in history.changes]
    step = (t1 - t0) / width
    out: list[str | None] = []
    for i in range(width):
        t = t0 + (i + 0.5) * step
        j = bisect_right(times, t)
        out.append(history.changes[j - 1].genre if j and t <= history.now else None)
    return out


def change_columns(history: GenreHistory, t0: float, t1: float, width: int) -> set[int]:
    """Columns of the strip in which the smoothed genre changed."""
    if width <= 0 or t1 <= t0:
        return set()
    cols = set()
    for c in history.changes:
        if c.previous is not None and t0 <= c.t < t1:
            cols.add(min(width - 1, int((c.t - t0) / (t1 - t0) * width)))
    return cols


def axis(t0: float, t1: float, width: int, every: int = 16) -> str:
    """A time axis of ``width`` cells with ``m:ss`` labels about every ``every`` cells.

    The first label is left-aligned, the last right-aligned, the others centred on their tick;
    a label that would touch its neighbour is left out.
    """
    if width <= 0:
        return ""
    cells = [" "] * width
    n = max(1, width // every)
    for k in range(n + 1):
        col = round(k * (width - 1) / n)
        label = fmt_clock(t0 + (t1 - t0) * k / n)
        if k == 0:
            start = 0
        elif k == n:
            start = width - len(label)
        else:
            start = col - len(label) // 2
        if start < 0 or start + len(label) > width:
            continue
        if any(c != " " for c in cells[max(0, start - 1):start + len(label) + 1]):
            continue
        cells[start:start + len(label)] = label
    return "".join(cells)
