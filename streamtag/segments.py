"""Timeline of the smoothed genre: contiguous ``{"start", "end", "genre"}`` segments."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .errors import UsageError


class Segments:
    """Collects the smoothed genre window by window.

    Each window owns the stretch of audio that is new in it, ``(previous end, t_end]``, so the
    segments tile the stream from 0 without overlap; neighbours with the same genre merge.
    """

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, t_end: float, genre: str) -> None:
        """Record the genre of the window ending at ``t_end`` seconds."""
        t_end = round(t_end, 3)
        if self.items and self.items[-1]["genre"] == genre:
            self.items[-1]["end"] = t_end
        else:
            start = self.items[-1]["end"] if self.items else 0.0
            self.items.append({"start": start, "end": t_end, "genre": genre})

    def save(self, path: str | Path) -> Path:
        """Write as ``.json`` (a list) or ``.csv`` (``start,end,genre``); other suffixes are a UsageError."""
        p = Path(path)
        if p.suffix == ".json":
            p.write_text(json.dumps(self.items, indent=1) + "\n")
        elif p.suffix == ".csv":
            with p.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["start", "end", "genre"])
                w.writeheader()
                w.writerows(self.items)
        else:
            raise UsageError(f"{path}: segments are saved as .json or .csv")
        return p
