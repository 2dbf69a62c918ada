"""Where a profile's snapshots live (jobs/engines/destination.py), found for a profile, and
whether its adopted drive is really there.

Every step that writes to a drive first proves it (`drive_missing`): an unplugged drive
leaves an empty mount-point folder, which must never receive a backup.
"""

from __future__ import annotations

from jobs import hosts
from jobs.engines import drives as drives_engine
from jobs.engines.destination import LocalRoot, SnapshotRoot
from jobs.queue import settings
from models import Drive, Profile


def root_of(profile: Profile) -> SnapshotRoot:
    """The profile's folder of snapshots: on a host, or on this box (a drive's included).
    CheckError when it is on a host that was never added."""
    return hosts.destination_root(profile) or LocalRoot(profile.root())


def drive_missing(profile: Profile) -> str | None:
    """Why the profile's destination is not on its adopted drive now (None: it is, or the
    destination is on no drive). Never write into an empty mount-point folder."""
    return destination_drive_missing(profile.destination)


def destination_drive_missing(destination: str) -> str | None:
    drive = Drive.of_path(destination, settings().drive_root)
    if drive is None:
        return None
    problem = drives_engine.prove(drive.root(settings().drive_root), drive.uuid, drive.token)
    return f"{drive.name}: {problem}" if problem else None
