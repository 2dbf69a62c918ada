"""The Movie Database (TMDB) lookup: a movie's canonical title, year and id from a parsed
title and year. Plain HTTPS with the standard library, a token bucket so Cairn never sends
more than TMDB allows, and typed errors that say whether to wait (429 with Retry-After), give
up on the key (401) or treat the service as down (timeouts, 5xx), which the caller's circuit
breaker counts.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_URL = "https://api.themoviedb.org/3"
TIMEOUT_SECONDS = 10.0
# TMDB allows about 40 requests per 10 s per address; stay under it.
RATE_PER_SECOND = 3.0
BURST = 5


class TmdbError(Exception):
    """A lookup that failed: `kind` is unauthorized, rate_limited, unavailable or bad_response."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True)
class Match:
    tmdb_id: int
    title: str
    year: int | None
    original_title: str = ""


class RateLimiter:
    """A token bucket shared by the threads of one process."""

    def __init__(self, rate: float = RATE_PER_SECOND, burst: int = BURST,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self.tokens = float(burst)
        self.at = clock()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens < 1:
                delay = (1 - self.tokens) / self.rate
                self.sleep(delay)
                self.at = self.clock()
                self.tokens = 1.0
            self.tokens -= 1


class Client:
    def __init__(self, api_key: str, base_url: str = DEFAULT_URL, *,
                 limiter: RateLimiter | None = None, timeout: float = TIMEOUT_SECONDS) -> None:
        self.api_key = api_key.strip()
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or RateLimiter()
        self.timeout = timeout

    def search_movie(self, title: str, year: int | None = None) -> list[Match]:
        params = {"query": title, "include_adult": "false"}
        if year:
            params["year"] = str(year)
        data = self._get("/search/movie", params)
        try:
            return [Match(int(r["id"]), str(r.get("title") or ""), _year(r.get("release_date")),
                          str(r.get("original_title") or "")) for r in data["results"]]
        except (KeyError, TypeError, ValueError) as error:
            raise TmdbError("bad_response", f"TMDB answered something Cairn cannot read: "
                            f"{error}") from None

    def _get(self, path: str, params: dict[str, str]) -> dict:
        headers = {"Accept": "application/json"}
        if self.api_key.startswith("eyJ"):   # a v4 read access token
            headers["Authorization"] = f"Bearer {self.api_key}"
        else:
            params = {**params, "api_key": self.api_key}
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        self.limiter.wait()
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read(2_000_000))
        except urllib.error.HTTPError as error:
            raise _http_error(error) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TmdbError("unavailable", f"TMDB cannot be reached: {reason}") from None
        except json.JSONDecodeError:
            raise TmdbError("bad_response", "TMDB answered with something that is not JSON.") \
                from None


def _http_error(error: urllib.error.HTTPError) -> TmdbError:
    if error.code == 429:
        retry = error.headers.get("Retry-After", "")
        seconds = float(retry) if re.fullmatch(r"\d+(\.\d+)?", retry.strip()) else 10.0
        return TmdbError("rate_limited", f"TMDB asks to wait {seconds:g} s (429).", seconds)
    if error.code == 401:
        return TmdbError("unauthorized", "TMDB refused the API key (401): check "
                         "CAIRN_TMDB_API_KEY.")
    if error.code >= 500:
        return TmdbError("unavailable", f"TMDB is failing ({error.code}).")
    return TmdbError("bad_response", f"TMDB answered {error.code}.")


def _year(date: object) -> int | None:
    match = re.match(r"(\d{4})", str(date or ""))
    return int(match.group(1)) if match else None


def normalize_title(text: str) -> str:
    """A title without case, punctuation or doubled spaces: "Mr. Robot" is "mr robot"."""
    return re.sub(r"\s+", " ", re.sub(r"[\W_]+", " ", text.casefold())).strip()


def best(matches: list[Match], title: str, year: int | None) -> Match | None:
    """The result that is this movie: the same title (or original title) and year; or the
    same title a year off (release dates differ by country); or, with no year to go by, the
    first result with the same title."""
    wanted = normalize_title(title)
    same_title = [m for m in matches
                  if wanted in (normalize_title(m.title), normalize_title(m.original_title))]
    if year is None:
        return same_title[0] if same_title else None
    for near in (0, 1):
        for match in same_title:
            if match.year is not None and abs(match.year - year) == near:
                return match
    return None
