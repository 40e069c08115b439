"""SessionHeader: one line naming the source (with its rate and channels), model, provider and uptime."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..clock import fmt_clock
from .format import fit_source, short_provider


class SessionHeader(Widget):
    """``streamtag │ <source (rate, channels, ...)> │ <model> on <provider> │ up <uptime>``; a long source loses
    its details, then its head."""

    source: reactive[str] = reactive("")
    model: reactive[str] = reactive("")
    provider: reactive[str] = reactive("")
    uptime: reactive[float] = reactive(0.0)

    def render(self) -> Text:
        sep = (" │ ", "dim")
        tail = Text.assemble(
            sep, (self.model or "-", "bold"), (" on ", "dim"), (short_provider(self.provider) or "-", "bold"),
            sep, ("up ", "dim"), fmt_clock(self.uptime),
        )
        room = self.content_region.width - len("streamtag") - len(sep[0]) - tail.cell_len
        source = fit_source(self.source or "-", max(8, room))
        return Text.assemble(("streamtag", "bold"), sep, (source, "bold"), tail, no_wrap=True, overflow="ellipsis")
