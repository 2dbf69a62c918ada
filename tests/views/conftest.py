import pytest

from jobs import fileserver
from jobs.queue import settings


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Every test here runs once on SQLite and once on PostgreSQL."""
    return request.param


@pytest.fixture
def files():
    """The worker's file server, as `cairn worker` starts it (on the worker's data dir: the
    tests using it give the web the same one)."""
    server = fileserver.FileServer(fileserver.socket_path(settings().data_dir))
    assert server.start()
    yield server
    server.stop()
