"""Time zone names as people and browsers send them, checked before any use: at most 64
characters and one of the zones tzdata knows (ZoneInfo itself would try to open a 200 kB
name as a file, and fail with an OSError)."""

from __future__ import annotations

import functools
import zoneinfo

MAX_NAME = 64


@functools.cache
def known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone called `name`; ValueError if there is no such zone."""
    if not isinstance(name, str) or len(name) > MAX_NAME or name not in known():
        raise ValueError(f"{str(name)[:MAX_NAME]!r} is not a time zone name such as Europe/Berlin.")
    return zoneinfo.ZoneInfo(name)
