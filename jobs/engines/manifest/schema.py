"""The manifest file: its tables, format version and how it is opened."""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

from jobs.engines.humane import natural_key

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
