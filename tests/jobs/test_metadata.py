"""TMDB through the breaker and the cache, against a fake TMDB on loopback: found and cached,
not found, an outage that leaves the import unverified and opens the breaker, and no call at
all while the breaker is open or no key is set."""

import datetime as dt

import pytest

from jobs import metadata
from models import Breaker, MetadataLookup
from tests.helpers.settings import use_settings
from tests.helpers.tmdb import HEAT, FakeTmdb

NOW = dt.datetime(2026, 11, 29, 12, 0)
pytestmark = pytest.mark.usefixtures("inline")


@pytest.fixture
def tmdb_on(monkeypatch, fake):
    use_settings(monkeypatch, tmdb_api_key="k3y",
                 tmdb_url=f"http://127.0.0.1:{fake.server_port}/3")
    monkeypatch.setattr(metadata, "_limiter", metadata.tmdb.RateLimiter(rate=1000, burst=1000))
    return fake


def test_a_movie_found_is_verified_and_cached(tmdb_on):
    FakeTmdb.answer = (200, {}, HEAT)
    found = metadata.identify("heat", 1995, NOW)
    assert (found.title, found.year, found.tmdb_id, found.verified) == ("Heat", 1995, 949, True)
    again = metadata.identify("Heat.", 1995, NOW + dt.timedelta(days=1))
    assert again == found and len(FakeTmdb.seen) == 1
    assert Breaker.get(Breaker.name == "tmdb").state == "closed"


def test_a_movie_tmdb_does_not_know_keeps_its_parsed_name(tmdb_on):
    FakeTmdb.answer = (200, {}, {"results": []})
    found = metadata.identify("Home Video", 2019, NOW)
    assert (found.title, found.verified) == ("Home Video", False) and "knows no movie" in found.note
    assert MetadataLookup.get().found is False


def test_an_outage_leaves_it_unverified_opens_the_breaker_and_then_calls_nothing(tmdb_on):
    FakeTmdb.answer = (503, {}, {})
    found = metadata.identify("Heat", 1995, NOW)
    assert (found.title, found.year, found.verified) == ("Heat", 1995, False)
    assert "TMDB is failing (503)" in found.note
    assert Breaker.get(Breaker.name == "tmdb").state == "open"
    FakeTmdb.answer = (200, {}, HEAT)
    paused = metadata.identify("Heat", 1995, NOW + dt.timedelta(seconds=10))
    assert "paused" in paused.note and len(FakeTmdb.seen) == 1
    later = metadata.identify("Heat", 1995, NOW + dt.timedelta(minutes=2))
    assert later.verified and Breaker.get(Breaker.name == "tmdb").state == "closed"


def test_a_429_pauses_like_an_outage(tmdb_on):
    FakeTmdb.answer = (429, {"Retry-After": "30"}, {})
    found = metadata.identify("Heat", 1995, NOW)
    assert not found.verified and "wait 30 s" in found.note


def test_without_a_key_nothing_is_asked(fake):  # noqa: F811
    found = metadata.identify("Heat", 1995, NOW)
    assert not found.verified and "no TMDB key" in found.note and FakeTmdb.seen == []


def test_movies_named_during_an_outage_are_confirmed_later(tmdb_on):
    from jobs import library as lib
    from models import ImportItem, Movie, MovieFile

    FakeTmdb.answer = (503, {}, {})
    heat = lib.movie_for("heat", 1995, None, False)
    MovieFile.create(movie=heat, path="heat/heat.mkv", size=1, quality="DVD")
    item = ImportItem.create(path="/in/heat.mkv", name="heat.mkv", state="imported", movie=heat)
    assert lib.enrich(NOW) == 0, "TMDB down: nothing confirmed, and no more asked"
    assert len(FakeTmdb.seen) == 1
    FakeTmdb.answer = (200, {}, HEAT)
    Breaker.update(state="closed", next_try=None).execute()
    assert lib.enrich(NOW + dt.timedelta(minutes=1)) == 1
    movie = Movie.get_by_id(heat.id)
    assert (movie.title, movie.year, movie.tmdb_id, movie.verified, movie.key) == \
        ("Heat", 1995, 949, True, "tmdb:949")
    assert ImportItem.get_by_id(item.id).verified and MovieFile.get().path == "heat/heat.mkv"


def test_two_names_of_one_movie_become_one_when_tmdb_confirms_them(tmdb_on):
    from jobs import library as lib
    from models import Movie, MovieFile

    FakeTmdb.answer = (200, {}, HEAT)
    known = lib.movie_for("Heat", 1995, 949, True)
    other = lib.movie_for("HEAT", 1995, None, False)
    MovieFile.create(movie=other, path="old/heat.avi", size=1, quality="DVD")
    assert lib.enrich(NOW) == 1
    assert [m.id for m in Movie.select()] == [known.id]
    assert MovieFile.get().movie_id == known.id
