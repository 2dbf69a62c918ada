"""Restores: files and folders of a snapshot copied back with rsync, to where they were or to
another folder, on this box or on a host; a dry run first says what would be created and what
already exists (overwritten only when the person asked for it).

Each restore is a job like a backup: a row with live progress, an event when it ends, and the
audit entry of whoever asked for it (written by the view or the command line).
"""

from __future__ import annotations

import logging
import os

from jobs import catalog, hosts
from jobs.engines import confine, manifest, rsync, ssh
from jobs.engines import restore as engine
from jobs.engines.humane import format_bytes, format_count
from jobs.queue import huey, local, settings, with_db
from jobs.restore_writer import CannotRestore, Writer
from models import Event, Host, Profile, Restore, Snapshot, utcnow
from models.setting import live

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.5
KEPT_ITEMS = 1000


def request(snapshot: Snapshot, paths: list[str], *, target: str | None, host: Host | None = None,
            overwrite: bool = False, dry_run: bool = False, fresh: bool = False,
            requested_by: str = "", enqueue: bool = True, confined: bool = True) -> Restore:
    """A queued restore of `paths` (inside the snapshot) into `target` (None: each back to its
    original place; with `fresh`, a new folder named `target` and a random suffix), checked
    before anything is queued; the worker checks again before it writes."""
    paths = _known(snapshot, paths)
    if target is not None:
        target = engine.check_target(target)
    elif host is None:
        machines = {engine.original(p)[0] for p in paths}
        if machines != {engine.LOCAL_HOST}:
            raise engine.RestoreError("Items from another machine go back there through its host "
                                      "entry: choose the host, or restore them to a folder here.")
    _place(engine.plan(paths, target), host, fresh, confined)
    restore = Restore.create(profile=snapshot.profile_id, snapshot=snapshot, paths=paths,
                             target=target or "", host=host, overwrite=overwrite, dry_run=dry_run,
                             fresh=fresh, requested_by=requested_by)
    try:
        Event.publish("restore.queued", restore.subject, f"{_what(restore)} queued.",
                      restore=restore.id, profile=snapshot.profile_id)
        if enqueue:
            run_restore(restore.id)
    except Exception as error:   # never a restore left queued for ever
        _end(restore, "failed", f"Could not queue the restore: {error}")
        raise
    return restore


def _known(snapshot: Snapshot, paths: list[str]) -> list[str]:
    """The paths, checked: plain paths inside the snapshot (PathRefused otherwise) that its
    manifest lists, when it has one."""
    paths = [manifest.clean_path(p) for p in paths]
    if not paths or "" in paths:
        raise engine.RestoreError("Pick at least one file or folder to restore.")
    if snapshot.indexed_at is not None and catalog.manifest_path(snapshot).exists():
        with manifest.Manifest(catalog.manifest_path(snapshot)) as index:
            unknown = [p for p in paths if index.entry(p) is None]
        if unknown:
            raise engine.RestoreError(f"Snapshot {snapshot.name} holds no "
                                      f"{engine.shown(unknown[0])!r}.")
    return paths


def allowed_roots(host: Host | None) -> tuple[str, ...]:
    """Where restores may write besides the files' original places: on this box the
    restore roots (CAIRN_RESTORE_ROOTS, by default the source roots); on a host the folders
    an admin named for it, and those of it that profiles back up."""
    if host is None:
        return live(settings()).restore_folders
    folders = list(host.restore_roots)
    for profile in Profile.select(Profile.sources):
        for source in profile.sources:
            remote = hosts.remote_source(source)
            if remote and hosts.host_for(remote[0]) == host:
                folders.append(remote[1].rstrip("/") or "/")
    return tuple(sorted(set(folders)))


def _place(groups: list[engine.Group], host: Host | None, fresh: bool,
           confined: bool) -> list[bool]:
    """For each group, whether its files come back as they were (owners, modes, devices,
    ACLs, attributes: at their original place) or as the target folder's; a RestoreError
    for a place restores may not write to. Unconfined (the command line, run by root or the
    worker's user, who may do all of that anyway) writes anywhere but Cairn's own data, and
    everything comes back as it was."""
    machine = host.hostname if host is not None else engine.LOCAL_HOST
    roots = allowed_roots(host) if confined else ("/",)
    refused = () if host is not None else (str(settings().data_dir),)
    places = [engine.as_before(g, machine, roots, refused, fresh) for g in groups]
    return places if confined else [True] * len(groups)


def cancel(restore: Restore) -> bool:
    return restore.request_cancel()


@huey.task()
@with_db
def run_restore(restore_id: int) -> None:
    perform(restore_id)


def perform(restore_id: int, confined: bool = True) -> Restore:
    """Carry out a queued restore. Where it may write is checked again here, by the worker;
    `confined=False` only for the command line's own process."""
    restore = Restore.get_or_none(Restore.id == restore_id)
    if restore is None or not restore.move(("queued",), "running", started_at=utcnow(),
                                           owner=local.worker_id):
        return restore
    try:
        state, message = _restore(restore, confined)
    except (CannotRestore, catalog.NotHere, engine.RestoreError, ssh.SshError,
            confine.Refused) as reason:
        state, message = "failed", str(reason)
    except Exception as error:
        log.exception("restore %s failed", restore_id)
        state, message = "failed", f"Internal error while restoring: {error}"
    _end(restore, state, message)
    return Restore.get_by_id(restore_id)


def _restore(restore: Restore, confined: bool) -> tuple[str, str]:
    snapshot = Snapshot.get_by_id(restore.snapshot_id)
    tree = catalog.readable_tree(snapshot)
    host = Host.get_by_id(restore.host_id) if restore.host_id else None
    groups = engine.plan(list(restore.paths), restore.target or None)
    places = _place(groups, host, restore.fresh, confined)
    job = Writer(restore, tree, host, _flags(snapshot))
    if job.watch.should_stop():
        return "cancelled", "Cancelled before it started."
    found = engine.Preview()
    for group, back in zip(groups, places, strict=True):   # what exists, and the totals
        result = job.preview(group, back)
        if result.stopped:
            return "cancelled", "Cancelled before anything was copied."
        _fail_on(result)
        _merge(found, engine.preview(result, restore.overwrite), group.dest)
    kept = 0 if restore.overwrite else found.overwritten
    Restore.update(total_files=found.files, total_bytes=found.bytes, created=found.created,
                   overwritten=found.overwritten if restore.overwrite else 0, kept=kept,
                   items=[[a, engine.shown(p)] for a, p in found.items[:KEPT_ITEMS]]).where(
        Restore.id == restore.id).execute()
    if restore.dry_run:
        return "succeeded", _preview_message(found, restore.overwrite)
    return _copy(job, groups, places, found)


def _copy(job: Writer, groups: list[engine.Group], places: list[bool],
          found: engine.Preview) -> tuple[str, str]:
    restore = job.restore
    errors: list[str] = []
    done_files = done_bytes = 0
    where = []
    for group, back in zip(groups, places, strict=True):
        job.watch.base = (done_files, done_bytes)
        result, dest, problems = job.copy(group, back)
        where.append(dest)
        done_files += result.counts.files
        done_bytes += result.counts.bytes
        errors += result.errors + problems
        if result.stopped:
            return "cancelled", f"Cancelled after {done_files:,} files; what was copied stays."
        if result.outcome in ("fatal", "retry") and not result.errors:
            errors.append(f"rsync stopped with exit code {result.exit_code}.")
    Restore.update(files_done=done_files, bytes_done=done_bytes, errors=errors[:200]).where(
        Restore.id == restore.id).execute()
    if errors and not done_files and not done_bytes:
        # rsync wrote nothing (a folder on the way went away under it, say): nothing came back,
        # whatever the preview counted.
        return "failed", f"Nothing was restored; {format_count(len(errors), 'problem')}, see the errors."
    into = engine.shown(where[0]) if restore.target else "their original places"
    summary = (f"{found.created:,} created, "
               + (f"{found.overwritten:,} overwritten" if restore.overwrite
                  else f"{found.overwritten:,} existing left as they were")
               + f" ({format_bytes(found.bytes)}) in {into}")
    if errors:
        return "partial", f"{summary}; {format_count(len(errors), 'problem')}, see the errors."
    return "succeeded", summary + "."


def _fail_on(result: rsync.Result) -> None:
    if result.outcome in ("fatal", "retry"):
        detail = "; ".join(result.errors[:3]) or f"exit code {result.exit_code}"
        raise CannotRestore(f"rsync could not read or reach the target: {detail}")


def _merge(into: engine.Preview, more: engine.Preview, dest: str) -> None:
    """Add a group's preview to the whole one, its lines named where they would be written."""
    for name in ("files", "bytes", "created", "overwritten", "unchanged"):
        setattr(into, name, getattr(into, name) + getattr(more, name))
    into.items += [(action, os.path.join(dest, path)) for action, path in more.items]


def _preview_message(found: engine.Preview, overwrite: bool) -> str:
    existing = (f"{format_count(found.overwritten, 'existing file')} would be overwritten" if overwrite
                else f"{format_count(found.overwritten, 'existing file')} that differ would be "
                     "left as they are "
                     "(choose to overwrite them to replace them)")
    return (f"Preview: {format_count(found.created, 'file or folder', 'files and folders')} "
            f"would be created, {existing}, "
            f"{found.unchanged:,} already identical; {format_bytes(found.bytes)} in all.")


def _flags(snapshot: Snapshot) -> dict[str, bool]:
    options = snapshot.run.options if snapshot.run_id and snapshot.run else {}
    return {name: bool(options.get(name)) for name in ("acls", "xattrs", "super_user")}


def _what(restore: Restore) -> str:
    snapshot = Snapshot.get_by_id(restore.snapshot_id)
    what = "Restore preview" if restore.dry_run else "Restore"
    items = engine.shown(restore.paths[0]) if len(restore.paths) == 1 else \
        f"{len(restore.paths)} items"
    return f"{what} of {items} from {snapshot.profile.name} {snapshot.name}"


def _end(restore: Restore, state: str, message: str) -> None:
    if not restore.finish(state, message):
        return
    Event.drop_progress(restore.subject)
    level = {"succeeded": "info", "cancelled": "info", "partial": "warning"}.get(state, "error")
    Event.publish("restore.finished", restore.subject,
                  f"{_what(restore)}: {restore.state_label.lower()}. {message}", level=level,
                  restore=restore.id, profile=restore.profile_id, state=state)
