"""Keeping C decoders' chatter off stderr (libmpg123 prints resync messages straight to file descriptor 2).

Its own module so that the command line can switch it on without loading the decoders.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

_quiet_lock = threading.Lock()
_quiet_users = 0
_saved_stderr_fd: int | None = None
_quiet_enabled = False


def quiet_decoders(enabled: bool) -> None:
    """Switch :func:`quiet_c_stderr` on or off (off by default: library users keep their stderr).

    The CLI switches it on once ``sys.stderr`` writes through a duplicate of fd 2, so streamtag's
    own messages are never swallowed with the decoder's chatter.
    """
    global _quiet_enabled
    _quiet_enabled = enabled


@contextmanager
def quiet_c_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null while a C decoder runs (when switched on; thread-safe, nestable).

    libsndfile's MP3 decoder (libmpg123) prints resync chatter straight to fd 2; the decoder's
    error code is what streamtag reports.
    """
    global _quiet_users, _saved_stderr_fd
    if not _quiet_enabled:
        yield
        return
    with _quiet_lock:
        if _quiet_users == 0:
            try:
                _saved_stderr_fd = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            except OSError:  # no fd 2 or no /dev/null: leave stderr alone
                _saved_stderr_fd = None
        _quiet_users += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_users -= 1
            if _quiet_users == 0 and _saved_stderr_fd is not None:
                os.dup2(_saved_stderr_fd, 2)
                os.close(_saved_stderr_fd)
                _saved_stderr_fd = None
