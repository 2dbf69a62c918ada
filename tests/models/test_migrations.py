import threading

import pytest
from peewee import SqliteDatabase
from playhouse.schema_diff import diff_models

from models import ALL_MODELS, open_database
from models.migrate import MIGRATIONS_DIR, migrate, pending


@pytest.fixture
def database(database_url):
    return open_database(database_url)


# Written by hand in migration 0007, outside the models: PostgreSQL's trigram index of log text.
HAND_MADE_INDEXES = {"run_message_text_trigrams"}


def test_migrations_build_exactly_the_schema_the_models_describe(database):
    assert migrate(database) == sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))
    with database.connection_context():
        diff = diff_models(database, ALL_MODELS)
    diff = diff._replace(drop_indexes=[i for i in diff.drop_indexes
                                       if i.name not in HAND_MADE_INDEXES])
    assert not diff


def test_log_text_is_indexed_for_search(database):
    migrate(database)
    with database.connection_context():
        if isinstance(database, SqliteDatabase):
            assert "run_message_text" in database.get_tables()
        else:
            names = {i.name for i in database.get_indexes("run_message")}
            assert HAND_MADE_INDEXES <= names


def test_migrating_again_changes_nothing(database):
    migrate(database)
    assert migrate(database) == []
    assert pending(database) == []


def test_a_fresh_database_lists_every_migration_as_pending(database):
    assert pending(database) == sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))


def test_processes_starting_together_apply_each_migration_once(database_url):
    # Web and worker start at the same moment under systemd; each has its own connection.
    results, errors = [], []

    def start():
        try:
            results.append(migrate(open_database(database_url)))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    everything = sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))
    assert sorted(results) == [[], [], [], everything]
