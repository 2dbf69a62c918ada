"""Writing a snapshot's manifest once its run has finished, reusing the previous one's hashes."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from jobs.engines.hashing import ALGORITHM, BUFFER_BYTES, _open_file, hash_fd
from jobs.engines.manifest.schema import (
    _INSERT_STATED,
    BATCH_ROWS,
    FORMAT_VERSION,
    INDEXES,
    INSERT,
    MAX_LISTED,
    PROGRESS_SECONDS,
    SCHEMA,
    _connect,
    _read_only,
)

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
