"""HelpScreen: what each key does, over the dashboard; any key closes it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = (
    ("q", "quit: stop capture, flush logs, publish a last status"),
    ("p", "pause / resume tagging (capture keeps running)"),
    ("v", "cycle the vote mode (ema → soft → hard); resets the vote"),
    ("m", "switch to the next installed model without restarting capture"),
    ("s", "save the segment log (streamtag-segments-<time>.json)"),
    ("o", "genre bars: sorted by probability / model order"),
    ("?", "this help"),
)


class HelpScreen(ModalScreen[None]):
    """Key reference; press any key to return."""

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("streamtag keys\n\n", style="bold")
        for key, what in HELP:
            text.append(f" {key} ", style="bold reverse").append(f"  {what}\n")
        text.append("\npress any key to close", style="dim")
        yield Static(text, id="help")

    def on_key(self, event: Key) -> None:
        event.stop()
        self.dismiss()
