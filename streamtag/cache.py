"""Results cache for ``streamtag tag --cache PATH``: one SQLite file.

A result is keyed by the file's content (SHA-256 of its bytes) and by the model and settings that
made it (:func:`model_key`), so a moved or copied file is still found and a new model or hop tags
again. A second table remembers each path's size, mtime and digest, so an unchanged file is not
even read again to be hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RuntimeFailure, UsageError

if TYPE_CHECKING:
    from .modelmeta import ModelMeta
    from .settings import TagSettings

COMMIT_SECONDS = 2.0
"""Results are committed at least this often (and at close), so an interrupted run keeps its work."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    digest TEXT NOT NULL, model TEXT NOT NULL, result TEXT NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (digest, model));
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, digest TEXT NOT NULL);
"""


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_key(onnx: Path, meta: ModelMeta, s: TagSettings) -> str:
    """What a cached result depends on besides the audio: the model file and the result-shaping settings."""
    return (f"{meta.name}:{file_digest(onnx)[:16]}:hop={s.hop}:vote={s.vote}/{s.vote_window}/{s.ema_alpha}"
            f":confirm={s.confirm}:silence={s.silence_db}:min_confidence={s.min_confidence}")


class ResultCache:
    """Thread-safe SQLite store of tag results (decode threads look up, the main thread stores)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._last_commit = time.monotonic()
        if self.path.is_dir():
            raise UsageError(f"{path}: cache is a directory (give a file path)")
        try:
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + _SCHEMA)
        except sqlite3.Error as exc:
            raise UsageError(f"{path}: cannot use as a results cache ({exc})") from None

    @contextmanager
    def _locked(self):
        """The connection, under the lock; an SQLite failure mid-run is one line (disk full, file removed)."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise RuntimeFailure(f"{self.path}: results cache failed ({exc})") from None

    def known_digest(self, path: str | Path) -> str | None:
        """The digest remembered for ``path`` if its size and mtime are unchanged (no file read)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        with self._locked() as db:
            row = db.execute("SELECT size, mtime_ns, digest FROM files WHERE path = ?", (_key(path),)).fetchone()
        return row[2] if row and (row[0], row[1]) == (st.st_size, st.st_mtime_ns) else None

    def digest(self, path: str | Path) -> str:
        """Content digest of ``path``: remembered if the file is unchanged, else hashed and remembered."""
        found = self.known_digest(path)
        if found is not None:
            return found
        st = os.stat(path)
        digest = file_digest(path)
        self.remember(path, digest, st)
        return digest

    def remember(self, path: str | Path, digest: str, st: os.stat_result | None = None) -> None:
        """Record ``path``'s size, mtime and digest."""
        st = st or os.stat(path)
        with self._locked() as db:
            db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                       (_key(path), st.st_size, st.st_mtime_ns, digest))
            self._maybe_commit()

    def get(self, digest: str, model: str) -> tuple[dict, float] | None:
        """A stored result (the ``--json`` fields without ``path``) and its audio seconds, or None."""
        with self._locked() as db:
            row = db.execute("SELECT result, seconds FROM results WHERE digest = ? AND model = ?",
                             (digest, model)).fetchone()
        return (json.loads(row[0]), float(row[1])) if row else None

    def put(self, digest: str, model: str, result: dict, seconds: float) -> None:
        """Store one result."""
        with self._locked() as db:
            db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                       (digest, model, json.dumps(result), seconds))
            self._maybe_commit()

    def _maybe_commit(self) -> None:
        if time.monotonic() - self._last_commit >= COMMIT_SECONDS:
            self._db.commit()
            self._last_commit = time.monotonic()

    def close(self) -> None:
        """Commit and close."""
        with self._locked() as db:
            db.commit()
            db.close()


def _key(path: str | Path) -> str:
    return os.path.abspath(path)
