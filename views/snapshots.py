"""Snapshots: list them per profile, browse a snapshot's tree, find a file's versions, compare
two snapshots (everyone); verify, restore and download (operators).

Every page here reads the snapshots' manifests (jobs/engines/manifest.py) in the data dir,
never the snapshot trees: the web process is unprivileged and may not be able to read them.
Downloads are streamed by the worker (jobs/fileserver.py). Every path from the browser goes
through `manifest.clean_path` and must be listed in the manifest before it is used.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from jobs import fileserver, restores, verify
from jobs.engines import manifest
from jobs.engines import restore as restore_engine
from jobs.engines.humane import natural_key
from jobs.engines.snapshots import SNAPSHOT_NAME
from models import Host, Profile, Restore, Snapshot, Verification, utcnow
from models.user import OPERATOR, VIEWER
from views import feed
from views.audit import audit
from views.forms import whole_number
from views.pagination import Page, url_with
from views.security import get_or_404, get_profile_or_404, is_htmx, require_role

bp = Blueprint("snapshots", __name__)

PAGE_SIZE = 200
FOUND_PER_SNAPSHOT = 200
SEARCHED_SNAPSHOTS = 100
COMPARED_LISTED = 500
RECENT_RESTORES = 10


def manifests_dir() -> Path:
    return current_app.config["CAIRN"].data_dir / "manifests"


def manifest_of(snapshot: Snapshot) -> Path:
    return manifest.path_for(manifests_dir(), snapshot.profile_id, snapshot.name)


def get_snapshot_or_404(profile: Profile, name: str) -> Snapshot:
    snapshot = Snapshot.named(profile, name) if SNAPSHOT_NAME.match(name) else None
    if snapshot is None:
        abort(404)
    return snapshot


def open_manifest(snapshot: Snapshot) -> manifest.Manifest | None:
    try:
        return manifest.Manifest(manifest_of(snapshot))
    except manifest.ManifestError:
        return None


def checked_path(raw: str | None) -> str:
    """A path from the browser, confined to the snapshot (400 otherwise)."""
    try:
        return manifest.clean_path(raw or "")
    except manifest.PathRefused as refusal:
        abort(400, description=str(refusal))


# --- the list --------------------------------------------------------------------------------

@feed.subject("snapshots", ("snapshots/_list.html",))
def list_context(arg: str | None) -> dict:
    profile = feed.row_of(Profile, arg)
    if profile is None:
        return {"profile": None, "snapshots": [], "checks": {}, "restores": []}
    snapshots = list(Snapshot.kept(profile))
    checks = Verification.newest_per_snapshot(profile)
    # Previews are no restores: they have their own page, and are not listed here.
    recent = list(Restore.select().where((Restore.profile == profile) & ~Restore.dry_run)
                  .order_by(Restore.id.desc()).limit(RECENT_RESTORES))
    return {"profile": profile, "snapshots": snapshots, "checks": checks, "now": utcnow(),
            "restores": recent}


feed.on_event(lambda e: e.kind.startswith(("verification.", "snapshots.", "retention.", "run.finished",
                                           "restore.queued", "restore.finished"))
              and "profile" in e.payload, lambda e: f"snapshots:{e.payload['profile']}")


@bp.route("/profiles/<id:profile_id>/snapshots/")
@require_role(VIEWER)
def index(profile_id: int):
    profile = get_profile_or_404(profile_id)
    context = list_context(str(profile.id))
    return render_template("snapshots/page.html", **context,
                           newest=[s.name for s in context["snapshots"][:2]])


class VerifyForm(FlaskForm):
    kind = RadioField("Check", default="verify", choices=[
        SelectChoice("verify", "Re-read against the manifest"),
        SelectChoice("test_restore", "Test restore: copy out and compare byte for byte")])
    sample = FloatField("Share of files (%)", default=100,
                        validators=[Optional(), NumberRange(0.01, 100, "Between 0.01 and 100.")])


@bp.route("/profiles/<id:profile_id>/snapshots/<name>/verify", methods=["POST"])
@require_role(OPERATOR)
def start_verify(profile_id: int, name: str):
    snapshot = get_snapshot_or_404(get_profile_or_404(profile_id), name)
    form = VerifyForm(prefix="v")
    if not form.validate():
        abort(400, description=" ".join(e for errors in form.errors.values() for e in errors))
    percent = form.sample.data if form.sample.data and form.sample.data < 100 else None
    check = verify.request(snapshot, percent=percent, kind=form.kind.data,
                           requested_by=_username())
    audit("snapshot.verify", target=f"{snapshot.profile.name} {snapshot.name}", detail=check.what)
    return _go(url_for("snapshots.verification", verification_id=check.id))


def _go(target: str):
    """To `target`: htmx (a button in a pushed partial) is told to go there; a form, redirected."""
    if is_htmx():
        return "", 200, {"HX-Redirect": target}
    return redirect(target, code=303)


# --- a verification --------------------------------------------------------------------------

@feed.subject("verification", ("snapshots/_verification.html",))
def verification_context(arg: str | None) -> dict:
    check = feed.row_of(Verification, arg)
    names = {copy["snapshot"] for copy in check.copies if copy["snapshot"]} if check else set()
    sources = {row.name: row for row in Snapshot.select().where(
        (Snapshot.profile == check.profile_id) & Snapshot.name.in_(names))} if names else {}
    return {"check": check, "now": utcnow(), "sources": sources}


feed.on_event(lambda e: e.subject.startswith("verification:"), lambda e: e.subject)


@bp.route("/verifications/<id:verification_id>")
@require_role(VIEWER)
def verification(verification_id: int):
    return render_template("snapshots/verification.html",
                           **verification_context(str(get_or_404(Verification, verification_id).id)))


@bp.route("/verifications/<id:verification_id>/cancel", methods=["POST"])
@require_role(OPERATOR)
def cancel_verification(verification_id: int):
    check = get_or_404(Verification, verification_id)
    verify.cancel(check)
    return redirect(url_for("snapshots.verification", verification_id=check.id), code=303)


# --- browsing --------------------------------------------------------------------------------

@bp.route("/profiles/<id:profile_id>/snapshots/<name>/")
@require_role(VIEWER)
def browse(profile_id: int, name: str):
    snapshot = get_snapshot_or_404(get_profile_or_404(profile_id), name)
    path = checked_path(request.args.get("path"))
    sort = request.args.get("sort") if request.args.get("sort") in manifest.SORTS else "name"
    descending = request.args.get("order") == "desc"
    index = open_manifest(snapshot)
    if index is None:
        return render_template("snapshots/browse.html", snapshot=snapshot, index=None, path=path,
                               crumbs=[], page=None, here=None, sort=sort, descending=descending)
    with index:
        here = index.entry(path)
        if here is None or not here.is_dir:
            abort(404)
        total = index.count(path)
        number = _page_number(request.args.get("page"), total)
        entries = index.children(path, sort, descending, (number - 1) * PAGE_SIZE, PAGE_SIZE)
    page = Page(entries, number, PAGE_SIZE, total)
    return render_template("snapshots/browse.html", snapshot=snapshot, index=True, path=path,
                           crumbs=_crumbs(path), page=page, here=here, sort=sort,
                           descending=descending, url_with=url_with)


def _page_number(raw: str | None, total: int) -> int:
    number = whole_number(raw, high=10**9) or 1
    return min(number, max(1, -(-total // PAGE_SIZE)))


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = path.split("/") if path else []
    return [(part, "/".join(parts[:i + 1])) for i, part in enumerate(parts)]


# --- finding versions ------------------------------------------------------------------------

@bp.route("/profiles/<id:profile_id>/snapshots/find")
@require_role(VIEWER)
def find(profile_id: int):
    profile = get_profile_or_404(profile_id)
    text = (request.args.get("q") or "").strip()[:200]
    found: dict[str, list] = {}
    if text:
        for snapshot in Snapshot.kept(profile).limit(SEARCHED_SNAPSHOTS):
            index = open_manifest(snapshot)
            if index is None:
                continue
            with index:
                for entry in index.find(text, FOUND_PER_SNAPSHOT):
                    found.setdefault(entry.path, []).append((snapshot, entry))
    files = [{"path": path, "versions": _versions(hits)}
             for path, hits in sorted(found.items(), key=lambda item: natural_key(item[0]))]
    return render_template("snapshots/find.html", profile=profile, text=text, files=files,
                           searched=min(SEARCHED_SNAPSHOTS, Snapshot.kept(profile).count()))


def _versions(hits: list) -> list[dict]:
    """Hits (newest snapshot first) grouped into distinct versions of the file."""
    versions: dict[tuple, dict] = {}
    for snapshot, entry in hits:
        key = (entry.kind, entry.size, entry.hash or entry.mtime_ns, entry.target)
        version = versions.setdefault(key, {"entry": entry, "snapshots": []})
        version["snapshots"].append(snapshot)
    return list(versions.values())


# --- comparing -------------------------------------------------------------------------------

@bp.route("/profiles/<id:profile_id>/snapshots/compare")
@require_role(VIEWER)
def compare(profile_id: int):
    profile = get_profile_or_404(profile_id)
    older = get_snapshot_or_404(profile, request.args.get("a", ""))
    newer = get_snapshot_or_404(profile, request.args.get("b", ""))
    if older.name > newer.name:
        older, newer = newer, older
    try:
        diff = manifest.compare(manifest_of(older), manifest_of(newer), COMPARED_LISTED)
    except manifest.ManifestError as error:
        abort(409, description=str(error))
    return render_template("snapshots/compare.html", profile=profile, older=older, newer=newer,
                           diff=diff, listed=COMPARED_LISTED)


# --- restoring -------------------------------------------------------------------------------

class RestoreForm(FlaskForm):
    where = RadioField("Restore to", default="beside", choices=[
        SelectChoice("beside", "A new folder beside the original"),
        SelectChoice("original", "The original place"),
        SelectChoice("folder", "Another folder")])
    folder = StringField("Folder")
    host = SelectField("On", coerce=int, default=0)
    overwrite = BooleanField("Overwrite files that already exist there")

    def fill_hosts(self) -> None:
        self.host.choices = [SelectChoice(0, "this box")] + [
            SelectChoice(h.id, h.target) for h in Host.select().order_by(Host.hostname)
            if h.pinned and not h.blocked]


@bp.route("/profiles/<id:profile_id>/snapshots/<name>/restore", methods=["GET", "POST"])
@require_role(OPERATOR)
def restore(profile_id: int, name: str):
    snapshot = get_snapshot_or_404(get_profile_or_404(profile_id), name)
    paths = [checked_path(p) for p in request.values.getlist("path") if p]
    form = RestoreForm()
    form.fill_hosts()
    if request.method == "GET" or not paths:
        return _restore_form(snapshot, paths, form)
    if not form.validate():
        return _restore_form(snapshot, paths, form, 422)
    try:
        target = _target(form, paths, snapshot)
        dry_run = request.form.get("action") != "restore"
        host = Host.get_or_none(Host.id == form.host.data) if form.host.data else None
        job = restores.request(snapshot, paths, target=target, host=host,
                               overwrite=form.overwrite.data, dry_run=dry_run,
                               fresh=form.where.data == "beside", requested_by=_username())
    except (restore_engine.RestoreError, manifest.PathRefused) as error:
        form.folder.errors = [str(error)]
        return _restore_form(snapshot, paths, form, 422)
    audit("restore.preview" if dry_run else "restore.start",
          target=f"{snapshot.profile.name} {snapshot.name}",
          detail=f"{', '.join(map(restore_engine.shown, paths))} -> {target or 'original place'}"
                 + ("; overwrite" if form.overwrite.data else ""))
    return redirect(url_for("snapshots.restore_page", restore_id=job.id), code=303)


def _target(form: RestoreForm, paths: list[str], snapshot: Snapshot) -> str | None:
    if form.where.data == "original":
        return None
    if form.where.data == "beside":
        return restore_engine.beside_original(paths, snapshot.name)
    if not (form.folder.data or "").strip():
        raise restore_engine.RestoreError("Name the folder to restore into.")
    return form.folder.data.strip()


def _restore_form(snapshot: Snapshot, paths: list[str], form: RestoreForm, status: int = 200):
    index = open_manifest(snapshot)
    entries = []
    if index is not None:
        with index:
            entries = [(p, index.entry(p)) for p in paths]
    return render_template("snapshots/restore.html", snapshot=snapshot, paths=paths, form=form,
                           entries=entries, beside=restore_engine.beside_original(paths, snapshot.name)
                           if paths else "", roots=restores.allowed_roots(None)), status


@feed.subject("restore", ("snapshots/_restore_live.html",))
def restore_context(arg: str | None) -> dict:
    job = feed.row_of(Restore, arg)
    return {"job": job}


feed.on_event(lambda e: e.subject.startswith("restore:"), lambda e: e.subject)


@bp.route("/restores/<id:restore_id>")
@require_role(VIEWER)
def restore_page(restore_id: int):
    job = get_or_404(Restore, restore_id)
    return render_template("snapshots/restore_page.html", **restore_context(str(job.id)))


@bp.route("/restores/<id:restore_id>/go", methods=["POST"])
@require_role(OPERATOR)
def restore_go(restore_id: int):
    """After a preview: the same restore for real (overwriting only if ticked now)."""
    preview = get_or_404(Restore, restore_id)
    if not preview.dry_run or preview.state != "succeeded":
        abort(409, description="Only a finished preview can be carried out.")
    overwrite = request.form.get("overwrite") == "y"
    host = Host.get_or_none(Host.id == preview.host_id) if preview.host_id else None
    try:
        job = restores.request(preview.snapshot, list(preview.paths), target=preview.target or None,
                               host=host, overwrite=overwrite, fresh=preview.fresh,
                               requested_by=_username())
    except (restore_engine.RestoreError, manifest.PathRefused) as error:
        abort(409, description=str(error))
    audit("restore.start", target=f"{preview.snapshot.profile.name} {preview.snapshot.name}",
          detail=f"{', '.join(map(restore_engine.shown, preview.paths))} -> "
                 f"{preview.target or 'original place'}"
                 + ("; overwrite" if overwrite else ""))
    return _go(url_for("snapshots.restore_page", restore_id=job.id))


@bp.route("/restores/<id:restore_id>/cancel", methods=["POST"])
@require_role(OPERATOR)
def restore_cancel(restore_id: int):
    job = get_or_404(Restore, restore_id)
    if restores.cancel(job):
        audit("restore.cancel", target=f"restore {job.id}")
    if is_htmx():
        return "", 204
    return redirect(url_for("snapshots.restore_page", restore_id=job.id), code=303)


# --- downloading -----------------------------------------------------------------------------

@bp.route("/profiles/<id:profile_id>/snapshots/<name>/download")
@require_role(OPERATOR)
def download(profile_id: int, name: str):
    snapshot = get_snapshot_or_404(get_profile_or_404(profile_id), name)
    path = checked_path(request.args.get("path"))
    fmt = request.args.get("format", "file")
    if fmt not in fileserver.FORMATS:
        abort(400, description="Download a file as itself, or a folder as tar or zip.")
    index = open_manifest(snapshot)
    if index is None:
        abort(409, description="This snapshot has no manifest yet.")
    with index:
        entry = index.entry(path)
    if entry is None or (fmt == "file") != (entry.kind == "f"):
        abort(404)
    try:
        header, chunks = fileserver.fetch(current_app.config["CAIRN"].data_dir, snapshot.profile_id,
                                          snapshot.name, path, fmt)
    except fileserver.Refused as refusal:
        abort(503, description=str(refusal))
    audit("snapshot.download", target=f"{snapshot.profile.name} {snapshot.name}",
          detail=f"{path or '/'} ({fmt})")
    headers = {"Content-Disposition": _attachment(header["name"])}
    if header.get("size") is not None:
        headers["Content-Length"] = str(header["size"])
    mimetype = {"tar": "application/x-tar", "zip": "application/zip"}.get(
        fmt, "application/octet-stream")
    return Response(stream_with_context(chunks), mimetype=mimetype, headers=headers)


def _attachment(name: str) -> str:
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in name)
    encoded = quote(name.encode("utf-8", "surrogateescape"))
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _username() -> str:
    return current_user.username
