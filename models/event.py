"""The event bus: jobs append rows, the web's broadcaster tails them by id."""

from __future__ import annotations

import datetime as dt

from peewee import BigAutoField, CharField, DateTimeField, JSONField, TextField, fn

from models.base import BaseModel
from models.db import utcnow

LEVELS = ("info", "warning", "error")
# Live figures of a running job: pushed to whoever watches it, kept out of the activity list,
# and deleted when the job ends.
PROGRESS_KINDS = ("run.progress", "run.scanning", "scan.progress", "preview.progress",
                  "verification.progress", "restore.progress", "dupes.progress")
# An import's steps on its way (identifying, deciding...): kept for its own timeline, left out
# of the activity list, which shows only how it ended.
STEP_KINDS = ("import.waiting", "import.identifying", "import.deciding", "import.importing")
QUIET_KINDS = PROGRESS_KINDS + STEP_KINDS
# A job's events (queued, started, finished...) are one line of the activity list, its newest.
FOLDED_SUBJECTS = ("run:", "restore:", "verification:", "import:", "dupescan:")
# How far back the activity list looks to fill its lines after folding.
FOLD_WINDOW = 8


class Event(BaseModel):
    id = BigAutoField()
    at = DateTimeField(default=utcnow, index=True)
    kind = CharField(max_length=64)
    subject = CharField(max_length=128, index=True)
    level = CharField(max_length=16, default="info")
    message = TextField()
    payload = JSONField(default=dict)

    @classmethod
    def publish(cls, kind: str, subject: str, message: str, *, level: str = "info",
                now: dt.datetime | None = None, **payload) -> Event:
        if level not in LEVELS:
            raise ValueError(f"unknown event level {level!r}")
        return cls.create(kind=kind, subject=subject, message=message, level=level,
                          at=now or utcnow(), payload=payload)

    @classmethod
    def after(cls, last_id: int, limit: int = 500) -> list[Event]:
        return list(cls.select().where(cls.id > last_id).order_by(cls.id).limit(limit))

    @classmethod
    def last_id(cls) -> int:
        return cls.select(fn.MAX(cls.id)).scalar() or 0

    @property
    def is_progress(self) -> bool:
        return self.kind in PROGRESS_KINDS

    @property
    def is_quiet(self) -> bool:
        return self.kind in QUIET_KINDS

    @property
    def folds(self) -> bool:
        return self.subject.startswith(FOLDED_SUBJECTS)

    @property
    def line_id(self) -> str:
        """The activity line this event is shown on: its job's line, or its own."""
        return "activity-" + (self.subject.replace(":", "-") if self.folds else str(self.id))

    @classmethod
    def recent(cls, limit: int = 20) -> list[Event]:
        """The newest events worth showing, newest first, a job's events folded into its
        newest one (a run queued, started and finished is one line: "finished")."""
        shown: list[Event] = []
        jobs: set[str] = set()
        query = (cls.select().where(cls.kind.not_in(QUIET_KINDS)).order_by(cls.id.desc())
                 .limit(limit * FOLD_WINDOW))
        for event in query:
            if event.folds:
                if event.subject in jobs:
                    continue
                jobs.add(event.subject)
            shown.append(event)
            if len(shown) == limit:
                break
        return shown

    @classmethod
    def problems(cls, limit: int = 5) -> list[Event]:
        """The newest warnings and errors."""
        return list(cls.select().where(cls.level.in_(("warning", "error")))
                    .order_by(cls.id.desc()).limit(limit))

    @classmethod
    def drop_progress(cls, subject: str) -> int:
        return cls.delete().where((cls.subject == subject)
                                  & cls.kind.in_(PROGRESS_KINDS)).execute()

    @classmethod
    def prune(cls, before: dt.datetime) -> int:
        return cls.delete().where(cls.at < before).execute()
