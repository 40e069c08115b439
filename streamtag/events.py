"""Event dictionaries the pipeline publishes, one builder per topic.

The layout is versioned by :data:`SCHEMA_VERSION` (field ``v``) and described by the JSON
Schema shipped as ``streamtag/schema/event.schema.json``; a ZeroMQ message is the single frame
``"<topic> <json>"``.
"""

from __future__ import annotations

import json
import time
from importlib import resources

from . import strictjson

SCHEMA_VERSION = 1
"""Version of the event layout (``v`` in every event)."""

GENRE, CHANGE, STATUS, LEVEL = "streamtag.genre", "streamtag.change", "streamtag.status", "streamtag.level"
"""Topics: every window, smoothed genre changed, health every few seconds and at stop, input meter."""
OUTAGE = "streamtag.outage"
"""Topic: a network input was lost, is retrying, came back, or gave up."""

NO_TITLE = object()
"""``title`` argument of :func:`genre_event` for inputs without ICY metadata (the field is left out)."""


def topic(base: str, suffix: str = "") -> str:
    """``<base>.<suffix>`` (a monitor's per-station topic), or ``base`` alone."""
    return f"{base}.{suffix}" if suffix else base


def base_topic(name: str) -> str:
    """The topic without a station suffix: ``streamtag.genre.jazz-fm`` -> ``streamtag.genre``."""
    return ".".join(name.split(".")[:2])


def schema() -> dict:
    """The shipped JSON Schema (``$defs`` holds one definition per topic)."""
    return json.loads(resources.files("streamtag").joinpath("schema/event.schema.json").read_text())


def genre_event(*, stream: str, seq: int, t_start: float, t_end: float, genre: str, confidence: float,
                raw_genre: str, probs: dict[str, float], latency_ms: float, model: str,
                detected: dict[str, float] | None = None, title: object = NO_TITLE) -> dict:
    """``streamtag.genre``: the verdict after one window.

    ``detected``: the model's detector outputs; its ``speech`` becomes the ``speech`` field.
    ``title``: the input's ICY title (str or None); left out for inputs without ICY metadata.
    """
    ev = {"v": SCHEMA_VERSION, "stream": stream, "seq": seq, "t_start": round(t_start, 3),
          "t_end": round(t_end, 3), "wall": time.time(), "genre": genre, "confidence": round(confidence, 4),
          "raw_genre": raw_genre, "probs": {k: round(float(p), 4) for k, p in probs.items()},
          "latency_ms": round(latency_ms, 2), "model": model}
    if detected and "speech" in detected:
        ev["speech"] = round(float(detected["speech"]), 4)
    if title is not NO_TITLE:
        ev["title"] = title
    return ev


def change_event(genre_ev: dict, previous: str | None, at: float) -> dict:
    """``streamtag.change``: the genre event that changed the smoothed genre, plus ``previous`` and ``at``
    (stream seconds where the new genre's segment starts: how every output dates the change)."""
    return {**genre_ev, "previous": previous, "at": round(at, 3)}


def status_event(*, stream: str, uptime_s: float, dropped_samples: int, overflows: int, clipped_samples: int,
                 latency_p50_ms: float | None, latency_p99_ms: float | None, windows: int, windows_per_s: float,
                 provider: str, model: str, published: int, final: bool, state: str = "connected", outages: int = 0,
                 last_error: str | None = None, backlog_s: float = 0.0) -> dict:
    """``streamtag.status``: stream health (input state, outages, drops, clipping, latency, backlog)."""
    return {"v": SCHEMA_VERSION, "stream": stream, "wall": time.time(), "uptime_s": round(uptime_s, 3),
            "dropped_samples": dropped_samples, "overflows": overflows, "clipped_samples": clipped_samples,
            "latency_p50_ms": None if latency_p50_ms is None else round(latency_p50_ms, 2),
            "latency_p99_ms": None if latency_p99_ms is None else round(latency_p99_ms, 2),
            "windows": windows, "windows_per_s": round(windows_per_s, 3), "provider": provider, "model": model,
            "published": published, "final": final, "state": state, "outages": outages, "last_error": last_error,
            "backlog_s": round(backlog_s, 3)}


def outage_event(*, stream: str, t: float, state: str, outages: int, error: str | None,
                 attempt: int | None = None, retry_in_s: float | None = None, duration_s: float | None = None) -> dict:
    """``streamtag.outage``: the input was lost (``reconnecting``), came back (``connected``) or gave up (``down``)."""
    return {"v": SCHEMA_VERSION, "stream": stream, "wall": time.time(), "t": round(t, 3), "state": state,
            "outages": outages, "error": error, "attempt": attempt, "retry_in_s": retry_in_s,
            "duration_s": duration_s}


def level_event(*, stream: str, t: float, rms_dbfs: float, peak_dbfs: float, clipping: bool, silent: bool) -> dict:
    """``streamtag.level``: input meter over the audio since the previous level event."""
    return {"v": SCHEMA_VERSION, "stream": stream, "wall": time.time(), "t": round(t, 3),
            "rms_dbfs": round(rms_dbfs, 2), "peak_dbfs": round(peak_dbfs, 2), "clipping": clipping, "silent": silent}


def encode(topic: str, event: dict) -> str:
    """The single-frame wire form ``"<topic> <json>"`` (strict JSON: never NaN or Infinity)."""
    return f"{topic} {strictjson.dumps(event)}"


class BadFrame(ValueError):
    """A message that is not ``"<topic> <json object>"`` (see :func:`decode`)."""


def decode(frame: str | bytes) -> tuple[str, dict]:
    """Inverse of :func:`encode`; raises :class:`BadFrame` (one line) for anything else.

    Rejected: non-UTF-8 bytes, no space, an empty or non-printable topic, a body that is not a
    JSON object, NaN/Infinity or numbers beyond float range (they would make invalid JSON downstream).
    """
    try:
        text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
    except UnicodeDecodeError:
        raise BadFrame("not UTF-8 text") from None
    topic, sep, body = text.partition(" ")
    if not sep or not topic or not topic.isprintable():
        raise BadFrame("not '<topic> <json>'")
    try:
        event = strictjson.loads(body)
    except ValueError as exc:
        raise BadFrame(f"bad JSON ({exc})") from None
    if not isinstance(event, dict):
        raise BadFrame("JSON body is not an object")
    return topic, event
