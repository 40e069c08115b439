"""ChangeList: the first genre and the last changes of the smoothed genre with their stream times, newest first."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from ..clock import fmt_stream_time
from .history import GenreHistory


class ChangeList(Widget):
    """``m:ss.s  previous → genre`` lines (the first genre: ``m:ss.s  genre``), as many as fit.

    Times are where each genre starts, as in the segment log and the console's change lines.
    """

    def __init__(self, history: GenreHistory, *, id: str | None = None):
        super().__init__(id=id)
        self.history = history

    def render(self) -> Text:
        rows = max(1, self.content_region.height)
        changes = self.history.recent(rows)
        if not changes:
            return Text("waiting for the first window", style="dim")
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, c in enumerate(changes):
            text.append(f"{fmt_stream_time(c.t):>6} ", style="dim")
            if c.previous is not None:
                text.append(f"{c.previous} → ")
            text.append(c.genre, style="bold")
            if i < len(changes) - 1:
                text.append("\n")
        return text
