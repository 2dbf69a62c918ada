"""A run's page: its live progress, speed graph, parts, log tail; cancel and retry (operators);
a dry run's itemized changes; the full log as a download.

The page and the live feed render the same partial from the same `run_context`, so a reload
shows exactly what a watcher saw.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from jobs import backup, run_logs
from jobs.engines.humane import format_count
from models import AlreadyRunning, Run, Unit, db, utcnow
from models.user import OPERATOR, VIEWER
from views import feed
from views.audit import audit
from views.charts import speed_chart
from views.pagination import paginate
from views.security import get_run_or_404, is_htmx, require_role

bp = Blueprint("runs", __name__, url_prefix="/runs")

LOG_TAIL = 40
ITEMS_PER_PAGE = 200


@feed.subject("run", ("runs/_live.html",))
def run_context(arg: str | None) -> dict:
    run = feed.row_of(Run, arg)
    if run is None:
        return {"run": None}
    now = utcnow()
    units = list(run.units_query())
    rates = {u.id: None if run.dry_run else unit_rate(u, now) for u in units}
    return {"run": run, "units": units, "unit_rates": rates,
            "log": run.log_tail(LOG_TAIL), "chart": speed_chart(run.speed),
            "unit_states": dict(Counter(unit.state for unit in units)), "now": now}


# Every change of a run re-renders its page for those watching it.
feed.on_event(lambda event: event.subject.startswith("run:"), lambda event: event.subject)


def unit_rate(unit: Unit, now) -> float | None:
    """Data written per second by a part over its latest attempt (files left unchanged or
    linked are no speed; a dry run writes nothing and has none)."""
    if not unit.started_at:
        return None
    seconds = ((unit.finished_at or now) - unit.started_at).total_seconds()
    return unit.written_bytes / seconds if seconds > 0 else None


@bp.route("/<id:run_id>")
@require_role(VIEWER)
def detail(run_id: int):
    run = get_run_or_404(run_id)
    return render_template("runs/page.html", **run_context(str(run.id)))


@bp.route("/<id:run_id>/cancel", methods=["POST"])
@require_role(OPERATOR)
def cancel(run_id: int):
    run = get_run_or_404(run_id)
    if backup.cancel(run):
        audit("run.cancel", target=run.profile.name, detail=f"run {run.id}")
        note = "Stopping the run: parts in progress stop now, and nothing half-copied is kept."
    else:
        note = f"The run had already ended ({run.state_label.lower()})."
    return _changed(run, note)


@bp.route("/<id:run_id>/retry", methods=["POST"])
@require_role(OPERATOR)
def retry(run_id: int):
    run = get_run_or_404(run_id)
    try:
        count = backup.retry_failed(run)
    except AlreadyRunning as running:
        return _changed(run, f"{run.profile.name} is running again already (run "
                             f"{running.run.id}); wait for it to end.", 409)
    if not count:
        return _changed(run, "There is nothing to retry: only a partly done run whose "
                             "unfinished snapshot is still there has failed parts to run again.",
                        409)
    audit("run.retry", target=run.profile.name, detail=f"run {run.id}, {count} part(s)")
    return _changed(run, f"Retrying {format_count(count, 'failed part')}.")


def _changed(run: Run, note: str, status: int = 200):
    """After an action: htmx gets the fresh live region and a notice; a plain form, the page."""
    if not is_htmx():
        return redirect(url_for("runs.detail", run_id=run.id), code=303)
    context = run_context(str(run.id))
    return render_template("runs/_changed.html", note=note,
                           note_level="error" if status >= 400 else "success", **context), status


@bp.route("/<id:run_id>/items")
@require_role(VIEWER)
def items(run_id: int):
    run = get_run_or_404(run_id)
    page = paginate(run.items(), request.args.get("page"), ITEMS_PER_PAGE)
    return render_template("runs/_items.html", run=run, page=page)


@bp.route("/<id:run_id>/log")
@require_role(VIEWER)
def log(run_id: int):
    """The whole log as text: the run's figures, its messages, then every changed file."""
    run = get_run_or_404(run_id)
    name = f"cairn-run-{run.id}-{run.profile.slug}.log"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(stream_with_context(_log_lines(run)), mimetype="text/plain",
                    headers=headers)


def _log_lines(run: Run) -> Iterator[str]:
    yield (f"Cairn run {run.id}: {'dry run' if run.dry_run else 'backup'} of {run.profile.name}\n"
           f"State: {run.state_label}. {run.message}\n"
           f"Started {run.started_at or '-'} UTC, finished {run.finished_at or '-'} UTC\n"
           f"Files: {run.files_done:,} of {run.total_files:,}; new {run.new_files:,}, "
           f"changed {run.changed_files:,}; {run.sent_bytes:,} bytes copied\n\n")
    with db.connection_context():
        for line in run.log_tail(limit=10**9):
            yield f"{line.at:%Y-%m-%d %H:%M:%S} {line.level.upper():7} {line.text}\n"
    path = run_logs.run_log(run.id, current_app.config["CAIRN"].logs_dir)
    if not path.exists():
        note = "still running" if run.is_active else "none kept"
        yield f"\nItemized changes: {note}.\n"
        return
    yield "\nItemized changes (rsync --itemize-changes):\n"
    with gzip.open(path, "rt", encoding="utf-8", errors="backslashreplace") as lines:
        yield from lines
