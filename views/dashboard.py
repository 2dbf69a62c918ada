"""The dashboard: this box's load, the worker's pulse and recent activity, all live."""

from __future__ import annotations

import datetime as dt
import threading

from flask import Blueprint, current_app, render_template

from jobs.engines.system import SystemSample, sample
from models import Event, WorkerProcess, utcnow
from models.user import VIEWER
from views import feed
from views.security import require_role

bp = Blueprint("dashboard", __name__)

SYSTEM_INTERVAL = 2.0
ACTIVITY_SHOWN = 20

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


feed.on_event(lambda event: not event.is_progress, lambda event: "activity",
              "dashboard/_event_push.html")


@bp.route("/")
@require_role(VIEWER)
def index():
    return render_template("dashboard/page.html", **system_context(), **activity_context())
