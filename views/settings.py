"""The Settings page: what a household changes (kept in the database, applied at once, in the
audit log), and, read only, what whoever installed Cairn set in its environment.

The environment wins: a household setting it sets is shown with its value and why it cannot
be changed here. Secrets are never sent back (the TMDB key shows only whether one is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

import config
from models.setting import StoredSetting, live
from models.user import ADMIN
from views.audit import audit
from views.forms import EmptyForm
from views.security import require_role

bp = Blueprint("settings", __name__, url_prefix="/settings")

MAX_VALUE = 4096
ENV_FILE = "/etc/cairn/cairn.env"
LABELS = {
    "CAIRN_SOURCE_ROOTS": "Folders that may be backed up",
    "CAIRN_RESTORE_ROOTS": "Folders restores may write to",
    "CAIRN_EVENT_RETENTION_DAYS": "Keep activity for (days)",
    "CAIRN_CATCH_UP_HOURS": "Catch up missed backups within (hours)",
    "CAIRN_DRIVE_AWAY_DAYS": "Warn about a drive unplugged for (days)",
    "CAIRN_THROTTLE_LOAD": "Slow down above this load per core",
    "CAIRN_THROTTLE_MEMORY": "Slow down above this memory use (%)",
    "CAIRN_THROTTLE_IOWAIT": "Slow down above this disk wait (%)",
    "CAIRN_TMDB_API_KEY": "TMDB API key",
}
SECRET = "CAIRN_TMDB_API_KEY"


@dataclass
class Row:
    """One household setting as the page shows it."""
    name: str
    label: str
    help: str
    value: str          # what the box shows ('' for the secret)
    default: str
    from_environment: bool
    error: str = ""

    @property
    def id(self) -> str:
        return self.name.removeprefix(config.PREFIX).lower()


def _base() -> config.Settings:
    return current_app.config["CAIRN"]


def household_rows(stored: dict[str, str], errors: dict[str, str] | None = None,
                   typed: dict[str, str] | None = None) -> list[Row]:
    base, errors, typed = _base(), errors or {}, typed or {}
    rows = []
    for name in config.HOUSEHOLD:
        setting = config.setting(name)
        in_env = name in base.from_environment
        if name == SECRET:
            value = ""
        elif in_env:
            value = _shown(getattr(base, setting.attr))
        else:
            value = typed.get(name, stored.get(name, setting.default))
        rows.append(Row(name, LABELS[name], setting.help, value, setting.default, in_env,
                        errors.get(name, "")))
    return rows


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ":".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def installer_rows() -> list[tuple[str, str, str]]:
    """(name, value as safe to show, where it comes from) of every other setting."""
    base = _base()
    rows = []
    for setting in config.SETTINGS:
        if setting.name in config.HOUSEHOLD:
            continue
        value = getattr(base, setting.attr)
        if setting.name == "CAIRN_SECRET_KEY":
            shown = "set" if value else f"made on first start, kept in {base.data_dir}/secret_key"
        elif setting.name == "CAIRN_BIND":
            shown = base.bind_address
        elif setting.name in ("CAIRN_DATABASE_URL", "CAIRN_REDIS_URL"):
            shown = _without_password(value) or "(none: a SQLite queue in the data dir)"
        elif setting.name == "CAIRN_MIN_UNIT_SIZE":
            shown = f"{value // 1024**2} MiB"
        elif setting.name == "CAIRN_RETRY_DELAY":
            shown = f"{value:g} s"
        elif isinstance(value, bool):
            shown = "on" if value else "off"
        else:
            shown = _shown(value)
        origin = "environment" if setting.name in base.from_environment else "default"
        rows.append((setting.name, shown, origin))
    return rows


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:•••@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _page(rows: list[Row], status: int = 200):
    now = live(_base())
    return render_template("settings/page.html", rows=rows, installer=installer_rows(),
                           form=EmptyForm(), key_set=bool(now.tmdb_api_key),
                           env_file=ENV_FILE), status


@bp.route("/")
@require_role(ADMIN)
def index():
    return _page(household_rows(StoredSetting.stored()))


@bp.route("/", methods=["POST"])
@require_role(ADMIN)
def update():
    form = EmptyForm()
    if not form.validate_on_submit():
        flash("The form had expired; nothing was changed. Try again.", "error")
        return redirect(url_for("settings.index"))
    base, stored = _base(), StoredSetting.stored()
    typed, wanted, errors = {}, {}, {}
    for name in config.HOUSEHOLD:
        if name in base.from_environment or name not in request.form:
            continue
        raw = request.form.get(name, "").strip()
        typed[name] = raw
        if name == SECRET:
            if request.form.get("remove_key"):
                wanted[name] = ""
            elif raw:
                wanted[name] = raw
            else:
                continue   # empty: keep the key there is
        else:
            wanted[name] = "" if raw == config.setting(name).default else raw
        if len(raw) > MAX_VALUE:
            errors[name] = f"At most {MAX_VALUE:,} characters."
            continue
        try:
            config.parse_household(name, wanted[name] or config.setting(name).default)
        except ValueError as exc:
            errors[name] = f"{str(exc)[0].upper()}{str(exc)[1:]}."
    if errors:
        return _page(household_rows(stored, errors, typed), 422)
    changed = [name for name, value in wanted.items() if stored.get(name, "") != value]
    for name in changed:
        StoredSetting.put(name, wanted[name])
        audit("settings.update", target=name, detail=_audit_words(name, stored.get(name, ""),
                                                                  wanted[name]))
    flash(f"Saved: {', '.join(LABELS[n] for n in changed)}. Applied now, without a restart."
          if changed else "Nothing was changed.", "success" if changed else "info")
    return redirect(url_for("settings.index"))


def _audit_words(name: str, old: str, new: str) -> str:
    if name == SECRET:
        return "key removed" if not new else ("key changed" if old else "key set")
    default = config.setting(name).default
    return f"{old or default or '(empty)'} → {new or default or '(empty)'}"
