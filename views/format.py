"""Human-readable numbers and times, registered as Jinja filters.

Local time with the UTC value on hover is rendered here; sizes, counts and durations come
from `jobs/engines/humane.py`, which jobs use for their messages too.
"""

from __future__ import annotations

import datetime as dt
import functools
import grp
import pwd
import re
import stat
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from jobs.engines.humane import format_bytes, format_count, format_duration, sentence
from jobs.engines.snapshots import TIMESTAMP_FORMAT

__all__ = ["format_ago", "format_bytes", "format_count", "format_duration", "format_file_time",
           "format_mode", "format_owner", "format_percent", "format_time", "local_names", "sentence",
           "to_local", "utc_day_start"]

def format_percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}%"


def utc_day_start(day: dt.date, tz: str) -> dt.datetime:
    """Midnight of `day` in the zone `tz`, as naive UTC (how the database keeps times)."""
    local = dt.datetime.combine(day, dt.time(), ZoneInfo(tz))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def to_local(value: dt.datetime, tz: str) -> dt.datetime:
    """A naive UTC time from the database, in the zone `tz`."""
    return value.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(tz))


def format_time(value: dt.datetime | None, tz: str, seconds: bool = False) -> Markup:
    """`<time>` in the viewer's zone, with the UTC value on hover."""
    if value is None:
        return Markup("–")
    local = to_local(value, tz)
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    utc = value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}Z" title="{}">{}</time>').format(
        value.isoformat(timespec="seconds"), utc, escape(shown))


# A snapshot's folder name inside a text: the UTC time it was taken (2026-12-01T023000Z).
_SNAPSHOT_IN_TEXT = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{6}Z\b")


def local_names(text: str | None, tz: str) -> Markup:
    """`text` (escaped) with each snapshot folder name in it said as the viewer's local time,
    the folder name on hover: messages are written once, in UTC, and read in many zones."""
    if not text:
        return Markup("")
    out, last = [], 0
    for found in _SNAPSHOT_IN_TEXT.finditer(text):
        try:
            taken = dt.datetime.strptime(found.group(0), TIMESTAMP_FORMAT)
        except ValueError:
            continue
        local = to_local(taken, tz).strftime("%Y-%m-%d %H:%M:%S")
        out += [escape(text[last:found.start()]),
                Markup('<time datetime="{}Z" title="{} (its folder, in UTC)">{}</time>').format(
                    taken.isoformat(timespec="seconds"), found.group(0), local)]
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def format_ago(value: dt.datetime | None, now: dt.datetime) -> str:
    if value is None:
        return "never"
    return f"{format_duration((now - value).total_seconds())} ago"


def format_file_time(seconds: float, tz: str) -> Markup:
    """A file's modification time (seconds since the epoch) in the viewer's zone."""
    try:
        value = dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return Markup("–")
    return format_time(value, tz)


def format_mode(mode: int) -> str:
    """`drwxr-x---`, as ls shows it."""
    return stat.filemode(mode)


def format_owner(uid: int, gid: int) -> Markup:
    """`ada:ada` where this box knows the ids, else the numbers; the numbers on hover (a
    snapshot keeps ids, and the same name may mean another id on the box it came from)."""
    return Markup('<span title="{}:{}">{}:{}</span>').format(uid, gid, _user(uid), _group(gid))


@functools.lru_cache(maxsize=256)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError, TypeError):
        return str(uid)


@functools.lru_cache(maxsize=256)
def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except (KeyError, OverflowError, TypeError):
        return str(gid)
