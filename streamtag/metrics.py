"""Prometheus metrics (``--metrics-port N``): a sink that turns events into per-station metrics.

Served by prometheus-client's own HTTP server on its own thread at ``http://HOST:PORT/metrics``;
every metric has a ``station`` label (the event's ``stream``).
"""

from __future__ import annotations

import errno

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from . import events
from .errors import UsageError

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds, window end -> publish."""
STATE_UP = {"connected": 1, "ended": 1}
"""Input states that count as up."""


class MetricsSink:
    """Updates the metrics from events and serves them; ``port`` 0 picks a free one (see ``port``)."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.registry = r = CollectorRegistry()
        self.windows = Counter("streamtag_windows", "Windows classified.", ["station"], registry=r)
        self.dropped = Counter("streamtag_dropped_samples", "Input samples lost to a full capture buffer.",
                               ["station"], registry=r)
        self.outages = Counter("streamtag_outages", "Times the input was lost.", ["station"], registry=r)
        self.latency = Histogram("streamtag_latency_seconds", "Window end to publish.", ["station"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.genre = Gauge("streamtag_genre", "1 for the station's current smoothed genre, 0 for the others.",
                           ["station", "genre"], registry=r)
        self.confidence = Gauge("streamtag_confidence", "Confidence of the current genre.", ["station"], registry=r)
        self.up = Gauge("streamtag_up", "1 while the input delivers (or ended normally), 0 while it is down.",
                        ["station"], registry=r)
        self.backlog = Gauge("streamtag_backlog_seconds", "Audio waiting in the capture buffer.", ["station"],
                             registry=r)
        self._genre: dict[str, str] = {}
        self._dropped: dict[str, int] = {}
        self._outages: dict[str, int] = {}
        try:
            self._server, self._thread = start_http_server(port, host, registry=r)
        except OSError as exc:
            hint = " (in use)" if exc.errno == errno.EADDRINUSE else ""
            raise UsageError(f"cannot serve metrics on {host}:{port}: {exc.strerror}{hint}") from None
        self.port = self._server.server_address[1]
        """The port really bound."""

    def publish(self, topic: str, event: dict) -> None:
        """Account one event."""
        base, station = events.base_topic(topic), event.get("stream", "")
        if base == events.GENRE:
            self.windows.labels(station).inc()
            self.latency.labels(station).observe(event["latency_ms"] / 1000)
            old, new = self._genre.get(station), event["genre"]
            if old != new:
                if old is not None:
                    self.genre.labels(station, old).set(0)
                self.genre.labels(station, new).set(1)
                self._genre[station] = new
            self.confidence.labels(station).set(event["confidence"])
        elif base == events.STATUS:
            self._count(self.dropped, self._dropped, station, event["dropped_samples"])
            self._count(self.outages, self._outages, station, event["outages"])
            self.up.labels(station).set(STATE_UP.get(event["state"], 0))
            self.backlog.labels(station).set(event["backlog_s"])
        elif base == events.OUTAGE:
            self._count(self.outages, self._outages, station, event["outages"])
            self.up.labels(station).set(STATE_UP.get(event["state"], 0))

    @staticmethod
    def _count(counter: Counter, seen: dict[str, int], station: str, total: int) -> None:
        """Raise ``counter`` to the running total ``total`` reported by the events."""
        child = counter.labels(station)  # exported from the first report on, zero included
        delta = total - seen.get(station, 0)
        if delta > 0:
            child.inc(delta)
            seen[station] = total

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
