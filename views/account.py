"""Every user's own account: change the password."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import DataRequired, Length

from models.user import PASSWORD_MAX_LENGTH, VIEWER
from views.audit import audit
from views.forms import new_password_fields
from views.security import require_role

bp = Blueprint("account", __name__, url_prefix="/account")


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[
        DataRequired("Enter your current password."), Length(max=PASSWORD_MAX_LENGTH)])
    password, confirm = new_password_fields()


@bp.route("/", methods=["GET", "POST"])
@require_role(VIEWER)
def index():
    form = ChangePasswordForm()
    form.username_for_policy = current_user.username
    if not form.validate_on_submit():
        return render_template("account/page.html", form=form), 422 if form.errors else 200
    user = current_user._get_current_object()
    if not user.verify_password(form.current.data):
        form.current.errors.append("That is not your current password.")
        return render_template("account/page.html", form=form), 422
    user.set_password(form.password.data)
    login_user(user)  # keep this session; the new epoch ends every other one
    audit("account.password", actor=user)
    flash("Password changed. You were signed out everywhere else.", "success")
    return redirect(url_for("account.index"))
