"""Cairn's composition root.

Entry points:
- `create_app()` for the web server (`gunicorn 'app:create_app()'`, see `cairn web`);
- `app.huey` for the worker (`huey_consumer app.huey`, see `cairn worker`);
- `app.app`, built on first use, for tools that expect a module-level WSGI app.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import config
import views
from jobs import huey
from models import open_database
from models.migrate import migrate

MAX_REQUEST_BYTES = 1024 * 1024

__all__ = ["create_app", "huey"]


def create_app(test_config: Mapping[str, str] | None = None) -> Flask:
    """Build the web app from the environment (this process's one settings object), or
    only from `test_config` when given (a test's app)."""
    settings = config.current() if test_config is None else config.load(test_config)
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    migrate(open_database(settings.database_url))

    app = Flask(__name__)
    app.config.update(
        CAIRN=settings,
        SECRET_KEY=config.secret_key(settings),
        SESSION_COOKIE_NAME="cairn_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        REMEMBER_COOKIE_SECURE=settings.cookie_secure,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        # The CSRF token lives as long as the session: a dashboard left open for days still works.
        WTF_CSRF_TIME_LIMIT=None,
        # With Redis, every web process counts failed logins together (views/auth.py keeps
        # installs that share a Redis server apart).
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        SOCK_SERVER_OPTIONS={"ping_interval": 25},
    )
    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    views.init_app(app)
    return app


def __getattr__(name: str):
    # `app` is built on first access only: the worker imports this module for `huey` and
    # must not build a web app it never serves.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
