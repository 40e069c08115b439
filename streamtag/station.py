"""One stream of a :class:`~streamtag.pipeline.Pipeline`: its source and everything per stream after it.

source ring -> soxr resampler -> windower -> (shared batch, shared engine) -> vote -> events.
Only the pipeline's worker thread touches a station after :meth:`Station.open`; the windows it
cuts go into the pipeline's :class:`Batch`, and :meth:`Station.deliver` takes each window's
model output back. ``listen`` runs one station, ``monitor`` many.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import events
from .audio import StreamResampler, sanitize
from .errors import StreamtagError, UsageError
from .segments import Segments
from .settings import ListenSettings
from .sources import OUTAGE, TITLE, Source, open_source
from .vote import Vote, rms_dbfs
from .windower import Window, Windower

if TYPE_CHECKING:
    from .engine import Engine

DRAIN_SECONDS = 0.25
"""Most input audio a station takes from its ring per worker step."""
LATENCY_HISTORY = 1000
"""Windows the latency percentiles look back over."""

Publish = Callable[[str, dict], None]


class Batch:
    """Windows from any station waiting for one model run: ``x[i]`` belongs to ``owners[i]``.

    ``x`` is allocated once (by the engine: page-locked on CUDA); windows are cut straight into its rows.
    """

    def __init__(self, x: np.ndarray):
        self.x = x
        self.owners: list[tuple[Station, Window]] = []

    @property
    def full(self) -> bool:
        """No row left."""
        return len(self.owners) == len(self.x)

    def row(self) -> np.ndarray:
        """The next free row (fill it, then :meth:`add`)."""
        return self.x[len(self.owners)]

    def add(self, station: Station, window: Window) -> None:
        """Claim the row just filled for ``window`` of ``station``."""
        self.owners.append((station, window))


class Station:
    """Per-stream state; ``settings`` are this stream's (its ``stream`` is the station name)."""

    def __init__(self, settings: ListenSettings, publish: Publish, topic_suffix: str = "",
                 level_interval: float | None = None, patient: bool = False):
        self.settings = settings
        self._publish_to = publish
        self.topic_suffix = topic_suffix
        self.level_interval = level_interval
        self.patient = patient
        self.name = settings.stream
        self.source: Source | None = None
        self.error: StreamtagError | None = None
        self.done = False
        self.segments = Segments()
        self.windows = 0
        self.clipped = 0
        """Input samples beyond full scale (clipped) or NaN/inf (zeroed) so far."""
        self.latencies: deque[float] = deque(maxlen=LATENCY_HISTORY)
        self.consumed = 0
        self.title: str | None = None
        self.started_at = 0.0
        self.limit: int | None = None
        self.engine: Engine | None = None
        self.resampler: StreamResampler | None = None
        self.windower: Windower | None = None
        self.vote: Vote | None = None
        self.origin = 0
        self.chunk = np.zeros(0, dtype=np.float32)
        self.last_status = self.last_level = 0.0
        self._reset_meter()

    # -- set-up --------------------------------------------------------------------------------
    def open(self, wake: Callable[[], None]) -> None:
        """Open and start the source (raises :class:`UsageError` for a bad input)."""
        s = self.settings
        self.source = open_source(s.input, s.device, s.rate, s.channels, s.format, s.fast, s.stall_timeout,
                                  s.retries, self.patient)
        self.name = s.stream or self.source.name
        self.started_at = self.last_status = self.last_level = time.monotonic()
        self.source.start(s.buffer_seconds, wake)

    def build(self, engine: Engine, vote_mode: str) -> None:
        """(Re)build the model-rate stages for ``engine``; stream time continues from ``consumed``."""
        self.engine = engine
        self.vote = Vote(engine.meta.labels, vote_mode, self.settings.vote_window, self.settings.ema_alpha,
                         self.settings.confirm, self.settings.min_confidence)
        self.resampler = self.windower = None
        if self.source is not None and self.source.rate:
            self._build_stages()

    def _build_stages(self) -> None:
        s, meta, rate = self.settings, self.engine.meta, self.source.rate
        self.chunk = np.zeros(max(1, int(rate * DRAIN_SECONDS)), dtype=np.float32)
        self.limit = int(round(s.duration * rate)) if s.duration else None
        self.resampler = StreamResampler(rate, meta.sample_rate)
        max_push = int(len(self.chunk) * meta.sample_rate / rate) + 8192
        self.windower = Windower(meta.sample_rate, meta.window_samples, int(round(s.hop * meta.sample_rate)), max_push)
        self.origin = self.consumed

    def set_vote_mode(self, mode: str) -> None:
        """Switch the vote (it starts afresh)."""
        self.vote.set_mode(mode)

    # -- events --------------------------------------------------------------------------------
    def publish(self, topic: str, event: dict) -> None:
        """Publish under this station's topic (``<topic>.<station>`` in a monitor)."""
        self._publish_to(events.topic(topic, self.topic_suffix), event)

    def status(self, final: bool, provider: str, published: int) -> dict:
        """This station's ``streamtag.status`` fields."""
        up = time.monotonic() - self.started_at if self.started_at else 0.0
        lat = np.array(self.latencies) if self.latencies else None
        src = self.source
        ring = src.ring if src is not None else None
        rate = src.rate if src is not None and src.rate else 0
        return events.status_event(
            stream=self.name, uptime_s=up, dropped_samples=ring.dropped if ring else 0,
            overflows=src.overflows if src else 0, clipped_samples=self.clipped,
            latency_p50_ms=None if lat is None else float(np.percentile(lat, 50)),
            latency_p99_ms=None if lat is None else float(np.percentile(lat, 99)),
            windows=self.windows, windows_per_s=self.windows / up if up > 0 else 0.0,
            provider=provider or "cpu", model=self.engine.name if self.engine else "", published=published,
            final=final, state=src.state if src is not None else "down",
            outages=src.outages if src is not None else 0,
            last_error=(src.last_error if src is not None else None) or (str(self.error) if self.error else None),
            backlog_s=ring.readable() / rate if ring and rate else 0.0)

    # -- worker steps --------------------------------------------------------------------------
    def ended(self) -> bool:
        """True when everything this station will ever get has been drained."""
        src = self.source
        if self.limit is not None and self.consumed >= self.limit:
            return True
        if src is None or not src.finished:
            return False
        return src.ring is None or src.ring.readable() == 0

    @property
    def behind(self) -> bool:
        """More input is waiting than one step takes (the worker is catching up, or reading ``--fast``)."""
        ring = self.source.ring if self.source is not None else None
        return ring is not None and ring.readable() >= max(1, len(self.chunk))

    def step(self, batch: Batch, classify: Callable[[], None]) -> int:
        """Drain up to :data:`DRAIN_SECONDS` of input into windows in ``batch``; returns samples taken."""
        src = self.source
        self._apply_notes()
        if src.ring is None:
            return 0
        if self.windower is None:
            self._build_stages()
        want = len(self.chunk) if self.limit is None else min(len(self.chunk), self.limit - self.consumed)
        if src.notes:  # stop at the next note so it is reported where it happened in the audio
            want = min(want, max(0, src.notes[0][0] - self.consumed))
        n = src.ring.read_into(self.chunk[:want]) if want > 0 else 0
        if n:
            x = self.chunk[:n]
            self.clipped += sanitize(x)
            self.consumed += n
            self._meter(x)
            self._push(self.resampler.process(x), batch, classify)
        self._apply_notes()
        return n

    def finish(self, batch: Batch, classify: Callable[[], None], stopping: bool) -> None:
        """At the end of input: flush the resampler and a short stream's single padded window."""
        self._apply_notes()
        self._meter(self.chunk[:0], flush=True)
        if self.windower is None:
            if self.source is not None and self.source.rate and self.engine is not None:
                self._build_stages()
            else:
                return
        self._push(self.resampler.process(np.zeros(0, dtype=np.float32), last=True), batch, classify)
        if batch.full:
            classify()
        w = self.windower.finish(batch.row())
        if w is not None:
            batch.add(self, w)
        src = self.source
        if self.windower.pushed == 0 and not src.error and not stopping:
            self.error = UsageError(f"{src.description}: no audio samples")

    def _push(self, y: np.ndarray, batch: Batch, classify: Callable[[], None]) -> None:
        """Push resampled samples; cut every window they complete, and the next one too as soon as the input
        has reached its end (:meth:`StreamResampler.preview`: no wait for soxr's held-back output, nor for
        the next input block when only the resampling filter's reach of ~4 ms is missing: those last
        samples are then resampled as if silence followed; the later windows that overlap them get the
        stream's exact samples)."""
        if len(y):
            self.windower.push(y)
        while True:
            if batch.full:
                classify()
            w = self.windower.pull_into(batch.row())
            if w is None:
                break
            batch.add(self, w)
        need = self.windower.missing()
        if need and need <= self.resampler.previewable(exact=False):
            tail = self.resampler.preview(need, exact=False)
            w = self.windower.pull_into(batch.row(), tail) if tail is not None else None
            if w is not None:
                batch.add(self, w)

    def wake_at(self) -> bool:
        """Ask the source's ring to wake the worker once the next window can be cut (or the level meter's
        next block is in); True if that input is already there (then no wake-up comes)."""
        src = self.source
        if src is None or src.ring is None:
            return False
        if self.windower is None:
            return src.ring.wake_at(self.consumed + 1)
        rs, rate = self.resampler, src.rate
        out_needed = rs.emitted + self.windower.missing()  # resampler output index that completes the window
        need = -(-out_needed * rs.from_rate // rs.to_rate) - rs.consumed  # more input (at the input rate) to reach its end
        if self.level_interval is not None:
            need = min(need, max(1, int(self.level_interval * rate) - self.metered))
        if self.limit is not None:
            need = min(need, max(1, self.limit - self.consumed))
        return src.ring.wake_at(self.consumed + max(1, need))

    def _apply_notes(self) -> None:
        notes = self.source.notes if self.source is not None else ()
        while notes and notes[0][0] <= self.consumed:
            _, kind, payload = notes.popleft()
            if kind == TITLE:
                self.title = payload
            elif kind == OUTAGE:
                self.publish(events.OUTAGE, events.outage_event(stream=self.name, t=self.consumed / self.source.rate
                                                                if self.source.rate else 0.0, **payload))

    def deliver(self, window: Window, x: np.ndarray, probs: np.ndarray, detected: dict[str, float]) -> None:
        """Vote on one classified window (``x``: its samples) and publish its genre (and change) event.

        A silent window is ``silence``; a talk window (``speech`` output at least ``speech_threshold``)
        counts toward ``speech`` (see :meth:`Vote.speech`); neither feeds the music vote.
        """
        s, src = self.settings, self.source
        silent = rms_dbfs(x[:window.end - window.start]) < s.silence_db
        if silent:
            v = self.vote.silence()
        elif detected.get("speech", -1.0) >= s.speech_threshold:
            v = self.vote.speech(detected["speech"])
        else:
            v = self.vote.update(probs)
        rate = src.rate
        t_start = self.origin / rate + window.t_start
        t_end = self.origin / rate + window.t_end
        last_src = self.origin + int(np.ceil(window.end * rate / window.rate)) - 1
        t_in = src.ring.write_time(last_src)
        latency = max(0.0, (time.monotonic() - t_in) * 1000) if t_in is not None else 0.0
        labels = self.engine.meta.labels
        ev = events.genre_event(
            stream=self.name, seq=self.windows, t_start=t_start, t_end=t_end, genre=v.genre,
            confidence=v.confidence, raw_genre=v.raw_genre,
            probs={} if silent else dict(zip(labels, probs.tolist())), latency_ms=latency, model=self.engine.name,
            detected=detected, title=self.title if src.has_titles else events.NO_TITLE)
        self.windows += 1
        self.latencies.append(latency)
        starts = self.segments.add(t_end, v.genre)
        self.publish(events.GENRE, ev)
        if v.changed:
            self.publish(events.CHANGE, events.change_event(ev, v.previous, at=starts))

    # -- level meter ---------------------------------------------------------------------------
    def _reset_meter(self) -> None:
        self.sumsq, self.peak, self.metered = 0.0, 0.0, 0

    def _meter(self, x: np.ndarray, flush: bool = False) -> None:
        """Accumulate the input level; publish it every ``level_interval`` s (and at the end, ``flush``)."""
        if self.level_interval is None:
            return
        if len(x):
            self.sumsq += float(np.dot(x, x))
            self.peak = max(self.peak, float(np.max(np.abs(x))))
            self.metered += len(x)
        now = time.monotonic()
        if self.metered and (flush or now - self.last_level >= self.level_interval):
            rms = 20 * np.log10(max(np.sqrt(self.sumsq / self.metered), 1e-10))
            peak = 20 * np.log10(max(self.peak, 1e-10))
            self.publish(events.LEVEL, events.level_event(
                stream=self.name, t=self.consumed / self.source.rate, rms_dbfs=float(rms), peak_dbfs=float(peak),
                clipping=self.peak >= 0.999, silent=bool(rms < self.settings.silence_db)))
            self.last_level = now
            self._reset_meter()
