"""Single-producer/single-consumer ring buffer of mono float32 samples.

The producer (an audio callback or a reader thread) and the consumer (the pipeline worker)
share no lock: each owns one monotonically growing counter (``written`` / ``read``), and a
counter is only advanced after the samples it covers are in place. Storage and the write-time
log are allocated once; nothing is allocated per write beyond numpy views.

Neither side polls. The consumer says how many samples it waits for (:meth:`RingBuffer.wake_at`):
the write that reaches that count calls ``on_data`` once (the worker's wake-up), so an audio
callback signals once per window, not once per block. A producer waiting for room
(:meth:`RingBuffer.write_all`) sleeps on an event the consumer sets when it frees some.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

_LOG_SIZE = 8192
"""Writes remembered for :meth:`RingBuffer.write_time` (at 20-ms blocks: ~160 s)."""

_NEVER = 1 << 62
"""A wake-up count no stream reaches."""


def _nothing() -> None:
    pass


class RingBuffer:
    """Fixed-capacity SPSC sample FIFO that counts what it had to drop."""

    def __init__(self, capacity: int, on_data: Callable[[], None] = _nothing):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self.written = 0
        """Samples ever stored (producer-owned counter)."""
        self.read = 0
        """Samples ever consumed (consumer-owned counter)."""
        self.dropped = 0
        """Samples the producer offered but found no room for."""
        self._log_end = np.zeros(_LOG_SIZE, dtype=np.int64)
        self._log_time = np.zeros(_LOG_SIZE, dtype=np.float64)
        self._log_n = 0
        self._on_data = on_data
        self._wake_at = 0  # the first write wakes the consumer
        self._room = threading.Event()

    def wake_at(self, count: int) -> bool:
        """Call ``on_data`` (once) when ``written`` reaches ``count``; True if it already has (then no call).

        Consumer side: set the count, then wait for the wake-up only when this returns False.
        """
        self._wake_at = count
        if self.written >= count:
            self._wake_at = _NEVER
            return True
        return False

    def wake_writer(self) -> None:
        """End a :meth:`write_all` wait early (the producer then checks its ``stop``)."""
        self._room.set()

    def readable(self) -> int:
        """Samples waiting for the consumer."""
        return self.written - self.read

    def free(self) -> int:
        """Room left for the producer."""
        return self.capacity - (self.written - self.read)

    def write(self, x: np.ndarray) -> int:
        """Store as much of 1-D ``x`` as fits; the rest counts as dropped. Returns samples stored."""
        n = min(len(x), self.free())
        if n < len(x):
            self.dropped += len(x) - n
        if n:
            start = self.written % self.capacity
            first = min(n, self.capacity - start)
            self._buf[start:start + first] = x[:first]
            if n > first:
                self._buf[:n - first] = x[first:n]
            self._commit(n)
        return n

    def write_mixed(self, frames: np.ndarray) -> int:
        """Average the channels of ``(frames, channels)`` straight into the buffer (no temporary array).

        Meant for audio callbacks; what does not fit counts as dropped.
        """
        n = min(len(frames), self.free())
        if n < len(frames):
            self.dropped += len(frames) - n
        if n:
            start = self.written % self.capacity
            first = min(n, self.capacity - start)
            np.mean(frames[:first], axis=1, out=self._buf[start:start + first])
            if n > first:
                np.mean(frames[first:n], axis=1, out=self._buf[:n - first])
            self._commit(n)
        return n

    def write_all(self, x: np.ndarray, stop: Callable[[], bool], timeout: float = 0.5) -> bool:
        """Store all of ``x``, waiting for room (back-pressure for file/pipe sources).

        The wait ends when the consumer frees room or :meth:`wake_writer` is called (``timeout`` bounds it);
        returns False if ``stop()`` said to stop first.
        """
        done = 0
        while done < len(x):
            self._room.clear()  # before looking: room freed after this line sets it again
            if self.free():
                done += self.write(x[done:done + self.free()])
            elif stop():
                return False
            else:
                self._room.wait(timeout)
        return True

    def _commit(self, n: int) -> None:
        k = self._log_n % _LOG_SIZE
        self._log_end[k] = self.written + n
        self._log_time[k] = time.monotonic()
        self._log_n += 1
        self.written += n
        if self.written >= self._wake_at:
            self._wake_at = _NEVER
            self._on_data()

    def peek_into(self, out: np.ndarray) -> None:
        """Copy the oldest ``len(out)`` unread samples into ``out`` without consuming them (one copy)."""
        n = len(out)
        if n > self.readable():
            raise ValueError("not enough samples")
        start = self.read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start:start + first]
        if n > first:
            out[first:] = self._buf[:n - first]

    def peek_recent_into(self, out: np.ndarray) -> None:
        """Copy the newest ``len(out)`` samples ever written into ``out``, read or not (one copy).

        They are intact as long as ``len(out) <= capacity``: a write only overwrites older samples.
        """
        n = len(out)
        if n > min(self.written, self.capacity):
            raise ValueError("not enough samples")
        start = (self.written - n) % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start:start + first]
        if n > first:
            out[first:] = self._buf[:n - first]

    def skip(self, n: int) -> None:
        """Consume ``n`` samples without copying them."""
        if n > self.readable():
            raise ValueError("not enough samples")
        self.read += n
        self._room.set()

    def read_into(self, out: np.ndarray) -> int:
        """Consume up to ``len(out)`` samples into ``out``; returns how many."""
        n = min(len(out), self.readable())
        self.peek_into(out[:n])
        self.read += n
        if n:
            self._room.set()
        return n

    def write_time(self, sample_index: int) -> float | None:
        """``time.monotonic()`` of the write that stored sample ``sample_index`` (None if forgotten)."""
        n = self._log_n
        lo = max(0, n - _LOG_SIZE)
        if n == 0:
            return None
        idx = np.arange(lo, n) % _LOG_SIZE
        ends = self._log_end[idx]
        pos = int(np.searchsorted(ends, sample_index, side="right"))
        if pos >= len(idx):
            return None
        if pos == 0 and lo > 0:
            return None
        return float(self._log_time[idx[pos]])
