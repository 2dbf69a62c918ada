"""Friendly error pages, and short notices for HTMX requests; never a stack trace."""

from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from views.security import is_htmx

MESSAGES = {
    400: ("Bad request", "Cairn could not read that request."),
    403: ("Not allowed", "Your role does not allow this. Ask an admin if you need it."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Not allowed here", "This address does not take that kind of request."),
    409: ("Not possible now", "That cannot be done in the present state."),
    410: ("Gone", "This page is no longer available."),
    413: ("Too large", "That is more than Cairn accepts in one request."),
    429: ("Too many attempts", "Wait a minute before you try again."),
    503: ("Not available", "A part of Cairn that this needs is not running."),
    500: ("Something went wrong", "Cairn hit an error and logged it. Nothing was half-saved: "
                                  "try again, and if it keeps happening, check the service log."),
}
CSRF_MESSAGE = ("This page's security token is missing or out of date (or the request came from "
                "another site). Reload the page and try again.")


def render_error(code: int, message: str | None = None):
    title, text = MESSAGES.get(code, (f"Error {code}", "The request failed."))
    context = {"code": code, "title": title, "message": message or text}
    if is_htmx():
        headers = {"HX-Retarget": "#notice", "HX-Reswap": "innerHTML"}
        return render_template("errors/_notice.html", **context), code, headers
    return render_template("errors/page.html", **context), code


def _http_error(error: HTTPException):
    if isinstance(error, CSRFError):
        return render_error(400, CSRF_MESSAGE)
    if isinstance(error, InternalServerError):
        return render_error(500)
    # abort(code, description=...) says what went wrong; werkzeug's own texts are not ours.
    said = error.description if error.description != type(error).description else None
    return render_error(error.code or 500, said)


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
