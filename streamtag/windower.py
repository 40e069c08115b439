"""Cutting the model-rate stream into overlapping windows (length from the model, hop from settings)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ringbuffer import RingBuffer

MIN_HOP_SECONDS = 0.1
"""Smallest hop ``--hop`` accepts."""


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

    A stream that ends before its first full window is zero-padded to one window by
    :meth:`finish` (documented behaviour for clips shorter than the model's window).
    """

    def __init__(self, rate: int, window: int, hop: int, max_push: int):
        if hop <= 0 or window <= 0:
            raise ValueError("window and hop must be positive")
        self.rate, self.window, self.hop = rate, window, hop
        self._ring = RingBuffer(window + max(hop, max_push))
        self._count = 0
        self._finished = False

    @property
    def pushed(self) -> int:
        """Model-rate samples received so far."""
        return self._ring.written

    def push(self, x: np.ndarray) -> None:
        """Append samples; call :meth:`pull_into` until it returns None before pushing more than ``max_push``."""
        if self._ring.write(x) < len(x):
            raise OverflowError("windower overflow: pull windows before pushing more")

    def pull_into(self, out: np.ndarray) -> Window | None:
        """Copy the next full window into ``out`` (length ``window``) and return where it is, or None."""
        if self._ring.readable() < self.window:
            return None
        start = self._ring.read
        self._ring.peek_into(out)
        self._ring.skip(self.hop)
        w = Window(self._count, start, start + self.window, self.rate)
        self._count += 1
        return w

    def finish(self, out: np.ndarray, tail: bool = False) -> Window | None:
        """At end of stream: the last window, or None.

        If no window was produced yet, what there is is zero-padded to one window (a stream shorter
        than the model's window). With ``tail``, a stream whose last hop-aligned window stopped short
        of its end gets one more window ending exactly at the end, so no audio goes unanalysed.
        """
        if self._finished:
            return None
        self._finished = True
        n = self._ring.readable()
        if n == 0:
            return None
        if not self._count:
            out[:] = 0.0
            self._ring.peek_into(out[:n])
            self._ring.skip(n)
            self._count += 1
            return Window(0, 0, n, self.rate)
        end = self._ring.written
        last_end = self._ring.read - self.hop + self.window
        if not tail or end <= last_end:
            return None
        self._ring.peek_at(end - self.window, out)
        self._ring.skip(n)
        w = Window(self._count, end - self.window, end, self.rate)
        self._count += 1
        return w
