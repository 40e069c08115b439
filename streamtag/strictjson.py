"""Strict JSON in and out: NaN, Infinity and numbers beyond float range are errors, never output.

Python's :mod:`json` reads and writes ``NaN``/``Infinity`` by default, which no other JSON parser
accepts; every JSON streamtag reads from outside (model metadata, ZeroMQ frames) or writes goes
through here.
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(obj: Any) -> str:
    """Compact JSON; a NaN or infinite float raises ValueError instead of becoming invalid JSON."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number {text[:20]} is out of range")
    return v


def loads(text: str | bytes) -> Any:
    """Parse JSON, rejecting NaN/Infinity and out-of-range numbers; raises ValueError with a one-line reason.

    Covers every way :func:`json.loads` can fail on hostile text (bad syntax, non-UTF-8 bytes,
    integers with too many digits, nesting deep enough to exhaust the stack).
    """
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit, ours
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(first[:200]) from None
