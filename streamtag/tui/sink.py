"""TuiSink: the pipeline's sink that hands events to the app as messages, at most ~10 Hz."""

from __future__ import annotations

import threading
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump

from .messages import GenreChange, message_for

FLUSH_INTERVAL_S = 0.1
"""How often pending updates are posted to the app (10 Hz)."""


class TuiSink:
    """Collects events on the pipeline's threads and posts them to the app from its own thread.

    :meth:`publish` only stores: the newest state per message type (older ones are superseded,
    see ``absorb``) and every genre change in order. A flusher thread posts what is pending every
    :data:`FLUSH_INTERVAL_S`, so capture never waits on the UI and the UI never sees more
    than ~10 updates a second of each kind.
    """

    def __init__(self, interval: float = FLUSH_INTERVAL_S):
        self._interval = interval
        self._lock = threading.Lock()
        self._latest: dict[type[Message], Message] = {}
        self._changes: list[GenreChange] = []
        self._target: MessagePump | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.posted = 0
        """Messages posted to the app so far."""

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Store an event for the next flush (called on a pipeline worker thread; never blocks on the UI)."""
        message = message_for(topic, event)
        if message is None:
            return
        with self._lock:
            if isinstance(message, GenreChange):
                self._changes.append(message)
            else:
                older = self._latest.get(type(message))
                self._latest[type(message)] = message if older is None else message.absorb(older)

    def attach(self, target: MessagePump) -> None:
        """Start posting to ``target`` (the running app) from a flusher thread."""
        self._target = target
        self._thread = threading.Thread(target=self._run, name="streamtag-tui-sink", daemon=True)
        self._thread.start()

    def flush(self) -> int:
        """Post everything pending now: changes in order, then the newest states; returns the count.

        Before :meth:`attach` nothing is posted and everything stays pending.
        """
        target = self._target
        if target is None:
            return 0
        with self._lock:
            pending: list[Message] = [*self._changes, *self._latest.values()]
            self._changes.clear()
            self._latest.clear()
        for message in pending:
            target.post_message(message)
        self.posted += len(pending)
        return len(pending)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()
        self.flush()

    def close(self) -> None:
        """Stop the flusher after a last flush (called by ``Pipeline.stop``); safe to call twice."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
