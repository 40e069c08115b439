"""Durations and stream times as text: one notation for the console, the TUI and ``tag``'s progress."""

from __future__ import annotations


def fmt_clock(seconds: float) -> str:
    """Seconds as ``m:ss`` below an hour, else ``h:mm:ss`` (negative clamps to 0)."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_stream_time(seconds: float) -> str:
    """A stream time to the tenth, ``m:ss.s`` (``h:mm:ss.s`` past an hour): how a genre change is dated."""
    tenths = max(0, int(round(seconds * 10)))
    return f"{fmt_clock(tenths // 10)}.{tenths % 10}"
