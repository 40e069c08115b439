"""``streamtag tag``: files and folders, streamed block by block, windows batched across files.

:func:`find_files` turns the command line into :class:`TagJob` s (folders walked recursively for
audio extensions, or ``--glob``). :func:`tag_files` decodes ``jobs`` files at a time on helper
threads (:class:`~streamtag.audio.MonoStream`: memory stays flat however long a file is) while the
calling thread batches every file's windows through one engine; results come back in input
order, a bad file as a result with ``error``. :func:`after_result` writes what a result asks for
(cache entry, segment files, file tags).
"""

from __future__ import annotations

import fnmatch
import os
import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from .audio import DECODERS, MonoStream, decode_error
from .errors import StreamtagError, UsageError
from .segments import Segments, save_segments
from .settings import TagSettings
from .vote import SILENCE, UNKNOWN, Vote, rms_dbfs, sharpen
from .windower import Window, Windower

if TYPE_CHECKING:
    from .cache import ResultCache
    from .modelmeta import ModelMeta
    from .engine import Engine
    from .progress import Progress

QUEUE_BATCHES = 2
"""Windows waiting for the engine, in batches, beyond the one it runs: the bound on decoded audio held in
memory (the window rows are allocated once; a decoder waits for a free one)."""

IDLE_FLUSH_SECONDS = 0.05
"""A partial batch runs when no window arrived for this long (decoders slower than the engine)."""


@dataclass(frozen=True)
class TagJob:
    """One file to tag."""

    path: str
    """The path as given, or below a given folder."""
    name: str
    """Its name for ``--segments-out`` files: relative to the folder it was found in, else the file name."""
    size: int = 0
    """Bytes (0 when it cannot be read): the progress ETA's measure."""
    error: str | None = None
    """A problem found before decoding (a folder without audio files)."""


@dataclass
class FileResult:
    """The verdict for one file (or the error that stopped it)."""

    path: str
    """The path as given."""
    genre: str = ""
    """Argmax of the mean probabilities of its non-silent windows (``silence`` if all are silent)."""
    confidence: float = 0.0
    """Mean probability of ``genre`` (4 decimals)."""
    probs: dict[str, float] = field(default_factory=dict)
    """Mean probability per label over the non-silent windows (4 decimals)."""
    windows: int = 0
    """Windows classified."""
    segments: list[dict] = field(default_factory=list)
    """Smoothed genre over time (the live vote and hysteresis), from 0 to the end of the file."""
    error: StreamtagError | None = None
    """Set when the file could not be tagged."""
    seconds: float = 0.0
    """Seconds of audio in the file (as decoded)."""
    digest: str | None = None
    """SHA-256 of the file's bytes, when a cache asked for it."""
    cached: bool = False
    """Served from the results cache."""

    def to_dict(self) -> dict:
        """The ``--json`` line."""
        if self.error is not None:
            return {"path": self.path, "error": str(self.error)}
        return {"path": self.path, **self.verdict()}

    def verdict(self) -> dict:
        """The result without its path (what the cache stores)."""
        return {"genre": self.genre, "confidence": self.confidence, "probs": self.probs, "windows": self.windows,
                "segments": self.segments}

    @classmethod
    def from_verdict(cls, path: str, d: dict, seconds: float) -> "FileResult":
        """Rebuild from :meth:`verdict` (a cache hit)."""
        return cls(path, d["genre"], d["confidence"], dict(d["probs"]), d["windows"], list(d["segments"]),
                   seconds=seconds, cached=True)


def audio_extensions() -> tuple[str, ...]:
    """Extensions a folder walk picks up: those with a registered decoder."""
    return tuple(sorted(DECODERS))


def find_files(inputs: Sequence[str], pattern: str | None = None) -> list[TagJob]:
    """Expand the command line: files as given, folders walked (sorted, hidden entries skipped).

    In a folder a file is taken if its extension has a decoder, or, with ``pattern``, if its path
    below the folder matches it (fnmatch, so ``*`` also crosses ``/``). A folder with nothing to tag
    becomes a job with an ``error``.
    """
    exts = audio_extensions()
    jobs: list[TagJob] = []
    for given in inputs:
        if not os.path.isdir(given):
            jobs.append(TagJob(given, os.path.basename(given), _size(given)))
            continue
        found = 0
        for root, dirs, files in os.walk(given):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                full = os.path.join(root, f)
                rel = os.path.relpath(full, given)
                take = fnmatch.fnmatch(rel, pattern) if pattern else os.path.splitext(f)[1].lower() in exts
                if take and not f.startswith("."):
                    jobs.append(TagJob(full, rel, _size(full)))
                    found += 1
        if not found:
            what = f"matching {pattern!r}" if pattern else f"with an audio extension ({' '.join(exts)})"
            jobs.append(TagJob(given, os.path.basename(given), error=f"{given}: no files {what} in this folder"))
    return jobs


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


class _FileState:
    """One file on its way through: vote, timeline and sums live on the engine thread."""

    def __init__(self, index: int, job: TagJob, labels: tuple[str, ...], s: TagSettings):
        self.index, self.job = index, job
        self.result = FileResult(job.path)
        self.vote = Vote(labels, s.vote, s.vote_window, s.ema_alpha, s.confirm, s.min_confidence)
        self.timeline = Segments()
        self.sum = np.zeros(len(labels), dtype=np.float64)
        self.voiced = 0
        self.outstanding = 0
        self.cut = False  # the decoder has sent everything
        self.stream: MonoStream | None = None  # set by the decoder thread, read for progress

    @property
    def done(self) -> bool:
        return self.cut and self.outstanding == 0

    def add(self, w: Window, probs: np.ndarray | None) -> None:
        v = self.vote.silence() if probs is None else self.vote.update(probs)
        if probs is not None:
            self.sum += probs
            self.voiced += 1
        self.timeline.add(w.t_end, v.genre)
        self.result.windows += 1
        self.outstanding -= 1

    def finish(self, meta: ModelMeta, min_confidence: float) -> FileResult:
        r = self.result
        if r.error is None and not r.cached:
            r.segments = self.timeline.items
            if self.voiced:
                labels = meta.labels
                mean = sharpen(self.sum / self.voiced, meta.track_temperature)[0]
                r.probs = {k: round(p, 4) for k, p in zip(labels, mean.tolist())}   # as output and cached
                best = int(np.argmax(mean))
                r.genre, r.confidence = labels[best], r.probs[labels[best]]
                if r.confidence < min_confidence:
                    r.genre = UNKNOWN
            else:
                r.genre, r.confidence = SILENCE, 1.0
        return r


class _Stopped(Exception):
    """The run is being abandoned; decoder threads leave quietly."""


def tag_engine(settings: TagSettings) -> Engine:
    """The engine :func:`tag_files` wants: each run on one thread (its lanes run batches side by side)."""
    from .engine import Engine, EngineOptions

    return Engine(settings.model, settings.provider, max_batch=settings.batch, options=EngineOptions(threads=1))


def tag_files(jobs: Sequence[TagJob], settings: TagSettings, engine: Engine, *, cache: ResultCache | None = None,
              model_key: str = "", want_digest: bool = False, progress: Progress | None = None,
              lanes: int | None = None) -> Iterator[FileResult]:
    """Tag every job, yielding results in input order; a bad file yields a result with ``error``.

    ``settings.jobs`` files are decoded at a time; with ``cache``, a file whose content was tagged
    before with the same ``model_key`` is not decoded (the cache lookup happens on the decoder
    threads). ``want_digest`` fills :attr:`FileResult.digest` even without a cache. ``lanes``: model
    runs at a time (default one per core, one on CUDA; see :func:`tag_engine`).
    """
    meta = engine.meta
    rate, size = meta.sample_rate, meta.window_samples
    hop = int(round(settings.hop * rate))
    lanes = _Lanes(engine, settings.batch, lanes)
    # decoders cut windows straight into rows of one array allocated here, and wait for a free row
    rows = np.zeros(((QUEUE_BATCHES + 1) * settings.batch, size), dtype=np.float32)
    free: queue.Queue = queue.Queue()
    for i in range(len(rows)):
        free.put(i)
    inbox: queue.Queue = queue.Queue()
    stop = threading.Event()
    todo = iter(enumerate(jobs))
    todo_lock = threading.Lock()
    live: dict[int, _FileState] = {}
    finished: dict[int, FileResult] = {}

    def send(item: tuple) -> None:
        inbox.put(item)

    def row() -> int:
        """A free window row (waits for the engine to release one)."""
        while True:
            try:
                return free.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    raise _Stopped from None

    def cut(st: _FileState, win: Windower, end: bool = False) -> bool:
        """Cut the next window of ``win`` into a free row and send it; False when there is none."""
        i = row()
        out = rows[i]
        w = win.finish(out) if end else win.pull_into(out)
        if w is None:
            free.put(i)
            return False
        send(("window", st, w, i, rms_dbfs(out[:w.end - w.start]) < settings.silence_db))
        return True

    def decode(st: _FileState) -> None:
        job = st.job
        if job.error:
            send(("error", st, UsageError(job.error)))
            return
        digest = None
        if (cache is not None or want_digest) and os.path.isfile(job.path):
            digest = cache.digest(job.path) if cache is not None else _digest(job.path)
            hit = cache.get(digest, model_key) if cache is not None else None
            if hit is not None:
                send(("cached", st, FileResult.from_verdict(job.path, *hit)))
                return
        with MonoStream(job.path, rate) as ms:
            st.stream = ms
            win = Windower(rate, size, hop, size)
            for chunk in ms.chunks():
                for i in range(0, len(chunk), size):
                    win.push(chunk[i:i + size])
                    while win.missing() == 0 and cut(st, win):
                        pass
            cut(st, win, end=True)
            send(("end", st, digest, ms.seconds_read))

    def worker() -> None:
        while not stop.is_set():
            with todo_lock:
                nxt = next(todo, None)
            if nxt is None:
                return
            st = _FileState(nxt[0], nxt[1], meta.labels, settings)
            try:
                decode(st)
            except _Stopped:
                return
            except StreamtagError as exc:
                _send_error(send, st, exc)
            except Exception as exc:  # any decoder failure ends this file with one line, never the run
                _send_error(send, st, UsageError(f"{st.job.path}: cannot decode audio ({decode_error(exc)})"))

    def complete(st: _FileState) -> None:
        r = st.finish(meta, settings.min_confidence)
        live.pop(st.index, None)
        finished[st.index] = r
        if progress is not None:
            progress.file_done(st.job.size, r.seconds, cached=r.cached, failed=r.error is not None)

    def settle(wait: bool = False) -> None:
        """Apply the model runs that are done (all of them with ``wait``), in the order they were started."""
        for owners, probs in lanes.results(wait):
            for i, (st, w, silent) in enumerate(owners):
                st.add(w, None if silent else probs[i])
            for st in {id(st): st for st, _, _ in owners}.values():
                if st.done:
                    complete(st)

    def report() -> None:
        if progress is None:
            return
        secs = fraction = 0.0
        for st in list(live.values()):
            ms = st.stream
            if ms is not None:
                secs += ms.seconds_read
                if ms.file.frames:
                    fraction += st.job.size * min(1.0, ms.frames_read / ms.file.frames)
        progress.in_flight(secs, fraction)
        progress.tick()

    threads = [threading.Thread(target=worker, name=f"decode-{i}", daemon=True)
               for i in range(min(settings.jobs, max(len(jobs), 1)))]
    for t in threads:
        t.start()
    emitted = 0
    try:
        while emitted < len(jobs):
            try:
                kind, st, *rest = inbox.get(timeout=IDLE_FLUSH_SECONDS if lanes.busy else 0.5)
            except queue.Empty:
                lanes.start()
                settle(wait=True)
                report()
            else:
                live.setdefault(st.index, st)
                if kind == "window":
                    w, i, silent = rest
                    lanes.add(rows[i], (st, w, silent))
                    free.put(i)
                    st.outstanding += 1
                elif kind == "end":
                    st.result.digest, st.result.seconds = rest
                    st.cut = True
                elif kind == "cached":
                    st.result, st.cut = rest[0], True
                else:  # error
                    st.result.error, st.cut = rest[0], True
                if kind != "window" and st.done:
                    complete(st)
                settle()
                report()
            while emitted in finished:
                yield finished.pop(emitted)
                emitted += 1
    finally:
        stop.set()
        lanes.close()
        for t in threads:
            t.join(timeout=5)


class _Lanes:
    """Batches of windows run on the engine from one thread per core (each run single-threaded inside ONNX
    Runtime: on 2 shared cores ~1.5x the throughput of one run spread over both), results in start order.

    On CUDA one lane: the device runs one batch at a time anyway.
    """

    def __init__(self, engine: Engine, batch: int, lanes: int | None = None):
        self.engine = engine
        if lanes is None:
            lanes = 1 if engine.provider == "cuda" else len(os.sched_getaffinity(0)) \
                if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        n = max(1, lanes)
        self._pool = ThreadPoolExecutor(n, thread_name_prefix="engine") if n > 1 else None
        self._lanes = n
        self._buffers = [engine.batch_buffer(batch) for _ in range(n + 1)]
        self._filling = 0
        self._owners: list[tuple] = []
        self._running: deque[tuple[Future, list[tuple], int]] = deque()
        self._done: deque[tuple[list[tuple], np.ndarray]] = deque()

    @property
    def busy(self) -> bool:
        """Windows waiting or being run."""
        return bool(self._owners or self._running or self._done)

    def add(self, window: np.ndarray, owner: tuple) -> None:
        """Copy ``window`` into the batch being filled; a full batch is started."""
        self._buffers[self._filling][len(self._owners)] = window
        self._owners.append(owner)
        if len(self._owners) == len(self._buffers[0]):
            self.start()

    def start(self) -> None:
        """Start the batch being filled (if any) on a free lane, waiting for the oldest run if none is free."""
        if not self._owners:
            return
        owners, self._owners = self._owners, []
        if self._pool is None:
            self._done.append((owners, self.engine.run(self._buffers[self._filling], len(owners))))
            return
        buf = self._filling
        self._running.append((self._pool.submit(self.engine.run, self._buffers[buf], len(owners)), owners, buf))
        if len(self._running) == self._lanes:
            self._finish_oldest()
        busy = {b for _, _, b in self._running}
        self._filling = next(b for b in range(len(self._buffers)) if b not in busy)

    def _finish_oldest(self) -> None:
        future, owners, _ = self._running.popleft()
        self._done.append((owners, future.result()))

    def results(self, wait: bool = False) -> Iterator[tuple[list[tuple], np.ndarray]]:
        """``(owners, probs)`` of finished runs in start order (``wait``: every started run)."""
        while self._running and (wait or self._running[0][0].done()):
            self._finish_oldest()
        while self._done:
            yield self._done.popleft()

    def close(self) -> None:
        """Stop the lanes (runs still going are waited for, queued ones dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _send_error(send, st: _FileState, exc: StreamtagError) -> None:
    try:
        send(("error", st, exc))
    except _Stopped:
        pass


def _digest(path: str) -> str:
    from .cache import file_digest
    return file_digest(path)


def after_result(r: FileResult, job: TagJob, s: TagSettings, *, model: str, cache: ResultCache | None = None,
                 model_key: str = "") -> list[str]:
    """Act on a finished result: cache it, write its segment files and file tags (per ``s``).

    Returns lines to show on stderr; raises :class:`UsageError` for a file whose outputs failed.
    """
    if r.error is not None:
        return []
    if cache is not None and r.digest and not r.cached:
        cache.put(r.digest, model_key, r.verdict(), r.seconds)
    if s.segments_out:
        base = Path(s.segments_out).expanduser() / job.name
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            for suffix in (".csv", ".txt", ".cue"):
                save_segments(r.segments, base.with_name(base.name + suffix), audio=r.path)
        except OSError as exc:
            raise UsageError(f"{r.path}: cannot write segments to {base.parent} ({exc.strerror or exc})") from None
    if not s.write_tags:
        return []
    if r.genre == SILENCE:
        return [f"{r.path}: silent, tags left alone"]
    from .filetags import write_genre
    line = write_genre(r.path, r.genre, r.confidence, model, dry_run=s.dry_run)
    if cache is not None and not s.dry_run:  # new tags, new bytes: remember the result under both digests
        digest = cache.digest(r.path)
        cache.put(digest, model_key, r.verdict(), r.seconds)
    return [line]
