"""Scans of source folders (their totals, per folder rows, multi-link files) and the
exclude previews counted before a profile is saved."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from peewee import (
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    TextField,
)

from models.backup.profile import ACTIVE_STATES, path_key
from models.backup.run import Run
from models.base import BaseModel, Stateful
from models.db import utcnow

SCAN_GIVEN_UP_AFTER = dt.timedelta(hours=1)


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
