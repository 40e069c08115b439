"""Progress of ``streamtag tag`` on stderr: a redrawn bar on a terminal, plain periodic lines otherwise.

Shown: a bar of the bytes read (in-flight files by their decoded share), files done of the total,
hours of audio tagged, speed as a multiple of real time (audio seconds decoded per wall-clock second,
cached files left out) and an ETA from the bytes still to read at the speed so far. A summary line
closes the run.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from .clock import fmt_clock

REDRAW_SECONDS = 0.2
"""Shortest interval between two redraws of the terminal bar."""


class Progress:
    """Counts finished files and in-flight audio; :meth:`tick` draws when it is time."""

    def __init__(self, total_files: int, total_bytes: int, *, out: TextIO | None = None,
                 bar: bool | None = None, interval: float = 10.0, enabled: bool = True):
        """``bar`` None = a bar when ``out`` is a terminal; ``interval`` = seconds between plain lines."""
        self.out = out or sys.stderr
        self.bar = self.out.isatty() if bar is None else bar
        self.enabled, self.interval = enabled, interval
        self.total_files, self.total_bytes = total_files, max(total_bytes, 1)
        self.t0 = time.monotonic()
        self._last = self.t0 if not self.bar else 0.0
        self.done = self.cached = self.failed = 0
        self.audio_s = 0.0
        """Seconds of audio decoded and classified in this run (finished files)."""
        self.cached_s = 0.0
        """Seconds of audio served from the cache."""
        self.done_bytes = 0
        self._fresh_bytes = 0
        self._live_s = self._live_bytes = 0.0
        self._drawn = False

    def file_done(self, size: int, seconds: float, *, cached: bool = False, failed: bool = False) -> None:
        """One file finished (``size`` bytes, ``seconds`` of audio)."""
        self.done += 1
        self.done_bytes += size
        if failed:
            self.failed += 1
        elif cached:
            self.cached += 1
            self.cached_s += seconds
        else:
            self.audio_s += seconds
        if not cached:
            self._fresh_bytes += size

    def in_flight(self, seconds: float, bytes_equiv: float) -> None:
        """Audio decoded so far in files not yet finished (and the share of their bytes it stands for)."""
        self._live_s, self._live_bytes = seconds, bytes_equiv

    def line(self) -> str:
        """The progress text (without decoration)."""
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        audio = self.audio_s + self._live_s
        speed = audio / elapsed
        fresh = self._fresh_bytes + self._live_bytes
        left = self.total_bytes - self.done_bytes - self._live_bytes
        eta = "--" if fresh <= 0 or self.done >= self.total_files else fmt_clock(left / (fresh / elapsed))
        hours = (audio + self.cached_s) / 3600
        extra = "".join(f", {n} {what}" for n, what in ((self.cached, "cached"), (self.failed, "failed")) if n)
        return (f"{self.done}/{self.total_files} files{extra} · {hours:.2f} h audio · "
                f"{speed:.0f}× real time · ETA {eta}")

    def tick(self, force: bool = False) -> None:
        """Redraw the bar (at most every :data:`REDRAW_SECONDS`) or print a line every ``interval`` seconds."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.bar:
            if force or now - self._last >= REDRAW_SECONDS:
                self._last = now
                width = shutil.get_terminal_size((100, 24)).columns
                text = self.line()
                cells = max(10, min(30, width - len(text) - 4))
                share = (self.done_bytes + self._live_bytes) / self.total_bytes
                share = 1.0 if self.done >= self.total_files else share
                filled = int(cells * min(1.0, share))
                self.out.write(f"\r\x1b[K[{'█' * filled}{'░' * (cells - filled)}] {text}"[:width + 8])
                self.out.flush()
                self._drawn = True
        elif force or now - self._last >= self.interval:
            self._last = now
            self.out.write(f"streamtag: {self.line()}\n")
            self.out.flush()

    def clear_line(self) -> None:
        """Wipe the bar before other output shares the terminal (it is redrawn on the next tick)."""
        if self.enabled and self.bar and self._drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._drawn = False
            self._last = 0.0

    def close(self) -> None:
        """Finish the bar and print the summary line."""
        if not self.enabled:
            return
        if self.bar:
            self.tick(force=True)
            self.out.write("\n")
        elapsed = time.monotonic() - self.t0
        tagged = self.done - self.cached - self.failed
        speed = f": {self.audio_s / max(elapsed, 1e-6):.0f}× real time" if self.audio_s else ""
        self.out.write(f"streamtag: {self.done} file{'' if self.done == 1 else 's'} ({tagged} tagged, "
                       f"{self.cached} from the cache, "
                       f"{self.failed} failed), {(self.audio_s + self.cached_s) / 3600:.2f} h of audio in "
                       f"{elapsed:.1f} s{speed}\n")
        self.out.flush()
