"""ChangeList: the last changes of the smoothed genre with their stream times, newest first."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from ..clock import fmt_stream_time
from .history import GenreHistory


class ChangeList(Widget):
    """``m:ss  previous → genre`` lines, as many as fit."""

    def __init__(self, history: GenreHistory, *, id: str | None = None):
        super().__init__(id=id)
        self.history = history

    def render(self) -> Text:
        rows = max(1, self.content_region.height)
        changes = self.history.recent(rows)
        if not changes:
            return Text("no change yet", style="dim")
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, c in enumerate(changes):
            text.append(f"{fmt_clock(c.t):>5} ", style="dim")
            text.append(f"{c.previous} → ").append(c.genre, style="bold")
            if i < len(changes) - 1:
                text.append("\n")
        return text
