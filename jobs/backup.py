"""Backup runs as Huey tasks: check and scan, plan units, run them in parallel, finalize.

Tasks are glue: they load rows, call an engine (scan, plan, rsync, snapshots), save progress
and publish events. The run's next step is always decided by `advance()`, which any task may
call at any time: it hands out units while there is room, finalizes when none is left, and
ends a cancelled run once its last rsync has stopped. Every state change it relies on is a
conditional UPDATE, so duplicate tasks (after a restart, say) do nothing.

See jobs/README.md for the states and what happens when a worker dies.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time

import psutil

from jobs import catalog, retention, run_checks, run_finish, run_logs, run_scan, run_transfer
from jobs.destinations import drive_missing, root_of
from jobs.engines import confine, rsync, snapshots, ssh
from jobs.engines import plan as planner
from jobs.engines.destination import SnapshotRoot
from jobs.engines.humane import format_count
from jobs.engines.progress import Progress, add_speed_point
from jobs.engines.progress import advance as advance_progress
from jobs.engines.scan import ScanCancelled
from jobs.engines.snapshots import CheckError
from jobs.queue import huey, local, settings, with_db
from models import (
    AlreadyRunning,
    Drive,
    Event,
    Profile,
    Run,
    RunMessage,
    Unit,
    WorkerProcess,
    db,
    utcnow,
)

log = logging.getLogger(__name__)

PROGRESS_SAVE_SECONDS = 1.0
RUN_PROGRESS_SECONDS = 0.5

__all__ = ["AlreadyRunning", "cancel", "interrupt", "request_run", "resume", "resume_interrupted",
           "retry_failed"]


# --- what the CLI and the web call ------------------------------------------------------------

def request_run(profile: Profile, *, dry_run: bool = False, trigger: str = "manual",
                requested_by: str = "") -> Run:
    """Queue a run of `profile` (AlreadyRunning if one is active) and hand it to a worker."""
    run = Run.request(profile, dry_run=dry_run, trigger=trigger, requested_by=requested_by)
    what = "Dry run" if dry_run else "Backup"
    Event.publish("run.queued", run.subject, f"{what} of {profile.name} queued.",
                  run=run.id, profile=profile.id)
    prepare_run(run.id)
    return run


def cancel(run: Run) -> bool:
    """Ask a run to stop; False if it had already ended. A queued run ends at once."""
    if not run.request_cancel():
        return False
    if run.move(("queued",), "cancelled", finished_at=utcnow(), message="Cancelled before it started."):
        _publish_finished(run)
        return True
    Event.publish("run.cancelling", run.subject, f"Stopping the run of {run.profile.name}.",
                  run=run.id)
    advance_run(run.id)
    return True


def retry_failed(run: Run) -> int:
    """Run a partial run's dead-lettered units again, into the same unfinished snapshot."""
    if run.state != "partial" or not run.snapshot or run.dry_run:
        return 0
    there = root_of(run.profile).has_partial(run.snapshot)
    if not there and run.profile.mode == "snapshot":
        return 0
    with db.atomic():
        current = run.profile.active_run()
        if current is not None:
            raise AlreadyRunning(current)
        if not run.move(("partial",), "running", finished_at=None, cancel_requested=False,
                        message=""):
            return 0
        count = (Unit.update(state="pending", attempts=0, not_before=None, outcome="",
                             exit_code=None, message="")
                 .where((Unit.run == run) & (Unit.state == "failed")).execute())
    Event.publish("run.retrying", run.subject,
                  f"Retrying {format_count(count, 'failed part')} of the backup of "
                  f"{run.profile.name}.", run=run.id)
    advance_run(run.id)
    return count


# --- preparing: checks, scan, plan -------------------------------------------------------------

@huey.task()
@with_db
def prepare_run(run_id: int) -> None:
    run = Run.get_or_none(Run.id == run_id)
    if run is None or not run.move(("queued",), "scanning", owner=_worker_id(),
                                   started_at=utcnow()):
        return
    try:
        _prepare(run)
    except run_checks.DriveAbsent as absent:
        _end(run, "interrupted", f"{absent} The run starts when the drive is plugged in.")
        return
    except run_checks.HostPaused as paused:
        _end(run, "interrupted", f"{paused} The run starts again at "
             f"{paused.retry_at:%Y-%m-%d %H:%M} UTC.")
        retry_deferred.schedule((run.id,), eta=paused.retry_at + dt.timedelta(seconds=1))
        return
    except (CheckError, ssh.SshError) as error:
        _end(run, "failed", str(error))
    except ScanCancelled:
        _end(run, "cancelled", "Cancelled while scanning.")
    except Exception as error:  # a bug must still end the run, visibly
        log.exception("preparing run %s failed", run_id)
        _end(run, "failed", f"Internal error while preparing the run: {error}")
        return
    advance(run)


def _prepare(run: Run) -> None:
    profile = run.profile
    there = root_of(profile)
    root, options = (run_checks.check_remote(profile, there) if there.remote
                     else run_checks.check_local(profile))
    mirror = options["mirror"]
    if not mirror:
        _remove_stale_partials(run, there)
    link_from = "" if mirror else (there.latest_snapshot() or "")
    name = "" if mirror or run.dry_run else there.unused_name(utcnow())
    roots = run_scan.scan_sources(run, root, options, link_from)
    total_files, total_bytes = sum(r.files for r in roots), sum(r.bytes for r in roots)
    if not mirror and not link_from and not run.dry_run:
        run_checks.check_room(profile.destination, total_bytes, there)
    ceiling = _ceiling(profile)
    the_plan = planner.plan(roots, run_scan.children_reader(run), ceiling, settings().min_unit_size)
    options["split"] = {str(i): the_plan.split_folders(i) for i in range(len(roots))}
    _create_units(run, the_plan)
    if name:
        there.make_dir(name + snapshots.PARTIAL_SUFFIX)
    run.move(("scanning",), "running", snapshot=name, link_from=link_from, options=options,
             total_files=total_files, total_bytes=total_bytes, concurrency=ceiling,
             owner=None, progress_at=utcnow())
    Event.publish("run.started", run.subject,
                  f"{'Dry run' if run.dry_run else 'Backup'} of {profile.name}: "
                  f"{format_count(total_files, 'file')} to check in "
                  f"{format_count(len(the_plan.units), 'part')}.",
                  run=run.id, units=len(the_plan.units))


@huey.task()
@with_db
def retry_deferred(run_id: int) -> None:
    """A run deferred for its host's breaker: start it again (if nothing newer did)."""
    run = Run.get_or_none(Run.id == run_id)
    if run is not None and run.state == "interrupted":
        resume_interrupted(run.profile)


def interrupt(run: Run, reason: str) -> bool:
    """Stop a run whose drive went away; its units and snapshot wait for the drive."""
    changed = (Run.update(cancel_requested=True, interrupt_reason=reason)
               .where((Run.id == run.id) & Run.state.in_(("scanning", "running", "finalizing"))
                      & (Run.interrupt_reason == "")).execute())
    if changed:
        Event.publish("run.interrupting", run.subject, f"Stopping the run of {run.profile.name}: "
                      f"{reason}", level="warning", run=run.id)
        advance_run(run.id)
    return bool(changed)


def resume_interrupted(profile: Profile) -> Run | None:
    """Continue the profile's newest run if it was interrupted for its drive (and nothing
    newer started since): its finished parts stay done, the rest run again."""
    run = Run.select().where(Run.profile == profile).order_by(Run.id.desc()).first()
    if run is None or run.state != "interrupted" or profile.active_run() is not None:
        return None
    planned = Unit.select().where(Unit.run == run).exists()
    if planned and run.move(("interrupted",), "running", finished_at=None, cancel_requested=False,
                            interrupt_reason="", message="", progress_at=utcnow()):
        Unit.update(state="pending", pid=None, worker=None, not_before=None).where(
            (Unit.run == run) & Unit.state.in_(("queued", "running", "cancelled"))).execute()
        Event.publish("run.resumed", run.subject, "Resumed: the drive is back.", run=run.id)
        advance_run(run.id)
        return run
    if not planned and run.move(("interrupted",), "queued", finished_at=None,
                                cancel_requested=False, interrupt_reason="", message=""):
        Event.publish("run.resumed", run.subject, "Starting: the drive is back.", run=run.id)
        prepare_run(run.id)
        return run
    return None


def _ceiling(profile: Profile) -> int:
    threads = WorkerProcess.status().threads or settings().workers
    return max(1, min(profile.max_parallel, threads, local.allowed or threads))


def _remove_stale_partials(run: Run, there: SnapshotRoot) -> None:
    """An unfinished snapshot of an earlier run that nobody will retry any more."""
    for name in there.partials():
        if there.remove_partial(name):
            run.add_message("warning", f"Removed the unfinished snapshot {name}"
                            f"{snapshots.PARTIAL_SUFFIX} of an earlier run.")


def _create_units(run: Run, the_plan: planner.Plan) -> None:
    sources = run.profile.sources
    with db.atomic():
        Unit.delete().where(Unit.run == run).execute()  # a rescan after a restart plans anew
        for seq, unit in enumerate(the_plan.units):
            Unit.create(run=run, seq=seq, source=sources[unit.source],
                        label=f"{sources[unit.source]}: {unit.label}", rules=unit.rules,
                        planned_files=unit.files, planned_bytes=unit.bytes)


# --- the run's next step ---------------------------------------------------------------------

@huey.task()
@with_db
def advance_run(run_id: int) -> None:
    run = Run.get_or_none(Run.id == run_id)
    if run is not None:
        advance(run)


def advance(run: Run) -> None:
    run = Run.get_by_id(run.id)
    if run.state != "running":
        return
    states = run.unit_states()
    running = states.get("running", 0)
    if run.cancel_requested:
        if not run.interrupt_reason:   # an interrupted run's parts wait for the drive
            Unit.update(state="cancelled").where(
                (Unit.run == run) & Unit.state.in_(("pending", "queued"))).execute()
        if running == 0:
            _stop_run(run)
        return
    if not any(states.get(s, 0) for s in ("pending", "queued", "running")):
        finalize_run(run.id)
        return
    _dispatch(run)


def _dispatch(run: Run) -> None:
    now = utcnow()
    with db.atomic():
        run = Run.get_by_id(run.id)
        if run.state != "running" or run.cancel_requested:
            return
        room = run.concurrency - Unit.busy(run)
        handed = Unit.hand_out(run, room, now)
    for unit in handed:
        run_unit(unit.id)
    waiting = (Unit.select(Unit.not_before).where((Unit.run == run) & (Unit.state == "pending")
                                                  & (Unit.not_before > now))
               .order_by(Unit.not_before).first())
    if waiting and not handed and Unit.busy(run) == 0:
        delay = max((waiting.not_before - now).total_seconds(), 0.1)
        advance_run.schedule((run.id,), delay=delay)


def _stop_run(run: Run) -> None:
    try:
        _stop_run_here(run)
    except ssh.SshError as error:   # the host went away meanwhile
        _end(run, "failed", f"{run.fail_reason or 'Cancelled.'} The unfinished snapshot could "
             f"not be removed from the host: {error}")


def _stop_run_here(run: Run) -> None:
    """Every rsync of a cancelled (or doomed) run has stopped: remove its snapshot, end it.
    An interrupted run keeps its unfinished snapshot for when the drive is back."""
    if run.interrupt_reason:
        _end(run, "interrupted", f"{run.interrupt_reason} The run continues where it stopped "
             "when the drive is back.")
        return
    if run.snapshot and not run.dry_run:
        root_of(run.profile).remove_partial(run.snapshot)
    run_logs.collect_logs(run)
    if run.options.get("mirror") or run.dry_run:
        leftover = ""
    else:
        leftover = " The unfinished snapshot was removed; older snapshots are untouched."
    if run.fail_reason:
        _end(run, "failed", run.fail_reason + leftover)
    else:
        _end(run, "cancelled", "Cancelled." + leftover)


# --- units -----------------------------------------------------------------------------------

@huey.task()
@with_db
def run_unit(unit_id: int) -> None:
    unit = Unit.get_or_none(Unit.id == unit_id)
    if unit is None or unit.run.state != "running":
        return
    if not unit.claim(_worker_object()):
        return
    run = unit.run
    if run.cancel_requested:
        unit.release("cancelled")
    else:
        _copy(run, unit)
    advance(run)


def _copy(run: Run, unit: Unit) -> None:
    tracker = _UnitTracker(run, unit)
    try:
        with run_transfer.opened_source(unit.source) as fd:
            result = rsync.run(run_transfer.transfer(run, unit, fd), on_progress=tracker.progress,
                               should_stop=tracker.should_stop,
                               log_path=str(run_logs.unit_log(run, unit)), on_start=tracker.started,
                               sums_path=str(run_logs.unit_sums(run, unit)))
            if fd is not None and not result.stopped and not run_transfer.still_there(unit.source, fd):
                result.source_vanished = True
                result.error_count += 1
                result.errors.append(f"The source folder {unit.source} vanished during the "
                                     "run (deleted, moved or unmounted): what rsync read of "
                                     "it is not taken for a backup.")
    except confine.Refused as refused:   # the source became a link since the checks
        result = rsync.Result(exit_code=-1, counts=rsync.Counts(), stats={}, error_count=1,
                              errors=[f"Source {unit.source} cannot be read safely: {refused}"])
    except Exception as error:  # rsync missing, fork failed: retried like a failed rsync
        log.exception("unit %s could not run rsync", unit.id)
        result = rsync.Result(exit_code=-1, counts=rsync.Counts(), stats={},
                              errors=[f"Could not run rsync: {error}"], error_count=1)
    tracker.progress(result.counts, force=True)
    _record(run, unit, result)


class _UnitTracker:
    """Saves a unit's counts about once a second and watches for a cancel, and for the
    destination's drive going away."""

    def __init__(self, run: Run, unit: Unit) -> None:
        self.run, self.unit = run, unit
        self.next_save = 0.0
        self.cancel_wanted = run_scan.CancelWatch(run)
        self.on_drive = Drive.of_path(run.profile.destination, settings().drive_root) is not None
        self.next_drive_check = 0.0

    def should_stop(self) -> bool:
        if self.cancel_wanted():
            return True
        now = time.monotonic()
        if not self.on_drive or now < self.next_drive_check:
            return False
        self.next_drive_check = now + run_scan.CANCEL_CHECK_SECONDS
        return _interrupt_if_drive_gone(self.run)

    def started(self, pid: int) -> None:
        Unit.update(pid=pid).where(Unit.id == self.unit.id).execute()

    def progress(self, counts: rsync.Counts, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_save:
            return
        self.next_save = now + PROGRESS_SAVE_SECONDS
        self.unit.save_progress(counts.files, counts.done_bytes, counts.new_files,
                                counts.changed_files, counts.sent_bytes, counts.written)
        refresh_progress(self.run)



def refresh_progress(run: Run, now: dt.datetime | None = None) -> bool:
    """Recompute the run's figures from its units; at most twice a second, whoever calls."""
    now = now or utcnow()
    current = Run.get_by_id(run.id)
    since = (now - current.progress_at).total_seconds() if current.progress_at else 0.0
    if current.progress_at and since < RUN_PROGRESS_SECONDS:
        return False
    totals = current.unit_totals()
    before = Progress(current.files_done, current.bytes_done, current.total_files,
                      current.total_bytes, current.progress, current.rate, current.byte_rate,
                      current.eta_seconds, current.written_bytes)
    running_for = (now - current.started_at).total_seconds() if current.started_at else 0.0
    after = advance_progress(before, totals["files"], totals["bytes"], current.total_files,
                             current.total_bytes, since, running_for, written=totals["written"])
    # A dry run writes nothing: it has no speed to draw.
    speed = current.speed or {}
    if not current.dry_run:
        speed = add_speed_point(speed, running_for, after.byte_rate)
    changed = (Run.update(files_done=after.files, bytes_done=after.bytes,
                          written_bytes=after.written,
                          total_files=after.total_files, total_bytes=after.total_bytes,
                          progress=after.fraction, rate=after.rate, byte_rate=after.byte_rate,
                          eta_seconds=after.eta_seconds, progress_at=now,
                          new_files=totals["new_files"], changed_files=totals["changed_files"],
                          sent_bytes=totals["sent_bytes"], speed=speed)
               .where((Run.id == run.id) & (Run.progress_at == current.progress_at)).execute())
    if changed:
        Event.publish("run.progress", run.subject, f"{after.fraction:.0%}", run=run.id,
                      files=after.files, bytes=after.bytes, fraction=round(after.fraction, 4))
    return bool(changed)


def _record(run: Run, unit: Unit, result: rsync.Result) -> None:
    for line in result.errors:
        run.add_message("error", line, unit)
    for line in result.warnings:
        run.add_message("warning", line, unit)
    for line in result.items:
        run.add_message("item", line, unit)
    outcome = result.outcome
    # The counts are the last attempt's: a retry that succeeds leaves nothing uncopied. The
    # earlier attempts' messages stay in the run's log.
    fields = {"exit_code": result.exit_code, "outcome": outcome, "finished_at": utcnow(),
              "stats": result.stats, "warning_count": result.warning_count,
              "error_count": result.error_count}
    if outcome not in ("done", "warning") and _waits_for_drive(run):
        # Its drive went away (the rsync errors say so too): not this part's fault, and
        # not an attempt; it runs again when the drive is back.
        unit.release("pending", attempts=unit.attempts - 1, message="Waits for the drive.",
                     **fields)
        return
    if outcome == "cancelled":
        unit.release("cancelled", **fields)
    elif outcome == "fatal":
        unit.release("failed", message="The destination is full.", **fields)
        _doom(run, "The destination is full.")
    elif outcome == "retry":
        _retry_or_bury(run, unit, result, fields)
    else:
        unit.release("done", message=_unit_summary(result), **fields)


def _waits_for_drive(run: Run) -> bool:
    current = Run.get_by_id(run.id)
    return bool(current.interrupt_reason) or _interrupt_if_drive_gone(current)


def _interrupt_if_drive_gone(run: Run) -> bool:
    """Whether the run's drive is gone; if so the run is asked to stop as interrupted."""
    missing = drive_missing(run.profile)
    if missing:
        interrupt(run, missing)
    return bool(missing)


def _retry_or_bury(run: Run, unit: Unit, result: rsync.Result, fields: dict) -> None:
    reason = result.errors[-1] if result.errors else f"rsync exited with code {result.exit_code}"
    if unit.attempts <= run.profile.retries:
        delay = settings().retry_delay * 2 ** (unit.attempts - 1)
        unit.release("pending", not_before=utcnow() + dt.timedelta(seconds=delay),
                     message=f"Attempt {unit.attempts} failed ({reason}); retrying in "
                             f"{delay:g} s.", **fields)
        Event.publish("unit.retrying", run.subject, unit.message, level="warning",
                      run=run.id, unit=unit.id)
        advance_run.schedule((run.id,), delay=delay)
        return
    unit.release("failed", message=f"Gave up after {unit.attempts} attempts: {reason}", **fields)
    Event.publish("unit.failed", run.subject, f"{unit.label}: {unit.message}", level="error",
                  run=run.id, unit=unit.id)


def _doom(run: Run, reason: str) -> None:
    """The run cannot go on: stop its other units; advance() ends it as failed."""
    Run.update(fail_reason=reason, cancel_requested=True).where(
        (Run.id == run.id) & (Run.fail_reason == "")).execute()


def _unit_summary(result: rsync.Result) -> str:
    parts = [f"{result.counts.files:,} files"]
    if result.counts.new_files or result.counts.changed_files:
        parts.append(f"{result.counts.new_files:,} new, {result.counts.changed_files:,} changed")
    if result.error_count:
        parts.append(f"{result.error_count:,} not copied")
    if result.warning_count:
        parts.append(f"{result.warning_count:,} vanished")
    return "; ".join(parts)


# --- finishing -------------------------------------------------------------------------------

@huey.task()
@with_db
def finalize_run(run_id: int) -> None:
    run = Run.get_or_none(Run.id == run_id)
    if run is None or not run.move(("running",), "finalizing", owner=_worker_id()):
        return
    try:
        state, message = _finalize(run)
    except run_checks.DriveAbsent as absent:
        state, message = "interrupted", f"{absent} The run finishes when the drive is back."
    except Exception as error:
        log.exception("finalizing run %s failed", run_id)
        state, message = "failed", f"Internal error while finishing the run: {error}"
    run_logs.collect_logs(run)
    _end(run, state, message)
    if state == "succeeded" and not run.dry_run:
        retention.prune_profile(run.profile.id)


def _finalize(run: Run) -> tuple[str, str]:
    refresh_progress(run, now=utcnow() + dt.timedelta(seconds=RUN_PROGRESS_SECONDS))
    totals = run.unit_totals()
    Run.update(files_done=totals["files"], bytes_done=totals["bytes"], new_files=totals["new_files"],
               changed_files=totals["changed_files"], sent_bytes=totals["sent_bytes"],
               warning_count=totals["warnings"], error_count=totals["errors"],
               stats=run_finish.summed_stats(run)).where(Run.id == run.id).execute()
    if run.dry_run:
        return "succeeded", run_finish.dry_run_summary(totals)
    failed = list(Unit.select().where((Unit.run == run) & (Unit.state == "failed")))
    there = root_of(run.profile)
    # On a host, no folder was split between parts, so there is nothing to mend.
    if there.remote:
        warnings = 0
    else:
        tree = run_finish.tree_of(run)
        warnings = run_finish.restore_hardlinks(run, tree) + run_finish.fix_folder_times(run, tree)
    if failed:
        parts = format_count(sum(run.unit_states().values()), "part")
        return "partial", (f"{len(failed):,} of {parts} failed "
                           f"after retries ({failed[0].message}); the snapshot is kept "
                           "unfinished so that retrying the failed parts can complete it.")
    missing = drive_missing(run.profile)
    if missing:
        raise run_checks.DriveAbsent(missing)
    if not run.options.get("mirror"):
        there.finalize(run.snapshot)
        if there.remote:
            catalog.index_failed(catalog.record(run), catalog.REMOTE_NOT_INDEXED)
        else:
            warnings += run_finish.index_snapshot(run)
    Run.update(progress=1.0, eta_seconds=None).where(Run.id == run.id).execute()
    copied = f"{totals['files']:,} files, {totals['new_files'] + totals['changed_files']:,} new or changed"
    if totals["errors"]:
        return "partial", f"{copied}; {totals['errors']:,} could not be copied (see errors)."
    if totals["warnings"] or warnings:
        return "succeeded", f"{copied}; {format_count(totals['warnings'] + warnings, 'warning')}."
    return "succeeded", copied + "."


def _end(run: Run, state: str, message: str) -> None:
    if run.finish(state, message):
        if state == "failed":
            _log_failure(run, message)
        _publish_finished(run)
        Event.drop_progress(run.subject)


def _log_failure(run: Run, message: str) -> None:
    """A run that failed before any part could say why (a missing destination, a source that
    cannot be read) has its reason in its log as an error too, so the Logs page and History's
    problems show it like any other."""
    if not RunMessage.select().where((RunMessage.run == run)
                                     & (RunMessage.level == "error")).exists():
        run.add_message("error", message)
    Run.update(error_count=1).where((Run.id == run.id) & (Run.error_count == 0)).execute()


def _publish_finished(run: Run) -> None:
    level = {"succeeded": "info", "cancelled": "info", "partial": "warning"}.get(run.state, "error")
    what = "Dry run" if run.dry_run else "Backup"
    Event.publish("run.finished", run.subject,
                  f"{what} of {run.profile.name}: {run.state_label.lower()}. {run.message}",
                  level=level, run=run.id, state=run.state, profile=run.profile_id)


# --- workers coming and going ----------------------------------------------------------------

def _worker_id() -> int | None:
    return local.worker_id


def _worker_object() -> WorkerProcess | None:
    return WorkerProcess.get_or_none(WorkerProcess.id == local.worker_id) if local.worker_id else None


def mark_dead_local_workers(hostname: str | None = None) -> int:
    """Workers of this box whose process is gone are stopped now, not 15 s from now."""
    hostname = hostname or socket.gethostname()
    dead = []
    for worker in WorkerProcess.select().where((WorkerProcess.hostname == hostname)
                                               & WorkerProcess.stopped_at.is_null()):
        if worker.id == local.worker_id:
            continue
        if not _process_alive(worker.pid, worker.started_at):
            dead.append(worker.id)
    if dead:
        WorkerProcess.update(stopped_at=utcnow()).where(WorkerProcess.id.in_(dead)).execute()
    return len(dead)


def _process_alive(pid: int, started_at: dt.datetime) -> bool:
    try:
        created = dt.datetime.fromtimestamp(psutil.Process(pid).create_time(), dt.UTC)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    # A recycled pid belongs to a process started after the worker registered.
    return created.replace(tzinfo=None) <= started_at + dt.timedelta(seconds=5)


def resume(startup: bool = False) -> int:
    """Pick up work that a dead worker left behind; returns how many runs had lost some.

    Units it was running go back to pending (rsync skips what already arrived); a scan or a
    finalize it was doing starts again. At startup, queued work is handed out again too:
    a task the dead worker had taken off the queue is gone with it, and a duplicate is
    harmless because every step is claimed.
    """
    if startup:
        mark_dead_local_workers()
    alive = WorkerProcess.alive_ids(local.worker_id)
    resumed: set[int] = set()
    for unit in Unit.orphaned(alive):
        changed = (Unit.update(state="pending", pid=None, worker=None,
                               attempts=Unit.attempts - 1,
                               message="Restarted after its worker stopped.")
                   .where((Unit.id == unit.id) & (Unit.state == "running")).execute())
        if changed:
            resumed.add(unit.run_id)
    for run in Run.active():
        orphan = run.owner_id is None or run.owner_id not in alive
        if run.state == "scanning" and orphan:
            if run.move(("scanning",), "queued", owner=None):
                resumed.add(run.id)
                prepare_run(run.id)
        elif run.state == "finalizing" and orphan:
            if run.move(("finalizing",), "running", owner=None):
                resumed.add(run.id)
        elif run.state == "queued" and startup:
            prepare_run(run.id)
        if run.state == "running" and (startup or run.id in resumed):
            if startup:
                for unit in Unit.select(Unit.id).where((Unit.run == run) & (Unit.state == "queued")):
                    run_unit(unit.id)
            advance_run(run.id)
    # Only runs that lost work say so; a worker joining a healthy run just helps.
    for run_id in resumed:
        Event.publish("run.resumed", f"run:{run_id}", "Resumed after a worker stopped.", run=run_id)
    return len(resumed)


def set_allowed(allowed: int, reason: str) -> None:
    """The resource monitor's decision: at most `allowed` rsync processes per run."""
    local.allowed = allowed
    for run in Run.select().where(Run.state == "running"):
        wanted = max(1, min(run.profile.max_parallel, allowed))
        if wanted == run.concurrency:
            continue
        Run.update(concurrency=wanted).where(Run.id == run.id).execute()
        Event.publish("run.throttled", run.subject, f"{reason.capitalize()}.",
                      level="info", run=run.id, concurrency=wanted)
        if wanted > run.concurrency:
            advance_run(run.id)

