"""The audit log page, and `audit()` with which every area records what users do."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, g, render_template, request
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from models import AuditEntry, User
from models.user import ADMIN
from views.extensions import client_address
from views.format import utc_day_start
from views.pagination import paginate
from views.security import require_role

bp = Blueprint("audit", __name__)

PAGE_SIZE = 50


def audit(action: str, *, actor: User | None = None, actor_name: str = "", target: str = "",
          detail: str = "") -> AuditEntry:
    """Record `action` by `actor` (the current user when omitted) from this request."""
    if actor is None and not actor_name and current_user.is_authenticated:
        actor = current_user._get_current_object()
    return AuditEntry.record(action, actor=actor, actor_name=actor_name, target=target,
                             detail=detail, address=client_address())


class AuditFilter(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    user = StringField("User", validators=[Optional(), Length(max=64)])
    action = SelectField("Action", validators=[Optional()], validate_choice=False)
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])


@bp.route("/audit")
@require_role(ADMIN)
def index():
    form = AuditFilter(request.args)
    form.action.choices = [SelectChoice("", "Any action")] + [
        SelectChoice(action, label) for action, label in AuditEntry.actions()]
    if not form.validate() or not dates_in_order(form):
        return render_template("audit/page.html", form=form, page=None), 400
    since, until = form.since.data, form.until.data
    entries = AuditEntry.search(
        user=form.user.data or "", action=form.action.data or "",
        since=utc_day_start(since, g.tz) if since else None,
        until=utc_day_start(until + dt.timedelta(days=1), g.tz) if until else None)
    page = paginate(entries, request.args.get("page"), PAGE_SIZE)
    return render_template("audit/page.html", form=form, page=page)


def dates_in_order(form) -> bool:
    """A filter form's From day is not after its To day; else the message beside To."""
    if form.since.data and form.until.data and form.since.data > form.until.data:
        form.until.errors = ["Pick a day on or after the From day."]
        return False
    return True
