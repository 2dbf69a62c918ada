"""Paths from outside (the browser, the command line) as places inside a snapshot."""

from __future__ import annotations

import os

from jobs.engines.manifest.schema import PathRefused

# --- paths from outside ----------------------------------------------------------------------

def clean_path(text: str) -> str:
    """A snapshot-relative path as the browser or the command line gave it, checked: no
    absolute paths, no `.` or `..` parts, no empty parts, no NUL. '' is the top.

    Decoding happens before this (Flask decodes %2e%2e to '..', which is refused here; a
    twice-encoded %252e stays a literal name that no snapshot holds)."""
    if "\x00" in text:
        raise PathRefused("A path cannot contain a NUL character.")
    if text.startswith("/"):
        raise PathRefused("Give the path inside the snapshot, not an absolute one.")
    text = text.rstrip("/")
    if not text:
        return ""
    for part in text.split("/"):
        if part in ("", ".", ".."):
            raise PathRefused(f"{text!r} is not a plain path inside the snapshot.")
    if len(os.fsencode(text)) > 4096:
        raise PathRefused("That path is too long.")
    return text


def split(path: str) -> tuple[bytes, bytes]:
    raw = os.fsencode(path)
    parent, _, name = raw.rpartition(b"/")
    return parent, name


def join(parent: bytes, name: bytes) -> bytes:
    return parent + b"/" + name if parent else name


def open_inside(root: str, path: str, flags: int = os.O_RDONLY) -> int:
    """Open `path` inside `root` one component at a time without following any symlink, so
    a link in a snapshot can never lead out of it. Returns a file descriptor."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in [p for p in os.fsencode(clean_path(path)).split(b"/") if p][:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        last = os.fsencode(path).rsplit(b"/", 1)[-1] if path else b"."
        return os.open(last, flags | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)
