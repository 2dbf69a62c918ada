"""How many rsync processes this box can bear right now.

Load per core, memory use and IO wait are sampled every few seconds. Past any threshold the
allowance drops by one at once; it rises by one only after every reading has stayed below
80 % of its threshold for several samples in a row, so it does not flap.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

CALM_FRACTION = 0.8
CALM_SAMPLES_TO_RAISE = 3


@dataclass(frozen=True)
class Thresholds:
    load_per_core: float
    memory_percent: float
    iowait_percent: float


@dataclass(frozen=True)
class Reading:
    load_per_core: float
    memory_percent: float
    iowait_percent: float


@dataclass(frozen=True)
class Decision:
    allowed: int
    reason: str          # "" when nothing changed


def read(previous_cpu_times=None) -> tuple[Reading, object]:
    """A reading now; IO wait is measured since `previous_cpu_times` (pass back the second
    value of the last call)."""
    cores = psutil.cpu_count() or 1
    times = psutil.cpu_times()
    iowait = 0.0
    if previous_cpu_times is not None:
        busy = sum(times) - sum(previous_cpu_times)
        waited = getattr(times, "iowait", 0.0) - getattr(previous_cpu_times, "iowait", 0.0)
        iowait = 100.0 * waited / busy if busy > 0 else 0.0
    reading = Reading(load_per_core=psutil.getloadavg()[0] / cores,
                      memory_percent=psutil.virtual_memory().percent,
                      iowait_percent=iowait)
    return reading, times


class Governor:
    def __init__(self, thresholds: Thresholds, ceiling: int) -> None:
        self.thresholds = thresholds
        self.ceiling = max(1, ceiling)
        self.allowed = self.ceiling
        self.calm = 0

    def decide(self, reading: Reading) -> Decision:
        over = self._over(reading)
        if over:
            self.calm = 0
            if self.allowed > 1:
                self.allowed -= 1
                return Decision(self.allowed, f"{over}: running at most {self.allowed} at once")
            return Decision(self.allowed, "")
        if self._calm(reading):
            self.calm += 1
            if self.calm >= CALM_SAMPLES_TO_RAISE and self.allowed < self.ceiling:
                self.allowed += 1
                self.calm = 0
                return Decision(self.allowed, f"load eased: running up to {self.allowed} at once")
        else:
            self.calm = 0
        return Decision(self.allowed, "")

    def _over(self, r: Reading) -> str:
        t = self.thresholds
        if r.load_per_core > t.load_per_core:
            return f"load {r.load_per_core:.1f} per core is above {t.load_per_core:g}"
        if r.memory_percent > t.memory_percent:
            return f"memory use {r.memory_percent:.0f}% is above {t.memory_percent:g}%"
        if r.iowait_percent > t.iowait_percent:
            return f"IO wait {r.iowait_percent:.0f}% is above {t.iowait_percent:g}%"
        return ""

    def _calm(self, r: Reading) -> bool:
        t = self.thresholds
        return (r.load_per_core <= CALM_FRACTION * t.load_per_core
                and r.memory_percent <= CALM_FRACTION * t.memory_percent
                and r.iowait_percent <= CALM_FRACTION * t.iowait_percent)
