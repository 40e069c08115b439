"""Pure text formatting for the TUI: dBFS, percentages, provider names (clock times: :mod:`streamtag.clock`)."""

from __future__ import annotations

import math

DBFS_FLOOR = -99.9
"""Levels below this (including digital silence, ``-inf``) are shown as ``-inf``."""


def fmt_dbfs(value: float | None) -> str:
    """A level as a fixed-width ``"-12.3 dBFS"``; ``None``/NaN as ``"   -- dBFS"``, silence as ``" -inf dBFS"``."""
    if value is None or math.isnan(value):
        return "  -- dBFS"
    if value < DBFS_FLOOR:
        return "-inf dBFS"
    return f"{value:5.1f} dBFS"


def fmt_percent(fraction: float | None) -> str:
    """A probability ``0..1`` as a fixed-width ``" 82.1%"``; ``None`` as ``"   --%"``."""
    if fraction is None or math.isnan(fraction):
        return "   --%"
    return f"{100.0 * fraction:5.1f}%"


def fmt_ms(value: float | None) -> str:
    """Milliseconds, no decimals above 10 ms; ``None`` as ``--``."""
    if value is None or math.isnan(value):
        return "-- ms"
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def short_provider(provider: str) -> str:
    """``CUDAExecutionProvider`` -> ``CUDA``: ONNX Runtime's provider name without the suffix."""
    return provider.removesuffix("ExecutionProvider") or provider


def fit_source(description: str, width: int) -> str:
    """A source description in ``width`` cells: its ``" (details)"`` shrink to the first one (the sample
    rate), then the path loses its head; the rate goes last."""
    if len(description) <= width:
        return description
    head, _, details = description.partition(" (")
    first = details.rstrip(")").split(", ")[0]
    keep = f" ({first})" if first else ""
    if len(head) + len(keep) <= width:
        return head + keep
    if width - len(keep) >= 12:
        return ellipsize_left(head, width - len(keep)) + keep
    return ellipsize_left(head, width)


def ellipsize_left(text: str, width: int) -> str:
    """Keep the end of ``text`` (a file name outlives its folders): ``"…" + tail`` when too long."""
    if len(text) <= width:
        return text
    return "…" + text[len(text) - width + 1:] if width > 1 else text[:max(0, width)]
