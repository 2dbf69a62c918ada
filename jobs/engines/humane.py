"""Sizes, counts and durations in Cairn's house format, for pages and job messages alike.

Written here rather than taken from `humanize`: the house format is fixed (`1.4 GB`,
`3 min 12 s`, `12,408 files`) and each piece is a few lines, while humanize's wording
("3 minutes") and units differ.
"""

from __future__ import annotations

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
