"""Every run, filtered, sorted and paged, with totals; the same rows as CSV and JSON.

`/history`, `/history.csv` and `/history.json` read one filter from the same query
parameters, so an export holds exactly the rows the page shows (all pages of them).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Blueprint, Response, g, render_template, request, stream_with_context
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from models import ACTIVE_STATES, FINISHED_STATES, Profile, Run
from models.backup import STATE_LABELS
from models.user import VIEWER
from views import feed
from views.audit import dates_in_order
from views.format import utc_day_start
from views.forms import chosen_profile, profile_filter_choices
from views.pagination import paginate, url_with
from views.security import is_htmx, require_role

bp = Blueprint("history", __name__)

PAGE_SIZE = 50
SORTS = {"started": Run.id, "profile": Profile.name, "state": Run.state,
         "files": Run.files_done, "copied": Run.sent_bytes, "problems": Run.error_count}
STATUS_CHOICES = [SelectChoice("", "Any state"), SelectChoice("active", "In progress"),
                  *(SelectChoice(s, STATE_LABELS[s]) for s in FINISHED_STATES)]
KIND_CHOICES = [SelectChoice("", "Backups and dry runs"), SelectChoice("backup", "Backups"),
                SelectChoice("dry", "Dry runs")]
EXPORT_COLUMNS = ("id", "profile", "state", "dry_run", "trigger", "requested_by", "created_at",
                  "started_at", "finished_at", "seconds", "files", "total_files", "bytes",
                  "total_bytes", "new_files", "changed_files", "copied_bytes", "warnings",
                  "errors", "message")


class HistoryFilter(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    profile = SelectField("Profile", validators=[Optional()], validate_choice=False)
    status = SelectField("State", choices=STATUS_CHOICES, validators=[Optional()])
    kind = SelectField("Kind", choices=KIND_CHOICES, validators=[Optional()])
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])
    q = StringField("Text", validators=[Optional(), Length(max=200)])


@dataclass(frozen=True)
class Filtered:
    form: HistoryFilter
    condition: object | None      # None when the filter has errors
    sort: str
    descending: bool


def read_filter() -> Filtered:
    form = HistoryFilter(request.args)
    form.profile.choices = profile_filter_choices()
    raw_sort = request.args.get("sort", "-started")
    sort, descending = raw_sort.lstrip("-"), raw_sort.startswith("-")
    if sort not in SORTS:
        sort, descending = "started", True
    if not form.validate() or not dates_in_order(form):
        return Filtered(form, None, sort, descending)
    return Filtered(form, _condition(form), sort, descending)


def _condition(form: HistoryFilter):
    status = form.status.data or ""
    states = ACTIVE_STATES if status == "active" else (status,) if status else ()
    since, until = form.since.data, form.until.data
    return Run.matching(
        profile_id=chosen_profile(form.profile), states=states,
        dry_run={"backup": False, "dry": True}.get(form.kind.data or ""),
        since=utc_day_start(since, g.tz) if since else None,
        until=utc_day_start(until + dt.timedelta(days=1), g.tz) if until else None,
        text=(form.q.data or "").strip())


def _rows(filtered: Filtered):
    column = SORTS[filtered.sort]
    # Ties go by id in the same direction, so one index on the column serves the whole order.
    order = [column.desc(), Run.id.desc()] if filtered.descending else [column.asc(), Run.id.asc()]
    if column is Run.id:
        order.pop()
    return (Run.select(*Run.listed_fields(), Profile.id, Profile.name).join(Profile)
            .where(filtered.condition).order_by(*order))


def export_row(run: Run) -> dict:
    seconds = run.duration.total_seconds() if run.duration else None
    return {"id": run.id, "profile": run.profile.name, "state": run.state,
            "dry_run": run.dry_run, "trigger": run.trigger, "requested_by": run.requested_by,
            "created_at": _iso(run.created_at), "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "seconds": round(seconds, 1) if seconds is not None else None,
            "files": run.files_done, "total_files": run.total_files, "bytes": run.bytes_done,
            "total_bytes": run.total_bytes, "new_files": run.new_files,
            "changed_files": run.changed_files, "copied_bytes": run.sent_bytes,
            "warnings": run.warning_count, "errors": run.error_count, "message": run.message}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def _spreadsheet_safe(value):
    """Text a spreadsheet would run as a formula (=, +, -, @) is kept as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def sort_link(filtered: Filtered, key: str) -> str:
    """The page sorted by `key`: descending first, flipped when it already is."""
    return url_with(page=None,
                    sort=key if filtered.sort == key and filtered.descending else f"-{key}")


@bp.route("/history")
@require_role(VIEWER)
def index():
    filtered = read_filter()
    template = "history/_results.html" if is_htmx() else "history/page.html"
    if filtered.condition is None:
        return render_template(template, filtered=filtered, page=None, totals=None), 400
    totals = Run.totals(filtered.condition)
    page = paginate(_rows(filtered), request.args.get("page"), PAGE_SIZE, total=totals["runs"])
    return render_template(template, filtered=filtered, page=page, totals=totals,
                           sort_link=sort_link)


@bp.route("/history.csv")
@require_role(VIEWER)
def export_csv():
    filtered = read_filter()
    if filtered.condition is None:
        return _bad_filter(filtered)

    rows = _started(_rows(filtered))

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, EXPORT_COLUMNS)
        writer.writeheader()
        for number, run in enumerate(rows.iterator(), 1):
            writer.writerow({k: _spreadsheet_safe(v) for k, v in export_row(run).items()})
            if number % 500 == 0:
                yield _drain(buffer)
        yield _drain(buffer)

    return _download(lines(), "text/csv", "csv")


@bp.route("/history.json")
@require_role(VIEWER)
def export_json():
    filtered = read_filter()
    if filtered.condition is None:
        return _bad_filter(filtered)

    rows = _started(_rows(filtered))

    def chunks() -> Iterator[str]:
        yield "["
        for number, run in enumerate(rows.iterator()):
            yield ("," if number else "") + "\n" + json.dumps(export_row(run))
        yield "\n]\n"

    return _download(chunks(), "application/json", "json")


def _started(query):
    """The query, its first row read now: an export that cannot be made fails with an error
    page before its first byte, not as a cut-off file. (The stream runs after this
    request's connection is closed, and reads all the rows on a connection of its own.)"""
    list(query.clone().limit(1))
    return query


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _download(body: Iterator[str], mimetype: str, extension: str) -> Response:
    name = f"cairn-history-{dt.date.today().isoformat()}.{extension}"
    return Response(stream_with_context(body), mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _bad_filter(filtered: Filtered):
    problems = {name: field.errors[0] for name, field in filtered.form._fields.items()
                if field.errors}
    return {"error": "The filter is not valid.", "fields": problems}, 400


# Any change to any run tells history pages to fetch their rows again (see static/cairn.js):
# each page has its own filter, so each asks for its own rows.
@feed.subject("runs", ("history/_changed.html",))
def runs_changed_context(arg: str | None = None) -> dict:
    return {}


feed.on_event(lambda event: event.subject.startswith("run:"), lambda event: "runs")
