"""`/healthz` for monitoring: database, queue and worker, without logging in."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from jobs.queue import huey
from models import WorkerProcess, utcnow

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def worker_note() -> str:
    """Said after handing work to the worker, when no worker is running to take it."""
    if WorkerProcess.status().alive:
        return ""
    return " The worker is not running, so this waits for it (systemctl start cairn-worker)."


@bp.route("/healthz")
def healthz():
    now = utcnow()
    report: dict = {"database": "ok", "queue": "ok", "worker": {"alive": False, "heartbeat_age": None}}
    try:
        status = WorkerProcess.status(now)
        report["worker"] = {
            "alive": status.is_alive, "threads": status.threads,
            "heartbeat_age": round((now - status.last_seen).total_seconds(), 1)
            if status.last_seen else None}
    except Exception as exc:  # the report says what is wrong; the log has the details
        log.warning("health check: database: %s", exc)
        report["database"] = "error"
    try:
        report["queue_pending"] = huey.pending_count()
    except Exception as exc:
        log.warning("health check: queue: %s", exc)
        report["queue"] = "error"
    healthy = (report["database"] == "ok" and report["queue"] == "ok"
               and report["worker"]["alive"])
    report["status"] = "ok" if healthy else "unhealthy"
    return jsonify(report), 200 if healthy else 503
