"""Fixtures of the engine tests."""

from tests.helpers.tmdb import fake  # noqa: F401 (the fake TMDB, for the tests here)
