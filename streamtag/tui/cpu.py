"""CPU use of this process, as a percentage of one core, from ``time.process_time``."""

from __future__ import annotations

import time
from collections.abc import Callable


class CpuMeter:
    """Percentage of one core this process used since the previous :meth:`sample` (all threads)."""

    def __init__(self, cpu_clock: Callable[[], float] = time.process_time,
                 wall_clock: Callable[[], float] = time.monotonic):
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._last = (cpu_clock(), wall_clock())

    def sample(self) -> float:
        """CPU seconds per wall second since the last call, times 100 (can exceed 100 with threads)."""
        cpu, wall = self._cpu_clock(), self._wall_clock()
        last_cpu, last_wall = self._last
        self._last = (cpu, wall)
        dt = wall - last_wall
        return 0.0 if dt <= 0 else 100.0 * (cpu - last_cpu) / dt
