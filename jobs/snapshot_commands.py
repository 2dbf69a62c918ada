"""`cairn snapshot list`, `cairn verify` and `cairn restore`: snapshots from the command line.

Unlike `backup run`, these work in the command's own process, without the web or the worker:
restore must work when nothing else does. Run them as the user the worker runs as (or root),
which can read every snapshot and write where the files go back.
"""

from __future__ import annotations

import sys

import click

from jobs import restores, verify
from jobs.engines import manifest
from jobs.engines import restore as restore_engine
from jobs.engines.humane import format_bytes
from jobs.queue import with_db
from models import AuditEntry, Profile, Snapshot

snapshot_cli = click.Group("snapshot", help="List a profile's snapshots.")
SHOWN_PROBLEMS = 50


def _profile(name: str) -> Profile:
    profile = Profile.by_name(name)
    if profile is None:
        raise click.ClickException(f"No profile named {name!r} (see `profile list`).")
    return profile


def _snapshot(profile: Profile, name: str | None) -> Snapshot:
    """The named snapshot, or the newest for None or 'latest'."""
    if name in (None, "latest"):
        found = Snapshot.kept(profile).first()
        if found is None:
            raise click.ClickException(f"{profile.name} has no snapshots yet.")
        return found
    found = Snapshot.named(profile, name)
    if found is None:
        raise click.ClickException(f"{profile.name} has no snapshot {name!r} "
                                   f"(see `snapshot list {profile.name!r}`).")
    return found


@snapshot_cli.command("list")
@click.argument("name")
@with_db
def snapshot_list(name):
    """One line per snapshot of profile NAME, newest first: timestamp, state, files, size,
    new data, and "from a partial run" when some files could not be copied into it."""
    profile = _profile(name)
    rows = list(Snapshot.kept(profile))
    if not rows:
        click.echo(f"{profile.name} has no snapshots yet.")
    for snap in rows:
        state = snap.verify_state or ("not indexed" if snap.indexed_at is None else "not verified")
        files = f"{snap.files:,} files" if snap.indexed_at else "? files"
        partial = "\tfrom a partial run" if snap.from_partial_run else ""
        click.echo(f"{snap.name}\t{state}\t{files}\t{format_bytes(snap.bytes)}\t"
                   f"new {format_bytes(snap.new_bytes)}{partial}")


@click.command("verify")
@click.argument("name")
@click.argument("snapshot", required=False)
@click.option("--sample", type=click.FloatRange(0.01, 100), default=None, metavar="PERCENT",
              help="Re-read only this share of the files, picked at random.")
@click.option("--test-restore", is_flag=True,
              help="Restore the files (or the sample) to a temporary folder and compare them.")
@with_db
def verify_command(name, snapshot, sample, test_restore):
    """Re-read SNAPSHOT (default: the newest) of profile NAME against its manifest.

    Exit 0 when intact; 1 with the damaged files listed, or when it could not be checked."""
    snap = _snapshot(_profile(name), snapshot)
    kind = "test_restore" if test_restore else "verify"
    checked = verify.request(snap, percent=sample, kind=kind, trigger="cli", requested_by="cli",
                             enqueue=False)
    verify.run_verification.call_local(checked.id)
    result = type(checked).get_by_id(checked.id)
    click.echo(f"{snap.name}: {result.state_label}. {result.message}")
    for line in result.problems[:SHOWN_PROBLEMS]:
        click.echo(f"  {line}")
    if len(result.problems) > SHOWN_PROBLEMS:
        click.echo(f"  … and {len(result.problems) - SHOWN_PROBLEMS:,} more")
    sys.exit(0 if result.state == "intact" else 1)


@click.command("restore")
@click.argument("name")
@click.argument("snapshot")
@click.argument("path")
@click.option("--to", "target", required=True, metavar="DIR",
              help="Folder to restore into (PATH's last part is made inside it).")
@click.option("--dry-run", is_flag=True, help="Say what would be created and overwritten; copy nothing.")
@click.option("--overwrite", is_flag=True, help="Replace files that already exist in DIR.")
@with_db
def restore_command(name, snapshot, path, target, dry_run, overwrite):
    """Restore PATH (as it was on the source: /home/ada/Photos, or host:/srv/music) from
    SNAPSHOT (a timestamp, or 'latest') of profile NAME into DIR.

    Exit 0 when everything was restored (or, with --dry-run, could be)."""
    snap = _snapshot(_profile(name), snapshot)
    machine, _, source_path = path.rpartition(":") if ":" in path else ("", "", path)
    try:
        inside = restore_engine.snapshot_path(source_path, machine or restore_engine.LOCAL_HOST)
        restore = restores.request(snap, [inside], target=target, overwrite=overwrite,
                                   dry_run=dry_run, requested_by="cli", enqueue=False,
                                   confined=False)
    except (restore_engine.RestoreError, manifest.PathRefused) as error:
        raise click.ClickException(str(error)) from None
    AuditEntry.record("restore.preview" if dry_run else "restore.start", actor_name="cli",
                      target=f"{snap.profile.name} {snap.name}",
                      detail=f"{restore_engine.shown(path)} -> {restore_engine.shown(target)}")
    # Run by root or the worker's user, who may write anywhere: not confined to the roots.
    result = restores.perform(restore.id, confined=False)
    click.echo(f"{result.state_label}. {result.message}")
    if dry_run:
        for action, item in result.items[:SHOWN_PROBLEMS]:
            click.echo(f"  {action}\t{item}")
    for line in result.errors[:SHOWN_PROBLEMS]:
        click.echo(f"  {line}", err=True)
    sys.exit(0 if result.state == "succeeded" else 1)
