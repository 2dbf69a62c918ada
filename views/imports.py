"""Imports: the inbox queue with live states, the files that need attention with every reason
(operators identify them by hand, retry, or import anyway), each file's story, and the
import history. The worker does the work (jobs/imports.py); these pages follow its events.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, render_template, request, url_for

from jobs import imports
from models import Event, ImportItem, Inbox, Library, utcnow
from models.media import IMPORT_FINISHED, IMPORT_LABELS
from models.user import OPERATOR, VIEWER
from views import feed
from views.audit import audit
from views.forms import whole_number
from views.health import worker_note
from views.notices import after_action
from views.pagination import paginate
from views.security import get_or_404, is_htmx, require_role, safe_next

bp = Blueprint("imports", __name__)

SHOWN_QUEUE = 200
SHOWN_ATTENTION = 200
RECENT = 10
HISTORY_PAGE = 50
TIMELINE = 100
MIN_YEAR, MAX_YEAR = 1870, 2100


@feed.subject("imports", ("imports/_attention.html", "imports/_queue.html", "imports/_recent.html"))
def imports_context(arg: str | None = None) -> dict:
    library = Library.current()
    return {"queue": list(ImportItem.queue().limit(SHOWN_QUEUE)),
            "attention": list(ImportItem.attention().limit(SHOWN_ATTENTION)),
            "recent": list(ImportItem.select().where(ImportItem.state == "imported")
                           .order_by(ImportItem.finished_at.desc()).limit(RECENT)),
            "counts": ImportItem.counts(), "library": library,
            "inboxes": list(Inbox.select().order_by(Inbox.path)), "now": utcnow()}


@feed.subject("import", ("imports/_item.html",))
def item_context(arg: str | None = None) -> dict:
    item = feed.row_of(ImportItem, arg)
    if item is None:
        return {"item": None}
    timeline = list(Event.select().where(Event.subject == item.subject)
                    .order_by(Event.id.desc()).limit(TIMELINE))
    return {"item": item, "timeline": timeline[::-1], "now": utcnow()}


feed.on_event(lambda event: event.subject.startswith("import:"), lambda event: "imports")
feed.on_event(lambda event: event.subject.startswith("import:"), lambda event: event.subject)


@bp.route("/imports/")
@require_role(VIEWER)
def index():
    return render_template("imports/page.html", **imports_context())


@bp.route("/imports/<id:item_id>")
@require_role(VIEWER)
def detail(item_id: int):
    item = get_or_404(ImportItem, item_id)
    return render_template("imports/detail.html", **item_context(str(item.id)))


@bp.route("/imports/history")
@require_role(VIEWER)
def history():
    state = request.args.get("state", "")
    query = ImportItem.history()
    if state in IMPORT_FINISHED:
        query = query.where(ImportItem.state == state)
    words = (request.args.get("q") or "").strip()[:200]
    if words:
        query = query.where(ImportItem.name.contains(words) | ImportItem.destination.contains(words))
    page = paginate(query, request.args.get("page"), HISTORY_PAGE)
    return render_template("imports/history.html", page=page, state=state, q=words,
                           states=[(s, IMPORT_LABELS[s]) for s in IMPORT_FINISHED])


@bp.route("/imports/scan", methods=["POST"])
@require_role(OPERATOR)
def scan():
    imports.sweep_task()
    return _changed("Looking at the inboxes now." + worker_note())


@bp.route("/imports/<id:item_id>/retry", methods=["POST"])
@require_role(OPERATOR)
def retry(item_id: int):
    item = get_or_404(ImportItem, item_id)
    if not imports.retry(item):
        return _changed(f"{item.name} is not waiting for a decision any more.", 409)
    audit("import.retry", target=item.name)
    return _changed(f"Trying {item.name} again." + worker_note())


@bp.route("/imports/<id:item_id>/anyway", methods=["POST"])
@require_role(OPERATOR)
def anyway(item_id: int):
    item = get_or_404(ImportItem, item_id)
    if not imports.import_anyway(item):
        return _changed(f"{item.name} cannot be imported anyway: "
                        + ("; ".join(item.reasons) if item.reasons else "it is not blocked."), 409)
    audit("import.anyway", target=item.name, detail="; ".join(item.reasons))
    return _changed(f"Importing {item.name} anyway." + worker_note())


@bp.route("/imports/<id:item_id>/identify", methods=["POST"])
@require_role(OPERATOR)
def identify(item_id: int):
    item = get_or_404(ImportItem, item_id)
    title, year, problem = _identity(request.form.get("title"), request.form.get("year"))
    if problem:
        return _changed(problem, 422)
    if not imports.identify(item, title, year):
        return _changed(f"{item.name} is not waiting for a decision any more.", 409)
    audit("import.identify", target=item.name, detail=f"{title} ({year or 'no year'})")
    return _changed(f"{item.name} is {title}" + (f" ({year})" if year else "") + "; importing."
                    + worker_note())


def _identity(raw_title: str | None, raw_year: str | None) -> tuple[str, int | None, str]:
    title = re.sub(r"\s+", " ", raw_title or "").strip()
    if not title:
        return "", None, "Write the movie's title."
    if len(title) > 300 or any(ord(c) < 32 for c in title):
        return "", None, "A title is at most 300 characters, without control characters."
    raw_year = (raw_year or "").strip()
    if not raw_year:
        return title, None, ""
    year = whole_number(raw_year, MIN_YEAR, MAX_YEAR)
    if year is None:
        return "", None, f"The year is a number from {MIN_YEAR} to {MAX_YEAR}, or empty."
    return title, year, ""


def _changed(note: str, status: int = 200):
    # A plain form goes back where it was sent from: the queue, or one file's page.
    came_from = urlsplit(request.referrer or "")
    back = came_from.path if came_from.netloc == request.host else ""
    return after_action(note, safe_next(back, url_for("imports.index")), status, htmx=is_htmx())
