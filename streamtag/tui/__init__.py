"""The Textual dashboard for ``streamtag listen``: :func:`run` shows a pipeline until the user quits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import signals
from .app import StreamtagApp

if TYPE_CHECKING:
    from ..pipeline import Pipeline

STATUS_INTERVAL_S = 1.0
"""Longest status period while the TUI runs: status events are its only source of health and uptime."""


def run(pipeline: Pipeline) -> int:
    """Start ``pipeline``, show it until ``q``, stop it; returns the exit code (0).

    Errors from ``pipeline.start()`` propagate before the screen is taken over; an error the
    pipeline hit while running is raised after the screen is restored, for the CLI to report.
    """
    app = StreamtagApp(pipeline)
    pipeline.settings.status_interval = min(pipeline.settings.status_interval, STATUS_INTERVAL_S)
    pipeline.start()
    try:
        if signals.received() is None:  # a stop signal during start-up: no screen, just the clean stop
            app.run()
    finally:
        signals.install()  # the app's SIGTERM handler left SIG_DFL behind: keep the clean stop from being cut short
        pipeline.stop()
    if pipeline.error is not None:
        raise pipeline.error
    return 0 if app.return_code in (None, 0) else app.return_code


__all__ = ["StreamtagApp", "run"]
