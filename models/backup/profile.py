"""Backup profiles: what to copy, where to, when, and what to keep."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    FloatField,
    IntegerField,
    JSONField,
    TextField,
)

from models.base import BaseModel
from models.db import utcnow

if TYPE_CHECKING:   # for annotations only: the runs module imports this one
    from models.backup.run import Run


ACTIVE_STATES = ("queued", "scanning", "running", "finalizing")
FINISHED_STATES = ("succeeded", "partial", "failed", "cancelled", "interrupted")
STATE_LABELS = {
    "queued": "Queued", "scanning": "Scanning", "running": "Running",
    "finalizing": "Finishing", "succeeded": "Succeeded", "partial": "Partly done",
    "failed": "Failed", "cancelled": "Cancelled", "interrupted": "Interrupted",
}




def path_key(path: str) -> str:
    return hashlib.blake2b(path.encode("utf-8"), digest_size=16).hexdigest()


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64] or "profile"




class Profile(BaseModel):
    name = CharField(max_length=100, unique=True)
    slug = CharField(max_length=64, unique=True)
    sources = JSONField()                      # absolute folder paths
    excludes = JSONField(default=list)         # rsync patterns
    destination = TextField()
    mode = CharField(max_length=16, default="snapshot")
    one_file_system = BooleanField(default=False)
    max_parallel = IntegerField(default=4)
    bwlimit_kib = IntegerField(null=True)
    retries = IntegerField(default=3)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    # A cron expression read on the wall clock of `schedule_tz`; "" runs only when asked.
    schedule = CharField(max_length=200, default="")
    schedule_tz = CharField(max_length=64, default="UTC")
    # When the scheduler last looked: occurrences after it and up to now are owed a run.
    schedule_looked_at = DateTimeField(null=True)
    # Start a run whenever the destination's drive is plugged in (and mounted).
    run_on_connect = BooleanField(default=False)
    # Retention (jobs/engines/retention.py): all zeros keep every snapshot.
    keep_last = IntegerField(default=0)
    keep_daily = IntegerField(default=0)
    keep_weekly = IntegerField(default=0)
    keep_monthly = IntegerField(default=0)
    keep_yearly = IntegerField(default=0)
    keep_min_free = FloatField(null=True)      # percent: delete the oldest while less is free
    # Verification (jobs/verify.py): a cron expression in `schedule_tz`, and how much to read.
    verify_schedule = CharField(max_length=200, default="")
    verify_percent = FloatField(null=True)     # None: every file
    verify_looked_at = DateTimeField(null=True)

    @classmethod
    def by_name(cls, name: str) -> Profile | None:
        return cls.get_or_none(cls.name == name)

    @classmethod
    def free_slug(cls, name: str) -> str:
        base = slugify(name)
        slug, n = base, 2
        while cls.select().where(cls.slug == slug).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug

    def claim_look(self, field: str, now: dt.datetime) -> bool:
        """Move a scheduler's look (`schedule_looked_at`, `verify_looked_at`) to `now` if no
        other worker moved it since this row was read; True if this caller did, and so owns
        the occurrences up to `now`."""
        column = getattr(Profile, field)
        looked = getattr(self, field)
        same = column.is_null() if looked is None else column == looked
        return bool(Profile.update({column: now}).where((Profile.id == self.id) & same).execute())

    # A profile's runs are its children (Run.profile, backref "runs"): reached through that
    # relation, so this module needs no import of the runs' own (which imports this one).
    @classmethod
    def _runs(cls):
        return cls.runs.rel_model

    def active_run(self) -> Run | None:
        Run = self._runs()
        return (Run.select().where((Run.profile == self) & Run.state.in_(ACTIVE_STATES))
                .order_by(Run.id.desc()).first())

    def last_run(self) -> Run | None:
        Run = self._runs()
        return Run.select().where(Run.profile == self).order_by(Run.id.desc()).first()

    def last_good_run(self) -> Run | None:
        """The newest run that left a complete snapshot (or brought the mirror up to date)."""
        Run = self._runs()
        return (Run.select().where((Run.profile == self) & Run.good())
                .order_by(Run.id.desc()).first())

    def root(self) -> Path:
        """The profile's folder on its destination: snapshots, `latest`, or `mirror/`."""
        return Path(self.destination) / self.slug

    @classmethod
    def listing(cls) -> list[Profile]:
        """Every profile by name, each with `.last` and `.last_good` runs, in three queries.

        Each profile's newest run is one index lookup (`ORDER BY id DESC LIMIT 1` per profile,
        as a correlated subquery), however many runs the history holds."""
        profiles = list(cls.select().order_by(cls.name))
        Run = cls._runs()

        def newest(condition=None):
            inner = Run.alias()
            where = inner.profile == cls.id
            if condition:
                where &= condition(inner)
            per_profile = inner.select(inner.id).where(where).order_by(inner.id.desc()).limit(1)
            return {r.profile_id: r for r in Run.select(*Run.listed_fields()).where(
                Run.id.in_(cls.select(per_profile)))}

        last = newest()
        good = newest(Run.good)
        for profile in profiles:
            profile.last, profile.last_good = last.get(profile.id), good.get(profile.id)
        return profiles
