"""A profile's folders checked by the worker while the form is being filled in.

The web process cannot read users' folders, so the profile form asks the worker (over the
file socket, jobs/fileserver.py) whether each source exists and is a readable folder and
whether the destination exists, is writable and can hold snapshots. The checks are the very
ones a run starts with (jobs/engines/snapshots.py), so the form says now what the first run
would otherwise say at two in the morning. A missing destination folder is made on request,
every folder on the way opened without following links (jobs/engines/confine.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from jobs import hosts
from jobs.destinations import destination_drive_missing  # the run's own "this is the drive"
from jobs.engines import confine, snapshots
from jobs.engines.snapshots import CheckError
from jobs.queue import settings
from models import Drive

MAX_SOURCES = 50


def _line(path: str, ok: bool | None, message: str, **more) -> dict:
    """One path's verdict: ok True (fine), False (a problem), None (not checked now)."""
    return {"path": path, "ok": ok, "message": message, **more}


def check(sources: list[str], destination: str, mode: str = "snapshot") -> dict:
    sources = [s for s in sources if s][:MAX_SOURCES]
    return {"sources": [check_source(source) for source in sources],
            "destination": check_destination(destination, sources, mode) if destination else None}


def check_source(source: str) -> dict:
    if hosts.remote_source(source):
        return _line(source, None, "On another machine: checked over SSH when a run starts.")
    try:
        snapshots.check_source(source)
    except CheckError as problem:
        return _line(source, False, str(problem))
    return _line(source, True, "A folder the worker can read.")


def _drive(destination: str) -> Drive | None:
    return Drive.of_path(destination, settings().drive_root)


def check_destination(destination: str, sources: list[str], mode: str = "snapshot") -> dict:
    if hosts.remote_source(destination):
        return _line(destination, None, "On another machine: checked over SSH when a run starts.")
    try:
        snapshots.check_path_text(destination, "destination folder")
        _not_overlapping(destination, sources)
    except CheckError as problem:
        return _line(destination, False, str(problem))
    drive = _drive(destination)
    if drive is not None:
        missing = destination_drive_missing(destination)
        if missing:
            return _line(destination, None, f"{missing}; checked again when it is plugged in.")
        if not os.path.isdir(destination):
            return _line(destination, True, f"On the drive {drive.name}; the folder is made "
                                            "by the first run.")
    if not os.path.lexists(destination):
        return _line(destination, False, f"{destination} does not exist.",
                     can_create=_can_make(destination))
    try:
        snapshots.check_destination(destination, sources)
        snapshots.check_writable(Path(destination))
    except CheckError as problem:
        return _line(destination, False, str(problem))
    fs = snapshots.filesystem_of(destination)
    if mode != "mirror" and (fs.mirror_only or not snapshots.supports_hardlinks(destination)):
        return _line(destination, False, f"{destination} is on a {fs.fstype} filesystem, which "
                     "cannot hold hardlinks or Unix permissions: choose mirror mode, or a "
                     "drive formatted ext4, xfs or btrfs.")
    free = snapshots.free_bytes(destination)
    return _line(destination, True, "A folder the worker can write to.", free=free,
                 filesystem=fs.fstype)


def _can_make(destination: str) -> bool:
    """The nearest folder above `destination` that exists is a folder (not a file)."""
    return os.path.isdir(_existing_part(os.path.dirname(os.path.normpath(destination)))[0])


def _not_overlapping(destination: str, sources: list[str]) -> None:
    """The destination is neither inside a source nor holds one, judged by where the nearest
    existing folder really is (the destination itself may not exist yet)."""
    snapshots.check_apart(destination, _real(destination),
                          [s for s in sources if not hosts.remote_source(s)])


def _real(path: str) -> str:
    head, tail = _existing_part(os.path.normpath(path))
    return os.path.join(os.path.realpath(head), *tail)


def _existing_part(path: str) -> tuple[str, list[str]]:
    """The longest leading part of `path` that exists (a link counts), and the names below it."""
    head, tail = path, []
    while not os.path.lexists(head) and head != "/":
        head, name = os.path.split(head)
        tail.insert(0, name)
    return head, tail


def create_destination(destination: str, sources: list[str]) -> str:
    """Make the missing destination folder (and missing folders above it), or raise
    CheckError. Nothing is made through a link, into an empty drive mount point or inside
    a source."""
    snapshots.check_path_text(destination, "destination folder")
    if os.path.normpath(destination) != destination or destination.startswith("//"):
        raise CheckError(f"Give the destination as a plain absolute path, without “..”, “.” "
                         f"or doubled slashes (not {destination}).")
    if hosts.remote_source(destination):
        raise CheckError("A folder on another machine is made by the first run.")
    _not_overlapping(destination, sources)
    drive = _drive(destination)
    if drive is not None:
        missing = destination_drive_missing(destination)
        if missing:
            raise CheckError(f"{missing}: nothing is made in its empty mount point.")
    if os.path.isdir(destination) and not os.path.islink(destination):
        raise CheckError(f"{destination} already exists.")
    try:
        fd = confine.open_folder(destination, create=True)
    except confine.Refused as refusal:
        raise CheckError(str(refusal)) from None
    os.close(fd)
    return f"Made {destination}."
