"""The one database handle. Imports nothing of ours; `open_database()` binds it to a URL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

from peewee import Database, DatabaseProxy, SqliteDatabase
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import PooledPostgresqlDatabase

db = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "synchronous": "normal",
}


def open_database(url: str) -> Database:
    """Bind `db` to the database at `url` and return it (not yet connected)."""
    database = _make_database(url)
    db.initialize(database)
    return database


def _make_database(url: str) -> Database:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # IMMEDIATE: a transaction takes the write lock when it begins and waits for it under
        # busy_timeout; a deferred one that upgrades later fails at once with "locked".
        return SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, timeout=10, lock_type="IMMEDIATE")
    if scheme in ("postgresql", "postgres"):
        params = parse_db_url(url, unquote_password=True, unquote_user=True)
        return PooledPostgresqlDatabase(params.pop("database"), max_connections=64,
                                        stale_timeout=300, timeout=10, **params)
    raise ValueError(f"unsupported database URL scheme {scheme!r}")


def utcnow() -> dt.datetime:
    """Naive UTC: every time in the database is UTC without a zone, on SQLite and PostgreSQL."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
