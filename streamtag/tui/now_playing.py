"""NowPlaying: the smoothed genre in large type, its confidence, the raw genre and the tagging state."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .format import fmt_percent


TALL = 14
"""From this many rows on, the genre block is five rows high instead of three."""


def spaced(name: str, width: int) -> str:
    """``"METAL"`` as ``"M E T A L"`` when that fits in ``width``, else plain upper case."""
    wide = " ".join(name.upper())
    return wide if len(wide) <= width else name.upper()


class NowPlaying(Widget):
    """Large smoothed genre (with its letter mark), confidence, raw genre, vote mode and state."""

    genre: reactive[str] = reactive("")
    confidence: reactive[float | None] = reactive(None)
    raw_genre: reactive[str] = reactive("")
    vote_mode: reactive[str] = reactive("")
    state: reactive[str] = reactive("waiting for audio")

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.letters: dict[str, str] = {}
        self.colours: dict[str, str] = {}

    def set_labels(self, letters: dict[str, str], colours: dict[str, str]) -> None:
        """Marks and colours of the current model's labels."""
        self.letters, self.colours = letters, colours
        self.refresh()

    def render(self) -> Text:
        width = max(1, self.content_region.width)
        colour = self.colours.get(self.genre, "grey50")
        name = spaced(self.genre, width - 2) if self.genre else "…"
        block = f" {name} ".center(width)
        mark = self.letters.get(self.genre, "")
        pad = 2 if self.content_region.height >= TALL else 1
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append((" " * width + "\n") * pad, style=f"on {colour}")
        text.append(block + "\n", style=f"bold #000000 on {colour}")
        text.append((" " * width + "\n") * pad, style=f"on {colour}")
        text.append("\n")
        text.append("confidence ", style="dim").append(fmt_percent(self.confidence).strip(), style="bold")
        text.append(f"   [{mark}]\n" if mark else "\n", style="dim")
        text.append("raw        ", style="dim").append(self.raw_genre or "-")
        text.append("\n")
        text.append("vote       ", style="dim").append(self.vote_mode or "-").append("\n")
        text.append("state      ", style="dim").append(self.state, style="bold reverse" if self.state != "tagging" else "bold")
        return text
