"""Logging in and out, and the one-time setup of the first admin."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from models import SetupToken, User
from models.user import PASSWORD_MAX_LENGTH, AccountError, create_first_admin
from views.audit import audit
from views.extensions import client_address, limiter
from views.forms import EmptyForm, TimezoneMixin, new_password_fields, username_field
from views.security import safe_next

bp = Blueprint("auth", __name__)

# Failed logins allowed, counted per client address and per (address, account): never per
# account alone, which would let anyone lock its owner out from everywhere. Each tier waits
# longer than the one before, so guessing slows down the longer it goes on.
ACCOUNT_LIMIT = "5 per minute;10 per 15 minutes;20 per day"
ADDRESS_LIMIT = "20 per minute;60 per hour"


class LoginForm(TimezoneMixin, FlaskForm):
    username = StringField("Username", validators=[DataRequired("Enter your username."),
                                                   Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."),
                                                     Length(max=PASSWORD_MAX_LENGTH)])
    next = HiddenField()


class SetupForm(TimezoneMixin, FlaskForm):
    token = HiddenField()
    username = username_field()
    password, confirm = new_password_fields("username")


def _limit_key(kind: str, value: str) -> str:
    # Named by queue so installs sharing a Redis server keep their counts apart.
    return f"cairn-{current_app.config['CAIRN'].queue_name}:{kind}:{value}"


def _account_key() -> str:
    account = (request.form.get("username") or "").strip().lower()[:64]
    return _limit_key("user", f"{client_address()}/{account}")


def _address_key() -> str:
    return _limit_key("addr", client_address())


def _login_failed(response: Response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ADDRESS_LIMIT, key_func=_address_key, methods=["POST"], deduct_when=_login_failed)
@limiter.limit(ACCOUNT_LIMIT, key_func=_account_key, methods=["POST"], deduct_when=_login_failed)
def login():
    if not User.exists_any():
        return render_template("auth/not_set_up.html"), 503
    target = safe_next(request.values.get("next"), url_for("dashboard.index"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    user = User.authenticate(form.username.data, form.password.data)
    if user is not None and user.active:
        login_user(user)
        user.record_login(form.tz.data)
        audit("auth.login", actor=user)
        return redirect(target)
    detail = "account disabled" if user is not None else "wrong username or password"
    audit("auth.login_failed", actor_name=form.username.data.strip().lower(), detail=detail)
    message = ("This account is disabled. Ask an admin to enable it." if user is not None
               else "Wrong username or password.")
    return render_template("auth/login.html", form=form, error=message), 401


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated and EmptyForm().validate_on_submit():
        audit("auth.logout", actor=current_user)
        logout_user()
        flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if User.exists_any():
        return render_template("auth/setup_done.html"), 410
    form = SetupForm(token=request.args.get("token", ""))
    problem = SetupToken.problem(form.token.data)
    if problem:
        return render_template("auth/setup_link_problem.html", problem=problem), 403
    if not form.validate_on_submit():
        return render_template("auth/setup.html", form=form)
    try:
        user = create_first_admin(form.token.data, form.username.data, form.password.data,
                                  form.tz.data or "UTC")
    except AccountError as exc:
        return render_template("auth/setup_link_problem.html", problem=str(exc)), 403
    login_user(user)
    audit("auth.setup", actor=user, target=user.username)
    flash(f"Welcome, {user.username}. Cairn is ready.", "success")
    return redirect(url_for("dashboard.index"))
