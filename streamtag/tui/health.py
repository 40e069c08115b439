"""HealthPanel: latency percentiles, dropped samples, windows/s, CPU %, ZMQ address and publish count (or ``zmq off``)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .format import fmt_ms


class HealthPanel(Widget):
    """Three lines of pipeline health from the latest status, plus this process's CPU %."""

    status: reactive[dict[str, Any]] = reactive(dict, always_update=True)
    cpu_percent: reactive[float | None] = reactive(None)
    address: reactive[str] = reactive("")

    def render(self) -> Text:
        s = self.status
        dropped = s.get("dropped_samples")
        wps = s.get("windows_per_s")
        cpu = self.cpu_percent
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("latency p50 ", style="dim").append(fmt_ms(s.get("latency_p50_ms")))
        text.append("  p99 ", style="dim").append(fmt_ms(s.get("latency_p99_ms"))).append("\n")
        text.append("win/s ", style="dim").append("--" if wps is None else f"{wps:.1f}")
        text.append("  dropped ", style="dim").append("--" if dropped is None else str(dropped),
                                                       style="bold red" if dropped else "")
        text.append("  cpu ", style="dim").append("--" if cpu is None else f"{cpu:.0f}%").append("\n")
        text.append("zmq ", style="dim").append(self.address or "off")
        if self.address:
            text.append("  sent ", style="dim").append(str(s.get("published", "--")))
        return text
