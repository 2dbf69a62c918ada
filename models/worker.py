"""Worker heartbeats: each huey_consumer process keeps one row fresh while it runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from peewee import CharField, DateTimeField, IntegerField

from models.base import BaseModel
from models.db import utcnow

HEARTBEAT_INTERVAL = dt.timedelta(seconds=5)
# Three missed beats: a worker stalled or killed without a word shows as down within 15 s.
STALE_AFTER = 3 * HEARTBEAT_INTERVAL


@dataclass(frozen=True)
class WorkerStatus:
    alive: list[WorkerProcess]
    last_seen: dt.datetime | None

    @property
    def is_alive(self) -> bool:
        return bool(self.alive)

    @property
    def threads(self) -> int:
        return sum(w.threads for w in self.alive)

    @property
    def oldest_start(self) -> dt.datetime | None:
        return min((w.started_at for w in self.alive), default=None)


class WorkerProcess(BaseModel):
    hostname = CharField(max_length=255)
    pid = IntegerField()
    threads = IntegerField()
    queue = CharField(max_length=64)
    started_at = DateTimeField(default=utcnow)
    seen_at = DateTimeField(default=utcnow, index=True)
    stopped_at = DateTimeField(null=True)

    @property
    def label(self) -> str:
        return f"{self.hostname} (pid {self.pid})"

    @classmethod
    def register(cls, hostname: str, pid: int, threads: int, queue: str,
                 now: dt.datetime | None = None) -> WorkerProcess:
        now = now or utcnow()
        return cls.create(hostname=hostname, pid=pid, threads=threads, queue=queue,
                          started_at=now, seen_at=now)

    def beat(self, now: dt.datetime | None = None) -> None:
        self.seen_at = now or utcnow()
        self.save(only=[WorkerProcess.seen_at])

    def stop(self, now: dt.datetime | None = None) -> None:
        self.stopped_at = now or utcnow()
        self.save(only=[WorkerProcess.stopped_at])

    @classmethod
    def status(cls, now: dt.datetime | None = None) -> WorkerStatus:
        now = now or utcnow()
        alive = list(cls.select().where(cls.stopped_at.is_null()
                                        & (cls.seen_at > now - STALE_AFTER)).order_by(cls.id))
        newest = cls.select().order_by(cls.seen_at.desc()).first()
        return WorkerStatus(alive=alive, last_seen=newest.seen_at if newest else None)

    @classmethod
    def alive_ids(cls, me: int | None = None) -> list[int]:
        """The ids of the workers alive, this one (`me`) counted even before its first beat."""
        alive = [w.id for w in cls.status().alive]
        return alive + [me] if me and me not in alive else alive

    @classmethod
    def prune(cls, before: dt.datetime) -> int:
        return cls.delete().where(cls.seen_at < before).execute()
