"""Each request's database connection."""

from __future__ import annotations

from flask import g

from models import db


def open_for_request() -> None:
    # A connection context, not a bare connect(): contexts nest, so a task run inline and a
    # fragment rendered by the broadcaster (which never runs before_request) leave the
    # connection of whoever opened it alone.
    g.db_context = db.connection_context()
    g.db_context.__enter__()


def close_for_request(exc: BaseException | None = None) -> None:
    release()


def release() -> None:
    """End this request's connection now; later queries must open their own context."""
    context = g.pop("db_context", None)
    if context is not None:
        context.__exit__(None, None, None)
