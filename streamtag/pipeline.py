"""The live pipeline: source -> ring buffer -> resampler -> windower -> engine -> vote -> sinks.

The source writes into the capture ring on its own thread (or PortAudio's); one worker thread
does everything after it, so the vote, the segments and the counters have a single writer.
The TUI (:mod:`streamtag.tui`) drives a run only through the public methods of :class:`Pipeline`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Sequence

import numpy as np

from . import events
from .audio import StreamResampler, sanitize
from .engine import Engine
from .errors import RuntimeFailure, StreamtagError, UsageError
from .modelmeta import ModelMeta, resolve_model
from .ringbuffer import RingBuffer
from .segments import Segments
from .settings import ListenSettings
from .sinks import Sink, ZmqPublisher
from .sources import Source, open_source
from .vote import VOTE_MODES, Vote, rms_dbfs
from .windower import Windower

DRAIN_SECONDS = 0.25
"""Most input audio the worker takes from the capture ring per step."""
IDLE_SLEEP = 0.005
"""Worker sleep when the ring is empty (bounds the added latency)."""
LEVEL_INTERVAL = 0.1
"""Seconds between ``streamtag.level`` events."""
LATENCY_HISTORY = 1000
"""Windows the latency percentiles look back over."""


class Pipeline:
    """source -> ring buffer -> windower -> engine -> vote -> sinks, on worker threads.

    ``__init__`` only resolves the model metadata; :meth:`start` binds the publisher, loads the
    model, opens the source and starts the worker. Events go to every sink: the ZeroMQ
    publisher (unless ``settings.publish`` is empty) and those passed in or added.
    """

    def __init__(self, settings: ListenSettings, sinks: Sequence[Sink] = ()):
        settings.validate()
        self.settings = settings
        self._sinks: list[Sink] = list(sinks)
        _, self.meta = resolve_model(settings.model)
        self.meta: ModelMeta
        self.provider = ""
        self.source_description = ""
        self.sample_rate = 0
        self.publish_address = settings.publish or None
        self.vote_mode = settings.vote
        self.paused = False
        self.error: StreamtagError | None = None
        self.segments_log = Segments()
        self._engine: Engine | None = None
        self._pending_engine: Engine | None = None
        self._source: Source | None = None
        self._ring: RingBuffer | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started_at = 0.0
        self._windows = 0
        self._clipped = 0
        self._published = 0
        self._latencies: deque[float] = deque(maxlen=LATENCY_HISTORY)
        self._stream = settings.stream

    # --- public API -----------------------------------------------------------------------
    @property
    def segments(self) -> list[dict]:
        """``{"start", "end", "genre"}`` of the smoothed genre so far."""
        return self.segments_log.items

    def add_sink(self, sink: Sink) -> None:
        """Send events to ``sink`` too (before :meth:`start`)."""
        self._sinks.append(sink)

    def start(self) -> None:
        """Bind the publisher, load the model (warm-up included), open the source, start the worker."""
        s = self.settings
        try:
            if s.publish:
                self._sinks.insert(0, ZmqPublisher(s.publish))
            self._engine = Engine(s.model, s.provider)
            self.meta, self.provider = self._engine.meta, self._engine.provider
            self._source = open_source(s.input, s.device, s.rate, s.channels, s.format, s.fast)
            self.sample_rate = self._source.rate
            self.source_description = self._source.description
            self._stream = s.stream or self._source.name
            self._ring = RingBuffer(int(s.buffer_seconds * self._source.rate))
            self._started_at = time.monotonic()
            self._source.start(self._ring)
        except BaseException:
            if self._source is not None:
                self._source.stop()
            self._close_sinks()
            self._done.set()
            raise
        self._thread = threading.Thread(target=self._work, name="streamtag worker", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` s; True when the run has finished (end of input, duration, stop or error)."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        """Stop capture, tag what is buffered, publish the final status, close sinks. Idempotent."""
        self._stop.set()
        if self._source is not None:
            self._source.stop()
        if self._thread is None:
            if not self._done.is_set():
                self._close_sinks()
                self._done.set()
            return
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume tagging; capture (and the level meter) keeps running."""
        self.paused = bool(paused)

    def set_vote_mode(self, mode: str) -> None:
        """Switch ``ema|soft|hard``; the vote starts afresh."""
        if mode not in VOTE_MODES:
            raise UsageError(f"vote {mode!r}: expected one of {', '.join(VOTE_MODES)}")
        with self._lock:
            self.vote_mode = mode

    def switch_model(self, spec: str) -> ModelMeta:
        """Load another model (raises :class:`UsageError`); the worker swaps it in, capture keeps running."""
        engine = Engine(spec, self.settings.provider)
        with self._lock:
            self._pending_engine = engine
        self.meta, self.provider = engine.meta, engine.provider
        return engine.meta

    def health(self) -> dict:
        """The current ``streamtag.status`` fields."""
        return self._status(final=False)

    def save_segments(self, path: str | Path) -> Path:
        """Write the segments as ``.json`` or ``.csv``."""
        return self.segments_log.save(path)

    # --- worker ---------------------------------------------------------------------------
    def _status(self, final: bool) -> dict:
        up = time.monotonic() - self._started_at if self._started_at else 0.0
        lat = np.array(list(self._latencies)) if self._latencies else None
        src, ring = self._source, self._ring
        return events.status_event(
            stream=self._stream, uptime_s=up, dropped_samples=ring.dropped if ring else 0,
            overflows=src.overflows if src else 0, clipped_samples=self._clipped,
            latency_p50_ms=None if lat is None else float(np.percentile(lat, 50)),
            latency_p99_ms=None if lat is None else float(np.percentile(lat, 99)),
            windows=self._windows, windows_per_s=self._windows / up if up > 0 else 0.0,
            provider=self.provider or "cpu", model=self.meta.name, published=self._published, final=final)

    def _publish(self, topic: str, event: dict) -> None:
        for sink in self._sinks:
            sink.publish(topic, event)
        self._published += 1

    def _close_sinks(self) -> None:
        for sink in self._sinks:
            sink.close()

    def _work(self) -> None:
        try:
            _Worker(self).run()
        except StreamtagError as exc:
            self.error = exc
        except Exception as exc:  # never a traceback: report one line, exit 1
            self.error = RuntimeFailure(f"pipeline failed: {type(exc).__name__}: {exc}")
        finally:
            if self._source is not None:
                self._source.stop()
            if self.error is None and self._source is not None and self._source.error is not None:
                self.error = self._source.error
            try:
                self._publish(events.STATUS, self._status(final=True))
            finally:
                self._close_sinks()
                self._done.set()


class _Worker:
    """The loop behind :class:`Pipeline` (state that only the worker thread touches)."""

    def __init__(self, p: Pipeline):
        self.p = p
        self.src = p._source
        self.ring = p._ring
        s = p.settings
        self.limit = int(round(s.duration * self.src.rate)) if s.duration else None
        self.chunk = np.zeros(max(1, int(self.src.rate * DRAIN_SECONDS)), dtype=np.float32)
        self.consumed = 0
        self.last_status = self.last_level = time.monotonic()
        self._reset_meter()
        self._build(p._engine)

    def _build(self, engine: Engine) -> None:
        """(Re)build the model-rate stages for ``engine``; stream time continues from ``consumed``."""
        p, s = self.p, self.p.settings
        self.engine, meta = engine, engine.meta
        self.resampler = StreamResampler(self.src.rate, meta.sample_rate)
        max_push = int(len(self.chunk) * meta.sample_rate / self.src.rate) + 8192
        hop = int(round(s.hop * meta.sample_rate))
        self.windower = Windower(meta.sample_rate, meta.window_samples, hop, max_push)
        self.origin = self.consumed  # source sample where this windower's sample 0 sits
        self.batch = np.zeros((s.batch, meta.window_samples), dtype=np.float32)
        self.rows: list = []
        with p._lock:
            self.vote_mode = p.vote_mode
        self.vote = Vote(meta.labels, self.vote_mode, s.vote_window, s.ema_alpha, s.confirm)

    def run(self) -> None:
        p = self.p
        while True:
            self._apply_requests()
            n = self._drain()
            end = (self.limit is not None and self.consumed >= self.limit) or (
                self.src.finished and self.ring.readable() == 0)
            if end:
                self._meter(self.chunk[:0], flush=True)
                self._push(self.resampler.process(np.zeros(0, dtype=np.float32), last=True))
                w = self.windower.finish(self._row())
                if w is not None:
                    self.rows.append(w)
                self._classify()
                if self.windower.pushed == 0 and not self.src.error and not p._stop.is_set():
                    raise UsageError(f"{self.src.description}: no audio samples")
                return
            if self.ring.readable() == 0 or len(self.rows) == len(self.batch):
                self._classify()
            self._maybe_status()
            if n == 0:
                time.sleep(IDLE_SLEEP)

    def _apply_requests(self) -> None:
        p = self.p
        with p._lock:
            engine, p._pending_engine = p._pending_engine, None
            mode = p.vote_mode
        if engine is not None:
            self._classify()
            self._build(engine)
        elif mode != self.vote_mode:
            self.vote.set_mode(mode)
            self.vote_mode = mode

    def _drain(self) -> int:
        want = len(self.chunk) if self.limit is None else min(len(self.chunk), self.limit - self.consumed)
        n = self.ring.read_into(self.chunk[:want])
        if n == 0:
            return 0
        x = self.chunk[:n]
        self.p._clipped += sanitize(x)
        self.consumed += n
        self._meter(x)
        self._push(self.resampler.process(x))
        return n

    def _push(self, y: np.ndarray) -> None:
        if len(y):
            self.windower.push(y)
        while (w := self.windower.pull_into(self._row())) is not None:
            self.rows.append(w)
            if len(self.rows) == len(self.batch):
                self._classify()

    def _row(self) -> np.ndarray:
        return self.batch[len(self.rows)]

    def _classify(self) -> None:
        if not self.rows:
            return
        p, rows = self.p, self.rows
        self.rows = []
        if p.paused:
            return
        k = len(rows)
        windows = self.batch[:k]
        probs = self.engine.run(windows)
        labels = self.engine.meta.labels
        for i, w in enumerate(rows):
            silent = rms_dbfs(windows[i, :w.end - w.start]) < p.settings.silence_db
            v = self.vote.silence() if silent else self.vote.update(probs[i])
            t_start = self.origin / self.src.rate + w.t_start
            t_end = self.origin / self.src.rate + w.t_end
            last_src = self.origin + int(np.ceil(w.end * self.src.rate / w.rate)) - 1
            t_in = self.ring.write_time(last_src)
            latency = max(0.0, (time.monotonic() - t_in) * 1000) if t_in is not None else 0.0
            ev = events.genre_event(
                stream=p._stream, seq=p._windows, t_start=t_start, t_end=t_end, genre=v.genre,
                confidence=v.confidence, raw_genre=v.raw_genre,
                probs={} if silent else dict(zip(labels, probs[i].tolist())),
                latency_ms=latency, model=self.engine.name)
            p._windows += 1
            p._latencies.append(latency)
            starts = p.segments_log.add(t_end, v.genre)
            p._publish(events.GENRE, ev)
            if v.changed:
                p._publish(events.CHANGE, events.change_event(ev, v.previous, at=starts))

    def _reset_meter(self) -> None:
        self.sumsq, self.peak, self.metered = 0.0, 0.0, 0

    def _meter(self, x: np.ndarray, flush: bool = False) -> None:
        """Accumulate the input level; publish it every LEVEL_INTERVAL s (and at the end, ``flush``)."""
        if len(x):
            self.sumsq += float(np.dot(x, x))
            self.peak = max(self.peak, float(np.max(np.abs(x))))
            self.metered += len(x)
        now = time.monotonic()
        if self.metered and (flush or now - self.last_level >= LEVEL_INTERVAL):
            rms = 20 * np.log10(max(np.sqrt(self.sumsq / self.metered), 1e-10))
            peak = 20 * np.log10(max(self.peak, 1e-10))
            self.p._publish(events.LEVEL, events.level_event(
                stream=self.p._stream, t=self.consumed / self.src.rate, rms_dbfs=float(rms), peak_dbfs=float(peak),
                clipping=self.peak >= 0.999, silent=bool(rms < self.p.settings.silence_db)))
            self.last_level = now
            self._reset_meter()

    def _maybe_status(self) -> None:
        now = time.monotonic()
        if now - self.last_status >= self.p.settings.status_interval:
            self.last_status = now
            self.p._publish(events.STATUS, self.p._status(final=False))
