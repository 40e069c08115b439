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
"""Windows waiting for the engine, in batches: the bound on decoded audio held in memory."""

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


def tag_files(jobs: Sequence[TagJob], settings: TagSettings, engine: Engine, *, cache: ResultCache | None = None,
              model_key: str = "", want_digest: bool = False, progress: Progress | None = None) -> Iterator[FileResult]:
    """Tag every job, yielding results in input order; a bad file yields a result with ``error``.

    ``settings.jobs`` files are decoded at a time; with ``cache``, a file whose content was tagged
    before with the same ``model_key`` is not decoded (the cache lookup happens on the decoder
    threads). ``want_digest`` fills :attr:`FileResult.digest` even without a cache.
    """
    meta = engine.meta
    rate, size = meta.sample_rate, meta.window_samples
    hop = int(round(settings.hop * rate))
    batch = np.zeros((settings.batch, size), dtype=np.float32)
    owners: list[tuple[_FileState, Window, bool]] = []
    inbox: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES * settings.batch)
    stop = threading.Event()
    todo = iter(enumerate(jobs))
    todo_lock = threading.Lock()
    live: dict[int, _FileState] = {}
    finished: dict[int, FileResult] = {}

    def send(item: tuple) -> None:
        while True:
            try:
                inbox.put(item, timeout=0.1)
                return
            except queue.Full:
                if stop.is_set():
                    raise _Stopped from None

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
                    while (w := _next_window(win, size, settings.silence_db)) is not None:
                        send(("window", st, *w))
            if (w := _next_window(win, size, settings.silence_db, end=True)) is not None:
                send(("window", st, *w))
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

    def run_batch() -> None:
        if not owners:
            return
        probs = engine.run(batch[:len(owners)])
        for i, (st, w, silent) in enumerate(owners):
            st.add(w, None if silent else probs[i])
        states = {id(st): st for st, _, _ in owners}.values()
        owners.clear()
        for st in states:
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
                kind, st, *rest = inbox.get(timeout=IDLE_FLUSH_SECONDS if owners else 0.5)
            except queue.Empty:
                run_batch()
                report()
            else:
                live.setdefault(st.index, st)
                if kind == "window":
                    w, samples, silent = rest
                    batch[len(owners)] = samples
                    owners.append((st, w, silent))
                    st.outstanding += 1
                    if len(owners) == len(batch):
                        run_batch()
                elif kind == "end":
                    st.result.digest, st.result.seconds = rest
                    st.cut = True
                elif kind == "cached":
                    st.result, st.cut = rest[0], True
                else:  # error
                    st.result.error, st.cut = rest[0], True
                if kind != "window" and st.done:
                    complete(st)
                report()
            while emitted in finished:
                yield finished.pop(emitted)
                emitted += 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)


def _next_window(win: Windower, size: int, silence_db: float,
                 end: bool = False) -> tuple[Window, np.ndarray, bool] | None:
    """The next window from ``win`` as ``(window, samples, silent)`` (``end``: the final one), or None."""
    out = np.empty(size, dtype=np.float32)
    w = win.finish(out) if end else win.pull_into(out)
    return None if w is None else (w, out, rms_dbfs(out[:w.end - w.start]) < silence_db)


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
