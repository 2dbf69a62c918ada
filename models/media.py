"""The media library's records: where the library and its inboxes are, the quality profiles,
the movies and their files, every file taken from an inbox (the import queue and its history),
duplicate scans, and what TMDB said about a title (cached).

Import states (jobs/README.md has the story):
waiting (for the file to settle) → identifying → deciding → importing → imported,
or blocked (needs attention, every reason kept), failed (after its retries: the dead letter),
gone (the file left the inbox before it was imported).
Every step that two workers could race for is a conditional UPDATE (`Stateful.move`).
"""

from __future__ import annotations

import datetime as dt

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    TextField,
    fn,
)

from models.base import BaseModel, Stateful
from models.db import utcnow
from models.worker import WorkerProcess

LOOKUP_KEPT = dt.timedelta(days=30)

IMPORT_ACTIVE = ("waiting", "identifying", "deciding", "importing")
IMPORT_WORKING = ("identifying", "deciding", "importing")
IMPORT_FINISHED = ("imported", "blocked", "failed", "gone")
IMPORT_LABELS = {"waiting": "Waiting for the file to settle", "identifying": "Identifying",
                 "deciding": "Deciding", "importing": "Importing", "imported": "Imported",
                 "blocked": "Needs attention", "failed": "Failed", "gone": "Gone from the inbox"}
MODES = {"keep": "Link or copy, keep the inbox file", "move": "Move out of the inbox"}


class QualityProfile(BaseModel):
    """Which qualities a movie may be imported in (best last, as on the ladder), up to which
    an existing file is upgraded, and whether PROPER/REPACK replaces its own quality."""

    name = CharField(max_length=100, unique=True)
    allowed = JSONField()
    cutoff = CharField(max_length=32)
    upgrades = BooleanField(default=True)
    prefer_proper = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)

    def in_use(self) -> bool:
        return Library.select().where(Library.profile == self).exists()


class Library(BaseModel):
    """The one movie library of this box, with its import settings (a single row)."""

    root = TextField(default="")                  # "" until an admin sets it
    template = CharField(max_length=300, default="")   # "" means naming.DEFAULT_TEMPLATE
    mode = CharField(max_length=8, default="keep")     # keep | move
    stable_seconds = IntegerField(default=60)     # size and mtime unchanged this long
    recycle_days = IntegerField(default=30)
    free_margin_mb = IntegerField(default=100)
    retries = IntegerField(default=3)
    profile = ForeignKeyField(QualityProfile, null=True, on_delete="SET NULL")
    updated_at = DateTimeField(default=utcnow)

    @classmethod
    def current(cls) -> Library:
        library = cls.select().order_by(cls.id).first()
        return library if library is not None else cls.create()


class Inbox(BaseModel):
    path = TextField(unique=True)
    added_at = DateTimeField(default=utcnow)
    added_by = CharField(max_length=64, default="")
    problem = TextField(default="")       # what the last sweep could not read there


class Movie(BaseModel):
    key = CharField(max_length=320, unique=True)   # tmdb:<id>, or normalized title|year
    title = CharField(max_length=300)
    year = IntegerField(null=True)
    tmdb_id = IntegerField(null=True)
    verified = BooleanField(default=False)         # TMDB confirmed title and year
    added_at = DateTimeField(default=utcnow)

    @property
    def label(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    def best_file(self) -> MovieFile | None:
        files = list(self.files)
        return max(files, key=MovieFile.standing) if files else None


class MovieFile(BaseModel):
    movie = ForeignKeyField(Movie, backref="files", on_delete="CASCADE")
    path = TextField(unique=True)                  # inside the library root
    size = BigIntegerField()
    quality = CharField(max_length=32)
    rank = IntegerField(default=0)                 # its place on the ladder, for sorting
    revision = IntegerField(default=1)
    edition = CharField(max_length=100, default="")
    group = CharField(max_length=100, default="")
    content_hash = CharField(max_length=32, default="", index=True)
    origin = CharField(max_length=8, default="import")   # import | found (by a library scan)
    added_at = DateTimeField(default=utcnow)

    def standing(self) -> tuple[int, int, int]:
        """How good a file of its movie is: quality, then PROPER/REPACK, then size."""
        return (self.rank, self.revision, self.size)

    @classmethod
    def with_content(cls, digest: str) -> MovieFile | None:
        return cls.get_or_none(cls.content_hash == digest) if digest else None


class ImportItem(Stateful, BaseModel):
    """One file found in an inbox, and what became of it."""

    inbox = ForeignKeyField(Inbox, null=True, on_delete="SET NULL")
    path = TextField(index=True)                   # absolute, in the inbox
    name = TextField()                             # inside the inbox, for lists
    state = CharField(max_length=16, default="waiting", index=True)
    reasons = JSONField(default=list)              # why it is blocked, all of them
    overridable = BooleanField(default=False)      # blocked by policy only: "import anyway"
    message = TextField(default="")                # the last step's word, or the error
    size = BigIntegerField(default=0)
    mtime_ns = BigIntegerField(default=0)
    created_at = DateTimeField(default=utcnow, index=True)
    stable_since = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    finished_at = DateTimeField(null=True)
    # From the name (or from a person, who named the movie by hand):
    title = CharField(max_length=300, default="")
    year = IntegerField(null=True)
    quality = CharField(max_length=32, default="")
    revision = IntegerField(default=1)
    edition = CharField(max_length=100, default="")
    group = CharField(max_length=100, default="")
    manual_title = CharField(max_length=300, default="")
    manual_year = IntegerField(null=True)
    force = BooleanField(default=False)            # "import anyway": policy reasons overridden
    verified = BooleanField(default=False)
    identity_note = TextField(default="")
    movie = ForeignKeyField(Movie, null=True, on_delete="SET NULL")
    # What the import did:
    action = CharField(max_length=16, default="")  # import | upgrade | link_identical
    content_hash = CharField(max_length=32, default="", index=True)
    destination = TextField(default="")           # inside the library root
    method = CharField(max_length=16, default="")  # hardlink | reflink | copy | none
    recycled = TextField(default="")              # where the file it replaced went
    attempts = IntegerField(default=0)
    not_before = DateTimeField(null=True)          # a retry waits until then
    owner = ForeignKeyField(WorkerProcess, null=True, on_delete="SET NULL")

    @property
    def subject(self) -> str:
        return f"import:{self.id}"

    @property
    def state_label(self) -> str:
        return IMPORT_LABELS.get(self.state, self.state)

    @property
    def is_active(self) -> bool:
        return self.state in IMPORT_ACTIVE

    @property
    def needs_attention(self) -> bool:
        return self.state in ("blocked", "failed")

    @property
    def wanted_title(self) -> str:
        return self.manual_title or self.title

    @property
    def wanted_year(self) -> int | None:
        return self.manual_year if self.manual_title else self.year

    def step(self, from_states: tuple[str, ...], to_state: str, **fields) -> bool:
        return self.move(from_states, to_state, updated_at=utcnow(), **fields)

    def finish(self, state: str, message: str, now: dt.datetime | None = None, **fields) -> bool:
        return self.step(IMPORT_ACTIVE, state, message=message, finished_at=now or utcnow(),
                         owner=None, **fields)

    def again(self, **fields) -> bool:
        """Back to the queue (retry, identify by hand, import anyway): from blocked or failed,
        taken at once, its retries counted afresh."""
        return self.step(("blocked", "failed"), "waiting", reasons=[], overridable=False,
                         message="", attempts=0,
                         not_before=None, finished_at=None, stable_since=dt.datetime.min,
                         **fields)

    @classmethod
    def by_path(cls) -> dict[str, ImportItem]:
        """Each path's newest item that is not gone: what a sweep compares the inboxes with."""
        return {item.path: item for item in
                cls.select().where(cls.state != "gone").order_by(cls.id)}

    @classmethod
    def queue(cls):
        return cls.select().where(cls.state.in_(IMPORT_ACTIVE)).order_by(cls.id)

    @classmethod
    def attention(cls):
        return cls.select().where(cls.state.in_(("blocked", "failed"))).order_by(cls.id.desc())

    @classmethod
    def history(cls):
        return cls.select().where(cls.state.in_(IMPORT_FINISHED)).order_by(
            cls.finished_at.desc(), cls.id.desc())

    @classmethod
    def counts(cls) -> dict[str, int]:
        return dict(cls.select(cls.state, fn.COUNT(cls.id)).group_by(cls.state).tuples())

    @classmethod
    def imported_with(cls, digest: str) -> ImportItem | None:
        if not digest:
            return None
        return cls.get_or_none((cls.content_hash == digest) & (cls.state == "imported"))

    @classmethod
    def stale(cls, alive_workers: list[int]):
        """Items a worker took and that worker is gone."""
        return cls.select().where(cls.state.in_(IMPORT_WORKING) & cls.owner.is_null(False)
                                  & cls.owner.not_in(alive_workers or [0]))


class DupeScan(Stateful, BaseModel):
    """One search of the library for byte-identical files: queued → running → done | failed."""

    state = CharField(max_length=16, default="queued", index=True)
    requested_by = CharField(max_length=64, default="")
    created_at = DateTimeField(default=utcnow)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    files = BigIntegerField(default=0)
    bytes_read = BigIntegerField(default=0)
    wasted_bytes = BigIntegerField(default=0)
    unreadable = JSONField(default=list)
    message = TextField(default="")
    owner = ForeignKeyField(WorkerProcess, null=True, on_delete="SET NULL")

    @property
    def subject(self) -> str:
        return f"dupescan:{self.id}"

    @property
    def is_active(self) -> bool:
        return self.state in ("queued", "running")

    @classmethod
    def newest(cls) -> DupeScan | None:
        return cls.select().order_by(cls.id.desc()).first()

    @classmethod
    def newest_done(cls) -> DupeScan | None:
        return cls.select().where(cls.state == "done").order_by(cls.id.desc()).first()


class DuplicateSet(BaseModel):
    scan = ForeignKeyField(DupeScan, backref="sets", on_delete="CASCADE")
    size = BigIntegerField()                       # of each file
    paths = JSONField()                            # inside the library root, sorted
    resolved_at = DateTimeField(null=True)
    resolution = TextField(default="")


class FileHash(BaseModel):
    """The duplicate scan's cache: a file's full-content hash while its device, inode, size
    and mtime stay the same."""

    dev = BigIntegerField()
    ino = BigIntegerField()
    size = BigIntegerField()
    mtime_ns = BigIntegerField()
    digest = CharField(max_length=32)

    class Meta:
        indexes = ((("dev", "ino", "size", "mtime_ns"), True),)


class MetadataLookup(BaseModel):
    query = CharField(max_length=300, unique=True)     # normalized title | year
    found = BooleanField(default=False)
    tmdb_id = IntegerField(null=True)
    title = CharField(max_length=300, default="")
    year = IntegerField(null=True)
    looked_at = DateTimeField(default=utcnow)

    @classmethod
    def fresh(cls, query: str, now: dt.datetime) -> MetadataLookup | None:
        return cls.get_or_none((cls.query == query) & (cls.looked_at > now - LOOKUP_KEPT))

    @classmethod
    def remember(cls, query: str, now: dt.datetime, **fields) -> None:
        values = {"found": False, "tmdb_id": None, "title": "", "year": None, **fields,
                  "looked_at": now}
        (cls.insert(query=query, **values)
         .on_conflict(conflict_target=[cls.query], update=values).execute())
