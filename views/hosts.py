"""Hosts: other machines reached over SSH. Admins add them and pin their host keys after
comparing fingerprints; operators test the connection. The worker does the talking
(jobs/hosts.py); the page follows its events live.

Also the Health page: every circuit breaker, its state, last error and next try, with a reset
for operators.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import StringField

from jobs import breakers, restores
from jobs import hosts as host_jobs
from jobs.engines import restore as restore_engine
from jobs.engines import ssh
from models import Breaker, Event, Host, Profile, db, utcnow
from models.user import ADMIN, OPERATOR, VIEWER
from views import feed
from views.audit import audit
from views.health import worker_note
from views.security import is_htmx, require_role

bp = Blueprint("hosts", __name__)


class HostForm(FlaskForm):
    target = StringField("Host")


@feed.subject("hosts", ("hosts/_list.html",))
def hosts_context(arg: str | None = None) -> dict:
    listed = list(Host.select().order_by(Host.hostname, Host.user, Host.port))
    names = [h.breaker_name for h in listed]
    by_name = {b.name: b for b in Breaker.select().where(Breaker.name.in_(names or [""]))}
    return {"hosts": listed, "breakers": by_name, "now": utcnow(),
            "restore_roots": {h.id: restores.allowed_roots(h) for h in listed}}


@feed.subject("health", ("hosts/_breakers.html",))
def health_context(arg: str | None = None) -> dict:
    return {"breakers": list(Breaker.select().order_by(Breaker.label, Breaker.name)),
            "now": utcnow()}


feed.on_event(lambda event: event.subject.startswith(("host:", "breaker:")), lambda event: "hosts")
feed.on_event(lambda event: event.subject.startswith("breaker:"), lambda event: "health")


@bp.route("/hosts/")
@require_role(VIEWER)
def index():
    return _page(HostForm())


def _page(form: HostForm, status: int = 200):
    return render_template("hosts/page.html", form=form, public_key=host_jobs.public_key(),
                           **hosts_context()), status


def _changed(note: str, status: int = 200, page: str = "hosts"):
    level = "error" if status >= 400 else "success"
    if not is_htmx():
        flash(note, level)
        return redirect(url_for(f"hosts.{'index' if page == 'hosts' else 'health'}"), code=303)
    context = hosts_context() if page == "hosts" else health_context()
    return render_template(f"hosts/_changed_{page}.html", note=note, note_level=level,
                           **context), status


def _host_or_404(host_id: int) -> Host:
    host = Host.get_or_none(Host.id == host_id)
    if host is None:
        abort(404)
    return host


@bp.route("/hosts/", methods=["POST"])
@require_role(ADMIN)
def add():
    form = HostForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        target = ssh.parse_target(form.target.data or "")
    except ValueError as error:
        form.target.errors = [str(error)]
        return _page(form, 422)
    with db.atomic():
        if Host.get_or_none((Host.user == target.user) & (Host.hostname == target.host)
                            & (Host.port == target.port)):
            form.target.errors = [f"{target} is already added."]
            return _page(form, 422)
        host = Host.create(user=target.user, hostname=target.host, port=target.port,
                           busy="fetching")
    host_jobs.fetch_host_key(host.id)
    audit("host.add", target=host.target)
    flash(f"{host.target} added. Cairn asks it for its host key: compare the fingerprint shown "
          "with the host's own before you pin it." + worker_note(), "success")
    return redirect(url_for("hosts.index"), code=303)


@bp.route("/hosts/<id:host_id>/fetch-key", methods=["POST"])
@require_role(ADMIN)
def fetch_key(host_id: int):
    host = _host_or_404(host_id)
    if not host.claim("fetching"):
        return _changed(f"{host.target} is busy; try again in a moment.", 409)
    host_jobs.fetch_host_key(host.id)
    return _changed(f"Asking {host.target} for its host key." + worker_note())


@bp.route("/hosts/<id:host_id>/pin", methods=["POST"])
@require_role(ADMIN)
def pin(host_id: int):
    host = _host_or_404(host_id)
    if not host.offered_key:
        return _changed(f"{host.target} has no key waiting to be pinned.", 409)
    host_jobs.pin(host)
    audit("host.pin", target=host.target, detail=host.offered_fingerprint)
    Event.publish("host.pinned", host.subject, f"Host key {host.offered_fingerprint} of "
                  f"{host.target} pinned.", host=host.id)
    return _changed(f"Pinned {host.offered_fingerprint} for {host.target}: Cairn now accepts "
                    "only this key from it.")


@bp.route("/hosts/<id:host_id>/reject", methods=["POST"])
@require_role(ADMIN)
def reject(host_id: int):
    host = _host_or_404(host_id)
    Host.update(offered_key="", offered_fingerprint="").where(Host.id == host.id).execute()
    audit("host.reject_key", target=host.target, detail=host.offered_fingerprint)
    return _changed(f"The key offered by {host.target} was not pinned.")


@bp.route("/hosts/<id:host_id>/test", methods=["POST"])
@require_role(OPERATOR)
def test(host_id: int):
    host = _host_or_404(host_id)
    if not host.claim("testing"):
        return _changed(f"{host.target} is busy; try again in a moment.", 409)
    host_jobs.test_host(host.id)
    return _changed(f"Testing ssh and rsync on {host.target}." + worker_note())


class RestoreRootsForm(FlaskForm):
    folders = StringField("Folders restores may write to")


@bp.route("/hosts/<id:host_id>/restore-folders", methods=["POST"])
@require_role(ADMIN)
def restore_folders(host_id: int):
    host = _host_or_404(host_id)
    form = RestoreRootsForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        folders = restore_engine.parse_roots((form.folders.data or "")[:20_000])
    except restore_engine.RestoreError as error:
        return _changed(f"{host.target}: {error}", 422)
    Host.update(restore_roots=list(folders)).where(Host.id == host.id).execute()
    audit("host.restore_folders", target=host.target, detail=":".join(folders) or "(none)")
    Event.publish("host.changed", host.subject, f"Restores to {host.target} may write to "
                  f"{', '.join(folders) or 'the folders its profiles back up'}.", host=host.id)
    return _changed(f"Restores to {host.target} may now write to "
                    f"{', '.join(folders) or 'the folders profiles back up from it'}, and to "
                    "each file's original place.")


@bp.route("/hosts/<id:host_id>/delete", methods=["POST"])
@require_role(ADMIN)
def delete(host_id: int):
    host = _host_or_404(host_id)
    using = [p.name for p in Profile.select().order_by(Profile.name)
             if any(_on(host, place) for place in [*p.sources, p.destination])]
    if using:
        return _changed(f"{host.target} is used by {', '.join(using)}: change "
                        f"{'that profile' if len(using) == 1 else 'those profiles'} first.", 409)
    with db.atomic():
        Breaker.delete().where(Breaker.name == host.breaker_name).execute()
        host.delete_instance()
    host_jobs.known_hosts(host).unlink(missing_ok=True)
    audit("host.delete", target=host.target)
    return _changed(f"{host.target} removed.")


def _on(host: Host, place: str) -> bool:
    try:
        remote = ssh.split_remote(place)
    except ValueError:
        return False
    return bool(remote) and host_jobs.host_for(remote[0]) == host


@bp.route("/health/")
@require_role(VIEWER)
def health():
    return render_template("hosts/health.html", **health_context())


@bp.route("/health/breakers/<id:breaker_id>/reset", methods=["POST"])
@require_role(OPERATOR)
def reset(breaker_id: int):
    breaker = Breaker.get_or_none(Breaker.id == breaker_id)
    if breaker is None:
        abort(404)
    breakers.reset(breaker)
    audit("breaker.reset", target=breaker.label or breaker.name)
    Event.publish("breaker.reset", f"breaker:{breaker.id}",
                  f"{breaker.label or breaker.name}: reset by hand; the next call tries again.",
                  breaker=breaker.id)
    return _changed(f"{breaker.label or breaker.name} will be tried again at the next call.",
                    page="health")
