"""The Textual dashboards: :func:`run` shows a ``listen`` pipeline, :func:`run_monitor` a ``monitor``'s
stations, until the user quits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import signals
from .app import StreamtagApp

if TYPE_CHECKING:
    from ..pipeline import Pipeline

STATUS_INTERVAL_S = 1.0
"""Longest status period while the TUI runs: status events are its only source of health and uptime."""


def _show(app, pipeline: Pipeline) -> None:
    """Start ``pipeline`` (errors propagate before the screen is taken over), run ``app``, stop the pipeline."""
    pipeline.settings.status_interval = min(pipeline.settings.status_interval, STATUS_INTERVAL_S)
    pipeline.start()
    try:
        if signals.received() is None:  # a stop signal during start-up: no screen, just the clean stop
            app.run()
    finally:
        signals.install()  # the app's SIGTERM handler left SIG_DFL behind: keep the clean stop from being cut short
        pipeline.stop()


def run(pipeline: Pipeline) -> int:
    """Start ``pipeline``, show it until ``q``, stop it; returns the exit code (0).

    Errors from ``pipeline.start()`` propagate before the screen is taken over; an error the
    pipeline hit while running is raised after the screen is restored, for the CLI to report.
    """
    app = StreamtagApp(pipeline)
    _show(app, pipeline)
    if pipeline.error is not None:
        raise pipeline.error
    return 0 if app.return_code in (None, 0) else app.return_code


def run_monitor(pipeline: Pipeline) -> None:
    """Start a monitor ``pipeline``, show its stations until ``q``, stop it (errors are the caller's to report)."""
    from .monitor import MonitorApp

    _show(MonitorApp(pipeline), pipeline)


__all__ = ["StreamtagApp", "run", "run_monitor"]
