"""The checks a backup run starts with, before anything is copied: the sources readable,
the destination there (its drive proved, a host reached through its breaker), writable,
able to hold snapshots and with room for a first one. A problem is a CheckError with words
for people; an absent drive or a paused host makes the run wait instead of fail.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from jobs import breakers, hosts
from jobs.destinations import drive_missing
from jobs.engines import snapshots, ssh
from jobs.engines.destination import SnapshotRoot
from jobs.engines.humane import format_bytes
from jobs.engines.snapshots import CheckError
from jobs.queue import settings
from models import Breaker, Drive, Profile, utcnow


def check_local(profile: Profile) -> tuple[Path, dict]:
    """Refuse unusable sources and destinations (CheckError); return the profile's folder on
    the destination and what the destination can hold."""
    missing = drive_missing(profile)
    if missing:
        raise DriveAbsent(missing)
    if Drive.of_path(profile.destination, settings().drive_root) is not None:
        # On the proved drive, not an empty mount point: the folder may be made.
        try:
            os.makedirs(profile.destination, exist_ok=True)
        except OSError as error:
            raise CheckError(f"Could not create {profile.destination} on the drive: "
                             f"{error.strerror}.") from None
    for source in profile.sources:
        if hosts.remote_source(source):
            check_host(source)
        else:
            snapshots.check_source(source)
    snapshots.check_destination(profile.destination, profile.sources)
    fs = snapshots.filesystem_of(profile.destination)
    mirror = profile.mode == "mirror"
    if not mirror and (fs.mirror_only or not snapshots.supports_hardlinks(profile.destination)):
        raise CheckError(
            f"Destination {profile.destination} is on a {fs.fstype} filesystem, which cannot "
            "hold hardlinks or Unix permissions, so snapshots are not possible there. Switch "
            "this profile to mirror mode (one up-to-date copy, no history), or use a drive "
            "formatted ext4, xfs or btrfs.")
    root = profile.root()
    snapshots.check_writable(root)
    snapshots.make_private(root)
    options = {"filesystem": fs.fstype, "mirror": mirror, "acls": False, "xattrs": False,
               "super_user": not mirror and snapshots.keeps_owners_without_root()}
    return root, options


def check_remote(profile: Profile, remote: SnapshotRoot) -> tuple[Path, dict]:
    """Sources here, the destination a folder on a host: reachable (through its breaker),
    its folder made, able to hold hardlinks (or the profile is a mirror)."""
    for source in profile.sources:
        snapshots.check_source(source)
    check_host(profile.destination)
    remote.make_dir()
    mirror = profile.mode == "mirror"
    fstype = remote.filesystem_type()
    if not mirror and not remote.supports_hardlinks():
        raise CheckError(f"Destination {profile.destination} is on a {fstype} filesystem that "
                         "cannot hold hardlinks, so snapshots are not possible there. Switch "
                         "this profile to mirror mode, or use another folder on the host.")
    # ACLs, xattrs and owners are the host user's to keep or not: not asked for.
    return Path(remote.root), {"filesystem": fstype, "mirror": mirror, "acls": False,
                               "xattrs": False, "super_user": False, "remote": True}


class HostPaused(CheckError):
    """A source's host cannot be reached now: the run waits for its breaker's next try."""

    def __init__(self, message: str, retry_at: dt.datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


def check_host(source: str) -> None:
    """The source's host is added, pinned, reachable and has rsync (through its breaker)."""
    target, _ = hosts.remote_source(source)
    host = hosts.host_for(target)
    if host is None:
        raise CheckError(f"{target} is not an added host: add it on the Hosts page, pin its "
                         "key, and give it Cairn's key.")
    try:
        hosts.check(host)
    except breakers.Paused as paused:
        raise HostPaused(str(paused), paused.breaker.next_try or utcnow()) from None
    except ssh.SshError as error:
        if error.kind in ("unreachable", "unknown_host"):
            breaker = Breaker.get_or_none(Breaker.name == host.breaker_name)
            raise HostPaused(str(error), breaker.next_try if breaker and breaker.next_try
                             else utcnow()) from None
        raise CheckError(str(error)) from None


class DriveAbsent(CheckError):
    """The destination's drive is not there: the run waits for it instead of failing."""


def check_room(destination: str, needed: int, there: SnapshotRoot) -> None:
    free = there.free_bytes()
    if needed > free:
        raise CheckError(f"The first snapshot needs {format_bytes(needed)} but destination "
                         f"{destination} has only {format_bytes(free)} free.")
