"""Form pieces shared by several areas; validation rules come from the models."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from models import Profile
from models.user import (
    PASSWORD_MAX_LENGTH,
    ROLE_HELP,
    ROLES,
    USERNAME_MAX_LENGTH,
    AccountError,
    check_password_policy,
    normalize_username,
)


def valid_username(form, field) -> None:
    try:
        field.data = normalize_username(field.data or "")
    except AccountError as exc:
        raise ValidationError(str(exc)) from None


def strong_password(username_field: str | None = None):
    def check(form, field) -> None:
        username = getattr(form, username_field).data if username_field else form.username_for_policy
        try:
            check_password_policy(field.data or "", username or "")
        except AccountError as exc:
            raise ValidationError(str(exc)) from None

    return check


def username_field() -> StringField:
    return StringField("Username", validators=[DataRequired("Enter a username."),
                                               Length(max=USERNAME_MAX_LENGTH * 2), valid_username])


def new_password_fields(username_field_name: str | None = None) -> tuple[PasswordField, PasswordField]:
    password = PasswordField("New password", validators=[
        DataRequired("Enter a password."), Length(max=PASSWORD_MAX_LENGTH),
        strong_password(username_field_name)])
    confirm = PasswordField("Repeat the password", validators=[
        DataRequired("Repeat the password."), EqualTo("password", "The passwords differ.")])
    return password, confirm


def role_field() -> SelectField:
    return SelectField("Role", choices=[SelectChoice(r, f"{r.title()} – {ROLE_HELP[r]}") for r in ROLES],
                       default="viewer")


class TimezoneMixin:
    # Filled in by static/cairn.js from the browser; checked by the model.
    tz = HiddenField(validators=[Length(max=64)])


class EmptyForm(FlaskForm):
    """A POST with nothing but its CSRF token."""


def profile_filter_choices() -> list[SelectChoice]:
    """“Any profile”, then every profile by name: the choices of a filter's profile field."""
    return [SelectChoice("", "Any profile")] + [
        SelectChoice(str(p.id), p.name)
        for p in Profile.select(Profile.id, Profile.name).order_by(Profile.name)]


def whole_number(raw: str | None, low: int = 1, high: int = 2**63 - 1) -> int | None:
    """`raw` as a whole number from `low` to `high`, or None: only ASCII digits count ("²"
    is a digit to str.isdigit() but not to int()), and nothing beyond a database integer."""
    if not raw or len(raw) > 19 or not (raw.isascii() and raw.isdigit()):
        return None
    number = int(raw)
    return number if low <= number <= high else None


def chosen_profile(field) -> int | None:
    """The profile id a filter's profile field names; anything else means any profile."""
    return whole_number(field.data)


def text_lines(text: str | None) -> list[str]:
    """A textarea's non-blank lines, stripped: one folder or pattern per line."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]
