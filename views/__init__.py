"""Blueprints, one per area, and the wiring they share (login, CSRF, limits, live feed)."""

from __future__ import annotations

from flask import Flask, g, redirect, request, url_for
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from models import Alert, User
from models.user import ADMIN, OPERATOR, ROLES, VIEWER
from views import (
    account,
    audit,
    auth,
    dashboard,
    database,
    drives,
    errors,
    feed,
    format,
    health,
    history,
    hosts,
    imports,
    library,
    logs,
    notifications,
    picker,
    profile_form,
    profiles,
    runs,
    settings,
    snapshots,
    users,
)
from views.extensions import csrf, limiter, login_manager, sock
from views.security import add_security_headers, is_htmx, refuse_nul

# Error responses are swapped too: the server retargets them to #notice (views/errors.py) or
# returns the form with its messages. Eval and inline scripts stay off under the CSP.
HTMX_CONFIG = {
    "includeIndicatorStyles": False,
    "allowEval": False,
    "allowScriptTags": False,
    "selfRequestsOnly": True,
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "409|422", "swap": True},  # a refused change or a form with its messages
        {"code": "[45]..", "swap": True, "error": True},
    ],
}

BLUEPRINTS = (auth.bp, dashboard.bp, profiles.bp, runs.bp, history.bp, logs.bp, picker.bp, users.bp,
              account.bp, audit.bp, health.bp, drives.bp, hosts.bp, snapshots.bp, imports.bp, library.bp,
              notifications.bp, settings.bp)


class IdConverter(IntegerConverter):
    """A database id in a URL: 1 to 2**63-1, so a malformed or huge id is a 404, not a 500."""

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, min=1, max=2**63 - 1)


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
    _init_login(app)
    csrf.init_app(app)
    limiter.init_app(app)
    sock.init_app(app)
    feed.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    errors.register(app)
    _init_templates(app)
    app.before_request(refuse_nul)
    app.before_request(database.open_for_request)
    app.before_request(_set_timezone)
    app.teardown_request(database.close_for_request)
    app.after_request(add_security_headers)


def _init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(User.by_session_id)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to continue."
    login_manager.login_message_category = "info"
    login_manager.unauthorized_handler(_unauthorized)


def _unauthorized():
    target = url_for("auth.login", next=request.full_path.rstrip("?"))
    if is_htmx():
        return "", 401, {"HX-Redirect": target}
    return redirect(target)


def _set_timezone() -> None:
    g.tz = current_user.timezone if current_user.is_authenticated else "UTC"


def _init_templates(app: Flask) -> None:
    app.jinja_env.filters.update(
        bytes=format.format_bytes, count=format.format_count, duration=format.format_duration,
        percent=format.format_percent, ago=format.format_ago,
        time=lambda value, seconds=False: format.format_time(value, g.get("tz", "UTC"), seconds),
        filetime=lambda seconds: format.format_file_time(seconds, g.get("tz", "UTC")),
        filemode=format.format_mode, owner=format.format_owner, sentence=format.sentence,
        names=lambda text: format.local_names(text, g.get("tz", "UTC")))
    app.jinja_env.globals.update(htmx_config=HTMX_CONFIG, ROLES=ROLES, ADMIN=ADMIN,
                                 OPERATOR=OPERATOR, VIEWER=VIEWER, next_run=profile_form.next_run,
                                 overdue_before=profile_form.overdue_before,
                                 waits_for_first_run=profile_form.waits_for_first_run,
                                 schedule_words=profile_form.schedule_words,
                                 open_alerts=Alert.open_count)
