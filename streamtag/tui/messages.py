"""Messages from the pipeline's worker threads to the app, and the pure mapping from events to them.

Continuous updates (prediction, level, status) carry a whole state, so a newer one queued behind
an older one supersedes it (:meth:`~textual.message.Message.can_replace`); genre changes are
events in a history and are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from ..events import CHANGE, GENRE, LEVEL, STATUS


class _Superseding(Message):
    """A state snapshot: a newer message of the same type replaces it in the queue."""

    def can_replace(self, message: Message) -> bool:
        return type(message) is type(self)

    def absorb(self, older: _Superseding) -> _Superseding:
        """This newer snapshot, standing in for ``older`` too (the TuiSink keeps only the result)."""
        return self


@dataclass
class Prediction(_Superseding):
    """The latest classified window (topic ``streamtag.genre``)."""

    genre: str
    confidence: float
    raw_genre: str
    probs: dict[str, float]
    t_end: float
    seq: int
    model: str
    latency_ms: float


@dataclass
class GenreChange(Message):
    """The smoothed genre changed (topic ``streamtag.change``); never superseded."""

    t: float
    genre: str
    previous: str | None


@dataclass
class Level(_Superseding):
    """Input meter reading (topic ``streamtag.level``); a clip is never hidden by a later clean reading."""

    rms_dbfs: float
    peak_dbfs: float
    clipping: bool
    silent: bool

    def can_replace(self, message: Message) -> bool:
        return type(message) is Level and (message.clipping or not self.clipping)

    def absorb(self, older: _Superseding) -> Level:
        """The newer reading, with the older one's peak and clip folded in (a meter's peak over both)."""
        assert isinstance(older, Level)
        return Level(self.rms_dbfs, max(self.peak_dbfs, older.peak_dbfs), self.clipping or older.clipping,
                     self.silent)


@dataclass
class Status(_Superseding):
    """Pipeline health (topic ``streamtag.status``); ``final`` is the last one, sent at stop."""

    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """True for the status published when the pipeline stops."""
        return bool(self.fields.get("final"))


def message_for(topic: str, event: dict[str, Any]) -> Message | None:
    """Turn one published pipeline event into its message (``None`` for a topic the TUI ignores)."""
    if topic == GENRE:
        return Prediction(genre=event["genre"], confidence=float(event["confidence"]),
                          raw_genre=event["raw_genre"], probs=dict(event["probs"]),
                          t_end=float(event["t_end"]), seq=int(event["seq"]),
                          model=str(event.get("model", "")),
                          latency_ms=float(event.get("latency_ms", float("nan"))))
    if topic == CHANGE:
        return GenreChange(t=float(event["at"]), genre=event["genre"], previous=event.get("previous"))
    if topic == LEVEL:
        return Level(rms_dbfs=float(event["rms_dbfs"]), peak_dbfs=float(event["peak_dbfs"]),
                     clipping=bool(event["clipping"]), silent=bool(event["silent"]))
    if topic == STATUS:
        return Status(fields=dict(event))
    return None
