"""A snapshot's manifest: every entry's place, kind, size, times, mode, owner and content hash,
in one SQLite file per snapshot that the web process can read without touching the tree.

Written by the worker when a run finishes. Regular files that are hardlinks of the previous
snapshot's files (rsync --link-dest made them: same inode on the same filesystem) take that
manifest's hash, so only new data is read. Paths are kept as raw bytes (`parent`, `name`), so
names that are not UTF-8 survive; callers speak `str` with surrogate escapes (os.fsdecode).

The same module answers the pages' questions (a folder's entries, sorted and paged; find by
name; compare two snapshots) and re-reads files for verification.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

ALGORITHM = "xxh3-128"
FORMAT_VERSION = "1"
BUFFER_BYTES = 1024 * 1024
BATCH_ROWS = 5000
PROGRESS_SECONDS = 0.5
MAX_LISTED = 1000          # problems named one by one; beyond that only counted
SORTS = {"name": "name", "size": "size", "mtime": "mtime_ns", "kind": "kind"}

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entry (
    id INTEGER PRIMARY KEY,
    parent BLOB NOT NULL,        -- folder, relative to the snapshot; b'' at the top
    name BLOB NOT NULL,
    kind TEXT NOT NULL,          -- f file, d folder, l symlink, o other (fifo, device, socket)
    size INTEGER NOT NULL,       -- a folder's is everything below it
    files INTEGER NOT NULL,      -- 1 for a file; a folder's is the files below it
    mtime_ns INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    nlink INTEGER NOT NULL,
    hash BLOB,                   -- files only; NULL when the file could not be read
    target BLOB,                 -- symlinks only
    new INTEGER NOT NULL         -- 1 when the file's data is not in the previous snapshot
);
"""
INDEXES = "CREATE UNIQUE INDEX entry_place ON entry (parent, name);"
COLUMNS = ("parent", "name", "kind", "size", "files", "mtime_ns", "mode", "uid", "gid", "ino",
           "nlink", "hash", "target", "new")


class ManifestError(Exception):
    """A manifest that cannot be written or read, with a message for people."""


class PathRefused(ValueError):
    """A path from outside that does not name a place inside a snapshot."""


# --- paths from outside ----------------------------------------------------------------------

def clean_path(text: str) -> str:
    """A snapshot-relative path as the browser or the command line gave it, checked: no
    absolute paths, no `.` or `..` parts, no empty parts, no NUL. '' is the top.

    Decoding happens before this (Flask decodes %2e%2e to '..', which is refused here; a
    twice-encoded %252e stays a literal name that no snapshot holds)."""
    if "\x00" in text:
        raise PathRefused("A path cannot contain a NUL character.")
    if text.startswith("/"):
        raise PathRefused("Give the path inside the snapshot, not an absolute one.")
    text = text.rstrip("/")
    if not text:
        return ""
    for part in text.split("/"):
        if part in ("", ".", ".."):
            raise PathRefused(f"{text!r} is not a plain path inside the snapshot.")
    if len(os.fsencode(text)) > 4096:
        raise PathRefused("That path is too long.")
    return text


def split(path: str) -> tuple[bytes, bytes]:
    raw = os.fsencode(path)
    parent, _, name = raw.rpartition(b"/")
    return parent, name


def join(parent: bytes, name: bytes) -> bytes:
    return parent + b"/" + name if parent else name


def open_inside(root: str, path: str, flags: int = os.O_RDONLY) -> int:
    """Open `path` inside `root` one component at a time without following any symlink, so
    a link in a snapshot can never lead out of it. Returns a file descriptor."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in [p for p in os.fsencode(clean_path(path)).split(b"/") if p][:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        last = os.fsencode(path).rsplit(b"/", 1)[-1] if path else b"."
        return os.open(last, flags | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


# --- writing ---------------------------------------------------------------------------------

@dataclass
class Summary:
    files: int = 0
    dirs: int = 0
    links: int = 0
    others: int = 0
    bytes: int = 0
    new_files: int = 0
    new_bytes: int = 0
    hashed_bytes: int = 0
    reused: int = 0
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_meta(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if k != "unreadable"}


def hash_fd(fd: int, buffer: bytearray) -> tuple[bytes, int]:
    """xxh3-128 of an open file's content, and how many bytes were read."""
    digest = xxhash.xxh3_128()
    view = memoryview(buffer)
    total = 0
    with open(fd, "rb", buffering=0, closefd=False) as raw:
        while n := raw.readinto(buffer):
            digest.update(view[:n])
            total += n
    return digest.digest(), total


def hash_file(path: bytes | str, buffer: bytearray | None = None) -> tuple[bytes, int]:
    fd = _open_file(os.fsencode(path))
    try:
        return hash_fd(fd, buffer or bytearray(BUFFER_BYTES))
    finally:
        os.close(fd)


# O_NOATIME keeps verification from writing atimes; only the owner or CAP_FOWNER may use it.
_NOATIME = getattr(os, "O_NOATIME", 0)


def _open_file(path: bytes) -> int:
    # O_NONBLOCK: should a fifo have replaced the file since it was listed, do not wait on it.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        return os.open(path, flags | _NOATIME)
    except PermissionError:
        return os.open(path, flags)


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    return "o"


class _Reuse:
    """The previous manifest's hashes by inode: an inode still alive in the previous snapshot
    is that very file, so its content (and hash) is the same."""

    def __init__(self, previous: Path | None, dev: int) -> None:
        self.hashes: dict[int, tuple[int, int, bytes]] = {}
        if previous is None or not previous.exists():
            return
        with _connect(previous, readonly=True) as con:
            meta = dict(con.execute("SELECT key, value FROM meta"))
            if meta.get("dev") != str(dev) or meta.get("algorithm") != ALGORITHM:
                return
            rows = con.execute("SELECT ino, size, mtime_ns, hash FROM entry "
                               "WHERE kind = 'f' AND hash IS NOT NULL")
            self.hashes = {ino: (size, mtime, digest) for ino, size, mtime, digest in rows}

    def get(self, st: os.stat_result) -> bytes | None:
        found = self.hashes.get(st.st_ino)
        if found and found[0] == st.st_size and found[1] == st.st_mtime_ns:
            return found[2]
        return None


def write(tree: Path, out: Path, previous: Path | None = None, *,
          on_progress: Callable[[Summary], None] | None = None) -> Summary:
    """Index the snapshot folder `tree` into a new manifest at `out` (written beside it and
    renamed, so a manifest is whole or absent)."""
    started = time.monotonic()
    root = os.fsencode(str(tree))
    dev = os.lstat(root).st_dev
    reuse = _Reuse(previous, dev)
    summary = Summary()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = _connect(tmp)
    try:
        con.executescript(SCHEMA)
        folders = _write_entries(con, root, reuse, summary, on_progress)
        _write_folders(con, folders)
        con.executescript(INDEXES)
        summary.seconds = round(time.monotonic() - started, 3)
        meta = {**summary.as_meta(), "algorithm": ALGORITHM, "format": FORMAT_VERSION,
                "dev": str(dev), "previous": previous.stem if previous else ""}
        con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        con.commit()
    finally:
        con.close()
    os.replace(tmp, out)
    return summary


def _write_entries(con, root: bytes, reuse: _Reuse, summary: Summary, on_progress) -> dict:
    """Walk the tree (a stack, not recursion: paths may be thousands of folders deep), insert
    every non-folder entry in batches and return the folders with their totals."""
    buffer = bytearray(BUFFER_BYTES)
    folders: dict[bytes, list] = {}
    batch: list[tuple] = []
    stack = [b""]
    next_report = time.monotonic() + PROGRESS_SECONDS
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                kind = _kind(st.st_mode)
                row = [rel, entry.name, kind, 0, 0, st.st_mtime_ns, stat.S_IMODE(st.st_mode) |
                       stat.S_IFMT(st.st_mode), st.st_uid, st.st_gid, st.st_ino, st.st_nlink,
                       None, None, 0]
                if kind == "d":
                    path = join(rel, entry.name)
                    folders[path] = row
                    stack.append(path)
                    summary.dirs += 1
                    continue
                if kind == "f":
                    _index_file(row, entry.path, st, reuse, summary, buffer)
                    _add_to(folders, rel, st.st_size)
                elif kind == "l":
                    row[12] = os.readlink(entry.path)
                    row[3] = st.st_size
                    summary.links += 1
                else:
                    summary.others += 1
                batch.append(tuple(row))
                if len(batch) >= BATCH_ROWS:
                    _insert(con, batch)
                    if on_progress and time.monotonic() >= next_report:
                        next_report = time.monotonic() + PROGRESS_SECONDS
                        on_progress(summary)
    _insert(con, batch)
    return folders


def _index_file(row: list, path: bytes, st: os.stat_result, reuse: _Reuse, summary: Summary,
                buffer: bytearray) -> None:
    row[3], row[4] = st.st_size, 1
    summary.files += 1
    summary.bytes += st.st_size
    digest = reuse.get(st)
    if digest is not None:
        summary.reused += 1
    else:
        row[13] = 1
        summary.new_files += 1
        summary.new_bytes += st.st_size
        try:
            fd = _open_file(path)
            try:
                digest, read = hash_fd(fd, buffer)
            finally:
                os.close(fd)
            summary.hashed_bytes += read
        except OSError as error:
            if len(summary.unreadable) < MAX_LISTED:
                summary.unreadable.append(f"{os.fsdecode(path)}: {error.strerror}")
    row[11] = digest


def _add_to(folders: dict, rel: bytes, size: int) -> None:
    # Only the direct parent here; _write_folders passes totals up once the walk is done.
    if rel:
        folder = folders[rel]
        folder[3] += size
        folder[4] += 1


def _write_folders(con, folders: dict[bytes, list]) -> None:
    for path in sorted(folders, key=lambda p: p.count(b"/"), reverse=True):
        row = folders[path]
        parent = row[0]
        if parent:
            folders[parent][3] += row[3]
            folders[parent][4] += row[4]
    _insert(con, [tuple(row) for row in folders.values()])


def _insert(con, rows: list[tuple]) -> None:
    con.executemany(f"INSERT INTO entry ({', '.join(COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(COLUMNS))})", rows)
    rows.clear()


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        if not path.exists():
            raise ManifestError(f"No manifest at {path}.")
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        con = sqlite3.connect(path, check_same_thread=False)
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
    return con


# --- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    path: str           # relative to the snapshot, surrogate-escaped
    kind: str
    size: int
    files: int
    mtime_ns: int
    mode: int
    uid: int
    gid: int
    hash: bytes | None
    target: str | None
    new: bool

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rpartition("/")[0]

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9

    @property
    def is_dir(self) -> bool:
        return self.kind == "d"

    @property
    def hex(self) -> str:
        return self.hash.hex() if self.hash else ""


_SELECT = ("SELECT parent, name, kind, size, files, mtime_ns, mode, uid, gid, hash, target, new "
           "FROM entry")


def _entry(row) -> Entry:
    parent, name, kind, size, files, mtime_ns, mode, uid, gid, digest, target, new = row
    return Entry(os.fsdecode(join(parent, name)), kind, size, files, mtime_ns, mode, uid, gid,
                 digest, os.fsdecode(target) if target is not None else None, bool(new))


class Manifest:
    """A written manifest, read-only. Cheap to open; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.con = _connect(path, readonly=True)
            self.meta = dict(self.con.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as error:
            raise ManifestError(f"The manifest {path.name} cannot be read: {error}") from error

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def number(self, key: str) -> int:
        return int(float(self.meta.get(key, 0)))

    def entry(self, path: str) -> Entry | None:
        """The entry at `path` ('' is the top folder, made up from the totals)."""
        if not path:
            return Entry("", "d", self.number("bytes"), self.number("files"), 0, stat.S_IFDIR,
                         0, 0, None, None, False)
        parent, name = split(path)
        row = self.con.execute(_SELECT + " WHERE parent = ? AND name = ?", (parent, name)).fetchone()
        return _entry(row) if row else None

    def count(self, folder: str) -> int:
        return self.con.execute("SELECT COUNT(*) FROM entry WHERE parent = ?",
                                (os.fsencode(folder),)).fetchone()[0]

    def children(self, folder: str, sort: str = "name", descending: bool = False,
                 offset: int = 0, limit: int = 100) -> list[Entry]:
        """One page of a folder's entries; folders first when sorted by name."""
        column = SORTS.get(sort, "name")
        order = "DESC" if descending else "ASC"
        first = "kind != 'd', " if column == "name" else ""
        rows = self.con.execute(
            f"{_SELECT} WHERE parent = ? ORDER BY {first}{column} {order}, name LIMIT ? OFFSET ?",
            (os.fsencode(folder), limit, offset))
        return [_entry(row) for row in rows]

    def find(self, text: str, limit: int = 200) -> list[Entry]:
        """Entries whose name contains `text`, ignoring ASCII case."""
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.con.execute(f"{_SELECT} WHERE kind != 'd' AND CAST(name AS TEXT) LIKE ? ESCAPE '\\' "
                                "ORDER BY parent, name LIMIT ?", (f"%{escaped}%", limit))
        return [_entry(row) for row in rows]

    def files(self, below: str = "") -> Iterator[Entry]:
        """Every file (below a folder, when given), in no particular order."""
        if not below:
            rows = self.con.execute(_SELECT + " WHERE kind = 'f'")
        else:
            raw = os.fsencode(below)
            rows = self.con.execute(
                _SELECT + " WHERE kind = 'f' AND (parent = ? OR substr(parent, 1, ?) = ?)",
                (raw, len(raw) + 1, raw + b"/"))
        return (_entry(row) for row in rows)

    def file_count(self) -> int:
        return self.number("files")


def path_for(manifests_dir: Path, profile_id: int, snapshot: str) -> Path:
    return manifests_dir / str(profile_id) / f"{snapshot}.sqlite"


# --- comparing -------------------------------------------------------------------------------

@dataclass
class Comparison:
    added: list[Entry]
    removed: list[Entry]
    changed: list[Entry]
    counts: dict[str, int]


def compare(older: Path, newer: Path, limit: int = 500) -> Comparison:
    """What changed from `older` to `newer`: files and links added, removed or changed (by
    hash, or by size and mtime where a hash is missing). Folders are not counted."""
    with Manifest(newer) as new:
        new.con.execute("ATTACH DATABASE ? AS old", (f"file:{older}?mode=ro",))
        same_place = "o.parent = n.parent AND o.name = n.name"
        differs = ("o.kind != n.kind OR o.size != n.size OR "
                   "(o.hash IS NOT NULL AND n.hash IS NOT NULL AND o.hash != n.hash) OR "
                   "((o.hash IS NULL OR n.hash IS NULL) AND o.mtime_ns != n.mtime_ns) OR "
                   "o.target IS NOT n.target")
        queries = {
            "added": f"FROM main.entry n WHERE n.kind != 'd' AND NOT EXISTS "
                     f"(SELECT 1 FROM old.entry o WHERE {same_place})",
            "removed": f"FROM old.entry n WHERE n.kind != 'd' AND NOT EXISTS "
                       f"(SELECT 1 FROM main.entry o WHERE {same_place})",
            "changed": f"FROM main.entry n JOIN old.entry o ON {same_place} "
                       f"WHERE n.kind != 'd' AND ({differs})",
        }
        columns = ", ".join(f"n.{c}" for c in _SELECT.removeprefix("SELECT ").split(" FROM")[0]
                            .split(", "))
        lists, counts = {}, {}
        for what, query in queries.items():
            counts[what] = new.con.execute(f"SELECT COUNT(*) {query}").fetchone()[0]
            rows = new.con.execute(f"SELECT {columns} {query} ORDER BY n.parent, n.name LIMIT ?",
                                   (limit,))
            lists[what] = [_entry(row) for row in rows]
        return Comparison(lists["added"], lists["removed"], lists["changed"], counts)


# --- verifying -------------------------------------------------------------------------------

@dataclass
class Check:
    """What re-reading a snapshot against its manifest found."""

    total: int = 0           # files the manifest lists
    chosen: int = 0          # files picked to check (all, or the sample)
    checked: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.changed) + len(self.unreadable)

    @property
    def intact(self) -> bool:
        return not self.problems and not self.stopped


def choose(manifest: Manifest, percent: float | None, rng: random.Random) -> list[Entry]:
    """The files to check: all of them, or `percent` of them at random (at least one)."""
    files = list(manifest.files())
    if percent is None or percent >= 100 or not files:
        return files
    k = max(1, round(len(files) * percent / 100))
    return rng.sample(files, min(k, len(files)))


def verify(tree: Path, manifest: Manifest, chosen: list[Entry], *,
           on_progress: Callable[[Check], None] | None = None,
           should_stop: Callable[[], bool] | None = None) -> Check:
    """Re-read each chosen file in `tree` and compare it with the manifest."""
    check = Check(total=manifest.file_count(), chosen=len(chosen))
    buffer = bytearray(BUFFER_BYTES)
    root = str(tree)
    next_report = time.monotonic() + PROGRESS_SECONDS
    for entry in sorted(chosen, key=lambda e: e.path):   # folder order reads the disk in order
        _verify_one(root, entry, check, buffer)
        check.checked += 1
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + PROGRESS_SECONDS
            if should_stop and should_stop():
                check.stopped = True
                break
            if on_progress:
                on_progress(check)
    return check


def _verify_one(root: str, entry: Entry, check: Check, buffer: bytearray) -> None:
    # O_NONBLOCK: a fifo standing where the file was must not block the check.
    flags = os.O_RDONLY | os.O_NONBLOCK
    try:
        try:
            fd = open_inside(root, entry.path, flags | _NOATIME)
        except PermissionError:   # O_NOATIME needs the owner or CAP_FOWNER
            fd = open_inside(root, entry.path, flags)
    except FileNotFoundError:
        _note(check.missing, entry.path)
        return
    except OSError as error:
        if error.errno == 40:   # ELOOP: a symlink now stands where the file was
            _note(check.changed, f"{entry.path} (is no longer a file)")
        else:
            _note(check.unreadable, f"{entry.path}: {error.strerror}")
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            _note(check.changed, f"{entry.path} (is no longer a file)")
            return
        digest, read = hash_fd(fd, buffer)
        check.bytes += read
    except OSError as error:
        _note(check.unreadable, f"{entry.path}: {error.strerror}")
        return
    finally:
        os.close(fd)
    if entry.hash is None:
        return   # it could not be read when indexed either; now it can
    if read != entry.size or digest != entry.hash:
        _note(check.changed, f"{entry.path} (content differs from the manifest)")


def _note(problems: list[str], text: str) -> None:
    problems.append(text)
