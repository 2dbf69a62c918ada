"""Sizes, counts and durations in Cairn's house format, for pages and job messages alike.

Written here rather than taken from `humanize`: the house format is fixed (`1.4 GB`,
`3 min 12 s`, `12,408 files`) and each piece is a few lines, while humanize's wording
("3 minutes") and units differ.
"""

from __future__ import annotations

import os
import re
import unicodedata

BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
DURATION_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
_RUNS = re.compile(r"(\d+)")


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
        text += " " + (noun if value == 1 else plural or _plural(noun))
    return text


def _plural(noun: str) -> str:
    """entry → entries, copy → copies, day → days, file → files."""
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


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


def natural_key(name: bytes | str | None) -> bytes:
    """A key that sorts names as people do: photo 2 before photo 10, Zebra after apple.

    Bytes, so that SQLite can order a manifest's rows by it (ORDER BY natural_key(name)
    calls it once per row and compares the keys as bytes), which a tuple key such as
    natsort's cannot do. Text is compared case-folded and without accents; a run of digits as its number (its
    length first, then its digits); the name itself breaks ties, so the order is total.
    """
    if name is None:
        return b""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", os.fsdecode(raw).casefold())
                   if not unicodedata.combining(ch))   # Été among the e's
    key = bytearray()
    for i, part in enumerate(_RUNS.split(text)):
        if i % 2:
            digits = part.lstrip("0") or "0"
            key += b"\x01" + bytes([min(len(digits), 255)]) + digits.encode()
        elif part:
            key += part.encode("utf-8", "surrogateescape")
    return bytes(key) + b"\x00" + raw


def sentence(text: str | None) -> str:
    """`text` ending in one full stop (or its own ?, ! or …), however it was written."""
    text = (text or "").rstrip()
    if not text or text[-1] in ".!?…":
        return text
    return text + "."
