"""Apply the numbered migrations in models/migrations, once, whoever starts first."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from peewee import Database, PostgresqlDatabase
from playhouse.migrations import Runner

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant naming Cairn's migration lock among PostgreSQL advisory locks.
PG_LOCK_KEY = 0x6361_6972


def migrate(database: Database) -> list[str]:
    """Apply pending migrations; returns their names. Safe to call from several processes."""
    with _exclusive(database):
        return Runner(database, str(MIGRATIONS_DIR)).up()


def pending(database: Database) -> list[str]:
    with database.connection_context():
        return [m.name for m in Runner(database, str(MIGRATIONS_DIR)).status() if not m.applied]


@contextmanager
def _exclusive(database: Database) -> Iterator[None]:
    """A connection to `database`, held by one process at a time.

    peewee's runner reads the applied set and then applies the rest; web and worker starting
    together would both apply 0001 without this lock. With SQLite the lock is taken before
    the connection is opened: opening it sets WAL mode, which on a database being created or
    migrated by another process fails at once with "database is locked"."""
    if isinstance(database, PostgresqlDatabase):
        with database.connection_context():
            database.execute_sql("SELECT pg_advisory_lock(%s)", (PG_LOCK_KEY,))
            try:
                yield
            finally:
                database.execute_sql("SELECT pg_advisory_unlock(%s)", (PG_LOCK_KEY,))
    else:
        with open(f"{database.database}.migrate-lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            with database.connection_context():
                yield
