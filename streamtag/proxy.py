"""``streamtag proxy``: ZeroMQ's own XSUB/XPUB proxy joining several publishers into one feed.

Each ``listen``/``monitor`` process (one per shard) binds its own PUB address; the proxy's XSUB
socket connects to all of them and its XPUB socket binds the address subscribers use, so
``streamtag subscribe`` sees every shard's events (subscriptions travel upstream).
"""

from __future__ import annotations

import threading
from typing import Sequence

import zmq

from .errors import UsageError

CONTROL = "inproc://streamtag-proxy-control"


class Proxy:
    """``start()`` runs :func:`zmq.proxy_steerable` on a thread; ``stop()`` terminates it through its control socket."""

    def __init__(self, upstream: Sequence[str], bind: str, hwm: int = 1000):
        self._ctx = zmq.Context()
        self._xsub = self._ctx.socket(zmq.XSUB)
        self._xpub = self._ctx.socket(zmq.XPUB)
        self._control = self._ctx.socket(zmq.PAIR)
        self._steer = self._ctx.socket(zmq.PAIR)
        for s in (self._xsub, self._xpub, self._control, self._steer):
            s.setsockopt(zmq.LINGER, 0)
        self._xpub.setsockopt(zmq.SNDHWM, hwm)
        try:
            for address in upstream:
                self._xsub.connect(address)
            self._xpub.bind(bind)
        except zmq.ZMQError as exc:
            self._close()
            hint = " (address in use)" if exc.errno == zmq.EADDRINUSE else ""
            raise UsageError(f"proxy: {exc.strerror}{hint} ({', '.join(upstream)} -> {bind})") from None
        self._control.bind(CONTROL)
        self._steer.connect(CONTROL)
        self.thread = threading.Thread(target=self._run, name="streamtag proxy", daemon=True)

    def _run(self) -> None:
        try:
            zmq.proxy_steerable(self._xsub, self._xpub, None, self._control)
        except zmq.ContextTerminated:
            pass

    def start(self) -> None:
        """Start forwarding."""
        self.thread.start()

    def stop(self) -> None:
        """Stop forwarding and close every socket."""
        if self.thread.is_alive():
            self._steer.send(b"TERMINATE")
            self.thread.join(5)
        self._close()

    def _close(self) -> None:
        for s in (self._xsub, self._xpub, self._control, self._steer):
            s.close()
        self._ctx.term()
