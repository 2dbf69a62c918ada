"""The catalog of snapshots: their rows, and their manifests. A manifest is written when a
run finishes a snapshot (for older snapshots, when the worker starts) and deleted with it.

Manifests live in `<data dir>/manifests/<profile id>/<snapshot>.sqlite`, where the web
process (unprivileged, without the worker's right to read every file) can read them: the
pages browse, search and compare snapshots from these files, never from the trees.
"""

from __future__ import annotations

import logging
from pathlib import Path

from jobs.destinations import drive_missing, root_of
from jobs.engines import manifest, snapshots
from jobs.engines.humane import format_count
from jobs.queue import huey, settings, with_db
from models import Event, Profile, Run, Snapshot, utcnow

log = logging.getLogger(__name__)

REMOTE_NOT_INDEXED = ("Snapshots on another machine have no manifest yet: restore them there "
                      "with rsync from their folder; Cairn browses, verifies and restores "
                      "snapshots on this box's disks.")


def manifests_dir() -> Path:
    return settings().data_dir / "manifests"


def manifest_path(snapshot: Snapshot) -> Path:
    return manifest.path_for(manifests_dir(), snapshot.profile_id, snapshot.name)


def tree(snapshot: Snapshot) -> Path:
    return snapshot.profile.root() / snapshot.name


class NotHere(Exception):
    """The snapshot's folder cannot be read on this box now; the message says why."""


def readable_tree(snapshot: Snapshot) -> Path:
    """The snapshot's folder, when this box can read it: not on a host, its drive plugged in,
    the folder still there. Otherwise NotHere."""
    profile = snapshot.profile
    if root_of(profile).remote:
        raise NotHere(REMOTE_NOT_INDEXED)
    missing = drive_missing(profile)
    if missing:
        raise NotHere(f"{missing} Plug it in and try again.")
    folder = tree(snapshot)
    if not folder.is_dir():
        raise NotHere(f"The snapshot folder {folder} is not there: it was deleted or moved "
                      "outside Cairn.")
    return folder


def record(run: Run) -> Snapshot:
    return Snapshot.record(run.profile, run.snapshot, snapshots.snapshot_time(run.snapshot), run)


def index(snapshot: Snapshot, previous: str = "", fresh=()) -> manifest.Summary:
    """Write the snapshot's manifest (reusing the hashes of `previous`, the snapshot it was
    linked to, and `fresh` ones, of files just copied) and keep its totals on the row."""
    before = manifest.path_for(manifests_dir(), snapshot.profile_id, previous) if previous else None
    summary = manifest.write(tree(snapshot), manifest_path(snapshot), before, fresh=fresh)
    Snapshot.update(indexed_at=utcnow(), index_error="", files=summary.files, dirs=summary.dirs,
                    bytes=summary.bytes, new_files=summary.new_files,
                    new_bytes=summary.new_bytes).where(Snapshot.id == snapshot.id).execute()
    return summary


def index_failed(snapshot: Snapshot, reason: str) -> None:
    Snapshot.update(index_error=reason[:2000]).where(Snapshot.id == snapshot.id).execute()


def forget(profile: Profile, names: list[str], now) -> None:
    """Snapshots retention deleted: marked on their rows, their manifests removed."""
    Snapshot.update(pruned_at=now).where((Snapshot.profile == profile)
                                         & Snapshot.name.in_(names)).execute()
    for name in names:
        path = manifest.path_for(manifests_dir(), profile.id, name)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".lock").unlink(missing_ok=True)


def previous_of(snapshot: Snapshot) -> str:
    """The newest indexed snapshot before this one (the one it was most likely linked to)."""
    before = (Snapshot.select(Snapshot.name)
              .where((Snapshot.profile == snapshot.profile_id) & (Snapshot.name < snapshot.name)
                     & Snapshot.indexed_at.is_null(False) & Snapshot.pruned_at.is_null())
              .order_by(Snapshot.name.desc()).first())
    return before.name if before else ""


@huey.task()
@with_db
def index_missing() -> int:
    """Index every snapshot that has no manifest yet, oldest first (so each can reuse the
    hashes of the one before). Snapshots on hosts, or on a drive that is not here, wait."""
    done = 0
    for snapshot in Snapshot.unindexed().order_by(Snapshot.profile, Snapshot.name):
        if snapshot.run_id and snapshot.run.state in ("running", "finalizing"):
            continue   # its run's finish writes it (resumed, if a worker died finishing it)
        profile = snapshot.profile
        if root_of(profile).remote:
            index_failed(snapshot, REMOTE_NOT_INDEXED)
            continue
        if drive_missing(profile) or not tree(snapshot).is_dir():
            continue
        try:
            index(snapshot, previous_of(snapshot))
            done += 1
        except (OSError, manifest.ManifestError) as error:
            log.warning("indexing snapshot %s of %s failed: %s", snapshot.name, profile.name, error)
            index_failed(snapshot, str(error))
    if done:
        Event.publish("snapshots.indexed", "system", f"Indexed {format_count(done, 'older snapshot')}.")
    return done
