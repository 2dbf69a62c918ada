"""Background work: the Huey instance and its tasks, one module per area.

Importing this package registers every task with `jobs.queue.huey`.
"""

from jobs import backup, drives, hosts, retention, schedules, worker  # noqa: F401  (registers hooks and tasks)
from jobs.queue import huey

__all__ = ["huey"]
