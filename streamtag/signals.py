"""Stop signals (SIGINT, SIGTERM, SIGHUP), handled from the first instant of a command.

:func:`install` runs before any heavy import. Until a command enters :func:`armed`, a signal is
only recorded, so an import or a model load is never torn half-way (a KeyboardInterrupt inside
onnxruntime's import surfaces as an ImportError). Armed, the first signal raises
KeyboardInterrupt in the main thread (at once if one was recorded earlier); every later signal
is ignored, so a clean stop (tag the buffered audio, publish the last status, flush) is never
cut short.

SIGINT and SIGTERM are handled even when the process started with them ignored (a script's
``streamtag listen &``): stopping cleanly is never harmful. SIGHUP stays ignored when it was
ignored at start (``nohup``), since that is an explicit request.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a command cleanly."""


class _State:
    received: int | None = None
    armed = False


def _handler(signum: int, frame) -> None:
    if _State.received is not None:  # already stopping: never interrupt the clean stop
        return
    _State.received = signum
    if _State.armed:
        raise KeyboardInterrupt


def install() -> Callable[[], None]:
    """Install the stop handlers (main thread only; elsewhere, or when already installed, a no-op).

    Returns a function that restores the previous handlers and forgets any received signal.
    """
    if signal.getsignal(signal.SIGTERM) is _handler:
        return lambda: None
    _State.received, _State.armed = None, False
    old: dict[int, object] = {}
    for sig in STOP_SIGNALS:
        try:
            prev = signal.getsignal(sig)
            if sig == signal.SIGHUP and prev == signal.SIG_IGN:
                continue
            signal.signal(sig, _handler)
        except ValueError:  # not the main thread (library use)
            break
        old[sig] = signal.SIG_DFL if prev is None else prev

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)
        _State.received, _State.armed = None, False
    return restore


def received() -> int | None:
    """The first stop signal received since :func:`install`, or None."""
    return _State.received


@contextmanager
def armed() -> Iterator[None]:
    """Within this block a stop signal raises KeyboardInterrupt (at once if one came before)."""
    _State.armed = True
    try:
        if _State.received is not None:
            raise KeyboardInterrupt
        yield
    finally:
        _State.armed = False
