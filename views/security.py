"""Who may do what: role checks, safe redirects, same-origin checks, response headers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Request, Response, abort, request
from flask_login import current_user, login_required

from models import Profile, Run, User

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def refuse_nul() -> None:
    """No value anyone sends may hold a NUL: no path, name or text in Cairn can, and
    PostgreSQL refuses one in any string, so it is refused here, once, for every route."""
    sent = [*request.args.lists(), *(request.form.lists() if request.method == "POST" else [])]
    if "\x00" in request.path or any("\x00" in v for _, values in sent for v in values):
        abort(400, description="A value holds a NUL character, which nothing in Cairn may contain.")


def require_role(role: str) -> Callable:
    """Logged in and at least `role`; otherwise the login page or 403."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        @login_required
        def inner(*args, **kwargs):
            if not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        return inner

    return decorator


def get_or_404(model, row_id: int):
    """A row of `model` by its id, or 404; the route requires the role its action needs."""
    found = model.get_or_none(model.id == row_id)
    if found is None:
        abort(404)
    return found


def get_user_or_404(user_id: int) -> User:
    """A user record for the admin pages (the route itself requires admin)."""
    return get_or_404(User, user_id)


def get_profile_or_404(profile_id: int) -> Profile:
    """A backup profile; every role may read one, the routes require more to change it."""
    return get_or_404(Profile, profile_id)


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default`: no open redirects."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def is_same_origin(req: Request) -> bool:
    """The browser says the page that opened this came from this site."""
    origin = req.headers.get("Origin")
    if not origin:
        return False
    return urlsplit(origin).netloc.lower() == req.host.lower()


def is_htmx(req: Request | None = None) -> bool:
    return (req or request).headers.get("HX-Request") == "true"


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    response.vary.add("HX-Request")
    return response


def get_run_or_404(run_id: int) -> Run:
    """A backup run with its profile; every role may read one."""
    run = Run.select(Run, Profile).join(Profile).where(Run.id == run_id).first()
    if run is None:
        abort(404)
    return run
