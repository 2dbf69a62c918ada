"""Human-readable numbers and times, registered as Jinja filters.

Written here rather than taken from `humanize`: Cairn's house format is fixed (`1.4 GB`,
`3 min 12 s`, `12,408 files`, local time with the UTC value on hover) and each piece is a
few lines, while humanize's wording ("3 minutes") and units differ.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
DURATION_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def format_bytes(value: float | None) -> str:
    """Decimal units, as disks are sold: 1.4 GB, 14.2 GB, 142 GB."""
    if value is None:
        return "–"
    size = float(value)
    for unit in BYTE_UNITS:
        if abs(size) < 1000 or unit == BYTE_UNITS[-1]:
            break
        size /= 1000
    if unit == "B":
        return f"{int(size)} B"
    return f"{size:.1f} {unit}" if abs(size) < 100 else f"{size:.0f} {unit}"


def format_count(value: int | None, noun: str = "", plural: str = "") -> str:
    """12,408 files; 1 file."""
    if value is None:
        return "–"
    text = f"{value:,}"
    if noun:
        text += " " + (noun if value == 1 else plural or noun + "s")
    return text


def format_duration(seconds: float | None) -> str:
    """The two largest units: 45 s, 3 min 12 s, 2 h 5 min, 3 d 4 h."""
    if seconds is None:
        return "–"
    remaining = max(0, int(round(seconds)))
    parts = []
    for unit, size in DURATION_UNITS:
        amount, remaining = divmod(remaining, size)
        if amount or parts:
            parts.append((amount, unit))
        if len(parts) == 2:
            break
    parts = [p for p in parts if p[0]] or [(0, "s")]
    return " ".join(f"{amount} {unit}" for amount, unit in parts)


def format_percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}%"


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


def format_ago(value: dt.datetime | None, now: dt.datetime) -> str:
    if value is None:
        return "never"
    return f"{format_duration((now - value).total_seconds())} ago"
