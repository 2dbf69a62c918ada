"""Background work: the Huey instance and its tasks, one module per area.

Importing this package registers every task with `jobs.queue.huey`.
"""

from jobs import (  # noqa: F401  (registers hooks and tasks)
    backup,
    catalog,
    drives,
    dupes,
    hosts,
    imports,
    library,
    notify,
    restores,
    retention,
    schedules,
    verify,
    worker,
)
from jobs.queue import huey

__all__ = ["huey"]
