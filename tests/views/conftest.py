import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Every test here runs once on SQLite and once on PostgreSQL."""
    return request.param
