"""Snapshot tests: a recorded real session replayed through the TuiSink, at 80x24 and 120x40.

The SVGs under ``__snapshots__/`` are the README's screenshots. Update them after a deliberate
change with ``pytest tests/functional/tui/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from tui_support import replay, replay_app


def test_dashboard_80x24(snap_compare, session):
    assert snap_compare(replay_app(session), terminal_size=(80, 24),
                        run_before=lambda pilot: replay(pilot, session))


def test_dashboard_120x40(snap_compare, session):
    assert snap_compare(replay_app(session), terminal_size=(120, 40),
                        run_before=lambda pilot: replay(pilot, session))


def test_dashboard_no_color_80x24(snap_compare, session, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(replay_app(session), terminal_size=(80, 24),
                        run_before=lambda pilot: replay(pilot, session))


def test_help_80x24(snap_compare, session):
    assert snap_compare(replay_app(session), terminal_size=(80, 24), press=["question_mark"],
                        run_before=lambda pilot: replay(pilot, session))
