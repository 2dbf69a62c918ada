"""Drives: the udev watcher, and the worker's hands on them (adopt, mount, eject).

The watcher runs in exactly one process per box: the worker process that holds the lock on
`<data dir>/drives.lock` (a second worker on the same box leaves it to the first). It records
every block device with a filesystem as a `Drive` row, connected or not, and publishes an
event when one comes or goes. An adopted drive that arrives is mounted at
`<CAIRN_DRIVE_ROOT>/<uuid>` by a task, proved to be the adopted drive (its marker), and then
its interrupted runs resume and its run-on-connect profiles start.

Mounting needs CAP_SYS_ADMIN, which the installed worker holds (deploy/cairn-worker.service);
the web process only reads the rows and enqueues these tasks.
"""

from __future__ import annotations

import logging
import os

import pyudev

from jobs import backup, catalog
from jobs.engines import drives as engine
from jobs.queue import box_lock, huey, settings, with_db
from models import ACTIVE_STATES, AlreadyRunning, Drive, Event, Profile, Run, db, utcnow

log = logging.getLogger(__name__)


# --- the watcher -------------------------------------------------------------------------------

class Watcher:
    def __init__(self) -> None:
        self.observer: pyudev.MonitorObserver | None = None
        self.lock_fd: int | None = None

    def start(self) -> bool:
        """Watch udev if no other process of this box does; True if this one does."""
        self.lock_fd = box_lock("drives")
        if self.lock_fd is None:
            return False
        try:
            context = pyudev.Context()
            monitor = pyudev.Monitor.from_netlink(context)
            monitor.filter_by("block")
            # Listen first, then list: a drive plugged in between is seen twice, not never.
            self.observer = pyudev.MonitorObserver(monitor, callback=self._event,
                                                   name="cairn-drives", daemon=True)
            self.observer.start()
            with db.connection_context():
                sync(engine.present(context))
        except Exception:
            log.exception("the drive watcher could not start")
            self.stop()
            return False
        return True

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.send_stop()
            self.observer = None
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def _event(self, device) -> None:
        try:
            with db.connection_context():
                seen(device.action, engine.from_udev(device), device.device_node or "")
        except Exception:  # one bad event must not stop the watching
            log.exception("drive event %s of %s failed", device.action, device.device_node)


watcher = Watcher()


def sync(present: list[engine.BlockFs]) -> None:
    """Make the rows match the drives present now (at start, when events may have been
    missed while no worker watched)."""
    uuids = {fs.uuid for fs in present}
    for drive in Drive.select().where(Drive.connected & Drive.uuid.not_in(uuids or {""})):
        _left(drive)
    for fs in present:
        _arrived(fs, startup=True)


def seen(action: str | None, fs: engine.BlockFs | None, devnode: str) -> None:
    """One udev event: a filesystem appeared or changed, or a device lost it or went away.
    (A loop device announces both with `change`; a USB stick with `add` and `remove`.)"""
    if fs is not None and action != "remove":
        _arrived(fs)
        return
    if not devnode:
        return
    for drive in Drive.select().where(Drive.connected & (Drive.devnode == devnode)):
        _left(drive)


def _arrived(fs: engine.BlockFs, startup: bool = False) -> None:
    # Another filesystem on the same device (reformatted): the old one is gone.
    for other in Drive.select().where(Drive.connected & (Drive.devnode == fs.devnode)
                                      & (Drive.uuid != fs.uuid)):
        _left(other)
    drive, arrived = Drive.seen(fs.uuid, label=fs.label, fstype=fs.fstype, size=fs.size,
                                bus=fs.bus, devnode=fs.devnode,
                                mount_point=engine.mount_point_of(fs.devnode) or "")
    if arrived or startup and drive.adopted:
        if arrived:
            Event.publish("drive.connected", drive.subject,
                          f"{drive.name} connected ({fs.fstype}, {fs.devnode}).", drive=drive.id)
        if drive.adopted and not drive.ejected:
            drive_arrived(drive.id)


def _left(drive: Drive) -> None:
    # The row and its event in one transaction: whoever sees the drive gone sees why.
    with db.atomic():
        if not drive.mark_gone():
            return
        Event.publish("drive.disconnected", drive.subject, f"{drive.name} was disconnected.",
                      level="warning" if drive.adopted and _active_runs(drive) else "info",
                      drive=drive.id)
    if drive.adopted:
        drive_left(drive.id)


# --- tasks --------------------------------------------------------------------------------------

def mount_root(drive: Drive) -> str:
    return drive.root(settings().drive_root)


def _fs(drive: Drive) -> engine.BlockFs:
    return engine.BlockFs(uuid=drive.uuid, label=drive.label, fstype=drive.fstype,
                          size=drive.size, bus=drive.bus, devnode=drive.devnode)


def _ensure_mounted(drive: Drive) -> str:
    """Mount the drive at its Cairn mount point unless it is there already; the point."""
    root = mount_root(drive)
    if engine.mount_point_of(drive.devnode, where=root) != root:
        if engine.is_mounted_at(root):   # a dead mount of an earlier plug-in
            engine.unmount(root, lazy=True)
        engine.mount(_fs(drive), root)
    Drive.update(mount_point=root).where(Drive.id == drive.id).execute()
    return root


def _problem(drive: Drive, text: str, kind: str) -> None:
    Drive.update(problem=text, busy="").where(Drive.id == drive.id).execute()
    Event.publish(kind, drive.subject, f"{drive.name}: {text}", level="error", drive=drive.id)


@huey.task()
@with_db
def adopt_drive(drive_id: int) -> None:
    drive = Drive.get_or_none(Drive.id == drive_id)
    if drive is None or not drive.connected or drive.adopted or drive.busy != "adopting":
        return
    try:
        root = _ensure_mounted(drive)
        token = engine.new_token()
        engine.write_marker(root, drive.uuid, token)
    except engine.DriveError as error:
        _problem(drive, str(error), "drive.adopt_failed")
        return
    Drive.update(adopted_at=utcnow(), token=token, busy="", problem="", ejected=False).where(
        Drive.id == drive.id).execute()
    Event.publish("drive.adopted", drive.subject,
                  f"{drive.name} is adopted: backups can go to {root}.", drive=drive.id)


@huey.task()
@with_db
def drive_arrived(drive_id: int) -> None:
    """Mount an adopted drive, prove it, then resume what waited for it and start what runs
    when it comes."""
    drive = Drive.get_or_none(Drive.id == drive_id)
    if drive is None or not drive.connected or not drive.adopted or drive.ejected:
        return
    try:
        root = _ensure_mounted(drive)
    except engine.DriveError as error:
        _problem(drive, str(error), "drive.mount_failed")
        return
    wrong = engine.prove(root, drive.uuid, drive.token)
    if wrong:
        _problem(drive, wrong + " Nothing is written to it.", "drive.not_adopted")
        return
    Drive.update(problem="", busy="").where(Drive.id == drive.id).execute()
    Event.publish("drive.ready", drive.subject, f"{drive.name} is mounted at {root}.",
                  drive=drive.id)
    catalog.index_missing()   # snapshots made while it was away from this worker
    for profile in profiles_on(drive):
        if backup.resume_interrupted(profile):
            continue
        if profile.run_on_connect:
            try:
                backup.request_run(profile, trigger="drive", requested_by=drive.name)
            except AlreadyRunning:
                pass


@huey.task()
@with_db
def drive_left(drive_id: int) -> None:
    """The drive went away: detach what is left of its mount and stop its runs (they end
    interrupted and resume when it is back)."""
    drive = Drive.get_or_none(Drive.id == drive_id)
    if drive is None:
        return
    root = mount_root(drive)
    for run in _active_runs(drive):
        backup.interrupt(run, f"{drive.name} was disconnected.")
    if engine.is_mounted_at(root):
        try:
            engine.unmount(root, lazy=True)
        except engine.DriveError as error:
            log.warning("%s", error)


@huey.task()
@with_db
def eject_drive(drive_id: int) -> None:
    drive = Drive.get_or_none(Drive.id == drive_id)
    if drive is None or drive.busy != "ejecting":
        return
    busy = _active_runs(drive)
    if busy:
        _problem(drive, f"Run {busy[0].id} of {busy[0].profile.name} is writing to it; cancel "
                 "it or let it finish, then eject.", "drive.eject_failed")
        return
    try:
        while point := engine.mount_point_of(drive.devnode):
            engine.unmount(point)
    except engine.DriveError as error:
        _problem(drive, str(error), "drive.eject_failed")
        return
    Drive.update(ejected=True, mount_point="", busy="", problem="").where(
        Drive.id == drive.id).execute()
    Event.publish("drive.ejected", drive.subject, f"{drive.name} can be unplugged safely.",
                  drive=drive.id)


def profiles_on(drive: Drive) -> list[Profile]:
    return [p for p in Profile.select().order_by(Profile.name)
            if Drive.of_path(p.destination, settings().drive_root) == drive]


def _active_runs(drive: Drive) -> list[Run]:
    profiles = profiles_on(drive)
    if not profiles:
        return []
    return list(Run.select().where(Run.profile.in_(profiles) & Run.state.in_(ACTIVE_STATES)))
