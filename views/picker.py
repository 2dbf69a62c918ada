"""The folder picker: this box's folders under the allowed roots, with sizes and file counts
from the worker's scans, opened lazily, a page at a time.

The web process cannot read users' folders (it runs unprivileged); it shows what scans
stored. A folder no finished scan holds is scanned by the worker on request, and the page
fills it in when the worker says it is done (the `scans` feed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NoReturn

from flask import Blueprint, abort, current_app, make_response, render_template, request

from jobs import fileserver, pathcheck, scans
from jobs.engines.profile import MODES, ProfileInvalid, clean_selection
from jobs.engines.snapshots import CheckError, check_path_text, within
from models import ExcludePreview, Scan, ScanDir, WorkerProcess, utcnow
from models.backup import path_key
from models.setting import live
from models.user import ADMIN
from views import feed
from views.audit import audit
from views.errors import render_error
from views.forms import text_lines
from views.pagination import paginate
from views.security import require_role

bp = Blueprint("picker", __name__, url_prefix="/picker")

PAGE_SIZE = 200


@dataclass(frozen=True)
class Folder:
    """A folder as the picker shows it; `row` is None until a scan holds it."""
    path: str
    name: str
    row: ScanDir | None

    @property
    def key(self) -> str:
        return path_key(self.path)


def source_roots() -> tuple[str, ...]:
    return live(current_app.config["CAIRN"]).source_roots


def outside_roots(sources: list[str]) -> str | None:
    """Why a source cannot be backed up from the web (outside CAIRN_SOURCE_ROOTS), or None."""
    roots = source_roots()
    # A host's folder (user@host:/path) is the host's own; its rights are the SSH user's.
    outside = [s for s in sources if s.startswith("/") and not any(within(s, r) for r in roots)]
    if not outside:
        return None
    return (f"{outside[0]} is outside the folders Cairn may back up ({', '.join(roots)}); "
            "an administrator can widen CAIRN_SOURCE_ROOTS.")


def confined(raw: str | None) -> str:
    """`raw` as a folder the picker may show: absolute, already normal (no `..`, `.`, `//`),
    under an allowed root; otherwise a 400 that says why."""
    path = raw or ""
    try:
        check_path_text(path, "folder")
    except CheckError as error:
        _refuse(str(error))
    if os.path.normpath(path) != path or path.startswith("//"):
        _refuse(f"Give the folder as a plain absolute path, without “..”, “.” or doubled "
                f"slashes (not {path}).")
    if not any(within(path, root) for root in source_roots()):
        _refuse(f"{path} is outside the folders Cairn may back up ({', '.join(source_roots())}).")
    return path


def _refuse(message: str) -> NoReturn:
    abort(make_response(render_error(400, message)))


def folder_context(path: str, page_number: str | None = None) -> dict:
    record = Scan.covering(path)
    pending = Scan.in_progress(path)
    failed = None if record or pending else Scan.last_failure(path)
    here = record.folder(record.relative(path)) if record else None
    context = {"path": path, "key": path_key(path), "record": record, "pending": pending,
               "failed": failed, "here": here, "page": None, "now": utcnow()}
    if here is not None:
        page = paginate(record.children_query(here.path), page_number, PAGE_SIZE,
                        total=here.subdirs)
        context["page"] = page
        context["folders"] = [Folder(os.path.join(record.root, row.path),
                                     row.path.rpartition("/")[2], row) for row in page.items]
    return context


def roots_context() -> dict:
    folders = []
    for root in source_roots():
        record = Scan.covering(root)
        folders.append(Folder(root, root, record.folder(record.relative(root)) if record else None))
    return {"roots": folders}


@bp.route("/folder")
@require_role(ADMIN)
def folder():
    path = confined(request.args.get("path"))
    context = folder_context(path, request.args.get("page"))
    more = context["page"] is not None and context["page"].number > 1
    return render_template("picker/_more.html" if more else "picker/_folder.html", **context)


@bp.route("/scan", methods=["POST"])
@require_role(ADMIN)
def scan():
    path = confined(request.form.get("path"))
    scans.request_scan(path)
    return render_template("picker/_folder.html", **folder_context(path))


@feed.subject("scans", ("picker/_ping.html",), role=ADMIN)
def scans_context(arg: str | None = None) -> dict:
    return {"event": None}


# A scan moved on: pages showing that folder fetch it again.
feed.on_event(lambda event: event.kind.startswith("scan."), lambda event: "scans",
              "picker/_ping.html")


# --- Exclude preview --------------------------------------------------------------------------

@bp.route("/preview", methods=["POST"])
@require_role(ADMIN)
def preview():
    """Count, in the worker, what the form's exclude patterns leave out of its folders."""
    try:
        sources, excludes = clean_selection(text_lines(request.form.get("sources")),
                                            text_lines(request.form.get("excludes")))
    except ProfileInvalid as invalid:
        return render_template("picker/_preview.html", problems=list(invalid.errors.values()))
    outside = outside_roots(sources)
    if outside:
        return render_template("picker/_preview.html", problems=[outside])
    if not excludes:
        return render_template("picker/_preview.html",
                               problems=["Write a pattern under “Leave out” first."])
    found = scans.request_preview(sources, excludes, bool(request.form.get("one_file_system")))
    return render_template("picker/_preview.html", **preview_context(found))


@bp.route("/preview/<id:preview_id>")
@require_role(ADMIN)
def preview_result(preview_id: int):
    found = ExcludePreview.get_or_none(ExcludePreview.id == preview_id)
    if found is None:
        abort(404)
    return render_template("picker/_preview.html", **preview_context(found))


def preview_context(found: ExcludePreview) -> dict:
    return {"preview": found, "worker": WorkerProcess.status(), "now": utcnow()}


@feed.subject("previews", ("picker/_preview_ping.html",), role=ADMIN)
def previews_context(arg: str | None = None) -> dict:
    return {"event": None}


# A count moved on: the page showing it fetches it again.
feed.on_event(lambda event: event.kind.startswith("preview."), lambda event: "previews",
              "picker/_preview_ping.html")


# --- The form's folders, checked by the worker ------------------------------------------------

@bp.route("/paths", methods=["POST"])
@require_role(ADMIN)
def check_paths():
    """Whether the form's sources and destination are usable, as the worker sees them (it can
    read them; the web cannot). Asked again as the fields change."""
    sources, destination, mode = _form_paths()
    return render_template("picker/_paths.html", **paths_context(sources, destination, mode))


@bp.route("/paths/destination", methods=["POST"])
@require_role(ADMIN)
def make_destination():
    """Make the missing destination folder, on the user's explicit request."""
    sources, destination, mode = _form_paths()
    made = None
    try:
        answer = fileserver.ask(_data_dir(), "make-destination", destination=destination,
                                sources=[s for s in sources if s.startswith("/")])
    except fileserver.Refused as refusal:
        answer = {"made": False, "message": str(refusal)}
    if answer.get("made"):
        audit("destination.create", target=destination, detail="made from the profile form")
        made = answer.get("message")
    context = paths_context(sources, destination, mode)
    context["made"] = made
    context["make_problem"] = None if made else answer.get("message")
    return render_template("picker/_paths.html", **context)


def _form_paths() -> tuple[list[str], str, str]:
    sources = text_lines(request.form.get("sources"))[:pathcheck.MAX_SOURCES]
    destination = (request.form.get("destination") or "").strip()
    mode = request.form.get("mode") if request.form.get("mode") in MODES else "snapshot"
    return sources, destination, mode


def _data_dir():
    return current_app.config["CAIRN"].data_dir


def paths_context(sources: list[str], destination: str, mode: str = "snapshot") -> dict:
    """Each path's verdict: sources outside the allowed roots are refused here, the rest go
    to the worker; None when there is nothing to check."""
    context = {"asked": True, "checked": None, "problem": None, "made": None,
               "make_problem": None}
    if not sources and not destination:
        return context
    outside = {s: outside_roots([s]) for s in sources}
    try:
        answer = fileserver.ask(_data_dir(), "check-paths", timeout=PATHS_TIMEOUT,
                                sources=[s for s in sources if not outside[s]],
                                destination=destination, mode=mode)
    except fileserver.NotRunning:
        context["problem"] = ("No worker is running, so these folders cannot be checked now; "
                              "each run checks them when it starts.")
        return context
    except fileserver.Refused as refusal:
        context["problem"] = f"{refusal} Each run checks the folders when it starts."
        return context
    checked = iter(answer.get("sources", []))
    lines = [{"path": s, "ok": False, "message": outside[s]} if outside[s] else next(checked)
             for s in sources]
    context["checked"] = {"sources": lines, "destination": answer.get("destination")}
    return context


PATHS_TIMEOUT = 10


def path_problems(sources: list[str], destination: str, mode: str) -> list[str]:
    """The messages of the paths the worker finds unusable (none when no worker answers)."""
    checked = paths_context(sources, destination, mode)["checked"]
    if checked is None:
        return []
    lines = [*checked["sources"], checked["destination"]]
    return [line["message"] for line in lines if line and line["ok"] is False]
