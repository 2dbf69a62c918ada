"""Readings of this box's load, for the system panel."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class SystemSample:
    at: dt.datetime
    cpu_percent: float
    cpu_count: int
    memory_used: int
    memory_total: int
    load: tuple[float, float, float]
    disk_path: str
    disk_free: int
    disk_total: int

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory_used / self.memory_total if self.memory_total else 0.0

    @property
    def disk_used_percent(self) -> float:
        used = self.disk_total - self.disk_free
        return 100.0 * used / self.disk_total if self.disk_total else 0.0

    @property
    def load_percent(self) -> float:
        """The 1-minute load average as a share of the cores."""
        return 100.0 * self.load[0] / self.cpu_count if self.cpu_count else 0.0


def sample(disk_path: Path, now: dt.datetime) -> SystemSample:
    """Read CPU, memory, load and free space now.

    CPU use is measured since the previous call in this process (psutil keeps the last reading),
    so a caller that samples every two seconds gets the use over those two seconds.
    """
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(disk_path))
    return SystemSample(
        at=now,
        cpu_percent=psutil.cpu_percent(interval=None),
        cpu_count=psutil.cpu_count() or 1,
        memory_used=memory.total - memory.available,
        memory_total=memory.total,
        load=os.getloadavg(),
        disk_path=str(disk_path),
        disk_free=disk.free,
        disk_total=disk.total,
    )
