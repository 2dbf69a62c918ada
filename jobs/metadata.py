"""Canonical titles and years from TMDB for the media import, through the circuit breaker.

An outage never stops an import: with no key, an open breaker, TMDB down or rate limiting,
the parsed title and year are used and the result is marked unverified, to be enriched later.
Answers (found or not) are cached for 30 days in MetadataLookup.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from jobs import breakers
from jobs.engines import tmdb
from jobs.queue import settings
from models import MetadataLookup, utcnow
from models.setting import live

BREAKER = "tmdb"
_limiter = tmdb.RateLimiter()   # one per process: every import thread shares TMDB's allowance


@dataclass(frozen=True)
class Identity:
    title: str
    year: int | None
    tmdb_id: int | None = None
    verified: bool = False
    note: str = ""


def _query(title: str, year: int | None) -> str:
    return tmdb.normalize_title(title)[:290] + f"|{year or ''}"


def enabled() -> bool:
    return bool(live(settings()).tmdb_api_key)


def identify(title: str, year: int | None, now: dt.datetime | None = None) -> Identity:
    """The movie a parsed title and year name, as TMDB knows it when it can say."""
    now = now or utcnow()
    if not enabled():
        return Identity(title, year, note="TMDB lookups are off (no TMDB key under System ▸ Settings).")
    query = _query(title, year)
    cached = MetadataLookup.fresh(query, now)
    if cached is not None:
        return _from(cached, title, year)
    try:
        breakers.check(BREAKER, "TMDB", now)
    except breakers.Paused as paused:
        return Identity(title, year, note=f"Unverified: {paused}")
    try:
        matches = tmdb.Client(live(settings()).tmdb_api_key, settings().tmdb_url,
                              limiter=_limiter).search_movie(title, year)
    except tmdb.TmdbError as error:
        breakers.failed(BREAKER, str(error), "TMDB", now)
        return Identity(title, year, note=f"Unverified: {error}")
    breakers.succeeded(BREAKER, now)
    match = tmdb.best(matches, title, year)
    if match is None:
        MetadataLookup.remember(query, now)
        return Identity(title, year, note="TMDB knows no movie of that title and year.")
    MetadataLookup.remember(query, now, found=True, tmdb_id=match.tmdb_id, title=match.title,
                            year=match.year)
    return Identity(match.title, match.year, match.tmdb_id, True)


def _from(cached: MetadataLookup, title: str, year: int | None) -> Identity:
    if not cached.found:
        return Identity(title, year, note="TMDB knows no movie of that title and year.")
    return Identity(cached.title, cached.year, cached.tmdb_id, True)
