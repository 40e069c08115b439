"""The live pipeline: stations (source -> ring -> resampler -> windower) -> one engine -> votes -> sinks.

Each station's source writes into its own capture ring on its own thread (or PortAudio's); one
worker thread does everything after the rings for every station: it cuts windows, batches them
across stations into one model run, votes per station and publishes. So the votes, the segments,
the counters and the sinks have a single writer. ``listen`` is the one-station case,
``monitor`` the many-station one: the same class. The TUI (:mod:`streamtag.tui`) drives a run
only through the public methods of :class:`Pipeline`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import events
from .errors import RuntimeFailure, StreamtagError, UsageError
from .modelmeta import ModelMeta, resolve_model
from .settings import VOTE_MODES, ListenSettings
from .sinks import Sink, ZmqPublisher
from .station import Batch, Station

if TYPE_CHECKING:
    from .engine import Engine

LEVEL_INTERVAL = 0.1
"""Seconds between ``streamtag.level`` events (``listen`` only; a monitor sends none)."""
IDLE_WAIT = 0.5
"""Longest worker sleep: sources wake it when a window's input is in, so this only bounds how late a
device that stopped delivering is noticed."""


class Pipeline:
    """Stations -> shared engine -> sinks, on worker threads.

    ``stations``: per-station settings for a monitor (topics get the suffix ``.<stream>``, no level
    events, network inputs keep retrying from the start); None = one station from ``settings``
    (``listen``). ``settings`` gives the process-wide parts: model, provider, batch, publish,
    status interval. ``__init__`` only resolves the model metadata; :meth:`start` binds the
    publisher, loads the model, opens the sources and starts the worker. Events go to every sink:
    the ZeroMQ publisher (unless ``settings.publish`` is empty) and those passed in or added.
    """

    def __init__(self, settings: ListenSettings, sinks: Sequence[Sink] = (),
                 stations: Sequence[ListenSettings] | None = None):
        settings.validate()
        self.settings = settings
        self.monitor = stations is not None
        self._sinks: list[Sink] = list(sinks)
        self.stations = [Station(st, self._publish, topic_suffix=st.stream if self.monitor else "",
                                 level_interval=None if self.monitor else LEVEL_INTERVAL, patient=self.monitor)
                         for st in (stations if stations is not None else [settings])]
        _, self.meta = resolve_model(settings.model)
        self.meta: ModelMeta
        self.provider = ""
        self.publish_address = settings.publish or None
        self.vote_mode = settings.vote
        self.paused = False
        self.error: StreamtagError | None = None
        """The run's error (listen), or the first station's that failed (monitor)."""
        self.failed: list[tuple[str, StreamtagError]] = []
        """``(station, error)`` of every station that ended with an error."""
        self._engine: Engine | None = None
        self._pending_engine: Engine | None = None
        self._batch: Batch | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._published = 0
        self._live: list[Station] = []

    # --- public API -----------------------------------------------------------------------
    @property
    def source_description(self) -> str:
        """The (first) source's description; a URL's gains its format once connected."""
        src = self.stations[0].source
        return src.description if src is not None else ""

    @property
    def sample_rate(self) -> int:
        """The (first) source's sample rate (0 until a URL has connected)."""
        src = self.stations[0].source
        return src.rate if src is not None else 0

    @property
    def segments(self) -> list[dict]:
        """``{"start", "end", "genre"}`` of the (first) station's smoothed genre so far."""
        return self.stations[0].segments.items

    def add_sink(self, sink: Sink) -> None:
        """Send events to ``sink`` too (before :meth:`start`)."""
        self._sinks.append(sink)

    def start(self) -> None:
        """Bind the publisher, open the sources, load the model (warm-up included), start the worker.

        Capture starts before the model loads (ONNX Runtime is imported here, not before): the first
        window fills while the model loads. A monitor station whose input cannot be opened ends at once
        with its error (the others run); ``listen``'s, or all of a monitor's, raise.
        """
        s = self.settings
        try:
            if s.publish:
                self._sinks.insert(0, ZmqPublisher(s.publish))
            for st in self.stations:
                try:
                    st.open(self._wake.set)
                except StreamtagError as exc:
                    if not self.monitor:
                        raise
                    st.error = exc
            if all(st.error for st in self.stations):
                raise self.stations[0].error
            from .engine import Engine
            self._engine = Engine(s.model, s.provider, max_batch=s.batch)
            self.meta, self.provider = self._engine.meta, self._engine.provider
        except BaseException:
            for st in self.stations:
                if st.source is not None:
                    st.source.stop()
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
        for st in self.stations:
            if st.source is not None:
                st.source.stop()
        self._wake.set()
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
        self._wake.set()

    def switch_model(self, spec: str) -> ModelMeta:
        """Load another model (raises :class:`UsageError`); the worker swaps it in, capture keeps running."""
        from .engine import Engine
        engine = Engine(spec, self.settings.provider, max_batch=self.settings.batch)
        with self._lock:
            self._pending_engine = engine
        self.meta, self.provider = engine.meta, engine.provider
        self._wake.set()
        return engine.meta

    def health(self) -> dict:
        """The current ``streamtag.status`` fields (of the first station)."""
        return self.stations[0].status(False, self.provider, self._published)

    def save_segments(self, path: str | Path) -> Path:
        """Write the (first) station's segments as ``.json`` or ``.csv``."""
        return self.stations[0].segments.save(path)

    # --- worker ---------------------------------------------------------------------------
    def _publish(self, topic: str, event: dict) -> None:
        for sink in self._sinks:
            sink.publish(topic, event)
        self._published += 1

    def _close_sinks(self) -> None:
        for sink in self._sinks:
            sink.close()

    def _work(self) -> None:
        try:
            self._run()
        except StreamtagError as exc:
            self.error = exc
        except Exception as exc:  # never a traceback: report one line, exit 1
            self.error = RuntimeFailure(f"pipeline failed: {type(exc).__name__}: {exc}")
        finally:
            try:
                for st in self.stations:
                    if st.source is not None:
                        st.source.stop()
                    if not st.done:
                        self._end_station(st)
            finally:
                self._close_sinks()
                self._done.set()

    def _end_station(self, st: Station) -> None:
        """Publish a station's final status and record its error."""
        st.done = True
        err = st.error or (st.source.error if st.source is not None else None)
        st.error = err
        if err is not None:
            self.failed.append((st.name, err))
            if self.error is None:
                self.error = err
        final = st.status(True, self.provider, self._published)
        final["state"] = "down" if err is not None else "ended"
        st.publish(events.STATUS, final)

    def _run(self) -> None:
        self._batch = Batch(self._engine.batch_buffer(self.settings.batch))
        for st in self.stations:
            if st.error is not None:
                self._end_station(st)
            else:
                st.build(self._engine, self.vote_mode)
                self._live.append(st)
        last_status = time.monotonic()
        while self._live:
            self._wake.clear()
            self._apply_requests()
            taken = 0
            for st in list(self._live):
                taken += st.step(self._batch, self._classify)
                if st.ended():
                    st.finish(self._batch, self._classify, self._stop.is_set())
                    self._classify()  # its last windows before its final status
                    self._live.remove(st)
                    self._end_station(st)
            if self._batch.full or not any(st.behind for st in self._live):
                self._classify()  # caught up: run what is ready; behind: fill the batch first
            now = time.monotonic()
            if now - last_status >= self.settings.status_interval:
                last_status = now
                for st in self._live:
                    st.publish(events.STATUS, st.status(False, self.provider, self._published))
            if not taken and self._live:
                ready = [st.wake_at() for st in self._live]  # arm every ring first, then sleep unless one is ready
                if not any(ready):
                    self._wake.wait(min(IDLE_WAIT, max(0.0, last_status + self.settings.status_interval - now)))

    def _apply_requests(self) -> None:
        with self._lock:
            engine, self._pending_engine = self._pending_engine, None
            mode = self.vote_mode
        if engine is not None:
            self._classify()
            self._engine = engine
            self._batch = Batch(engine.batch_buffer(self.settings.batch))
            for st in self._live:
                st.build(engine, mode)
        else:
            for st in self._live:
                if st.vote.mode != mode:
                    st.set_vote_mode(mode)

    def _classify(self) -> None:
        """Run the model on the batch (windows of any stations) and deliver each result to its station.

        Called when the batch is full, or after a pass over the stations when none is behind: so windows
        that became ready together (several stations, or one reading ``--fast``) share a model run, and a
        station that keeps up never waits for others to fill the batch.
        """
        batch = self._batch
        owners, batch.owners = batch.owners, []
        if not owners or self.paused:
            return
        probs, detected = self._engine.infer(batch.x, len(owners))
        for i, (st, w) in enumerate(owners):
            st.deliver(w, batch.x[i], probs[i], {name: float(d[i]) for name, d in detected.items()})
