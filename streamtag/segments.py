"""Timeline of the smoothed genre: contiguous ``{"start", "end", "genre"}`` segments, and their file formats.

Formats (chosen by suffix in :func:`save_segments`): ``.json`` (a list), ``.csv`` (``start,end,genre``),
``.txt`` (an Audacity label track: ``start<TAB>end<TAB>genre``) and ``.cue`` (a CUE sheet, one track per
segment, for players and splitters).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .errors import UsageError

SEGMENT_SUFFIXES = (".json", ".csv", ".txt", ".cue")
"""Suffixes :func:`save_segments` writes."""


class Segments:
    """Collects the smoothed genre window by window.

    Each window owns the stretch of audio that is new in it, ``(previous end, t_end]``, so the
    segments tile the stream from 0 without overlap; neighbours with the same genre merge.
    """

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, t_end: float, genre: str) -> float:
        """Record the genre of the window ending at ``t_end`` seconds; returns where its segment starts."""
        t_end = round(t_end, 3)
        if self.items and self.items[-1]["genre"] == genre:
            self.items[-1]["end"] = t_end
        else:
            start = self.items[-1]["end"] if self.items else 0.0
            self.items.append({"start": start, "end": t_end, "genre": genre})
        return self.items[-1]["start"]

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` in the format its suffix names (see :func:`save_segments`)."""
        return save_segments(self.items, path)


def cue_time(seconds: float) -> str:
    """CUE ``mm:ss:ff`` (75 frames per second; minutes may exceed 99)."""
    frames = int(round(seconds * 75))
    m, rest = divmod(frames, 75 * 60)
    s, f = divmod(rest, 75)
    return f"{m:02d}:{s:02d}:{f:02d}"


def _cue(items: list[dict], audio: Path) -> str:
    kind = {".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF"}.get(audio.suffix.lower(), "WAVE")
    name = str(audio).replace('"', "'")
    lines = ["REM COMMENT \"streamtag genre segments\"", f'FILE "{name}" {kind}']
    for i, seg in enumerate(items, 1):
        lines += [f"  TRACK {i:02d} AUDIO", f'    TITLE "{seg["genre"]}"', f"    INDEX 01 {cue_time(seg['start'])}"]
    return "\n".join(lines) + "\n"


def save_segments(items: list[dict], path: str | Path, audio: str | Path | None = None) -> Path:
    """Write segments as ``.json``, ``.csv``, ``.txt`` (Audacity labels) or ``.cue`` (needs ``audio``, the
    file the sheet describes); another suffix is a :class:`UsageError`."""
    p = Path(path)
    if p.suffix == ".json":
        p.write_text(json.dumps(items, indent=1) + "\n")
    elif p.suffix == ".csv":
        with p.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["start", "end", "genre"])
            w.writeheader()
            w.writerows(items)
    elif p.suffix == ".txt":
        p.write_text("".join(f"{s['start']:.6f}\t{s['end']:.6f}\t{s['genre']}\n" for s in items))
    elif p.suffix == ".cue" and audio is not None:
        p.write_text(_cue(items, Path(audio).resolve()))
    else:
        raise UsageError(f"{path}: segments are saved as {', '.join(SEGMENT_SUFFIXES[:-1])} "
                         f"(or .cue for a file)")
    return p
