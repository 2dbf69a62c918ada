"""The live feed: one broadcaster thread per web process pushes HTML fragments to sockets.

A page opens `/ws?s=<subject>&s=<subject>`. On connect the socket gets the current state of
each subject, then every change: the broadcaster tails the Event table by id and re-renders
timed subjects (the system panel) on their interval. Fragments are the pages' own partials,
rendered from the pages' own context functions, and carry `hx-swap-oob` so htmx's ws
extension puts each one in place.

The broadcaster never writes to a socket itself: it renders each fragment once per time
zone and role and drops it into every watcher's outbox; each socket's own thread sends from there.
A watcher on a slow link therefore delays nobody else, and one that falls a whole outbox
behind is disconnected; its page reconnects and gets the current state afresh.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import Flask, current_app, g, render_template, request, session
from flask_login import current_user
from simple_websocket import ConnectionClosed

from models import Event, User, db
from models.user import VIEWER
from views import database
from views.extensions import sock
from views.forms import whole_number
from views.security import is_same_origin

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
POLL_SECONDS = 0.5
# How often the broadcaster re-reads the users behind the open sockets (one query for all):
# a user disabled, signed out or given a lesser role loses or downgrades their sockets
# within this, plus the second a socket's thread takes to notice.
RECHECK_SECONDS = 1.0
# Open sockets (each holds a web thread) one user, and one browser session, may have.
MAX_PER_USER = 12
MAX_PER_SESSION = 6
# How long a socket's thread waits on its outbox before looking whether the socket closed.
OUTBOX_WAIT_SECONDS = 1.0
MAX_SUBJECTS = 20
OUTBOX_SIZE = 200
TRY_AGAIN_LATER = 1013


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
    """How an Event becomes fragments: for matching events, push `template` rendered with the
    event to a subject; or, with no template, the subject's own partials from its context."""

    matches: Callable[[Event], bool]
    subject: Callable[[Event], str]
    template: str | None


SUBJECTS: dict[str, Subject] = {}
EVENT_ROUTES: list[EventRoute] = []


def subject(name: str, templates: Iterable[str], every: float | None = None, role: str = VIEWER):
    """Register a context function as the source of subject `name` (or `name:<arg>`)."""

    def decorator(context: Callable[[str | None], dict]):
        SUBJECTS[name] = Subject(name, context, tuple(templates), every, role)
        return context

    return decorator


def on_event(matches: Callable[[Event], bool], subject: Callable[[Event], str],
             template: str | None = None):
    """Push matching events to `subject`: as `template`, or (None) as a fresh render of it."""
    EVENT_ROUTES.append(EventRoute(matches, subject, template))


def row_of(model, arg: str | None):
    """The row a subject's argument names (`run:12` is Run 12), or None for a missing row or
    an argument that is not a database id."""
    number = whole_number(arg)
    return model.get_or_none(model.id == number) if number else None


def resolve(name: str) -> tuple[Subject, str | None] | None:
    key, _, arg = name.partition(":")
    found = SUBJECTS.get(key)
    return (found, arg or None) if found else None


@dataclass(eq=False)
class Subscriber:
    """One open socket and its outbox; only the socket's own thread sends from the outbox."""

    ws: object
    subjects: frozenset[str]
    user: User   # as last read: fragments are rendered for its role and zone
    session: str = ""
    outbox: queue.Queue = field(default_factory=lambda: queue.Queue(OUTBOX_SIZE))
    overflowed: bool = False
    revoked: str = ""   # why the socket must close (signed out, no longer allowed)

    @property
    def audience(self) -> tuple[str, str]:
        """Watchers with the same zone and role get the same fragments."""
        return (self.user.timezone, self.user.role)

    def offer(self, message: str) -> bool:
        """Queue `message` without waiting; False (and overflowed) if the outbox is full."""
        try:
            self.outbox.put_nowait(message)
            return True
        except queue.Full:
            self.overflowed = True
            return False


class Broadcaster:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        self._last_event_id = 0
        self._last_push: dict[str, float] = {}

    def subscribe(self, subscriber: Subscriber) -> str | None:
        """Add a socket, unless its user or session holds too many already (the reason)."""
        with db.connection_context():
            with self._lock:
                mine = [s for s in self._subscribers if s.user.id == subscriber.user.id]
                if len(mine) >= MAX_PER_USER or \
                        sum(s.session == subscriber.session for s in mine) >= MAX_PER_SESSION:
                    return "too many open pages; close some"
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
                subscriber.offer(self._render(found.templates, context, subscriber))
        return None

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def watching(self, name: str) -> list[Subscriber]:
        with self._lock:
            return [s for s in self._subscribers if name in s.subjects and not s.revoked]

    def _run(self) -> None:
        checked = 0.0
        while self._anyone_watching():
            started = time.monotonic()
            try:
                with db.connection_context():
                    if started - checked >= RECHECK_SECONDS:
                        checked = started
                        self._recheck_users()
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

    def _recheck_users(self) -> None:
        """Read again the users behind every socket: one signed out, disabled or no longer
        allowed a subject it watches is revoked; one whose role or zone changed gets its
        fragments rendered for what they are now."""
        with self._lock:
            subscribers = list(self._subscribers)
        ids = {s.user.id for s in subscribers}
        current = {u.id: u for u in User.select().where(User.id.in_(ids or {0}))}
        for sub in subscribers:
            fresh = current.get(sub.user.id)
            if fresh is None or not fresh.active or fresh.session_epoch != sub.user.session_epoch:
                sub.revoked = "signed out"
            elif any(not fresh.has_role(resolve(name)[0].role) for name in sub.subjects):
                sub.revoked = "no longer allowed"
            elif (fresh.role, fresh.timezone) != (sub.user.role, sub.user.timezone):
                sub.user = fresh

    def _push_new_events(self) -> None:
        fresh: dict[str, None] = {}  # subjects to render afresh once this batch is read
        for event in Event.after(self._last_event_id):
            self._last_event_id = event.id
            for route in EVENT_ROUTES:
                if not route.matches(event):
                    continue
                if route.template is None:
                    fresh[route.subject(event)] = None
                else:
                    self._push(route.subject(event), (route.template,), {"event": event})
        for name in fresh:
            if self.watching(name):
                found, arg = resolve(name)
                self._push(name, found.templates, self._context(found, arg))

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
        """Send the fragments to everyone watching `name`, rendered once per zone and role."""
        audiences: dict[tuple[str, str], list[Subscriber]] = defaultdict(list)
        for sub in self.watching(name):
            audiences[sub.audience].append(sub)
        for group in audiences.values():
            html = self._render(templates, context, group[0])
            for sub in group:
                if not sub.offer(html):
                    self.unsubscribe(sub)

    def _context(self, found: Subject, arg: str | None) -> dict:
        with self.app.app_context():
            return found.context(arg)

    def _render(self, templates: tuple[str, ...], context: dict, sub: Subscriber) -> str:
        with self.app.test_request_context("/"):
            g.tz = sub.user.timezone
            g._login_user = sub.user  # what flask-login's current_user reads
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
    user = current_user._get_current_object()
    database.release()  # a socket lives for hours; it must not hold a connection meanwhile
    subscriber = Subscriber(ws, frozenset(subjects), user, session=session.get("_id", ""))
    broadcaster: Broadcaster = current_app.extensions["cairn.broadcaster"]
    refused = broadcaster.subscribe(subscriber)
    if refused:
        ws.close(reason=TRY_AGAIN_LATER, message=refused)
        return
    try:
        _serve(ws, subscriber)
    finally:
        broadcaster.unsubscribe(subscriber)


def _serve(ws, subscriber: Subscriber) -> None:
    """Send the outbox until the socket closes, or the broadcaster revokes it."""
    while ws.connected:
        try:
            ws.send(subscriber.outbox.get(timeout=OUTBOX_WAIT_SECONDS))
        except queue.Empty:
            pass
        except (ConnectionClosed, OSError):
            return
        if subscriber.overflowed:
            ws.close(reason=TRY_AGAIN_LATER, message="too far behind; reconnect")
            return
        if subscriber.revoked:
            ws.close(reason=POLICY_VIOLATION, message=subscriber.revoked)
            return
