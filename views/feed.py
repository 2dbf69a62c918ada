"""The live feed: one broadcaster thread per web process pushes HTML fragments to sockets.

A page opens `/ws?s=<subject>&s=<subject>`. On connect the socket gets the current state of
each subject, then every change: the broadcaster tails the Event table by id and re-renders
timed subjects (the system panel) on their interval. Fragments are the pages' own partials,
rendered from the pages' own context functions, and carry `hx-swap-oob` so htmx's ws
extension puts each one in place.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import Flask, current_app, g, render_template, request
from flask_login import current_user
from simple_websocket import ConnectionClosed

from models import Event, User, db
from models.user import VIEWER
from views import database
from views.extensions import sock
from views.security import is_same_origin

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
POLL_SECONDS = 0.5
# How often an open socket re-checks that its user may still watch (disabled, signed out).
RECHECK_SECONDS = 30
MAX_SUBJECTS = 20


@dataclass(frozen=True)
class Subject:
    """Something a page can watch: its context function and the partials it renders."""

    name: str
    context: Callable[[str | None], dict]
    templates: tuple[str, ...]
    every: float | None = None  # re-pushed on this interval (seconds) while watched
    role: str = VIEWER


@dataclass(frozen=True)
class EventRoute:
    """How an Event becomes a fragment: for matching events, push `template` to a subject."""

    matches: Callable[[Event], bool]
    subject: Callable[[Event], str]
    template: str


SUBJECTS: dict[str, Subject] = {}
EVENT_ROUTES: list[EventRoute] = []


def subject(name: str, templates: Iterable[str], every: float | None = None, role: str = VIEWER):
    """Register a context function as the source of subject `name` (or `name:<arg>`)."""

    def decorator(context: Callable[[str | None], dict]):
        SUBJECTS[name] = Subject(name, context, tuple(templates), every, role)
        return context

    return decorator


def on_event(matches: Callable[[Event], bool], subject: Callable[[Event], str], template: str):
    EVENT_ROUTES.append(EventRoute(matches, subject, template))


def resolve(name: str) -> tuple[Subject, str | None] | None:
    key, _, arg = name.partition(":")
    found = SUBJECTS.get(key)
    return (found, arg or None) if found else None


@dataclass(eq=False)
class Subscriber:
    """One open socket. Sends hold its lock, so two messages never interleave on the wire."""

    ws: object
    subjects: frozenset[str]
    timezone: str
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: str) -> bool:
        try:
            with self._lock:
                self.ws.send(message)
            return True
        except (ConnectionClosed, OSError):
            return False


class Broadcaster:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        self._last_event_id = 0
        self._last_push: dict[str, float] = {}

    def subscribe(self, subscriber: Subscriber) -> None:
        with db.connection_context():
            with self._lock:
                self._subscribers.add(subscriber)
                if self._thread is None:
                    # Runs only while someone watches; starts again with the next subscriber.
                    # The starting id is read before the snapshot below: an event can then
                    # arrive twice (the page drops repeats) but never go missing.
                    self._last_event_id = Event.last_id()
                    self._thread = threading.Thread(target=self._run, name="cairn-broadcaster",
                                                    daemon=True)
                    self._thread.start()
            for name in subscriber.subjects:
                found, arg = resolve(name)
                context = self._context(found, arg)
                subscriber.send(self._render(found.templates, context, subscriber))

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def watching(self, name: str) -> list[Subscriber]:
        with self._lock:
            return [s for s in self._subscribers if name in s.subjects]

    def _run(self) -> None:
        while self._anyone_watching():
            started = time.monotonic()
            try:
                with db.connection_context():
                    self._push_new_events()
                    self._push_timed_subjects(started)
            except Exception:
                # One bad render or a database hiccup must not end live updates for everyone.
                log.exception("live feed cycle failed")
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))

    def _anyone_watching(self) -> bool:
        with self._lock:
            if not self._subscribers:
                self._thread = None
                return False
            return True

    def _push_new_events(self) -> None:
        for event in Event.after(self._last_event_id):
            self._last_event_id = event.id
            for route in EVENT_ROUTES:
                if route.matches(event):
                    self._push(route.subject(event), (route.template,), {"event": event})

    def _push_timed_subjects(self, now: float) -> None:
        with self._lock:
            watched = {name for s in self._subscribers for name in s.subjects}
        for name in watched:
            found, arg = resolve(name)
            if found.every is None or now - self._last_push.get(name, 0) < found.every:
                continue
            self._last_push[name] = now
            self._push(name, found.templates, self._context(found, arg))

    def _push(self, name: str, templates: tuple[str, ...], context: dict) -> None:
        """Send the fragments to everyone watching `name`, rendered once per time zone."""
        by_zone: dict[str, list[Subscriber]] = defaultdict(list)
        for sub in self.watching(name):
            by_zone[sub.timezone].append(sub)
        for group in by_zone.values():
            html = self._render(templates, context, group[0])
            for sub in group:
                if not sub.send(html):
                    self.unsubscribe(sub)

    def _context(self, found: Subject, arg: str | None) -> dict:
        with self.app.app_context():
            return found.context(arg)

    def _render(self, templates: tuple[str, ...], context: dict, sub: Subscriber) -> str:
        with self.app.test_request_context("/"):
            g.tz = sub.timezone
            return "".join(render_template(t, **context) for t in templates)


def init_app(app: Flask) -> None:
    app.extensions["cairn.broadcaster"] = Broadcaster(app)


def _refusal(subjects: list[str]) -> str | None:
    if not current_user.is_authenticated:
        return "log in first"
    if not is_same_origin(request):
        return "cross-origin socket refused"
    if not subjects or len(subjects) > MAX_SUBJECTS:
        return "name what to watch"
    for name in subjects:
        found = resolve(name)
        if found is None:
            return f"unknown subject {name[:64]}"  # a close reason holds at most 123 bytes
        if not current_user.has_role(found[0].role):
            return f"not allowed to watch {name[:64]}"
    return None


@sock.route("/ws")
def feed(ws):
    subjects = request.args.getlist("s")
    refusal = _refusal(subjects)
    if refusal:
        ws.close(reason=POLICY_VIOLATION, message=refusal)
        return
    session_id, user = current_user.get_id(), current_user._get_current_object()
    database.release()  # a socket lives for hours; it must not hold a connection meanwhile
    subscriber = Subscriber(ws, frozenset(subjects), user.timezone)
    broadcaster: Broadcaster = current_app.extensions["cairn.broadcaster"]
    broadcaster.subscribe(subscriber)
    try:
        while True:
            ws.receive(timeout=RECHECK_SECONDS)  # the page sends nothing; this waits for close
            with db.connection_context():
                still_allowed = User.by_session_id(session_id) is not None
            if not still_allowed:
                ws.close(reason=POLICY_VIOLATION, message="signed out")
                return
    finally:
        broadcaster.unsubscribe(subscriber)
