"""Single-producer/single-consumer ring buffer of mono float32 samples.

The producer (an audio callback or a reader thread) and the consumer (the pipeline worker)
share no lock: each owns one monotonically growing counter (``written`` / ``read``), and a
counter is only advanced after the samples it covers are in place. Storage and the write-time
log are allocated once; nothing is allocated per write beyond numpy views.
"""

from __future__ import annotations

import time

import numpy as np

_LOG_SIZE = 8192
"""Writes remembered for :meth:`RingBuffer.write_time` (at 20-ms blocks: ~160 s)."""


class RingBuffer:
    """Fixed-capacity SPSC sample FIFO that counts what it had to drop."""

    def __init__(self, capacity: int):
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

    def write_all(self, x: np.ndarray, stop, poll: float = 0.005) -> bool:
        """Store all of ``x``, waiting for room (back-pressure for file/pipe sources).

        ``stop()`` is polled while waiting; returns False if it said to stop first.
        """
        done = 0
        while done < len(x):
            done += self.write(x[done:done + self.free()]) if self.free() else 0
            if done < len(x):
                if stop():
                    return False
                time.sleep(poll)
        return True

    def _commit(self, n: int) -> None:
        k = self._log_n % _LOG_SIZE
        self._log_end[k] = self.written + n
        self._log_time[k] = time.monotonic()
        self._log_n += 1
        self.written += n

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

    def peek_at(self, index: int, out: np.ndarray) -> None:
        """Copy samples ``index .. index + len(out)`` (stream positions, read or not) into ``out``.

        They must still be stored: written, and not yet overwritten (within the last ``capacity``).
        """
        n = len(out)
        if index < self.written - self.capacity or index < 0 or index + n > self.written:
            raise ValueError("samples no longer (or not yet) in the buffer")
        start = index % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start:start + first]
        if n > first:
            out[first:] = self._buf[:n - first]

    def skip(self, n: int) -> None:
        """Consume ``n`` samples without copying them."""
        if n > self.readable():
            raise ValueError("not enough samples")
        self.read += n

    def read_into(self, out: np.ndarray) -> int:
        """Consume up to ``len(out)`` samples into ``out``; returns how many."""
        n = min(len(out), self.readable())
        self.peek_into(out[:n])
        self.read += n
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
