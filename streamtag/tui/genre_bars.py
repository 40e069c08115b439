"""GenreBars: one bar per genre probability, in model order or sorted by probability."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .bars import bar
from .format import fmt_percent


class GenreBars(Widget):
    """Probability bars for every label; ``▶`` marks the smoothed genre, letters mark each genre.

    Bars are spread one blank line apart when the panel is tall enough.
    """

    probs: reactive[dict[str, float]] = reactive(dict, always_update=True)
    current: reactive[str] = reactive("")
    sort_by_probability: reactive[bool] = reactive(True)

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.labels: list[str] = []
        self.letters: dict[str, str] = {}
        self.colours: dict[str, str] = {}

    def set_labels(self, labels: list[str], letters: dict[str, str], colours: dict[str, str]) -> None:
        """The model's labels (fixed order), their letter marks and colours."""
        self.labels, self.letters, self.colours = list(labels), letters, colours
        self.refresh(layout=True)

    def order(self) -> list[str]:
        """Labels in display order."""
        if not self.sort_by_probability:
            return list(self.labels)
        return sorted(self.labels, key=lambda label: -self.probs.get(label, 0.0))

    def render(self) -> Text:
        width = self.content_region.width
        name_w = min(12, max((len(label) for label in self.labels), default=1))
        bar_w = max(1, width - name_w - 12)
        gap = "\n\n" if self.content_region.height >= 2 * len(self.labels) - 1 else "\n"
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, label in enumerate(self.order()):
            p = self.probs.get(label)
            pointer = "▶" if label == self.current else " "
            text.append(f"{pointer}{self.letters.get(label, ' ')} ", style="bold" if pointer != " " else "")
            text.append(f"{label[:name_w]:<{name_w}} ", style="bold" if pointer != " " else "")
            text.append(bar(p or 0.0, bar_w), style=self.colours.get(label, ""))
            text.append(fmt_percent(p))
            if i < len(self.labels) - 1:
                text.append(gap)
        return text
