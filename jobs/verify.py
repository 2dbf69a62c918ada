"""Verification: re-read a snapshot (every file, or a random sample) against its manifest, or
restore a sample to a temporary folder and compare it byte for byte ("test restore").

Requested by people, by the command line, or by each profile's verification schedule (looked
at every minute, claimed like backup schedules with a conditional UPDATE). The result lands on
the Verification row, on the Snapshot (its state), in the events, and on the dashboard: a
profile whose newest verification did not find its snapshot intact shows red.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import stat
import time

from huey import crontab

from jobs import catalog
from jobs.engines import manifest, schedule
from jobs.engines import restore as restore_engine
from jobs.engines.humane import format_bytes
from jobs.queue import huey, local, settings, with_db
from models import Event, Profile, Snapshot, Verification, utcnow
from models.setting import live

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.5
KEPT_PROBLEMS = 1000
KEPT_COPIES = 50      # damaged files looked for in other snapshots


class CannotVerify(Exception):
    """The snapshot cannot be read here now; the message says why."""


def request(snapshot: Snapshot, *, percent: float | None = None, kind: str = "verify",
            trigger: str = "manual", requested_by: str = "", enqueue: bool = True) -> Verification:
    if kind not in ("verify", "test_restore"):
        raise ValueError(f"unknown verification kind {kind!r}")
    if kind == "test_restore" and percent is None:
        percent = 100.0
    verification = Verification.create(profile=snapshot.profile_id, snapshot=snapshot, kind=kind,
                                       sample_percent=percent, trigger=trigger,
                                       requested_by=requested_by)
    Event.publish("verification.queued", verification.subject,
                  f"{verification.what} of {snapshot.profile.name} {snapshot.name} queued.",
                  verification=verification.id, profile=snapshot.profile_id)
    if enqueue:
        run_verification(verification.id)
    return Verification.get_by_id(verification.id)


def cancel(verification: Verification) -> bool:
    return verification.request_cancel()


@huey.task()
@with_db
def run_verification(verification_id: int) -> None:
    verification = Verification.get_or_none(Verification.id == verification_id)
    if verification is None or not verification.move(("queued",), "running",
                                                      started_at=utcnow(), owner=local.worker_id):
        return
    try:
        state, message = _perform(verification)
    except (CannotVerify, catalog.NotHere) as reason:
        state, message = "failed", str(reason)
    except Exception as error:
        log.exception("verification %s failed", verification_id)
        state, message = "failed", f"Internal error while verifying: {error}"
    _end(verification, state, message)


def _perform(verification: Verification) -> tuple[str, str]:
    snapshot = Snapshot.get_by_id(verification.snapshot_id)
    tree = catalog.readable_tree(snapshot)
    baseline = ""
    if snapshot.indexed_at is None or not _readable_manifest(snapshot):
        catalog.index(snapshot, catalog.previous_of(snapshot))
        baseline = ("It had no manifest: one was written now, so this check can only find "
                    "files that cannot be read; later checks compare against it. ")
    watch = _Watch(verification)
    with manifest.Manifest(catalog.manifest_path(snapshot)) as index:
        chosen = manifest.choose(index, verification.sample_percent, random.Random())
        Verification.update(total_files=index.file_count(), chosen_files=len(chosen),
                            chosen_bytes=sum(entry.size for entry in chosen)).where(
            Verification.id == verification.id).execute()
        if verification.kind == "test_restore":
            check = restore_engine.test_restore(tree, chosen, on_progress=watch.progress,
                                                should_stop=watch.should_stop)
            check.total = index.file_count()
        else:
            check = manifest.verify(tree, index, chosen, on_progress=watch.progress,
                                    should_stop=watch.should_stop)
        expected = {path: index.entry(path) for path in check.damaged[:KEPT_COPIES]}
    _save(verification, check)
    if check.damaged and not check.stopped:
        copies = good_copies(snapshot, tree, expected)
        Verification.update(copies=copies).where(Verification.id == verification.id).execute()
    return _outcome(verification, check, baseline)


def good_copies(snapshot: Snapshot, tree, expected: dict) -> list[dict]:
    """For each damaged file, the newest other snapshot of the profile that holds its
    backed-up content on a copy of its own: its manifest gives the same hash, the file is not
    the damaged one's own inode (snapshots share unchanged files as hardlinks, so such a
    copy is damaged too), and reading it again gives that hash."""
    others = list(Snapshot.select().where((Snapshot.profile == snapshot.profile_id)
                                          & (Snapshot.id != snapshot.id)
                                          & Snapshot.indexed_at.is_null(False)
                                          & Snapshot.pruned_at.is_null())
                  .order_by(Snapshot.name.desc()))
    opened, found = {}, []
    buffer = bytearray(manifest.BUFFER_BYTES)
    try:
        for path, entry in expected.items():
            own = _identity(str(tree), path)
            where = ""
            for other in others if entry is not None and entry.hash else ():
                if other.id not in opened:
                    opened[other.id] = _open_other(other)
                index, other_tree = opened[other.id] or (None, None)
                theirs = index.entry(path) if index else None
                if theirs is None or theirs.hash != entry.hash:
                    continue
                if _a_good_copy(str(other_tree), path, own, entry.hash, buffer):
                    where = other.name
                    break
            found.append({"path": path, "snapshot": where})
    finally:
        for pair in opened.values():
            if pair:
                pair[0].close()
    return found


def _open_other(snapshot: Snapshot):
    try:
        return manifest.Manifest(catalog.manifest_path(snapshot)), catalog.readable_tree(snapshot)
    except (manifest.ManifestError, catalog.NotHere):
        return None


def _identity(root: str, path: str) -> tuple[int, int] | None:
    """(device, inode) of the regular file at `path` in `root`, opened without following
    links; None if there is none."""
    try:
        fd = manifest.open_inside(root, path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
    finally:
        os.close(fd)


def _a_good_copy(root: str, path: str, damaged: tuple[int, int] | None, digest: bytes,
                 buffer: bytearray) -> bool:
    """Whether `path` in `root` is a regular file other than the `damaged` one's inode that
    reads back as `digest`: identity and content from one opening of it."""
    try:
        fd = manifest.open_inside(root, path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) == damaged:
            return False
        return manifest.hash_fd(fd, buffer)[0] == digest
    except OSError:
        return False
    finally:
        os.close(fd)


def _readable_manifest(snapshot: Snapshot) -> bool:
    try:
        manifest.Manifest(catalog.manifest_path(snapshot)).close()
        return True
    except manifest.ManifestError:   # missing, damaged, or of an older format
        return False


class _Watch:
    def __init__(self, verification: Verification) -> None:
        self.verification = verification
        self.next_look = 0.0

    def should_stop(self) -> bool:
        return self.verification.cancel_wanted()

    def progress(self, check: manifest.Check) -> None:
        now = time.monotonic()
        if now < self.next_look:
            return
        self.next_look = now + PROGRESS_SECONDS
        _save(self.verification, check)
        Event.publish("verification.progress", self.verification.subject,
                      f"{check.checked:,} of {check.chosen:,} files",
                      verification=self.verification.id, profile=self.verification.profile_id)


def _save(verification: Verification, check: manifest.Check) -> None:
    problems = [*check.missing, *check.changed, *check.unreadable][:KEPT_PROBLEMS]
    Verification.update(checked_files=check.checked, checked_bytes=check.bytes,
                        missing=len(check.missing), changed=len(check.changed),
                        unreadable=len(check.unreadable), problems=problems).where(
        Verification.id == verification.id).execute()


def _outcome(verification: Verification, check: manifest.Check, baseline: str) -> tuple[str, str]:
    read = f"{check.checked:,} of {check.total:,} files ({format_bytes(check.bytes)})"
    if check.stopped:
        return "cancelled", f"Stopped after {read}."
    if check.problems:
        parts = [f"{n:,} {what}" for n, what in ((len(check.missing), "missing"),
                                                 (len(check.changed), "changed"),
                                                 (len(check.unreadable), "unreadable")) if n]
        return "damaged", f"{baseline}Checked {read}: {', '.join(parts)}."
    how = "restored and compared" if verification.kind == "test_restore" else "re-read"
    return "intact", f"{baseline}All {read} {how}: intact."


def _end(verification: Verification, state: str, message: str) -> None:
    if not verification.finish(state, message):
        return
    Event.drop_progress(verification.subject)
    snapshot = Snapshot.get_by_id(verification.snapshot_id)
    level = {"intact": "info", "cancelled": "info"}.get(state, "error")
    Event.publish("verification.finished", verification.subject,
                  f"{verification.what} of {snapshot.profile.name} {snapshot.name}: "
                  f"{verification.state_label.lower()}. {message}", level=level,
                  verification=verification.id, profile=snapshot.profile_id, state=state)


# --- schedules -------------------------------------------------------------------------------

@huey.periodic_task(crontab())
@with_db
def start_scheduled_verifications() -> None:
    start_due(utcnow())


def start_due(now: dt.datetime) -> list[Verification]:
    """Verify the newest snapshot of every profile whose verification schedule came due."""
    started = []
    catch_up = dt.timedelta(hours=live(settings()).catch_up_hours)
    for profile in Profile.select().where(Profile.verify_schedule != "").order_by(Profile.id):
        if not profile.claim_look("verify_looked_at", now):
            continue
        try:
            due = schedule.due(profile.verify_schedule, profile.schedule_tz,
                               profile.verify_looked_at, now, catch_up)
        except schedule.ScheduleError as error:
            log.warning("verification schedule of %s cannot be read: %s", profile.name, error)
            continue
        if due is None or due.missed:
            continue
        newest = Snapshot.kept(profile).first()
        busy = Verification.select().where((Verification.profile == profile)
                                           & Verification.state.in_(("queued", "running")))
        if newest is None or busy.exists():
            continue
        started.append(request(newest, percent=profile.verify_percent, trigger="schedule",
                               requested_by="schedule"))
    return started


