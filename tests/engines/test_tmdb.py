"""TMDB lookups against a fake TMDB on loopback (the public internet is the one thing tests
mock): results read, the best match chosen, 429 with Retry-After, 401, 5xx and a dead port
told apart, and the rate limit kept."""


import pytest

from jobs.engines import tmdb
from jobs.engines.tmdb import Match
from tests.helpers.tmdb import HEAT, FakeTmdb


def client(server, key="k3y"):
    return tmdb.Client(key, f"http://127.0.0.1:{server.server_port}/3", timeout=2,
                       limiter=tmdb.RateLimiter(rate=1000, burst=1000))


def test_a_search_sends_the_title_year_and_key_and_reads_the_results(fake):
    FakeTmdb.answer = (200, {}, HEAT)
    found = client(fake).search_movie("Heat", 1995)
    assert found[0] == Match(949, "Heat", 1995, "Heat")
    path, query, auth = FakeTmdb.seen[0]
    assert path == "/3/search/movie" and query["query"] == ["Heat"] and query["year"] == ["1995"]
    assert query["api_key"] == ["k3y"] and auth is None


def test_a_read_access_token_goes_in_the_header(fake):
    client(fake, "eyJhbGciOi.token").search_movie("Heat")
    path, query, auth = FakeTmdb.seen[0]
    assert auth == "Bearer eyJhbGciOi.token" and "api_key" not in query


@pytest.mark.parametrize("answer, kind, retry", [
    ((429, {"Retry-After": "7"}, {}), "rate_limited", 7.0),
    ((401, {}, {"status_message": "Invalid API key"}), "unauthorized", None),
    ((503, {}, {}), "unavailable", None),
    ((200, {}, b"<html>not json"), "bad_response", None),
    ((200, {}, {"no": "results"}), "bad_response", None),
])
def test_failures_are_told_apart(fake, answer, kind, retry):
    FakeTmdb.answer = answer
    with pytest.raises(tmdb.TmdbError) as raised:
        client(fake).search_movie("Heat")
    assert raised.value.kind == kind and raised.value.retry_after == retry


def test_a_dead_service_is_unavailable(fake):
    port = fake.server_port
    fake.shutdown()
    fake.server_close()
    dead = tmdb.Client("k", f"http://127.0.0.1:{port}/3", timeout=1)
    with pytest.raises(tmdb.TmdbError) as raised:
        dead.search_movie("Heat")
    assert raised.value.kind == "unavailable"


def test_the_best_match_is_the_same_title_and_year_or_a_year_off():
    matches = [Match(1, "Heat", 1986), Match(949, "Heat", 1995), Match(5, "Heat Wave", 1995)]
    assert tmdb.best(matches, "heat", 1995).tmdb_id == 949
    assert tmdb.best(matches, "Heat", 1996).tmdb_id == 949
    assert tmdb.best(matches, "Heat", 2010) is None
    assert tmdb.best(matches, "Heat", None).tmdb_id == 1
    assert tmdb.best([Match(7, "Le Fabuleux Destin", 2001, "Amélie")], "Amélie", 2001).tmdb_id == 7


def test_the_rate_limiter_waits_when_the_bucket_is_empty():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = tmdb.RateLimiter(rate=2.0, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.wait()
    assert slept == [0.5, 0.5]
