"""Where events go: a ZeroMQ PUB socket and the console (human lines or JSON lines)."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

import zmq

from . import events, strictjson
from .clock import fmt_stream_time
from .errors import OutputClosed, RuntimeFailure, UsageError
from .settings import DEFAULT_PUBLISH


def zmq_socket(ctx: zmq.Context, kind: int, address: str) -> zmq.Socket:
    """A socket of ``kind`` ready for ``address`` (IPv6 enabled when the host is ``[...]``)."""
    sock = ctx.socket(kind)
    if address.startswith("tcp://["):
        sock.setsockopt(zmq.IPV6, 1)
    return sock


def write_line(out: TextIO, line: str) -> None:
    """Write one line and flush; a vanished reader raises :class:`OutputClosed`, any other failure
    (disk full, I/O error) :class:`RuntimeFailure`."""
    try:
        out.write(line + "\n")
        out.flush()
    except BrokenPipeError:
        raise OutputClosed() from None
    except (OSError, ValueError) as exc:  # ValueError: the stream was closed
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RuntimeFailure(f"cannot write to standard output ({reason})") from None


class Sink(Protocol):
    """Receives every event; ``publish`` runs on the pipeline's worker thread and must never block."""

    def publish(self, topic: str, event: dict) -> None: ...

    def close(self) -> None: ...


class ZmqPublisher:
    """PUB socket bound to ``address``; sends without blocking, drops for slow subscribers."""

    def __init__(self, address: str = DEFAULT_PUBLISH, hwm: int = 100, linger_ms: int = 1000):
        self.address = address
        self._ctx = zmq.Context()
        self._sock = zmq_socket(self._ctx, zmq.PUB, address)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, linger_ms)
        try:
            self._sock.bind(address)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            self._ctx.term()
            hint = " (another streamtag running? use --publish ADDR or --no-publish)" \
                if exc.errno == zmq.EADDRINUSE else ""
            raise UsageError(f"cannot publish on {address}: {exc.strerror}{hint}") from None

    def publish(self, topic: str, event: dict) -> None:
        """Send ``"<topic> <json>"`` with NOBLOCK."""
        try:
            self._sock.send_string(events.encode(topic, event), zmq.NOBLOCK)
        except zmq.Again:  # queue full: this message is dropped, the pipeline never waits
            pass

    def close(self) -> None:
        """Close the socket, giving queued messages up to ``linger_ms`` to leave."""
        self._sock.close()
        self._ctx.term()


class ConsoleSink:
    """Prints genre, change and status events: one human line each, or one JSON object per line.

    When the output fails (reader gone, disk full) :meth:`publish` raises once (see
    :func:`write_line`), which ends the run; later events are not written.
    """

    def __init__(self, json_lines: bool = False, out: TextIO | None = None):
        self.json_lines = json_lines
        self.out = out or sys.stdout
        self.failed = False

    def publish(self, topic: str, event: dict) -> None:
        """Write one line for ``streamtag.genre|change|status|outage`` (level events are not printed)."""
        base = events.base_topic(topic)
        if base == events.LEVEL or self.failed:
            return
        if self.json_lines:
            line = strictjson.dumps({"topic": topic, **event})
        elif base == events.STATUS:
            p50 = event["latency_p50_ms"]
            link = "" if event["state"] in ("connected", "ended") and not event["outages"] else \
                f", {event['state']} ({event['outages']} outages)"
            line = (f"# status: {event['windows']} windows, {event['windows_per_s']:.2f}/s, latency p50 "
                    f"{'-' if p50 is None else f'{p50:.0f}'} ms, dropped {event['dropped_samples']} samples, "
                    f"{event['provider']}, {event['model']}{link}" + (" (final)" if event["final"] else ""))
        elif base == events.OUTAGE:
            if event["state"] == "reconnecting":
                detail = f"{event['error']}; retry {event['attempt']} in {event['retry_in_s']:.1f} s"
            elif event["state"] == "connected":
                detail = f"back after {event['duration_s']:.1f} s"
            else:
                detail = str(event["error"])
            line = f"# {event['stream']}: {event['state']} ({detail})"
        elif base == events.CHANGE:
            was = "" if event["previous"] is None else f"{event['previous']} -> "
            line = f"# genre: {was}{event['genre']} at {fmt_stream_time(event['at'])}"
        else:
            line = (f"[{event['t_start']:7.1f} - {event['t_end']:7.1f} s] {event['genre']:<10} "
                    f"{event['confidence']:.2f}  (this window: {event['raw_genre']})")
        try:
            write_line(self.out, line)
        except (OutputClosed, RuntimeFailure):
            self.failed = True
            raise

    def close(self) -> None:
        """Flush what is left (a failed output stays quiet)."""
        try:
            self.out.flush()
        except (OSError, ValueError):
            self.failed = True
