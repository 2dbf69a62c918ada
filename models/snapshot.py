"""Complete snapshots, with what their manifest counted; verifications of them; restores
from them.

A Snapshot row is made when a run finishes a snapshot (and, for snapshots older than
manifests, by migration 0013). Its manifest file lives in the data dir (see
jobs/engines/manifest.py); the row holds the totals the lists show, and the verification state.
Verification states: queued → running → intact | damaged | failed | cancelled. Restore
states: queued → running → succeeded | partial | failed | cancelled.
"""

from __future__ import annotations

import datetime as dt

from peewee import (
    JOIN,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    JSONField,
    TextField,
    fn,
)

from models.backup import Profile, Run
from models.base import BaseModel, Stateful
from models.db import utcnow
from models.host import Host
from models.worker import WorkerProcess

VERIFY_ACTIVE = ("queued", "running")
VERIFY_FINISHED = ("intact", "damaged", "failed", "cancelled")
VERIFY_LABELS = {"queued": "Queued", "running": "Checking", "intact": "Intact",
                 "damaged": "Damaged", "failed": "Could not check", "cancelled": "Cancelled"}
RESTORE_ACTIVE = ("queued", "running")
RESTORE_FINISHED = ("succeeded", "partial", "failed", "cancelled")
RESTORE_LABELS = {"queued": "Queued", "running": "Restoring", "succeeded": "Restored",
                  "partial": "Partly restored", "failed": "Failed", "cancelled": "Cancelled"}
# A preview restores nothing, and never says so.
PREVIEW_LABELS = {"queued": "Queued", "running": "Looking", "succeeded": "Preview ready",
                  "partial": "Preview, in part", "failed": "Preview failed",
                  "cancelled": "Cancelled"}


class Snapshot(BaseModel):
    profile = ForeignKeyField(Profile, backref="snapshots", on_delete="CASCADE")
    name = CharField(max_length=32)                   # its folder's name: when it was taken
    run = ForeignKeyField(Run, null=True, on_delete="SET NULL")
    taken_at = DateTimeField()
    indexed_at = DateTimeField(null=True)             # its manifest was written then
    index_error = TextField(default="")
    files = BigIntegerField(default=0)
    dirs = BigIntegerField(default=0)
    bytes = BigIntegerField(default=0)                # logical: every file's full size
    new_files = BigIntegerField(default=0)            # not hardlinks of the previous snapshot
    new_bytes = BigIntegerField(default=0)
    verify_state = CharField(max_length=16, default="")   # the newest finished verification's
    verified_at = DateTimeField(null=True)
    pruned_at = DateTimeField(null=True)              # retention deleted it

    class Meta:
        indexes = ((("profile", "name"), True),)

    @property
    def subject(self) -> str:
        return f"snapshot:{self.id}"

    @property
    def from_partial_run(self) -> bool:
        """Made by a run that ended partly done: complete as a tree, but some files of the
        sources could not be copied into it (the run names them)."""
        return self.run_id is not None and self.run is not None and self.run.state == "partial"

    @classmethod
    def record(cls, profile: Profile, name: str, taken_at: dt.datetime,
               run: Run | None = None) -> Snapshot:
        snapshot, _ = cls.get_or_create(profile=profile, name=name,
                                        defaults={"taken_at": taken_at, "run": run})
        return snapshot

    @classmethod
    def kept(cls, profile: Profile):
        """The profile's snapshots that are still there, newest first, with their runs."""
        return (cls.select(cls, Run).join(Run, JOIN.LEFT_OUTER, on=(cls.run == Run.id))
                .where((cls.profile == profile) & cls.pruned_at.is_null())
                .order_by(cls.name.desc()))

    @classmethod
    def named(cls, profile: Profile, name: str) -> Snapshot | None:
        return cls.get_or_none((cls.profile == profile) & (cls.name == name)
                               & cls.pruned_at.is_null())

    @classmethod
    def unindexed(cls):
        return cls.select().where(cls.indexed_at.is_null() & cls.pruned_at.is_null()
                                  & (cls.index_error == ""))

    @property
    def verify_label(self) -> str:
        return VERIFY_LABELS.get(self.verify_state, "Not verified")


class SnapshotJob(Stateful):
    """What verifications and restores share: a subject for the live feed, states, and a
    cancel flag the worker looks at."""

    ACTIVE: tuple[str, ...] = ("queued", "running")
    LABELS: dict[str, str] = {}
    SUBJECT = ""

    @property
    def subject(self) -> str:
        return f"{self.SUBJECT}:{self.id}"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE

    @property
    def state_label(self) -> str:
        return self.LABELS.get(self.state, self.state)

    def request_cancel(self) -> bool:
        model = type(self)
        return bool(model.update(cancel_requested=True).where(
            (model.id == self.id) & model.state.in_(self.ACTIVE)).execute())

    def cancel_wanted(self) -> bool:
        model = type(self)
        return bool(model.select(model.cancel_requested).where(model.id == self.id).scalar())

    def end(self, state: str, message: str) -> bool:
        return self.move(self.ACTIVE, state, message=message, finished_at=utcnow(), owner=None)


class Verification(SnapshotJob, BaseModel):
    """One re-read of a snapshot against its manifest, or a test restore of a sample."""

    ACTIVE, LABELS, SUBJECT = VERIFY_ACTIVE, VERIFY_LABELS, "verification"

    profile = ForeignKeyField(Profile, on_delete="CASCADE")
    snapshot = ForeignKeyField(Snapshot, backref="verifications", on_delete="CASCADE")
    kind = CharField(max_length=16, default="verify")     # verify | test_restore
    sample_percent = FloatField(null=True)                # None: every file
    state = CharField(max_length=16, default="queued", index=True)
    trigger = CharField(max_length=16, default="manual")  # manual | schedule | cli
    requested_by = CharField(max_length=64, default="")
    owner = ForeignKeyField(WorkerProcess, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow, index=True)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    total_files = BigIntegerField(default=0)
    chosen_files = BigIntegerField(default=0)
    checked_files = BigIntegerField(default=0)
    checked_bytes = BigIntegerField(default=0)
    chosen_bytes = BigIntegerField(default=0)             # the sizes of the chosen files
    missing = BigIntegerField(default=0)
    changed = BigIntegerField(default=0)
    unreadable = BigIntegerField(default=0)
    problems = JSONField(default=list)                    # the first damaged files, named
    # For the first damaged files, where a good copy is: {"path", "snapshot" (its name, or
    # "" when no other snapshot holds that content on a copy of its own)}.
    copies = JSONField(default=list)
    cancel_requested = BooleanField(default=False)
    message = TextField(default="")

    @property
    def what(self) -> str:
        sample = "every file" if self.sample_percent is None else f"{self.sample_percent:g}% sample"
        return ("Test restore" if self.kind == "test_restore" else "Verification") + f" ({sample})"

    @property
    def progress(self) -> float:
        """By the data read (inside large files too); by files when the files are empty."""
        if self.state in ("intact", "damaged"):
            return 1.0
        if self.chosen_bytes:
            return min(self.checked_bytes / self.chosen_bytes, 0.999)
        return min(self.checked_files / self.chosen_files, 0.999) if self.chosen_files else 0.0

    def reading_rate(self, now: dt.datetime) -> float | None:
        """Bytes read per second so far, while it runs."""
        if self.state != "running" or not self.started_at:
            return None
        seconds = (now - self.started_at).total_seconds()
        return self.checked_bytes / seconds if seconds > 0 else None

    def eta_seconds(self, now: dt.datetime) -> float | None:
        """The data left over the rate so far, once both mean something (10 s, 1 %)."""
        rate = self.reading_rate(now)
        if not rate or (now - self.started_at).total_seconds() < 10 or self.progress < 0.01:
            return None
        return max(self.chosen_bytes - self.checked_bytes, 0) / rate

    def finish(self, state: str, message: str) -> bool:
        if not self.end(state, message):
            return False
        if state in ("intact", "damaged"):
            Snapshot.update(verify_state=state, verified_at=self.finished_at).where(
                Snapshot.id == self.snapshot_id).execute()
        return True

    @classmethod
    def newest_bad(cls) -> dict[int, Verification]:
        """Per profile, its newest finished verification, if that found damage or could not
        run: the dashboard shows those profiles red until a later one finds them intact.
        Two queries however long the history (the dashboard asks on every run event)."""
        newest = (cls.select(fn.MAX(cls.id)).where(cls.state.in_(("intact", "damaged", "failed")))
                  .group_by(cls.profile))
        return {check.profile_id: check for check in
                cls.select().where(cls.id.in_(newest) & (cls.state != "intact"))}

    @classmethod
    def newest_per_snapshot(cls, profile: Profile) -> dict[int, Verification]:
        newest = (cls.select(fn.MAX(cls.id)).where(cls.profile == profile)
                  .group_by(cls.snapshot))
        return {check.snapshot_id: check for check in cls.select().where(cls.id.in_(newest))}

    @classmethod
    def last_failed(cls) -> set[int]:
        return set(cls.newest_bad())


class Restore(SnapshotJob, BaseModel):
    """Files and folders of a snapshot copied back, to where they were or elsewhere; a dry
    run only lists what would be created and what would be overwritten."""

    ACTIVE, LABELS, SUBJECT = RESTORE_ACTIVE, RESTORE_LABELS, "restore"

    @property
    def state_label(self) -> str:
        return (PREVIEW_LABELS if self.dry_run else RESTORE_LABELS).get(self.state, self.state)

    profile = ForeignKeyField(Profile, on_delete="CASCADE")
    snapshot = ForeignKeyField(Snapshot, backref="restores", on_delete="CASCADE")
    paths = JSONField()                       # inside the snapshot: localhost/home/ada/x
    target = TextField()                      # a folder; on `host` when set
    host = ForeignKeyField(Host, null=True, on_delete="SET NULL")
    overwrite = BooleanField(default=False)   # replace files that exist at the target
    dry_run = BooleanField(default=False)
    fresh = BooleanField(default=False)       # into a new folder named `target` + a suffix
    state = CharField(max_length=16, default="queued", index=True)
    requested_by = CharField(max_length=64, default="")
    owner = ForeignKeyField(WorkerProcess, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow, index=True)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    total_files = BigIntegerField(default=0)
    total_bytes = BigIntegerField(default=0)
    files_done = BigIntegerField(default=0)
    bytes_done = BigIntegerField(default=0)
    created = BigIntegerField(default=0)      # files that did not exist at the target
    overwritten = BigIntegerField(default=0)  # files that did, and were (or would be) replaced
    kept = BigIntegerField(default=0)         # files that did, and were left as they are
    items = JSONField(default=list)           # a dry run's first lines: [action, path]
    errors = JSONField(default=list)
    cancel_requested = BooleanField(default=False)
    message = TextField(default="")

    @property
    def progress(self) -> float:
        if self.state in RESTORE_FINISHED and self.state != "cancelled":
            return 1.0
        return min(1.0, self.bytes_done / self.total_bytes) if self.total_bytes else 0.0

    def finish(self, state: str, message: str) -> bool:
        return self.end(state, message)
