"""The inotify watch on the inboxes (watchdog), in exactly one worker process per box: the one
holding `<data dir>/inbox-watch.lock`.

Any change in an inbox asks for a sweep soon (changes within a second or two make one sweep)
and another once the library's settle time has passed, when the file that changed may be
ready. The minute sweep (jobs/imports.py) stays as the safety net for lost events and for
network shares, which send none. Inboxes added or removed are picked up at the heartbeat.
"""

from __future__ import annotations

import logging
import os
import threading

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from jobs import imports
from jobs.queue import box_lock
from models import Inbox, Library, db

log = logging.getLogger(__name__)

COALESCE_SECONDS = 2.0


class InboxWatcher(FileSystemEventHandler):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._observer = None
        self._watches: dict[str, object] = {}
        self._pending: threading.Timer | None = None

    def start(self) -> bool:
        self._lock_fd = box_lock("inbox-watch")
        if self._lock_fd is None:
            return False   # another worker process on this box watches
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()
        self.refresh()
        # Files that arrived while nothing watched (the worker was off, or starting) sent no
        # event: one sweep now finds them, instead of the next minute's.
        self._soon()
        return True

    def stop(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
            if self._observer is not None:
                self._observer.stop()
                self._observer.join(timeout=5)
                self._observer = None
            self._watches = {}
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def refresh(self) -> None:
        """Watch the inboxes there are now (call with a database connection)."""
        if self._observer is None:
            return
        wanted = {inbox.path for inbox in Inbox.select(Inbox.path)}
        with self._lock:
            for path in set(self._watches) - wanted:
                self._observer.unschedule(self._watches.pop(path))
            for path in wanted - set(self._watches):
                try:
                    self._watches[path] = self._observer.schedule(self, path, recursive=True)
                except OSError as error:   # not there (yet): the minute sweep covers it
                    log.warning("cannot watch inbox %s: %s", path, error)

    @property
    def watching(self) -> list[str]:
        return sorted(self._watches)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return   # reading a file (the import itself) changes nothing
        self._soon()

    def _soon(self) -> None:
        """A sweep in a moment; what happens meanwhile joins it."""
        with self._lock:
            if self._pending is None:
                self._pending = threading.Timer(COALESCE_SECONDS, self._sweep)
                self._pending.daemon = True
                self._pending.start()

    def _sweep(self) -> None:
        with self._lock:
            self._pending = None
        try:
            with db.connection_context():
                settle = Library.current().stable_seconds
            imports.sweep_task()
            imports.sweep_task.schedule(delay=settle + 1)
        except Exception:
            log.exception("could not ask for an inbox sweep")


watcher = InboxWatcher()
