"""Timeline: a strip of the smoothed genre over the last minutes, change marks and a time axis."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from .history import GenreHistory, axis, buckets, change_columns, span_for, window


MAX_STRIP_ROWS = 4
"""The strip grows with the panel up to this many rows; below it go marks, axis and a legend."""


class Timeline(Widget):
    """Strip rows (genre letter on its colour per column), a row of ``▲`` change marks, an ``m:ss`` axis,
    and, when there is room, a legend of the genres on the strip."""

    def __init__(self, history: GenreHistory, max_span: float, *, id: str | None = None):
        super().__init__(id=id)
        self.history = history
        self.max_span = max_span
        self.letters: dict[str, str] = {}
        self.colours: dict[str, str] = {}

    def set_labels(self, letters: dict[str, str], colours: dict[str, str]) -> None:
        """Marks and colours of the current model's labels."""
        self.letters, self.colours = letters, colours
        self.refresh()

    def span(self) -> float:
        """Seconds the strip currently covers."""
        return span_for(self.history.now, self.max_span)

    def render(self) -> Text:
        width, height = self.content_region.width, self.content_region.height
        strip_rows = max(1, min(MAX_STRIP_ROWS, (height - 2) // 2))
        t0, t1 = window(self.history.now, self.span())
        cols = buckets(self.history, t0, t1, width)
        marks = change_columns(self.history, t0, t1, width)
        strip = Text(no_wrap=True)
        for genre in cols:
            if genre is None:
                strip.append("·", style="dim")
            else:
                strip.append(self.letters.get(genre, "?"), style=f"#000000 on {self.colours.get(genre, 'grey50')}")
        text = Text(no_wrap=True)
        for _ in range(strip_rows):
            text.append_text(strip)
            text.append("\n")
        text.append("".join("▲" if i in marks else " " for i in range(width)) + "\n", style="bold")
        text.append(axis(t0, t1, width), style="dim")
        if height - strip_rows - 2 >= 2:
            text.append("\n\n")
            text.append_text(self.legend(dict.fromkeys(g for g in cols if g is not None)))
        return text

    def legend(self, genres) -> Text:
        """``[C] classical  [M] metal`` for the genres on the strip, oldest first."""
        text = Text()
        for genre in genres:
            text.append(f" {self.letters.get(genre, '?')} ", style=f"bold #000000 on {self.colours.get(genre, 'grey50')}")
            text.append(f" {genre}  ")
        return text
