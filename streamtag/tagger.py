"""``streamtag tag``: whole files, windows batched across files, one result per file in input order."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from .audio import load_mono
from .engine import Engine
from .errors import StreamtagError
from .segments import Segments
from .settings import TagSettings
from .vote import SILENCE, Vote, rms_dbfs
from .windower import Window, Windower

PREFETCH = 2
"""Files decoded ahead of the model (on a helper thread)."""


@dataclass
class FileResult:
    """The verdict for one file (or the error that stopped it)."""

    path: str
    """The path as given."""
    genre: str = ""
    """Argmax of the mean probabilities of its non-silent windows (``silence`` if all are silent)."""
    confidence: float = 0.0
    """Mean probability of ``genre``."""
    probs: dict[str, float] = field(default_factory=dict)
    """Mean probability per label over the non-silent windows."""
    windows: int = 0
    """Windows classified."""
    segments: list[dict] = field(default_factory=list)
    """Smoothed genre over time (the live vote and hysteresis)."""
    error: StreamtagError | None = None
    """Set when the file could not be tagged."""

    def to_dict(self) -> dict:
        """The ``--json`` line."""
        if self.error is not None:
            return {"path": self.path, "error": str(self.error)}
        return {"path": self.path, "genre": self.genre, "confidence": round(self.confidence, 4),
                "probs": {k: round(v, 4) for k, v in self.probs.items()}, "windows": self.windows,
                "segments": self.segments}


class _FileState:
    def __init__(self, path: str, labels: tuple[str, ...], s: TagSettings):
        self.result = FileResult(path)
        self.vote = Vote(labels, s.vote, s.vote_window, s.ema_alpha, s.confirm)
        self.timeline = Segments()
        self.sum = np.zeros(len(labels), dtype=np.float64)
        self.voiced = 0
        self.outstanding = 0
        self.cut = False  # all windows handed to the batch

    @property
    def done(self) -> bool:
        return self.result.error is not None or (self.cut and self.outstanding == 0)

    def add(self, w: Window, probs: np.ndarray | None) -> None:
        v = self.vote.silence() if probs is None else self.vote.update(probs)
        if probs is not None:
            self.sum += probs
            self.voiced += 1
        self.timeline.add(w.t_end, v.genre)
        self.result.windows += 1
        self.outstanding -= 1

    def finish(self, labels: tuple[str, ...]) -> FileResult:
        r = self.result
        if r.error is None:
            r.segments = self.timeline.items
            if self.voiced:
                mean = self.sum / self.voiced
                r.probs = dict(zip(labels, mean.tolist()))
                best = int(np.argmax(mean))
                r.genre, r.confidence = labels[best], float(mean[best])
            else:
                r.genre, r.confidence = SILENCE, 1.0
        return r


def tag_files(paths: Iterable[str], settings: TagSettings, engine: Engine) -> Iterator[FileResult]:
    """Tag every file, yielding results in input order; a bad file yields a result with ``error``."""
    meta = engine.meta
    rate, size = meta.sample_rate, meta.window_samples
    hop = int(round(settings.hop * rate))
    batch = np.zeros((settings.batch, size), dtype=np.float32)
    owners: list[tuple[_FileState, Window]] = []
    queue: deque[_FileState] = deque()

    def run_batch() -> None:
        if not owners:
            return
        k = len(owners)
        probs = engine.run(batch[:k])
        for i, (st, w) in enumerate(owners):
            silent = rms_dbfs(batch[i, :w.end - w.start]) < settings.silence_db
            st.add(w, None if silent else probs[i])
        owners.clear()

    def ready() -> Iterator[FileResult]:
        while queue and queue[0].done:
            yield queue.popleft().finish(meta.labels)

    with ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
        pending: deque[tuple[str, Future]] = deque()
        it = iter(paths)

        def submit() -> None:
            for path in it:
                pending.append((path, pool.submit(load_mono, path, rate)))
                return

        for _ in range(PREFETCH):
            submit()
        while pending:
            path, fut = pending.popleft()
            submit()
            st = _FileState(path, meta.labels, settings)
            queue.append(st)
            try:
                x = fut.result()
            except StreamtagError as exc:
                st.result.error = exc
                yield from ready()
                continue
            win = Windower(rate, size, hop, max(len(x), 1))
            win.push(x)
            while True:
                w = win.pull_into(batch[len(owners)]) or win.finish(batch[len(owners)])
                if w is None:
                    break
                owners.append((st, w))
                st.outstanding += 1
                if len(owners) == len(batch):
                    run_batch()
                    yield from ready()
            st.cut = True
            yield from ready()
        run_batch()
        yield from ready()
