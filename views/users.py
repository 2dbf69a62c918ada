"""Admins manage accounts: add, change role, disable or enable, reset a password."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import BooleanField

from models import AuditEntry, User, db
from models.user import ADMIN, AccountError
from views.audit import audit
from views.forms import new_password_fields, role_field, username_field
from views.security import get_user_or_404, is_htmx, require_role

bp = Blueprint("users", __name__, url_prefix="/users")


class NewUserForm(FlaskForm):
    username = username_field()
    role = role_field()
    password, confirm = new_password_fields("username")


class RoleForm(FlaskForm):
    role = role_field()


class ActiveForm(FlaskForm):
    active = BooleanField()


class ResetPasswordForm(FlaskForm):
    password, confirm = new_password_fields()


@bp.route("/")
@require_role(ADMIN)
def index():
    return render_template("users/page.html", users=User.listing(), form=NewUserForm())


@bp.route("/", methods=["POST"])
@require_role(ADMIN)
def create():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = User.create_account(form.username.data, form.password.data, form.role.data)
        except AccountError as exc:
            form.username.errors.append(str(exc))
        else:
            audit("user.create", target=user.username, detail=f"role {user.role}")
            flash(f"Added {user.username} as {user.role}.", "success")
            return redirect(url_for("users.index"))
    return render_template("users/page.html", users=User.listing(), form=form), 422


@bp.route("/<id:user_id>")
@require_role(ADMIN)
def detail(user_id: int):
    user = get_user_or_404(user_id)
    return _render_detail(user, ResetPasswordForm())


def _render_detail(user: User, reset_form: ResetPasswordForm, status: int = 200):
    recent = AuditEntry.search(user=user.username).limit(20)
    return render_template("users/detail.html", user=user, reset_form=reset_form,
                           role_form=RoleForm(role=user.role), recent=recent), status


@bp.route("/<id:user_id>/role", methods=["POST"])
@require_role(ADMIN)
def change_role(user_id: int):
    user = get_user_or_404(user_id)
    form = RoleForm()
    error = None
    if not form.validate_on_submit():
        error = "; ".join(form.role.errors) or "Choose a role."
    elif form.role.data != user.role:
        error = _apply(user, "user.role", lambda: user.change_role(form.role.data),
                       f"{user.role} → {form.role.data}")
    return _respond(user, error, f"{user.username} is now {user.role}.")


@bp.route("/<id:user_id>/active", methods=["POST"])
@require_role(ADMIN)
def set_active(user_id: int):
    user = get_user_or_404(user_id)
    form = ActiveForm()
    if not form.validate_on_submit():
        return _respond(user, "The form was incomplete.", "")
    active = form.active.data
    error = None
    if active != user.active:
        error = _apply(user, "user.enable" if active else "user.disable",
                       lambda: user.set_active(active), "")
    return _respond(user, error, f"{user.username} is {'enabled' if user.active else 'disabled'}.")


@bp.route("/<id:user_id>/password", methods=["POST"])
@require_role(ADMIN)
def reset_password(user_id: int):
    user = get_user_or_404(user_id)
    form = ResetPasswordForm()
    form.username_for_policy = user.username
    if not form.validate_on_submit():
        return _render_detail(user, form, 422)
    user.set_password(form.password.data)
    audit("user.password_reset", target=user.username)
    if user.id == current_user.id:
        login_user(user)  # the new session epoch would otherwise sign the admin out
    flash(f"New password set for {user.username}; their other sessions have ended.", "success")
    return redirect(url_for("users.detail", user_id=user.id))


def _apply(user: User, action: str, change, detail: str) -> str | None:
    """Run a role or status change; its audit entry is written in the same transaction."""
    try:
        with db.atomic():
            change()
            audit(action, target=user.username, detail=detail)
    except AccountError as exc:  # refused before the object or the row changed
        return str(exc)
    return None


def _respond(user: User, error: str | None, done: str):
    if is_htmx():
        html = render_template("users/_row.html", user=user, error=error)
        return html, 409 if error else 200
    flash(error or done, "error" if error else "success")
    return redirect(url_for("users.detail", user_id=user.id))
