import pytest

from models import db, open_database
from models.migrate import migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Every test here runs once on SQLite and once on PostgreSQL."""
    return request.param


@pytest.fixture
def migrated(database_url):
    """A migrated database with a connection open for the test."""
    database = open_database(database_url)
    migrate(database)
    with db.connection_context():
        yield database
