"""Reading a manifest: a folder's entries sorted and paged, find by name, compare two."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jobs.engines.manifest.paths import join, split
from jobs.engines.manifest.schema import FORMAT_VERSION, SORTS, ManifestError, _connect

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
