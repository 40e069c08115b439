"""LevelMeter: input RMS and peak in dBFS with bars, plus clipping and silence indicators in words."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget

from .bars import bar, level_fraction
from .format import fmt_dbfs
from .messages import Level

CLIP_HOLD_S = 2.0
"""``CLIPPING`` stays up this long after the last clipped reading, so a short clip is seen."""


class LevelMeter(Widget):
    """RMS and peak meters over -60..0 dBFS; ``CLIPPING`` (held) / ``SILENT`` shown as text, not colour only."""

    rms_dbfs: reactive[float | None] = reactive(None)
    peak_dbfs: reactive[float | None] = reactive(None)
    clipping: reactive[bool] = reactive(False)
    """True from a clipped reading until :data:`CLIP_HOLD_S` after the last one."""
    silent: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self._release: Timer | None = None

    def show(self, level: Level) -> None:
        """Display a reading; a clip holds the indicator for :data:`CLIP_HOLD_S`."""
        self.rms_dbfs, self.peak_dbfs, self.silent = level.rms_dbfs, level.peak_dbfs, level.silent
        if level.clipping:
            self.clipping = True
            if self._release is not None:
                self._release.stop()
            self._release = self.set_timer(CLIP_HOLD_S, self._release_clip)

    def _release_clip(self) -> None:
        self.clipping, self._release = False, None

    def render(self) -> Text:
        bar_w = max(1, self.content_region.width - 17)
        text = Text(no_wrap=True, overflow="ellipsis")
        for name, value in (("rms ", self.rms_dbfs), ("peak", self.peak_dbfs)):
            fraction = level_fraction(value)
            colour = "red" if fraction > 0.95 else "yellow" if fraction > 0.8 else "green"
            text.append(f"{name} {fmt_dbfs(value)} ", style="dim" if value is None else "")
            text.append(bar(fraction, bar_w), style=colour)
            text.append("\n")
        text.append("CLIPPING" if self.clipping else "no clip", style="bold white on red" if self.clipping else "dim")
        text.append("  ")
        text.append("SILENT" if self.silent else "signal", style="bold black on yellow" if self.silent else "dim")
        return text
