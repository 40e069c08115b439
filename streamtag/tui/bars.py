"""Pure bar rendering: horizontal bars with eighth-block resolution, level fractions."""

from __future__ import annotations

import math

_EIGHTHS = " ▏▎▍▌▋▊▉"
FULL = "█"


def bar(fraction: float, width: int) -> str:
    """A left-aligned bar filling ``fraction`` (clamped to 0..1) of ``width`` cells, padded with spaces."""
    if width <= 0:
        return ""
    if math.isnan(fraction):
        fraction = 0.0
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    text = FULL * full + (_EIGHTHS[part] if part else "")
    return text.ljust(width)


def level_fraction(dbfs: float | None, floor: float = -60.0) -> float:
    """Map a dBFS level onto 0..1 of a meter spanning ``floor``..0 dBFS (``None``/-inf -> 0)."""
    if dbfs is None or math.isnan(dbfs) or dbfs <= floor:
        return 0.0
    return min(1.0, (dbfs - floor) / -floor)
