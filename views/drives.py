"""Drives: every filesystem the worker's udev watcher has seen, live; admins adopt one as a
backup destination, operators eject it.

The web process neither mounts nor reads drives: it marks the row busy and enqueues the
worker's task (jobs/drives.py), and the page follows the drive's events over the feed.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for

from jobs import drives as drive_jobs
from jobs.engines.drives import MIRROR_ONLY
from models import Drive, Event, Profile, Run, utcnow
from models.setting import live
from models.user import ADMIN, OPERATOR, VIEWER
from views import feed
from views.audit import audit
from views.health import worker_note
from views.security import is_htmx, require_role

bp = Blueprint("drives", __name__, url_prefix="/drives")


@dataclass(frozen=True)
class DriveView:
    """A drive with what the pages say of it."""
    drive: Drive
    profiles: list[Profile]
    last_good: Run | None
    free: int | None
    total: int | None
    away_too_long: bool

    @property
    def mirror_only(self) -> bool:
        return self.drive.fstype in MIRROR_ONLY


def drive_root() -> str:
    return str(current_app.config["CAIRN"].drive_root)


def views_of(drives: list[Drive], now: dt.datetime) -> list[DriveView]:
    settings = live(current_app.config["CAIRN"])
    profiles = list(Profile.select().order_by(Profile.name))
    away = dt.timedelta(days=settings.drive_away_days)
    shown = []
    for drive in drives:
        mine = [p for p in profiles if Drive.of_path(p.destination, settings.drive_root) == drive]
        last_good = None
        if mine:
            last_good = (Run.select().where(Run.profile.in_(mine) & Run.good())
                         .order_by(Run.id.desc()).first())
        free = total = None
        if drive.connected and drive.mount_point:
            try:
                usage = shutil.disk_usage(drive.mount_point)
                free, total = usage.free, usage.total
            except OSError:
                pass  # a mount point this unprivileged process may not look into
        shown.append(DriveView(drive, mine, last_good, free, total,
                               drive.adopted and not drive.connected
                               and now - drive.last_seen_at > away))
    return shown


@feed.subject("drives", ("drives/_list.html",))
def drives_context(arg: str | None = None) -> dict:
    now = utcnow()
    return {"drives": views_of(Drive.listing(), now), "now": now, "drive_root": drive_root()}


feed.on_event(lambda event: event.subject.startswith("drive:"), lambda event: "drives")


@bp.route("/")
@require_role(VIEWER)
def index():
    return render_template("drives/page.html", **drives_context())


def _drive_or_404(drive_id: int) -> Drive:
    drive = Drive.get_or_none(Drive.id == drive_id)
    if drive is None:
        abort(404)
    return drive


def _changed(note: str, status: int = 200):
    """After an action: htmx gets the fresh list and a notice; a plain form, the page."""
    level = "error" if status >= 400 else "success"
    if not is_htmx():
        flash(note, level)
        return redirect(url_for("drives.index"), code=303)
    return render_template("drives/_changed.html", note=note, note_level=level,
                           **drives_context()), status


def _hand_over(drive: Drive, busy: str, allowed, task) -> bool:
    """Mark the drive busy (if `allowed` holds, atomically), say so, enqueue the task."""
    claimed = (Drive.update(busy=busy, problem="")
               .where((Drive.id == drive.id) & Drive.connected & (Drive.busy == "") & allowed)
               .execute())
    if claimed:
        Event.publish(f"drive.{busy}", drive.subject, f"{busy.capitalize()} {drive.name}.",
                      drive=drive.id)
        task(drive.id)
    return bool(claimed)


@bp.route("/<id:drive_id>/adopt", methods=["POST"])
@require_role(ADMIN)
def adopt(drive_id: int):
    drive = _drive_or_404(drive_id)
    if not _hand_over(drive, "adopting", Drive.adopted_at.is_null(), drive_jobs.adopt_drive):
        return _changed(f"{drive.name} cannot be adopted now: it is "
                        f"{'already adopted' if drive.adopted else drive.state_label.lower()}.", 409)
    audit("drive.adopt", target=drive.name, detail=f"UUID {drive.uuid}, {drive.fstype}")
    return _changed(f"Adopting {drive.name}: the worker mounts it at "
                    f"{drive.root(drive_root())} and marks it as Cairn's." + worker_note())


@bp.route("/<id:drive_id>/eject", methods=["POST"])
@require_role(OPERATOR)
def eject(drive_id: int):
    drive = _drive_or_404(drive_id)
    if not _hand_over(drive, "ejecting", ~Drive.ejected, drive_jobs.eject_drive):
        return _changed(f"{drive.name} cannot be ejected now: it is "
                        f"{drive.state_label.lower()}.", 409)
    audit("drive.eject", target=drive.name, detail=f"UUID {drive.uuid}")
    return _changed(f"Ejecting {drive.name}: wait for “Safe to unplug”." + worker_note())
