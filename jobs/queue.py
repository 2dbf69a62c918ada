"""The one Huey instance, built from the settings when first imported.

The worker process gets it through `huey_consumer app.huey`; the web process imports it to
enqueue. SQLite in the data dir by default, Redis when CAIRN_REDIS_URL is set.
"""

from __future__ import annotations

import fcntl
import functools
import os
import threading
from collections.abc import Callable

from huey import Huey, RedisHuey, SqliteHuey

import config
from models.db import db, open_database
from models.migrate import migrate


def make_huey(settings: config.Settings) -> Huey:
    if settings.redis_url:
        return RedisHuey(settings.queue_name, url=settings.redis_url, utc=True)
    config.prepare_data_dir(settings)
    return SqliteHuey(settings.queue_name, filename=str(settings.queue_path), utc=True)


def with_db(fn: Callable) -> Callable:
    """Run a task inside its own database connection, closed when it returns. In a process
    that has not opened the database yet (a `cairn` command), it is opened and migrated
    first, as the web and the worker do when they start."""

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        if db.obj is None:
            _open_database()
        with db.connection_context():
            return fn(*args, **kwargs)

    return inner


def _open_database() -> None:
    with _opening:
        if db.obj is None:
            migrate(open_database(settings().database_url))


_opening = threading.Lock()


def box_lock(name: str, wait: bool = False) -> int | None:
    """Hold `<data dir>/<name>.lock`, if no other process or thread of this box does (or,
    with `wait`, once none does): the file descriptor to close when done, or None. For what
    one process per box must do alone (the udev watcher, the inbox watcher, a sweep of the
    inboxes); the kernel drops it when the process dies."""
    fd = os.open(settings().data_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class Local:
    """What this worker process knows about itself: its heartbeat row (set by jobs/worker.py)
    and how many rsync processes the resource monitor allows per run right now."""
    worker_id: int | None = None
    allowed: int | None = None


local = Local()


def settings() -> config.Settings:
    """This process's settings (config.current), looked up where they are used."""
    return config.current()


huey = make_huey(settings())
