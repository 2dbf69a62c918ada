"""`cairn profile ...`, `cairn backup ...` and `cairn prune`: backups from scripts.

The commands enqueue work for the running worker and read the database; they never copy
anything themselves. With no worker alive they say so instead of queueing work nobody runs.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import click

from jobs import backup, retention
from jobs.engines import schedule, snapshots, ssh
from jobs.engines.humane import format_bytes, format_count, format_duration
from jobs.engines.profile import ProfileInvalid, clean
from jobs.engines.snapshots import CheckError
from jobs.queue import settings, with_db
from models import ACTIVE_STATES, AlreadyRunning, Drive, Profile, Run, WorkerProcess, utcnow

profile_cli = click.Group("profile", help="Create and list backup profiles.")
backup_cli = click.Group("backup", help="Run, watch and cancel backups.")
WAIT_POLL_SECONDS = 1.0


@profile_cli.command("add")
@click.argument("name")
@click.option("--source", "sources", multiple=True, required=True, metavar="PATH",
              help="A folder to back up (repeat for several).")
@click.option("--exclude", "excludes", multiple=True, metavar="PATTERN",
              help="An rsync exclude pattern (repeat for several).")
@click.option("--dest", required=True, metavar="PATH", help="Folder that receives the snapshots.")
@click.option("--mirror", is_flag=True,
              help="Keep one plain copy instead of snapshots (FAT/exFAT/NTFS drives).")
@click.option("--one-file-system", is_flag=True, help="Do not cross into other mounted filesystems.")
@click.option("--max-parallel", default=4, show_default=True, help="rsync processes at most at once.")
@click.option("--bwlimit", default="", metavar="RATE",
              help="Bandwidth limit such as 10M or 1.5G (per second).")
@click.option("--retries", default=3, show_default=True, help="Retries of a failed part.")
@click.option("--schedule", "cron", default="", metavar="CRON",
              help="Run by itself on this cron schedule, e.g. '30 2 * * *' or @daily.")
@click.option("--timezone", default="UTC", show_default=True, metavar="ZONE",
              help="Read the schedule's times on this zone's clock, e.g. Europe/Berlin.")
@click.option("--run-on-connect", is_flag=True,
              help="Run whenever the destination's adopted drive is plugged in.")
@click.option("--keep-last", type=int, default=0, help="Retention: keep the newest N snapshots.")
@click.option("--keep-daily", type=int, default=0, help="...and the newest of each of N days.")
@click.option("--keep-weekly", type=int, default=0, help="...of N weeks.")
@click.option("--keep-monthly", type=int, default=0, help="...of N months.")
@click.option("--keep-yearly", type=int, default=0, help="...of N years.")
@click.option("--keep-min-free", type=float, default=None, metavar="PERCENT",
              help="Delete the oldest snapshots while less than PERCENT is free.")
@click.option("--verify-schedule", default="", metavar="CRON",
              help="Verify the newest snapshot on this cron schedule, e.g. @weekly.")
@click.option("--verify-percent", type=float, default=None, metavar="PERCENT",
              help="...re-reading this share of its files (default: all).")
@with_db
def profile_add(name, sources, excludes, dest, mirror, one_file_system, max_parallel, bwlimit,
                retries, cron, timezone, run_on_connect, verify_schedule, verify_percent, **keep):
    """Create a backup profile NAME."""
    try:
        profile = clean(name, list(sources), list(excludes), dest,
                        mode="mirror" if mirror else "snapshot", one_file_system=one_file_system,
                        max_parallel=max_parallel, bandwidth=bwlimit, retries=retries,
                        cron=cron, schedule_tz=timezone, keep=keep,
                        verify_cron=verify_schedule, verify_percent=verify_percent)
    except ProfileInvalid as invalid:
        raise click.ClickException("\n  ".join(["The profile was not saved:",
                                                *invalid.errors.values()])) from None
    if Profile.by_name(profile.name):
        raise click.ClickException(f"A profile named {profile.name!r} already exists.")
    if run_on_connect and Drive.of_path(profile.destination, settings().drive_root) is None:
        raise click.ClickException(
            f"--run-on-connect needs a destination on an adopted drive, inside "
            f"{settings().drive_root}/<its UUID> (see the Drives page).")
    profile.run_on_connect = run_on_connect
    created = Profile.create(slug=Profile.free_slug(profile.name), schedule_looked_at=utcnow(),
                             verify_looked_at=utcnow(), **asdict(profile))
    click.echo(f"Profile {created.name!r} saved; snapshots go to "
               f"{Path(created.destination) / created.slug}.")
    if created.schedule:
        first = schedule.next_times(created.schedule, created.schedule_tz, utcnow(), 1)[0]
        click.echo(f"Schedule: {schedule.describe(created.schedule)} ({created.schedule_tz}); "
                   f"first run {first:%Y-%m-%d %H:%M} UTC.")


@profile_cli.command("list")
@with_db
def profile_list():
    """One line per profile: name, mode, last result, sources → destination."""
    profiles = list(Profile.select().order_by(Profile.name))
    if not profiles:
        click.echo("No profiles yet: add one with `profile add`.")
    for profile in profiles:
        last = profile.last_run()
        result = f"{last.state} {last.created_at:%Y-%m-%d %H:%M} UTC" if last else "never run"
        click.echo(f"{profile.name}\t{profile.mode}\t{result}\t"
                   f"{', '.join(profile.sources)} -> {profile.destination}")


@click.command("prune")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Say what the policy keeps and deletes; delete nothing.")
@with_db
def prune_command(name, dry_run):
    """Apply profile NAME's retention policy to its snapshots, here and now.

    Run it as the user the worker runs as (or root): it deletes on the destination itself."""
    profile = Profile.by_name(name)
    if profile is None:
        raise click.ClickException(f"No profile named {name!r} (see `profile list`).")
    policy = retention.policy_of(profile)
    click.echo(f"{profile.name}: {policy.describe()}.")
    try:
        result = retention.prune(profile, dry_run=dry_run)
    except (OSError, ValueError, CheckError, ssh.SshError) as error:
        raise click.ClickException(f"Nothing more was deleted: {error}") from None
    if not result.decisions:
        click.echo("Every snapshot is kept: the policy keeps them all." if not dry_run
                   else "No snapshots.")
    gone = "would delete" if dry_run else "deleted"
    for decision in result.decisions:
        if decision.name in result.for_space:
            click.echo(f"{decision.name}\t{gone}\tto free space")
        elif decision.keep:
            click.echo(f"{decision.name}\tkeep\t{'; '.join(decision.reasons)}")
        else:
            click.echo(f"{decision.name}\t{gone}\tno rule keeps it")


@backup_cli.command("run")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Report what would be copied; write nothing.")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 only if it succeeded.")
@with_db
def backup_run(name, dry_run, wait):
    """Start a backup of profile NAME."""
    profile = Profile.by_name(name)
    if profile is None:
        raise click.ClickException(f"No profile named {name!r} (see `profile list`).")
    require_worker()
    try:
        run = backup.request_run(profile, dry_run=dry_run, trigger="cli")
    except AlreadyRunning as busy:
        raise click.ClickException(f"{busy} Cancel it with `backup cancel {busy.run.id}`.") from None
    click.echo(f"Run {run.id} queued.")
    if not wait:
        return
    run = _wait(run)
    click.echo(f"Run {run.id}: {run.state}. {run.message}")
    if run.snapshot and run.state in ("succeeded", "partial"):
        root = Path(profile.destination) / profile.slug
        where = root / run.snapshot
        if not where.is_dir():
            where = root / (run.snapshot + snapshots.PARTIAL_SUFFIX)
        click.echo(f"Snapshot: {where}")
    sys.exit(0 if run.state == "succeeded" else 1)


def _wait(run: Run) -> Run:
    shown = ""
    while True:
        run = Run.get_by_id(run.id)
        if not run.is_active:
            return run
        line = _progress_line(run)
        if line != shown:
            click.echo(line, err=True)
            shown = line
        time.sleep(WAIT_POLL_SECONDS)


def _progress_line(run: Run) -> str:
    if run.state != "running":
        return f"  {run.state_label}…"
    eta = f", {format_duration(run.eta_seconds)} left" if run.eta_seconds is not None else ""
    return (f"  {run.progress:.0%}: {run.files_done:,} of {run.total_files:,} files, "
            f"{format_bytes(run.bytes_done)} of {format_bytes(run.total_bytes)}{eta}")


@backup_cli.command("status")
@with_db
def backup_status():
    """Runs in progress, then the last ten that ended."""
    active = list(Run.active())
    worker = WorkerProcess.status()
    click.echo(f"Worker: {'running' if worker.is_alive else 'NOT RUNNING'}")
    if not active:
        click.echo("Nothing running.")
    for run in active:
        click.echo(f"Run {run.id}\t{run.profile.name}\t{_progress_line(run).strip()}")
    finished = Run.select().where(~Run.state.in_(ACTIVE_STATES)).order_by(Run.id.desc()).limit(10)
    for run in finished:
        took = format_duration(run.duration.total_seconds()) if run.duration else "–"
        click.echo(f"Run {run.id}\t{run.profile.name}\t{run.state}\t{took}\t{run.message}")


@backup_cli.command("cancel")
@click.argument("run_id", type=int)
@with_db
def backup_cancel(run_id):
    """Stop run RUN_ID; its unfinished snapshot is removed."""
    run = _get_run(run_id)
    if not backup.cancel(run):
        raise click.ClickException(f"Run {run_id} has already ended ({run.state}).")
    click.echo(f"Run {run_id} is being cancelled.")


@backup_cli.command("retry")
@click.argument("run_id", type=int)
@with_db
def backup_retry(run_id):
    """Run the failed parts of partial run RUN_ID again, into the same snapshot."""
    run = _get_run(run_id)
    require_worker()
    try:
        count = backup.retry_failed(run)
    except AlreadyRunning as busy:
        raise click.ClickException(str(busy)) from None
    if not count:
        raise click.ClickException(f"Run {run_id} has no failed parts to retry.")
    click.echo(f"Retrying {format_count(count, 'part')} of run {run_id}.")


def _get_run(run_id: int) -> Run:
    run = Run.get_or_none(Run.id == run_id)
    if run is None:
        raise click.ClickException(f"There is no run {run_id}.")
    return run


def require_worker(work: str = "the backup") -> None:
    """For commands that hand work to the worker: say so when none runs to take it."""
    if not WorkerProcess.status().is_alive:
        raise click.ClickException(f"No worker is running, so nothing would carry out {work}. "
                                   "Start one with `cairn worker` (or `make run`), then try again.")
