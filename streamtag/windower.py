"""Cutting the model-rate stream into overlapping windows (length from the model, hop from settings)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ringbuffer import RingBuffer


@dataclass(frozen=True)
class Window:
    """Where one window sits in the stream (model-rate sample indices and seconds)."""

    index: int
    """0-based window number in this stream."""
    start: int
    """First sample (model rate)."""
    end: int
    """One past the last real sample (less than ``start + window`` only for a zero-padded short stream)."""
    rate: int
    """Model sample rate."""

    @property
    def t_start(self) -> float:
        """Start in stream seconds."""
        return self.start / self.rate

    @property
    def t_end(self) -> float:
        """End in stream seconds."""
        return self.end / self.rate


class Windower:
    """Accumulates model-rate samples and hands out every full window, ``hop`` apart.

    A hop longer than the window skips the samples between windows (they are never stored).
    At the end of the stream :meth:`finish` makes sure the last sample is analysed: a stream
    that ends before its first full window is zero-padded to one window (documented behaviour
    for clips shorter than the model's window); otherwise, when samples after the last window
    remain, one more window is cut that ends exactly at the end of the stream.
    """

    def __init__(self, rate: int, window: int, hop: int, max_push: int):
        if hop <= 0 or window <= 0 or max_push <= 0:
            raise ValueError("window, hop and max_push must be positive")
        self.rate, self.window, self.hop = rate, window, hop
        self._ring = RingBuffer(window + max_push)
        self._count = 0
        self._skip = 0  # samples still to skip before the next window starts (hop > window)
        self._last_end = 0  # stream index one past the last window's last sample
        self._finished = False

    @property
    def pushed(self) -> int:
        """Model-rate samples received so far."""
        return self._ring.written

    def push(self, x: np.ndarray) -> None:
        """Append samples; call :meth:`pull_into` until it returns None before pushing more than ``max_push``."""
        if self._ring.write(x) < len(x):
            raise OverflowError("windower overflow: pull windows before pushing more")
        self._skip_pending()

    def _skip_pending(self) -> None:
        n = min(self._skip, self._ring.readable())
        if n:
            self._ring.skip(n)
            self._skip -= n

    def missing(self) -> int:
        """Samples still to push before the next window is complete (0 when :meth:`pull_into` has one)."""
        return max(0, self._skip + self.window - self._ring.readable())

    def pull_into(self, out: np.ndarray, tail: np.ndarray | None = None) -> Window | None:
        """Copy the next full window into ``out`` (length ``window``) and return where it is, or None.

        ``tail``: the samples that will be pushed next, known early (a resampler's preview); a window
        they complete is cut now, from the samples held and the first :meth:`missing` of ``tail``.
        """
        held, need = self._ring.readable(), self.missing()
        if need and (self._skip or tail is None or len(tail) < need):
            return None
        start = self._ring.read
        self._ring.peek_into(out[:min(held, self.window)])
        if need:
            out[held:] = tail[:need]
        self._skip = self.hop
        self._skip_pending()
        self._last_end = start + self.window
        return self._cut(start, start + self.window)

    def _cut(self, start: int, end: int) -> Window:
        w = Window(self._count, start, end, self.rate)
        self._count += 1
        return w

    def finish(self, out: np.ndarray) -> Window | None:
        """At end of stream: the window that covers the samples no window has covered yet, or None.

        Before any full window: what there is, zero-padded to one window. After: the last
        ``window`` samples of the stream, if the stream runs past the last window's end.
        """
        if self._finished:
            return None
        self._finished = True
        end = self.pushed
        if end == self._last_end:
            return None
        if self._count == 0:
            out[:] = 0.0
            self._ring.peek_into(out[:end])
            return self._cut(0, end)
        self._ring.peek_recent_into(out)
        return self._cut(end - self.window, end)
