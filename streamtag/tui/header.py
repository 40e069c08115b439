"""SessionHeader: one line naming the source (with its rate and channels), input trouble, model, provider and uptime."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..clock import fmt_clock
from .format import fit_source, short_provider


class SessionHeader(Widget):
    """``streamtag │ <source (rate, channels, ...)> [│ <input trouble>] │ <model> on <provider> │ up <uptime>``;
    a long source loses its details, then its head."""

    source: reactive[str] = reactive("")
    model: reactive[str] = reactive("")
    provider: reactive[str] = reactive("")
    uptime: reactive[float] = reactive(0.0)
    link: reactive[str] = reactive("")
    """Input trouble to show (``reconnecting · 2 outages``); empty while all is well."""

    def show_link(self, status: dict) -> None:
        """Set :attr:`link` from a ``streamtag.status``: shown while the input is not delivering or once it had outages."""
        state, outages = status.get("state", "connected"), int(status.get("outages", 0) or 0)
        if state in ("connected", "ended") and not outages:
            self.link = ""
        else:
            self.link = state + (f" · {outages} outage{'s' if outages != 1 else ''}" if outages else "")

    def render(self) -> Text:
        sep = (" │ ", "dim")
        trouble = Text.assemble(sep, (self.link, "bold reverse")) if self.link else Text("")
        tail = Text.assemble(trouble,
            sep, (self.model or "-", "bold"), (" on ", "dim"), (short_provider(self.provider) or "-", "bold"),
            sep, ("up ", "dim"), fmt_clock(self.uptime),
        )
        room = self.content_region.width - len("streamtag") - len(sep[0]) - tail.cell_len
        source = fit_source(self.source or "-", max(8, room))
        return Text.assemble(("streamtag", "bold"), sep, (source, "bold"), tail, no_wrap=True, overflow="ellipsis")
