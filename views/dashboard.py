"""The dashboard: every backup at a glance, this box's load, the worker's pulse and recent
activity, all live."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from dataclasses import dataclass

from flask import Blueprint, current_app, render_template

from jobs.engines.system import SystemSample, sample
from models import (
    Drive,
    Event,
    ImportItem,
    Library,
    Profile,
    Run,
    Verification,
    WorkerProcess,
    utcnow,
)
from models.media import IMPORT_WORKING
from models.user import VIEWER
from views import drives, feed
from views.security import require_role

bp = Blueprint("dashboard", __name__)

SYSTEM_INTERVAL = 2.0
ACTIVITY_SHOWN = 20
PROBLEMS_SHOWN = 5

_sample_lock = threading.Lock()
_last_sample: SystemSample | None = None


def current_sample(now: dt.datetime) -> SystemSample:
    """A fresh reading, shared by everyone asking within the same second.

    psutil measures CPU use since the previous reading, so page loads and the broadcaster
    share one reading instead of each cutting the other's interval short.
    """
    global _last_sample
    with _sample_lock:
        if _last_sample is None or (now - _last_sample.at).total_seconds() >= 1:
            _last_sample = sample(current_app.config["CAIRN"].data_dir, now)
        return _last_sample


@feed.subject("system", ("dashboard/_system.html", "dashboard/_worker.html"), every=SYSTEM_INTERVAL)
def system_context(arg: str | None = None) -> dict:
    now = utcnow()
    return {"sample": current_sample(now), "worker": WorkerProcess.status(now), "now": now}


@feed.subject("activity", ("dashboard/_activity.html",))
def activity_context(arg: str | None = None) -> dict:
    return {"events": Event.recent(ACTIVITY_SHOWN)}


feed.on_event(lambda event: not event.is_quiet, lambda event: "activity",
              "dashboard/_event_push.html")


@feed.subject("import-counts", ("dashboard/_imports.html",))
def imports_context(arg: str | None = None) -> dict:
    counts = ImportItem.counts()
    return {"imports": counts, "library": Library.current(),
            "working": sum(counts.get(state, 0) for state in IMPORT_WORKING)}


feed.on_event(lambda event: event.subject.startswith("import:") or event.subject == "library",
              lambda event: "import-counts")


@dataclass(frozen=True)
class Space:
    free: int
    total: int

    @property
    def used_percent(self) -> float:
        return 100.0 * (self.total - self.free) / self.total if self.total else 0.0


def free_space(folder: str) -> Space | None:
    """Free space where `folder` is, or None when this process cannot reach it (an unplugged
    drive; a folder the unprivileged web process may not search)."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return None
    return Space(usage.free, usage.total)


@feed.subject("backups", ("dashboard/_backups.html",))
def backups_context(arg: str | None = None) -> dict:
    profiles = Profile.listing()
    active = {run.profile_id: run for run in Run.active()}
    spaces = {p.destination: free_space(p.destination) for p in profiles}
    now = utcnow()
    adopted = [d for d in Drive.listing() if d.adopted]
    return {"profiles": profiles, "active": active, "spaces": spaces, "now": now,
            "problems": Event.problems(PROBLEMS_SHOWN), "drives": drives.views_of(adopted, now),
            "damaged": Verification.newest_bad()}


# Any change to a run can change a card: its bar, its last result, its snapshot's age; a
# drive coming or going changes its own card.
feed.on_event(lambda event: event.subject.startswith(("run:", "drive:"))
              or event.kind == "verification.finished", lambda event: "backups")


@bp.route("/")
@require_role(VIEWER)
def index():
    # The contexts share `now`; each one's own is as fresh as the other's.
    context = {**backups_context(), **activity_context(), **system_context(),
               **imports_context()}
    return render_template("dashboard/page.html", **context)
