"""A profile's runs, the units a run is split into, and their messages, with their state
changes."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from peewee import (
    SQL,
    BigIntegerField,
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

from models.backup.profile import ACTIVE_STATES, FINISHED_STATES, STATE_LABELS, Profile
from models.base import BaseModel, Stateful, locked
from models.db import db, utcnow
from models.event import PROGRESS_KINDS, Event
from models.worker import WorkerProcess


class LogLine(NamedTuple):
    at: dt.datetime
    level: str
    text: str


class AlreadyRunning(Exception):
    def __init__(self, run: Run) -> None:
        super().__init__(f"Profile {run.profile.name!r} is already running (run {run.id}).")
        self.run = run




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
