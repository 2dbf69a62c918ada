"""Notification targets (admins: any Apprise URL, with the events it wants, a test button,
its breaker and last error) and the alert centre (everyone sees the alerts; operators
acknowledge them). Sending is the worker's (jobs/notify.py)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from peewee import fn
from wtforms import BooleanField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from jobs import notify
from jobs.engines import notify as engine
from jobs.engines.humane import format_count
from models import Alert, Breaker, Delivery, Event, NotificationTarget, db, utcnow
from models.user import ADMIN, OPERATOR, VIEWER
from views import feed
from views.audit import audit
from views.health import worker_note
from views.notices import after_action
from views.pagination import paginate
from views.security import get_or_404, is_htmx, require_role

bp = Blueprint("notifications", __name__)

ALERTS_PAGE = 50


class TargetForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired("Name the target."), Length(max=100)])
    url = StringField("Apprise URL", validators=[Length(max=engine.MAX_URL)])
    events = SelectMultipleField("Tell it about",
                                 choices=[SelectChoice(k, v) for k, v in engine.EVENTS.items()],
                                 widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())
    enabled = BooleanField("Enabled", default=True)


@feed.subject("targets", ("notifications/_targets.html",), role=ADMIN)
def targets_context(arg: str | None = None) -> dict:
    targets = list(NotificationTarget.select().order_by(NotificationTarget.name))
    names = [t.breaker_name for t in targets]
    return {"targets": targets, "now": utcnow(),
            "breakers": {b.name: b for b in Breaker.select().where(Breaker.name.in_(names or [""]))},
            "waiting": dict(Delivery.select(Delivery.target, fn.COUNT(Delivery.id))
                            .where(Delivery.state == "pending").group_by(Delivery.target).tuples()),
            "shown_url": engine.shown_url, "labels": engine.EVENTS}


feed.on_event(lambda event: event.subject.startswith("notify:"), lambda event: "targets")


@bp.route("/notifications/")
@require_role(ADMIN)
def index():
    return _page(TargetForm(formdata=None, events=list(engine.DEFAULT_EVENTS)))


def _page(form: TargetForm, editing: NotificationTarget | None = None, status: int = 200):
    return render_template("notifications/page.html", form=form, editing=editing,
                           **targets_context()), status


@bp.route("/notifications/<id:target_id>")
@require_role(ADMIN)
def edit(target_id: int):
    target = get_or_404(NotificationTarget, target_id)
    form = TargetForm(formdata=None, obj=target)
    form.url.data = ""
    return _page(form, target)


@bp.route("/notifications/", methods=["POST"])
@require_role(ADMIN)
def create():
    return _save(None)


@bp.route("/notifications/<id:target_id>", methods=["POST"])
@require_role(ADMIN)
def update(target_id: int):
    return _save(get_or_404(NotificationTarget, target_id))


def _save(target: NotificationTarget | None):
    form = TargetForm()
    if not form.validate_on_submit():
        return _page(form, target, 422)
    url = form.url.data or ""
    if target is not None and not url.strip():
        url = target.url   # left empty when editing: the secret URL is kept, never shown
    try:
        url = engine.check_url(url)
    except engine.NotifyError as error:
        form.url.errors = [str(error)]
        return _page(form, target, 422)
    name = form.name.data.strip()
    clash = NotificationTarget.get_or_none(NotificationTarget.name == name)
    if clash is not None and (target is None or clash.id != target.id):
        form.name.errors = [f"A target named {name!r} exists already."]
        return _page(form, target, 422)
    events = [key for key in engine.EVENTS if key in (form.events.data or [])]
    fields = {"name": name, "url": url, "events": events, "enabled": form.enabled.data}
    if target is None:
        target = NotificationTarget.create(**fields)
    else:
        NotificationTarget.update(**fields).where(NotificationTarget.id == target.id).execute()
    audit("notify.save", target=name, detail=", ".join(events))
    flash(f"Notification target {name} saved.", "success")
    return redirect(url_for("notifications.index"), code=303)


@bp.route("/notifications/<id:target_id>/test", methods=["POST"])
@require_role(ADMIN)
def test(target_id: int):
    target = get_or_404(NotificationTarget, target_id)
    notify.send_test(target, by=current_user.username)
    return _changed(f"Sending a test to {target.name}." + worker_note(), "notifications.index")


@bp.route("/notifications/<id:target_id>/delete", methods=["POST"])
@require_role(ADMIN)
def delete(target_id: int):
    target = get_or_404(NotificationTarget, target_id)
    with db.atomic():
        Breaker.delete().where(Breaker.name == target.breaker_name).execute()
        target.delete_instance()
    audit("notify.delete", target=target.name)
    Event.publish("notify.removed", target.subject, f"Notification target {target.name} removed.")
    return _changed(f"Notification target {target.name} removed.", "notifications.index")


# --- the alert centre ----------------------------------------------------------------------------

@bp.route("/alerts/")
@require_role(VIEWER)
def alerts():
    showing = request.args.get("show", "open")
    query = Alert.open() if showing == "open" else Alert.select().order_by(Alert.id.desc())
    page = paginate(query, request.args.get("page"), ALERTS_PAGE)
    return render_template("notifications/alerts.html", page=page, showing=showing,
                           labels=engine.EVENTS, now=utcnow())


@bp.route("/alerts/<id:alert_id>/ack", methods=["POST"])
@require_role(OPERATOR)
def acknowledge(alert_id: int):
    alert = get_or_404(Alert, alert_id)
    if not alert.acknowledge(current_user.username, utcnow()):
        return _changed("That alert was acknowledged already.", "notifications.alerts", 409)
    return _changed("Alert acknowledged.", "notifications.alerts")


@bp.route("/alerts/ack-all", methods=["POST"])
@require_role(OPERATOR)
def acknowledge_all():
    count = Alert.acknowledge_all(current_user.username, utcnow())
    audit("alerts.acknowledge_all", detail=f"{count} alerts")
    return _changed(f"{format_count(count, 'alert')} acknowledged.", "notifications.alerts")


def _changed(note: str, endpoint: str, status: int = 200):
    return after_action(note, url_for(endpoint), status, htmx=is_htmx())
