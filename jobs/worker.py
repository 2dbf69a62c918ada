"""The worker process's life: connect, migrate, keep a heartbeat, announce coming and going.

The first thread also starts the drive watcher (jobs/drives.py), the inbox watcher
(jobs/inbox_watch.py) and the file server that streams downloads from snapshots to the web
(jobs/fileserver.py). Each beat also picks up work of workers that died (jobs/backup.py and
jobs/imports.py `resume`), watches inboxes added since, and lets the
resource monitor lower or raise how many rsync processes a run may use.

Huey calls startup and shutdown hooks once per worker *thread*; the heartbeat belongs to the
process, so the first thread to start brings it up and the last one to stop takes it down.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading

from huey import crontab

from jobs import backup, catalog, drives, fileserver, imports, inbox_watch, notify
from jobs.engines import resources
from jobs.queue import huey, local, settings, with_db
from models import Alert, Delivery, Event, WorkerProcess, db, open_database, utcnow
from models.migrate import migrate
from models.setting import live
from models.worker import HEARTBEAT_INTERVAL

log = logging.getLogger(__name__)

WORKER_ROWS_KEPT = dt.timedelta(days=7)


class Heartbeat:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = 0
        self._thread: threading.Thread | None = None
        self._process: WorkerProcess | None = None

    def worker_thread_started(self) -> None:
        with self._lock:
            self._threads += 1
            if self._process is None:
                self._start()
                return
            with db.connection_context():
                self._process.threads = self._threads
                self._process.save(only=[WorkerProcess.threads])

    def worker_thread_stopped(self) -> None:
        with self._lock:
            self._threads -= 1
            if self._threads == 0 and self._process is not None:
                self._stop()

    def _start(self) -> None:
        migrate(open_database(settings().database_url))
        host = socket.gethostname()
        with db.connection_context():
            self._process = WorkerProcess.register(host, os.getpid(), self._threads,
                                                   settings().queue_name)
            local.worker_id = self._process.id
            backup.resume(startup=True)
            catalog.index_missing()   # snapshots made before manifests existed
        # After resume(): a drive plugged in while no worker ran resumes its runs now.
        drives.watcher.start()
        with db.connection_context():
            inbox_watch.watcher.start()
        fileserver.start(settings().data_dir)
        with db.connection_context():
            # Only now: "started" means its watchers and file server are up too.
            Event.publish("worker.online", "system", f"Worker started on {host}.",
                          worker=self._process.id)
        with db.connection_context():
            self._governor = resources.Governor(_thresholds(), ceiling=settings().workers)
        self._cpu_times = None
        self._stopping.clear()
        self._thread = threading.Thread(target=self._beat, name="cairn-heartbeat", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        drives.watcher.stop()
        inbox_watch.watcher.stop()
        fileserver.stop()
        self._stopping.set()
        self._thread.join(timeout=HEARTBEAT_INTERVAL.total_seconds() * 2)
        with db.connection_context():
            self._process.stop()
            Event.publish("worker.offline", "system",
                          f"Worker on {self._process.hostname} stopped.", worker=self._process.id)
        self._process = None
        local.worker_id = None

    def _beat(self) -> None:
        while not self._stopping.wait(HEARTBEAT_INTERVAL.total_seconds()):
            try:
                with db.connection_context():
                    self._process.beat()
                    backup.resume()
                    imports.resume(WorkerProcess.alive_ids(local.worker_id))
                    inbox_watch.watcher.refresh()
                    notify.route()
                    self._watch_resources()
            except Exception:
                # A locked or unreachable database must not kill the heartbeat for good;
                # the UI shows the worker as down until a beat gets through.
                log.exception("worker heartbeat failed")

    def _watch_resources(self) -> None:
        self._governor.thresholds = _thresholds()   # changed on the Settings page: now
        reading, self._cpu_times = resources.read(self._cpu_times)
        decision = self._governor.decide(reading)
        if decision.reason:
            backup.set_allowed(decision.allowed, decision.reason)


def _thresholds() -> resources.Thresholds:
    now = live(settings())
    return resources.Thresholds(now.throttle_load, now.throttle_memory, now.throttle_iowait)


heartbeat = Heartbeat()
huey.on_startup("cairn-heartbeat")(heartbeat.worker_thread_started)
huey.on_shutdown("cairn-heartbeat")(heartbeat.worker_thread_stopped)


def prune(now: dt.datetime, retention_days: int) -> tuple[int, int, int]:
    """Delete events past retention, with the notifications sent (or expired) and alerts
    acknowledged as long ago, and rows of workers gone for a week."""
    before = now - dt.timedelta(days=retention_days)
    events = Event.prune(before)
    notices = Delivery.prune(before) + Alert.prune(before)
    workers = WorkerProcess.prune(now - WORKER_ROWS_KEPT)
    return events, notices, workers


@huey.task()
@with_db
def prune_history() -> tuple[int, int, int]:
    return prune(utcnow(), live(settings()).event_retention_days)


@huey.periodic_task(crontab(minute="23", hour="3"))
def prune_nightly() -> None:
    # Enqueues the regular task: huey keeps no results of periodic tasks, and the regular one
    # can also be run on demand and awaited.
    prune_history()
