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

import fcntl
import os
import random
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from jobs.engines.humane import natural_key

ALGORITHM = "xxh3-128"
BUFFER_BYTES = 1024 * 1024
BATCH_ROWS = 5000
PROGRESS_SECONDS = 0.5
MAX_LISTED = 1000          # problems named one by one; beyond that only counted
SORTS = {"name": "name", "size": "size", "mtime": "mtime_ns", "kind": "kind"}

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE folder (
    id INTEGER PRIMARY KEY,      -- 0 is the snapshot's top
    path BLOB NOT NULL           -- relative to the snapshot; b'' at the top
);
CREATE TABLE entry (
    parent INTEGER NOT NULL,     -- the folder it is in
    name BLOB NOT NULL,
    kind TEXT NOT NULL,          -- f file, d folder, l symlink, o other (fifo, device, socket)
    size INTEGER NOT NULL,       -- a folder's is everything below it
    files INTEGER NOT NULL,      -- 1 for a file; a folder's is the files below it
    mtime_ns INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    hash BLOB,                   -- files only; NULL when the file could not be read
    target BLOB                  -- symlinks only
);
"""
# Built after the rows are in: one sort instead of an index kept up to date row by row.
INDEXES = """
CREATE UNIQUE INDEX folder_path ON folder (path);
CREATE UNIQUE INDEX entry_place ON entry (parent, name);
"""
INSERT = "INSERT INTO entry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_STATED = "INSERT INTO stated VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
FORMAT_VERSION = "2"


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
    reused: int = 0          # files whose hash came from the previous manifest
    rsync_hashed: int = 0    # ... from the rsync that copied them
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_meta(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if k != "unreadable"}


def hash_fd(fd: int, buffer: bytearray,
            on_bytes: Callable[[int], None] | None = None) -> tuple[bytes, int]:
    """xxh3-128 of an open file's content, and how many bytes were read. The one file hash of
    Cairn: manifests, verification, the import's checks and the duplicate scan all use it."""
    digest = xxhash.xxh3_128()
    view = memoryview(buffer)
    total = 0
    with open(fd, "rb", buffering=0, closefd=False) as raw:
        while n := raw.readinto(buffer):
            digest.update(view[:n])
            total += n
            if on_bytes:
                on_bytes(n)
    return digest.digest(), total


def hash_file(path: bytes | str, buffer: bytearray | None = None,
              on_bytes: Callable[[int], None] | None = None) -> tuple[bytes, int]:
    fd = _open_file(os.fsencode(path))
    try:
        return hash_fd(fd, buffer or bytearray(BUFFER_BYTES), on_bytes)
    finally:
        os.close(fd)


# O_NOATIME keeps verification from writing atimes; only the owner or CAP_FOWNER may use it.
_NOATIME = getattr(os, "O_NOATIME", 0)


def _without_atime(opener: Callable[[int], int], flags: int) -> int:
    """`opener(flags)` with O_NOATIME, or without it where it is not allowed."""
    try:
        return opener(flags | _NOATIME)
    except PermissionError:
        return opener(flags)


def _open_file(path: bytes) -> int:
    # O_NONBLOCK: should a fifo have replaced the file since it was listed, do not wait on it.
    return _without_atime(lambda flags: os.open(path, flags),
                          os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)


_TEMPORARY = """
CREATE TEMP TABLE known (ino INTEGER PRIMARY KEY, size, mtime_ns, mode, uid, gid, hash);
CREATE TEMP TABLE fresh (dir BLOB, name BLOB, size INTEGER, hash BLOB, PRIMARY KEY (dir, name));
CREATE TEMP TABLE seen (parent, name, ino);
CREATE TEMP TABLE stated (parent, name, ino, size, mtime_ns, mode, uid, gid);
"""


def _attach_previous(con: sqlite3.Connection, previous: Path | None, dev: int) -> bool:
    """Copy the previous manifest's files into the temporary table `known`, keyed by inode,
    if that manifest is of this filesystem, algorithm and format; say whether it was.

    An inode still alive in the previous snapshot is that very file (rsync --link-dest made
    a hardlink of it): same content, hash, size, time, mode and owner, all attributes of the
    inode. The copy is one statement inside SQLite, and the table lives in SQLite's temporary
    store (spilled to disk past its cache), not in this process's memory."""
    if previous is None or not previous.exists():
        return False
    con.execute("ATTACH DATABASE ? AS prev", (_read_only(previous),))
    try:
        meta = dict(con.execute("SELECT key, value FROM prev.meta"))
        if (meta.get("dev") != str(dev) or meta.get("algorithm") != ALGORITHM
                or meta.get("format") != FORMAT_VERSION):
            return False
        con.execute("INSERT OR IGNORE INTO known SELECT ino, size, mtime_ns, mode, uid, gid, hash "
                    "FROM prev.entry WHERE kind = 'f' AND hash IS NOT NULL ORDER BY ino")
        return True
    finally:
        con.commit()
        con.execute("DETACH DATABASE prev")


def _load_fresh(con: sqlite3.Connection, fresh: Iterable[tuple[bytes, int, bytes]]) -> int:
    """Keep (path in the snapshot, size, xxh3-128) of files whose hash is already known, from
    the rsync that copied them; a path given twice keeps its later hash. Returns how many."""
    count = 0
    batch: list[tuple] = []
    for path, size, digest in fresh:
        folder, _, name = path.rpartition(b"/")
        batch.append((folder, name, size, digest))
        if len(batch) >= BATCH_ROWS:
            con.executemany("INSERT OR REPLACE INTO fresh VALUES (?, ?, ?, ?)", batch)
            count, batch = count + len(batch), []
    con.executemany("INSERT OR REPLACE INTO fresh VALUES (?, ?, ?, ?)", batch)
    return count + len(batch)


def write(tree: Path, out: Path, previous: Path | None = None, *,
          fresh: Iterable[tuple[bytes, int, bytes]] = (),
          on_progress: Callable[[Summary], None] | None = None) -> Summary:
    """Index the snapshot folder `tree` into a new manifest at `out` (written beside it and
    renamed, so a manifest is whole or absent).

    Files are read only for hashes nobody knows: a file of the `previous` manifest's
    snapshot (the same inode) takes that manifest's hash, and a file in `fresh` (its path in
    the snapshot, size and hash, as the rsync that copied it computed them) takes that hash
    if its size is still the same."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # One writer per manifest: a finish resumed after a crash and the start-up indexing may
    # both come for the same snapshot, and would otherwise share the temporary file.
    with open(out.with_name(out.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _write(tree, out, previous, fresh, on_progress)


def _write(tree: Path, out: Path, previous: Path | None, fresh, on_progress) -> Summary:
    started = time.monotonic()
    root = os.fsencode(str(tree))
    dev = os.lstat(root).st_dev
    summary = Summary()
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = _connect(tmp)
    try:
        con.executescript(SCHEMA + _TEMPORARY)
        reuse = _attach_previous(con, previous, dev)
        _Walk(con, root, reuse, _load_fresh(con, fresh) > 0, summary, on_progress).run()
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


# How the files the walk set aside become entries. `seen`: files not lstat'ed, known by the
# listing's inode number alone, which the previous manifest's same inode completes. `stated`:
# files lstat'ed (the first ones; all of them on a filesystem whose listing's inode numbers
# are not st_ino; those of `seen` the previous manifest does not know), which take the
# previous manifest's hash (same inode, size and time), or else rsync's (same place and size).
_TAKE_KNOWN = """
INSERT INTO entry
SELECT s.parent, s.name, 'f', k.size, 1, k.mtime_ns, k.mode, k.uid, k.gid, k.ino, k.hash, NULL
FROM seen s JOIN known k ON k.ino = s.ino
"""
_NOT_KNOWN = "SELECT parent, name FROM seen WHERE ino NOT IN (SELECT ino FROM known)"
_KNOWN_MATCH = "k.ino = s.ino AND k.size = s.size AND k.mtime_ns = s.mtime_ns"
_TAKE_KNOWN_STATED = f"""
INSERT INTO entry
SELECT s.parent, s.name, 'f', s.size, 1, s.mtime_ns, s.mode, s.uid, s.gid, s.ino, k.hash, NULL
FROM stated s JOIN known k ON {_KNOWN_MATCH}
"""
_FRESH_ONLY = f"""
FROM stated s JOIN folder f ON f.id = s.parent
JOIN fresh r ON r.dir = f.path AND r.name = s.name AND r.size = s.size
WHERE NOT EXISTS (SELECT 1 FROM known k WHERE {_KNOWN_MATCH})
"""
_FRESH_COUNT = "SELECT count(*), total(s.size)" + _FRESH_ONLY
_TAKE_FRESH = """
INSERT INTO entry
SELECT s.parent, s.name, 'f', s.size, 1, s.mtime_ns, s.mode, s.uid, s.gid, s.ino, r.hash, NULL
""" + _FRESH_ONLY
_UNHASHED = f"""
SELECT s.parent, s.name, s.ino, s.size, s.mtime_ns, s.mode, s.uid, s.gid
FROM stated s JOIN folder f ON f.id = s.parent
LEFT JOIN fresh r ON r.dir = f.path AND r.name = s.name AND r.size = s.size
WHERE r.hash IS NULL AND NOT EXISTS (SELECT 1 FROM known k WHERE {_KNOWN_MATCH})
"""


class _Walk:
    """The tree, walked with a stack (paths may be thousands of folders deep, too deep for
    recursion), every non-folder entry inserted in batches as it is met, the folders at the
    end with the totals of everything below them.

    This loop meets every file of every snapshot, so it is kept lean. When hashes can come
    from elsewhere (`deferred`), files are set aside in short rows and matched inside SQLite
    afterwards, and only the files nobody knows are read. With a previous manifest, a
    regular file is not even lstat'ed: its row is its folder, name and inode number, and
    the previous manifest's same inode completes it. The inode number comes from the folder
    listing (d_ino), which is st_ino on local filesystems; the first files are checked
    against lstat, and one that differs (an overlay, say) has every file lstat'ed instead
    (and then matched by inode, size and time)."""

    PROBE_FILES = 64

    def __init__(self, con, root: bytes, reuse: bool, has_fresh: bool, summary: Summary,
                 on_progress) -> None:
        self.con, self.root, self.reuse, self.summary = con, root, reuse, summary
        self.deferred = reuse or has_fresh
        self.on_progress = on_progress
        self.buffer = bytearray(BUFFER_BYTES)
        # per folder id: [parent id, name, mtime, mode, uid, gid, ino, size, files]
        self.folders: dict[int, list] = {}
        self.paths: list[bytes] = [b""]   # by folder id

    def run(self) -> None:
        batch: list[tuple] = []     # whole entries
        seen: list[tuple] = []      # files set aside, not lstat'ed
        stated: list[tuple] = []    # files set aside, lstat'ed
        stack = [(0, b"")]
        next_id, next_report = 1, time.monotonic() + PROGRESS_SECONDS
        summary, folders, paths = self.summary, self.folders, self.paths
        reuse, deferred = self.reuse, self.deferred
        insert, scandir = self.con.executemany, os.scandir
        probe = self.PROBE_FILES if reuse else 0   # files still to check d_ino on
        s_ifmt, s_ifreg, s_ifdir, s_iflnk = stat.S_IFMT, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK
        while stack:
            folder_id, rel = stack.pop()
            with scandir(self.root + b"/" + rel if rel else self.root) as entries:
                for entry in entries:
                    if reuse and not probe and entry.is_file(follow_symlinks=False):
                        seen.append((folder_id, entry.name, entry.inode()))
                        continue
                    st = entry.stat(follow_symlinks=False)
                    mode = st.st_mode
                    if s_ifmt(mode) == s_ifreg:
                        if probe:
                            probe = probe - 1 if entry.inode() == st.st_ino else -1
                        if deferred:
                            stated.append((folder_id, entry.name, st.st_ino, st.st_size,
                                           st.st_mtime_ns, mode, st.st_uid, st.st_gid))
                        else:
                            batch.append(self._file_row(folder_id, entry.path, entry.name, st))
                    elif s_ifmt(mode) == s_ifdir:
                        name = entry.name
                        path = rel + b"/" + name if rel else name
                        folders[next_id] = [folder_id, name, st.st_mtime_ns, mode,
                                            st.st_uid, st.st_gid, st.st_ino, 0, 0]
                        stack.append((next_id, path))
                        paths.append(path)
                        next_id += 1
                        summary.dirs += 1
                    else:
                        link = s_ifmt(mode) == s_iflnk
                        batch.append((folder_id, entry.name, "l" if link else "o",
                                      st.st_size if link else 0, 0, st.st_mtime_ns, mode,
                                      st.st_uid, st.st_gid, st.st_ino, None,
                                      os.readlink(entry.path) if link else None))
                        if link:
                            summary.links += 1
                        else:
                            summary.others += 1
            if len(batch) >= BATCH_ROWS:
                insert(INSERT, batch)
                batch = []
            if len(seen) >= BATCH_ROWS:
                insert("INSERT INTO seen VALUES (?, ?, ?)", seen)
                seen = []
            if len(stated) >= BATCH_ROWS:
                insert(_INSERT_STATED, stated)
                stated = []
            if self.on_progress and time.monotonic() >= next_report:
                next_report = time.monotonic() + PROGRESS_SECONDS
                self.on_progress(summary)
        insert(INSERT, batch)
        insert("INSERT INTO folder VALUES (?, ?)", enumerate(paths))
        if deferred:
            insert("INSERT INTO seen VALUES (?, ?, ?)", seen)
            insert(_INSERT_STATED, stated)
            self._resolve()
        self._write_folders()

    def _resolve(self) -> None:
        """The files set aside become entries: those whose hash the previous manifest or
        rsync knows, inside SQLite; the others are read now."""
        con, summary = self.con, self.summary
        summary.reused = con.execute(_TAKE_KNOWN).rowcount
        unknown = con.execute(_NOT_KNOWN)
        while rows := unknown.fetchmany(BATCH_ROWS):
            stated = []
            for parent, name in rows:
                try:
                    st = os.lstat(self._path(parent, name))
                except FileNotFoundError:
                    continue   # gone since it was listed
                if stat.S_ISREG(st.st_mode):   # else replaced since: not a file of the snapshot
                    stated.append((parent, name, st.st_ino, st.st_size, st.st_mtime_ns,
                                   st.st_mode, st.st_uid, st.st_gid))
            con.executemany(_INSERT_STATED, stated)
        summary.reused += con.execute(_TAKE_KNOWN_STATED).rowcount
        files, size = con.execute(_FRESH_COUNT).fetchone()
        con.execute(_TAKE_FRESH)
        summary.rsync_hashed, summary.new_files, summary.new_bytes = files, files, int(size)
        unhashed = con.execute(_UNHASHED)
        while rows := unhashed.fetchmany(BATCH_ROWS):
            entries = []
            for parent, name, ino, length, mtime_ns, mode, uid, gid in rows:
                digest = self._hash(self._path(parent, name), length)
                entries.append((parent, name, "f", length, 1, mtime_ns, mode, uid, gid, ino,
                                digest, None))
            con.executemany(INSERT, entries)

    def _path(self, folder_id: int, name: bytes) -> bytes:
        rel = self.paths[folder_id]
        return self.root + b"/" + (rel + b"/" + name if rel else name)

    def _file_row(self, folder_id: int, path: bytes, name: bytes, st: os.stat_result) -> tuple:
        return (folder_id, name, "f", st.st_size, 1, st.st_mtime_ns, st.st_mode, st.st_uid,
                st.st_gid, st.st_ino, self._hash(path, st.st_size), None)

    def _hash(self, path: bytes, size: int) -> bytes | None:
        summary = self.summary
        summary.new_files += 1
        summary.new_bytes += size
        try:
            fd = _open_file(path)
            try:
                digest, read = hash_fd(fd, self.buffer)
            finally:
                os.close(fd)
        except OSError as error:
            if len(summary.unreadable) < MAX_LISTED:
                summary.unreadable.append(f"{os.fsdecode(path)}: {error.strerror}")
            return None
        summary.hashed_bytes += read
        return digest

    def _write_folders(self) -> None:
        folders, summary = self.folders, self.summary
        own = self.con.execute("SELECT parent, sum(size), count(*) FROM entry WHERE kind = 'f' "
                               "GROUP BY parent")
        for folder_id, size, files in own:
            summary.files += files
            summary.bytes += size
            if folder_id:
                folders[folder_id][7] += size
                folders[folder_id][8] += files
        # Children got higher ids than their parents: adding in descending order passes
        # every folder's totals up before its parent's are passed on.
        for folder_id in sorted(folders, reverse=True):
            row = folders[folder_id]
            if row[0]:
                parent = folders[row[0]]
                parent[7] += row[7]
                parent[8] += row[8]
        self.con.executemany(INSERT, [
            (parent, name, "d", size, files, mtime, mode, uid, gid, ino, None, None)
            for parent, name, mtime, mode, uid, gid, ino, size, files in folders.values()])


def _read_only(path: Path) -> str:
    """The URI that opens `path` read-only (a '?', '#' or '%' in the path stays a name)."""
    return f"file:{urllib.parse.quote(str(path))}?mode=ro"


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        if not path.exists():
            raise ManifestError(f"No manifest at {path}.")
        con = sqlite3.connect(_read_only(path), uri=True, check_same_thread=False)
    else:
        # uri=True lets the previous manifest be attached read-only; a plain path is still
        # a plain path.
        con = sqlite3.connect(path, check_same_thread=False, uri=True)
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
    con.create_function("natural_key", 1, natural_key, deterministic=True)
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


_FIELDS = ("f.path, e.name, e.kind, e.size, e.files, e.mtime_ns, e.mode, e.uid, e.gid, e.hash, "
           "e.target")
_SELECT = f"SELECT {_FIELDS} FROM entry e JOIN folder f ON f.id = e.parent"


def _entry(row) -> Entry:
    folder, name, kind, size, files, mtime_ns, mode, uid, gid, digest, target = row
    return Entry(os.fsdecode(join(folder, name)), kind, size, files, mtime_ns, mode, uid, gid,
                 digest, os.fsdecode(target) if target is not None else None)


class Manifest:
    """A written manifest, read-only. Cheap to open; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.con = _connect(path, readonly=True)
            self.meta = dict(self.con.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as error:
            raise ManifestError(f"The manifest {path.name} cannot be read: {error}") from error
        if self.meta.get("format") != FORMAT_VERSION:
            self.con.close()
            raise ManifestError(f"The manifest {path.name} is of an older format; verifying "
                                "the snapshot writes it again.")

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def number(self, key: str) -> int:
        return int(float(self.meta.get(key, 0)))

    def _folder(self, path: str) -> int | None:
        row = self.con.execute("SELECT id FROM folder WHERE path = ?",
                               (os.fsencode(path),)).fetchone()
        return row[0] if row else None

    def entry(self, path: str) -> Entry | None:
        """The entry at `path` ('' is the top folder, made up from the totals)."""
        if not path:
            return Entry("", "d", self.number("bytes"), self.number("files"), 0, stat.S_IFDIR,
                         0, 0, None, None)
        parent, name = split(path)
        folder = self._folder(os.fsdecode(parent))
        if folder is None:
            return None
        row = self.con.execute(_SELECT + " WHERE e.parent = ? AND e.name = ?",
                               (folder, name)).fetchone()
        return _entry(row) if row else None

    def count(self, folder: str) -> int:
        found = self._folder(folder)
        if found is None:
            return 0
        return self.con.execute("SELECT COUNT(*) FROM entry WHERE parent = ?", (found,)).fetchone()[0]

    def children(self, folder: str, sort: str = "name", descending: bool = False,
                 offset: int = 0, limit: int = 100) -> list[Entry]:
        """One page of a folder's entries; folders first when sorted by name."""
        found = self._folder(folder)
        if found is None:
            return []
        column = "e." + SORTS.get(sort, "name")
        order = "DESC" if descending else "ASC"
        first = "e.kind != 'd', " if column == "e.name" else ""
        if column == "e.name":   # photo 2 before photo 10
            column = "natural_key(e.name)"
        rows = self.con.execute(
            f"{_SELECT} WHERE e.parent = ? ORDER BY {first}{column} {order}, "
            "natural_key(e.name) LIMIT ? OFFSET ?", (found, limit, offset))
        return [_entry(row) for row in rows]

    def find(self, text: str, limit: int = 200) -> list[Entry]:
        """Files and links whose name contains `text`, ignoring ASCII case."""
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.con.execute(f"{_SELECT} WHERE e.kind != 'd' AND CAST(e.name AS TEXT) LIKE ? "
                                "ESCAPE '\\' ORDER BY natural_key(f.path), natural_key(e.name) "
                                "LIMIT ?",
                                (f"%{escaped}%", limit))
        return [_entry(row) for row in rows]

    def files(self, below: str = "") -> Iterator[Entry]:
        """Every file (below a folder, when given), in no particular order."""
        if not below:
            rows = self.con.execute(_SELECT + " WHERE e.kind = 'f'")
        else:
            raw = os.fsencode(below)
            rows = self.con.execute(
                _SELECT + " WHERE e.kind = 'f' AND (f.path = ? OR substr(f.path, 1, ?) = ?)",
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


def _only_in(this: str, other: str) -> str:
    """Rows of `this` database's entries (files and links) that `other` has no entry for."""
    return (f"FROM {this}.entry e JOIN {this}.folder f ON f.id = e.parent WHERE e.kind != 'd' "
            f"AND NOT EXISTS (SELECT 1 FROM {other}.folder of JOIN {other}.entry o "
            "ON o.parent = of.id WHERE of.path = f.path AND o.name = e.name)")


def compare(older: Path, newer: Path, limit: int = 500) -> Comparison:
    """What changed from `older` to `newer`: files and links added, removed or changed (by
    hash, or by size and mtime where a hash is missing). Folders are not counted."""
    with Manifest(older):   # checks its format
        pass
    with Manifest(newer) as new:
        new.con.execute("ATTACH DATABASE ? AS old", (f"file:{older}?mode=ro",))
        differs = ("o.kind != e.kind OR o.size != e.size OR "
                   "(o.hash IS NOT NULL AND e.hash IS NOT NULL AND o.hash != e.hash) OR "
                   "((o.hash IS NULL OR e.hash IS NULL) AND o.mtime_ns != e.mtime_ns) OR "
                   "o.target IS NOT e.target")
        queries = {
            "added": _only_in("main", "old"),
            "removed": _only_in("old", "main"),
            "changed": ("FROM main.entry e JOIN main.folder f ON f.id = e.parent "
                        "JOIN old.folder of ON of.path = f.path "
                        "JOIN old.entry o ON o.parent = of.id AND o.name = e.name "
                        f"WHERE e.kind != 'd' AND ({differs})"),
        }
        lists, counts = {}, {}
        for what, query in queries.items():
            counts[what] = new.con.execute(f"SELECT COUNT(*) {query}").fetchone()[0]
            rows = new.con.execute(f"SELECT {_FIELDS} {query} ORDER BY natural_key(f.path), "
                                   "natural_key(e.name) LIMIT ?",
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
    bytes: int = 0           # read so far, the file being read included
    chosen_bytes: int = 0    # the sizes of the chosen files
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)   # their paths, in the snapshot
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
    """Re-read each chosen file in `tree` and compare it with the manifest. Progress is
    reported about twice a second, inside large files too, and a stop is heeded there."""
    check = Check(total=manifest.file_count(), chosen=len(chosen),
                  chosen_bytes=sum(entry.size for entry in chosen))
    buffer = bytearray(BUFFER_BYTES)
    root = str(tree)
    next_report = time.monotonic() + PROGRESS_SECONDS

    def read(n: int) -> None:
        nonlocal next_report
        check.bytes += n
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + PROGRESS_SECONDS
            if should_stop and should_stop():
                raise _Stopped
            if on_progress:
                on_progress(check)

    try:
        for entry in sorted(chosen, key=lambda e: e.path):   # folder order reads the disk in order
            _verify_one(root, entry, check, buffer, read)
            check.checked += 1
            read(0)
    except _Stopped:
        check.stopped = True
    return check


class _Stopped(Exception):
    pass


def _verify_one(root: str, entry: Entry, check: Check, buffer: bytearray,
                on_bytes: Callable[[int], None]) -> None:
    # O_NONBLOCK: a fifo standing where the file was must not block the check.
    try:
        fd = _without_atime(lambda flags: open_inside(root, entry.path, flags),
                            os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        note(check, check.missing, entry.path, entry.path)
        return
    except OSError as error:
        if error.errno == 40:   # ELOOP: a symlink now stands where the file was
            note(check, check.changed, entry.path, f"{entry.path} (is no longer a file)")
        else:
            note(check, check.unreadable, entry.path, f"{entry.path}: {error.strerror}")
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            note(check, check.changed, entry.path, f"{entry.path} (is no longer a file)")
            return
        digest, read = hash_fd(fd, buffer, on_bytes)
    except OSError as error:
        note(check, check.unreadable, entry.path, f"{entry.path}: {error.strerror}")
        return
    finally:
        os.close(fd)
    if entry.hash is None:
        return   # it could not be read when indexed either; now it can
    if read != entry.size or digest != entry.hash:
        note(check, check.changed, entry.path, f"{entry.path} (content differs from the manifest)")


def note(check: Check, problems: list[str], path: str, text: str) -> None:
    problems.append(text)
    check.damaged.append(path)
