"""Backup profiles, their runs and the units a run is split into, with their state changes.

Run states: queued → scanning → running → finalizing → succeeded | partial | failed |
cancelled | interrupted (see jobs/README.md). Unit states: pending (planned) → queued (handed
to Huey) → running → done | failed (dead-lettered after its retries) | cancelled. Every step
that two workers could race for is a conditional UPDATE whose row count says who won.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from pathlib import Path
from typing import NamedTuple

from peewee import (
    SQL,
    BigIntegerField,
    BlobField,
    BooleanField,
    Case,
    CharField,
    DateTimeField,
    Expression,
    FloatField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    SqliteDatabase,
    TextField,
    fn,
)
from playhouse.sqlite_ext import RowIDField

from models.base import BaseModel, Stateful, locked
from models.db import db, utcnow
from models.event import PROGRESS_KINDS, Event
from models.worker import WorkerProcess

ACTIVE_STATES = ("queued", "scanning", "running", "finalizing")
FINISHED_STATES = ("succeeded", "partial", "failed", "cancelled", "interrupted")
STATE_LABELS = {
    "queued": "Queued", "scanning": "Scanning", "running": "Running",
    "finalizing": "Finishing", "succeeded": "Succeeded", "partial": "Partly done",
    "failed": "Failed", "cancelled": "Cancelled", "interrupted": "Interrupted",
}


class LogLine(NamedTuple):
    at: dt.datetime
    level: str
    text: str


class AlreadyRunning(Exception):
    def __init__(self, run: Run) -> None:
        super().__init__(f"Profile {run.profile.name!r} is already running (run {run.id}).")
        self.run = run


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

    def active_run(self) -> Run | None:
        return (Run.select().where((Run.profile == self) & Run.state.in_(ACTIVE_STATES))
                .order_by(Run.id.desc()).first())

    def last_run(self) -> Run | None:
        return Run.select().where(Run.profile == self).order_by(Run.id.desc()).first()

    def last_good_run(self) -> Run | None:
        """The newest run that left a complete snapshot (or brought the mirror up to date)."""
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


class Run(Stateful, BaseModel):
    profile = ForeignKeyField(Profile, backref="runs", on_delete="CASCADE")
    state = CharField(max_length=16, default="queued", index=True)
    dry_run = BooleanField(default=False)
    trigger = CharField(max_length=16, default="manual")
    requested_by = CharField(max_length=64, default="")
    owner = ForeignKeyField(WorkerProcess, null=True, on_delete="SET NULL")
    snapshot = CharField(max_length=32, default="")     # timestamp name on the destination
    link_from = CharField(max_length=32, default="")    # previous complete snapshot
    created_at = DateTimeField(default=utcnow, index=True)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    total_files = BigIntegerField(default=0)
    total_bytes = BigIntegerField(default=0)
    files_done = BigIntegerField(default=0)
    bytes_done = BigIntegerField(default=0)
    progress = FloatField(default=0.0)
    rate = FloatField(default=0.0)
    byte_rate = FloatField(default=0.0)
    eta_seconds = FloatField(null=True)
    progress_at = DateTimeField(null=True)
    new_files = BigIntegerField(default=0)
    changed_files = BigIntegerField(default=0)
    sent_bytes = BigIntegerField(default=0)
    written_bytes = BigIntegerField(default=0)   # by the parts' current attempts (for speed)
    concurrency = IntegerField(default=1)
    cancel_requested = BooleanField(default=False)
    fail_reason = TextField(default="")       # set when a run is stopped because it cannot go on
    interrupt_reason = TextField(default="")  # ...or because its drive went away: it waits for it
    pruned_at = DateTimeField(null=True)      # its snapshot was deleted by the retention policy
    warning_count = IntegerField(default=0)
    error_count = IntegerField(default=0)
    message = TextField(default="")
    options = JSONField(default=dict)          # filesystem, acls, xattrs, mirror
    stats = JSONField(default=dict)
    speed = JSONField(null=True)               # bytes/s over time, see engines.progress

    class Meta:
        indexes = (
            # each profile's newest (good) run, and history filtered by profile
            (("profile", "state", "dry_run"), False),
            # history totals read this index instead of the wide rows
            (("state", "dry_run", "profile", "created_at", "files_done", "bytes_done", "sent_bytes",
              "warning_count", "error_count"), False),
            # history sorted by these reads the newest rows of an index, not the whole table
            (("files_done",), False), (("sent_bytes",), False), (("error_count",), False),
        )

    @classmethod
    def listed_fields(cls) -> list:
        """Every column but the large JSON ones (options, stats, speed): what lists show."""
        return [f for f in cls._meta.sorted_fields if f.name not in ("options", "stats", "speed")]

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    @property
    def duration(self) -> dt.timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or utcnow()) - self.started_at

    @property
    def subject(self) -> str:
        return f"run:{self.id}"

    @classmethod
    def request(cls, profile: Profile, *, dry_run: bool = False, trigger: str = "manual",
                requested_by: str = "") -> Run:
        """A new queued run, unless the profile already has an active one."""
        with db.atomic():
            locked(Profile.select().where(Profile.id == profile.id)).get()
            current = profile.active_run()
            if current is not None:
                raise AlreadyRunning(current)
            return cls.create(profile=profile, dry_run=dry_run, trigger=trigger,
                              requested_by=requested_by)

    @classmethod
    def active(cls):
        return cls.select().where(cls.state.in_(ACTIVE_STATES)).order_by(cls.id)

    @classmethod
    def matching(cls, *, profile_id: int | None = None, states: tuple[str, ...] = (),
                 dry_run: bool | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, text: str = ""):
        """The condition for runs that match a history filter; `text` is looked for in the
        profile's name, the run's message and who asked for it, ignoring case."""
        condition = SQL("TRUE")   # not `id > 0`: that makes SQLite read rows instead of indexes
        if profile_id is not None:
            condition &= cls.profile == profile_id
        if states:
            condition &= cls.state.in_(states)
        if dry_run is not None:
            condition &= cls.dry_run == dry_run
        if since is not None:
            condition &= cls.created_at >= since
        if until is not None:
            condition &= cls.created_at < until
        if text:
            named = Profile.select(Profile.id).where(Profile.name.contains(text))
            condition &= (cls.profile.in_(named) | cls.message.contains(text)
                          | cls.requested_by.contains(text))
        return condition

    @classmethod
    def totals(cls, condition) -> dict[str, int]:
        """Count and sums of the runs matching `condition`, in one query."""
        # A dry run copies nothing: what it would have copied is no data copied.
        copied = Case(None, [(cls.dry_run == True, 0)], cls.sent_bytes)  # noqa: E712 (SQL)
        row = (cls.select(fn.COUNT(cls.id), fn.SUM(cls.files_done), fn.SUM(cls.bytes_done),
                          fn.SUM(copied), fn.SUM(cls.warning_count),
                          fn.SUM(cls.error_count))
               .where(condition).tuples().get())
        keys = ("runs", "files", "bytes", "sent_bytes", "warnings", "errors")
        return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}

    @classmethod
    def good(cls, table=None):
        """Runs that left a complete copy: succeeded, not a dry run (of `table`, an alias of
        Run, when given)."""
        table = table or cls
        return (table.state == "succeeded") & (table.dry_run == False)  # noqa: E712 (SQL)

    def finish(self, state: str, message: str, now: dt.datetime | None = None) -> bool:
        if state not in FINISHED_STATES:
            raise ValueError(f"{state!r} is not a final state")
        return self.move(ACTIVE_STATES, state, message=message, finished_at=now or utcnow(),
                         eta_seconds=None, owner=None)

    def request_cancel(self) -> bool:
        changed = (Run.update(cancel_requested=True)
                   .where((Run.id == self.id) & Run.state.in_(ACTIVE_STATES)).execute())
        self.cancel_requested = self.cancel_requested or bool(changed)
        return bool(changed)

    def cancel_wanted(self) -> bool:
        return bool(Run.select(Run.cancel_requested).where(Run.id == self.id).scalar())

    def units_query(self):
        return Unit.select().where(Unit.run == self).order_by(Unit.seq)

    def unit_totals(self) -> dict[str, int]:
        row = (Unit.select(fn.SUM(Unit.files_done), fn.SUM(Unit.bytes_done),
                           fn.SUM(Unit.new_files), fn.SUM(Unit.changed_files),
                           fn.SUM(Unit.sent_bytes), fn.SUM(Unit.warning_count),
                           fn.SUM(Unit.error_count), fn.SUM(Unit.written_bytes))
               .where(Unit.run == self).tuples().get())
        keys = ("files", "bytes", "new_files", "changed_files", "sent_bytes", "warnings", "errors",
                "written")
        return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}

    def unit_states(self) -> dict[str, int]:
        rows = (Unit.select(Unit.state, fn.COUNT(Unit.id)).where(Unit.run == self)
                .group_by(Unit.state).tuples())
        return dict(rows)

    def add_message(self, level: str, text: str, unit: Unit | None = None) -> None:
        RunMessage.create(run=self, unit=unit, level=level, text=text[:4000])

    def messages(self, level: str, limit: int = 1000) -> list[str]:
        return [m.text for m in RunMessage.select(RunMessage.text)
                .where((RunMessage.run == self) & (RunMessage.level == level))
                .order_by(RunMessage.id).limit(limit)]

    def log_tail(self, limit: int = 40) -> list[LogLine]:
        """The newest `limit` lines of the run's story, oldest first: what happened (its
        events) and what went wrong (its messages), in two indexed queries."""
        events = (Event.select(Event.at, Event.level, Event.message)
                  .where((Event.subject == self.subject) & Event.kind.not_in(PROGRESS_KINDS))
                  .order_by(Event.id.desc()).limit(limit).tuples())
        messages = (RunMessage.select(RunMessage.at, RunMessage.level, RunMessage.text)
                    .where((RunMessage.run == self) & RunMessage.level.in_(LOG_LEVELS))
                    .order_by(RunMessage.id.desc()).limit(limit).tuples())
        lines = sorted((LogLine(*row) for row in [*events, *messages]), key=lambda line: line.at)
        return lines[-limit:]

    def items(self):
        """A dry run's itemized changes, in the order rsync reported them."""
        return (RunMessage.select(RunMessage.id, RunMessage.text)
                .where((RunMessage.run == self) & (RunMessage.level == "item"))
                .order_by(RunMessage.id))


class Unit(BaseModel):
    run = ForeignKeyField(Run, backref="units", on_delete="CASCADE")
    seq = IntegerField()
    source = TextField()
    label = TextField(default="")
    rules = JSONField(default=list)
    planned_files = BigIntegerField(default=0)
    planned_bytes = BigIntegerField(default=0)
    state = CharField(max_length=16, default="pending", index=True)
    outcome = CharField(max_length=16, default="")    # done | warning | partial | fatal | retry
    attempts = IntegerField(default=0)
    not_before = DateTimeField(null=True)
    worker = ForeignKeyField(WorkerProcess, null=True, on_delete="SET NULL")
    pid = IntegerField(null=True)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    files_done = BigIntegerField(default=0)
    bytes_done = BigIntegerField(default=0)
    new_files = BigIntegerField(default=0)
    changed_files = BigIntegerField(default=0)
    sent_bytes = BigIntegerField(default=0)
    written_bytes = BigIntegerField(default=0)   # data written by the latest attempt so far
    exit_code = IntegerField(null=True)
    warning_count = IntegerField(default=0)
    error_count = IntegerField(default=0)
    message = TextField(default="")
    stats = JSONField(default=dict)

    class Meta:
        indexes = ((("run", "seq"), True),)

    def claim(self, worker: WorkerProcess | None, now: dt.datetime | None = None) -> bool:
        """queued → running for this worker; False if another worker got there first."""
        now = now or utcnow()
        changed = (Unit.update(state="running", worker=worker, attempts=Unit.attempts + 1,
                               started_at=now, pid=None, written_bytes=0)
                   .where((Unit.id == self.id) & (Unit.state == "queued")).execute())
        if changed:
            self.state, self.worker, self.attempts, self.started_at = "running", worker, \
                self.attempts + 1, now
            self.written_bytes = 0
        return bool(changed)

    def save_progress(self, files: int, size: int, new: int, changed: int, sent: int,
                      written: int = 0) -> None:
        # Held at their highest: a restarted attempt counts again from zero. What the
        # attempt has written is its own (a part's speed is that of its latest attempt).
        self.files_done, self.bytes_done = max(self.files_done, files), max(self.bytes_done, size)
        self.new_files, self.changed_files = max(self.new_files, new), max(self.changed_files, changed)
        self.sent_bytes = max(self.sent_bytes, sent)
        self.written_bytes = written
        self.save(only=[Unit.files_done, Unit.bytes_done, Unit.new_files, Unit.changed_files,
                        Unit.sent_bytes, Unit.written_bytes])

    def release(self, to_state: str, **fields) -> bool:
        """running → `to_state`, only while this unit is still running."""
        changed = (Unit.update(state=to_state, pid=None, **fields)
                   .where((Unit.id == self.id) & (Unit.state == "running")).execute())
        if changed:
            self.state = to_state
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(changed)

    @classmethod
    def hand_out(cls, run: Run, limit: int, now: dt.datetime) -> list[Unit]:
        """Mark up to `limit` ready pending units queued and return them, biggest first."""
        ready = list(cls.select().where((cls.run == run) & (cls.state == "pending")
                                        & (cls.not_before.is_null() | (cls.not_before <= now)))
                     .order_by(cls.seq).limit(max(0, limit)))
        taken = []
        for unit in ready:
            if cls.update(state="queued").where((cls.id == unit.id)
                                                & (cls.state == "pending")).execute():
                unit.state = "queued"
                taken.append(unit)
        return taken

    @classmethod
    def busy(cls, run: Run) -> int:
        return cls.select().where((cls.run == run)
                                  & cls.state.in_(("queued", "running"))).count()

    @classmethod
    def orphaned(cls, alive_workers: list[int]):
        """Running units whose worker is gone: it was killed, or its box went down."""
        query = cls.select().where(cls.state == "running")
        if alive_workers:
            query = query.where(cls.worker.is_null() | cls.worker.not_in(alive_workers))
        return query


LOG_LEVELS = ("info", "warning", "error")
SCAN_GIVEN_UP_AFTER = dt.timedelta(hours=1)


class RunMessage(BaseModel):
    """A run's error and warning lines, and a dry run's itemized changes (level `item`)."""
    run = ForeignKeyField(Run, backref="run_messages", on_delete="CASCADE")
    unit = ForeignKeyField(Unit, null=True, on_delete="CASCADE")
    at = DateTimeField(default=utcnow)
    level = CharField(max_length=16)
    text = TextField()

    class Meta:
        indexes = ((("run", "level"), False),)

    @classmethod
    def problems(cls, level: str = "", profile_id: int | None = None, text: str = "",
                 before: int | None = None):
        """Ids of warning and error lines, of one level, profile, or holding `text` (ignoring
        case), below id `before` if given: a query, newest first, to be limited.

        On SQLite, text of three characters or more is looked up in the trigram index
        (`RunMessageText`), which then drives the query in id order, so a rare word and a
        common one both cost a few index reads. PostgreSQL's trigram index serves ILIKE."""
        condition = cls.level == level if level else cls.level.in_(("warning", "error"))
        if profile_id is not None:
            condition &= cls.run.in_(Run.select(Run.id).where(Run.profile == profile_id))
        if text and len(text) >= TRIGRAM and isinstance(db.obj, SqliteDatabase):
            index = RunMessageText
            condition &= Expression(index.text, "MATCH", '"' + text.replace('"', '""') + '"')
            if before is not None:
                condition &= index.rowid < before
            return (index.select(index.rowid).join(cls, on=(cls.id == index.rowid))
                    .where(condition).order_by(index.rowid.desc()))
        if text:
            condition &= cls.text.contains(text)
        if before is not None:
            condition &= cls.id < before
        return cls.select(cls.id).where(condition).order_by(cls.id.desc())

    @classmethod
    def count_up_to(cls, ids, cap: int) -> int:
        """How many of the `ids` (a query) there are, counting no further than `cap`."""
        return cls.select(fn.COUNT(SQL("*"))).from_(ids.limit(cap).alias("capped")).scalar()


TRIGRAM = 3


class RunMessageText(BaseModel):
    """SQLite only: the trigram full-text index of RunMessage.text, an FTS5 table that
    migration 0007 creates and triggers keep current (not in ALL_MODELS: no schema diff)."""
    rowid = RowIDField()
    text = TextField()

    class Meta:
        table_name = "run_message_text"


class Scan(Stateful, BaseModel):
    """One walk of a source folder: its totals, and per folder rows in ScanDir."""
    root = TextField(index=True)
    excludes = JSONField(default=list)
    one_file_system = BooleanField(default=False)
    run = ForeignKeyField(Run, null=True, backref="scans", on_delete="SET NULL")
    state = CharField(max_length=16, default="running")   # queued | running | done | failed
    started_at = DateTimeField(default=utcnow)
    finished_at = DateTimeField(null=True)
    files = BigIntegerField(default=0)
    bytes = BigIntegerField(default=0)
    dirs = BigIntegerField(default=0)
    error_count = IntegerField(default=0)
    # Whether some entry has extended attributes or an ACL; None when not looked for.
    xattrs = BooleanField(null=True)
    message = TextField(default="")   # why a scan failed

    def finish(self, files: int, size: int, dirs: int, error_count: int,
               xattrs: bool | None = None) -> None:
        """The walk is done: its totals are final and its rows may be read."""
        (Scan.update(state="done", finished_at=utcnow(), files=files, bytes=size, dirs=dirs,
                     error_count=error_count, xattrs=xattrs)
         .where(Scan.id == self.id).execute())

    def fail(self, message: str) -> None:
        Scan.update(state="failed", finished_at=utcnow(), message=message) \
            .where(Scan.id == self.id).execute()

    @classmethod
    def last_failure(cls, root: str) -> Scan | None:
        """The newest failed scan of exactly `root`, to say why it has no figures."""
        return (cls.select().where((cls.root == root) & (cls.state == "failed"))
                .order_by(cls.id.desc()).first())

    @classmethod
    def in_progress(cls, root: str, now: dt.datetime | None = None) -> Scan | None:
        """A picker's scan of `root` queued or running, unless so old its worker must have
        died (a later request then queues a new one)."""
        since = (now or utcnow()) - SCAN_GIVEN_UP_AFTER
        return (cls.select().where((cls.root == root) & cls.run.is_null()
                                   & cls.state.in_(("queued", "running"))
                                   & (cls.started_at > since))
                .order_by(cls.id.desc()).first())

    @classmethod
    def covering(cls, path: str) -> Scan | None:
        """The newest finished scan that holds `path` whole: of it or of a folder above, and
        of everything in it (no excludes, crossing filesystems)."""
        ancestors = [str(p) for p in (Path(path), *Path(path).parents)]
        for record in (cls.select().where(cls.root.in_(ancestors) & (cls.state == "done"))
                       .order_by(cls.id.desc()).limit(20)):
            if not record.excludes and not record.one_file_system:
                return record
        return None

    def relative(self, path: str) -> str:
        """`path` (inside this scan's root) as the scan's rows name it."""
        return "" if path == self.root else str(Path(path).relative_to(self.root))

    def children(self, path: str) -> list[ScanDir]:
        return list(self.children_query(path))

    def children_query(self, path: str):
        """The folders directly inside `path` (relative), by name as people sort names."""
        return (ScanDir.select().where((ScanDir.scan == self)
                                       & (ScanDir.parent_key == path_key(path)))
                .order_by(ScanDir.sort_key, ScanDir.path))

    def folder(self, path: str) -> ScanDir | None:
        return ScanDir.get_or_none((ScanDir.scan == self) & (ScanDir.key == path_key(path)))

    @classmethod
    def replaced_by(cls, scan: Scan) -> int:
        """Delete older scans of the same folder, but not those an active run still plans
        from (a scan cut short by a dead worker belongs to its run, which is rescanning)."""
        busy = Run.select(Run.id).where(Run.state.in_(ACTIVE_STATES))
        if scan.run_id is not None:
            busy = busy.where(Run.id != scan.run_id)
        old = [s.id for s in cls.select(cls.id).where(
            (cls.root == scan.root) & (cls.id < scan.id)
            & (cls.run.is_null() | cls.run.not_in(busy)))]
        if not old:
            return 0
        ScanDir.delete().where(ScanDir.scan.in_(old)).execute()
        ScanLink.delete().where(ScanLink.scan.in_(old)).execute()
        return cls.delete().where(cls.id.in_(old)).execute()


class ScanDir(BaseModel):
    scan = ForeignKeyField(Scan, backref="dirs_rows", on_delete="CASCADE")
    path = TextField()          # relative to the scan's root, "" for the root
    # Indexed by a hash of the path: PostgreSQL cannot index text as long as a path may be.
    key = CharField(max_length=32)
    parent_key = CharField(max_length=32, null=True)
    depth = IntegerField()
    files = BigIntegerField()
    bytes = BigIntegerField()
    own_files = BigIntegerField()
    own_bytes = BigIntegerField()
    dirs = BigIntegerField()
    subdirs = IntegerField()
    # Its name as people sort it (photo 2 before photo 10): jobs/engines/humane.natural_key.
    sort_key = BlobField(null=True)

    class Meta:
        indexes = ((("scan", "key"), True), (("scan", "parent_key"), False))


class ScanLink(BaseModel):
    """A file with several links, so hardlinks split across units can be restored."""
    scan = ForeignKeyField(Scan, on_delete="CASCADE")
    dev = BigIntegerField()
    ino = BigIntegerField()
    path = BlobField()          # relative to the scan's root, raw bytes (names need not be UTF-8)

    class Meta:
        indexes = ((("scan", "dev", "ino"), False),)


PREVIEW_REUSED_FOR = dt.timedelta(minutes=1)
PREVIEW_KEPT_FOR = dt.timedelta(days=1)


class ExcludePreview(Stateful, BaseModel):
    """What exclude patterns would leave out of a profile's folders, counted by the worker
    before the profile is saved (the web process cannot read users' folders)."""
    sources = JSONField(default=list)
    excludes = JSONField(default=list)
    one_file_system = BooleanField(default=False)
    state = CharField(max_length=16, default="queued")   # queued | running | done | failed
    created_at = DateTimeField(default=utcnow, index=True)
    finished_at = DateTimeField(null=True)
    files = BigIntegerField(default=0)                     # all files in the folders
    bytes = BigIntegerField(default=0)
    by_pattern = JSONField(default=list)                   # [files, bytes] per pattern
    message = TextField(default="")                        # why counting failed

    @classmethod
    def request(cls, sources: list[str], excludes: list[str], one_file_system: bool,
                now: dt.datetime | None = None) -> tuple[ExcludePreview, bool]:
        """The preview of this selection: one being counted or just counted, or a new one
        (True) for the worker to count. Previews older than a day are deleted."""
        now = now or utcnow()
        cls.delete().where(cls.created_at < now - PREVIEW_KEPT_FOR).execute()
        for recent in cls.select().where(cls.created_at >= now - PREVIEW_REUSED_FOR,
                                         cls.state != "failed").order_by(cls.id.desc()):
            if (recent.sources, recent.excludes, recent.one_file_system) == \
                    (sources, excludes, one_file_system):
                return recent, False
        return cls.create(sources=sources, excludes=excludes, one_file_system=one_file_system,
                          created_at=now), True

    @property
    def excluded_files(self) -> int:
        return sum(files for files, _ in self.by_pattern)

    @property
    def excluded_bytes(self) -> int:
        return sum(size for _, size in self.by_pattern)

    @property
    def patterns(self) -> list[tuple[str, int, int]]:
        """(pattern, files, bytes) for each pattern, in order."""
        counts = self.by_pattern or [[0, 0]] * len(self.excludes)
        return [(p, files, size) for p, (files, size) in zip(self.excludes, counts, strict=True)]
