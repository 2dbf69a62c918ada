"""Notifications for the whole product: events become alerts (the in-app alert centre) and
deliveries to the Apprise targets that want them, sent through each target's breaker.

`route()` reads the events after the notifier's cursor (every worker's heartbeat calls it;
the cursor moves by a conditional UPDATE, so each event is routed once however many workers
there are). Each delivery is one `deliver` task: a target that fails opens its breaker, and
its deliveries wait for the breaker's next try (the minute task `deliver_due` hands them out
again); they are never dropped, only expired after three days of failing.
"""

from __future__ import annotations

import datetime as dt
import logging

from huey import crontab

from jobs import breakers
from jobs.engines import notify as engine
from jobs.queue import huey, with_db
from models import Alert, Breaker, Delivery, Event, NotificationTarget, NotifyCursor, db, utcnow

log = logging.getLogger(__name__)
IMPORT_BATCH = dt.timedelta(minutes=10)

BATCH = 500


def route(enqueue: bool = True) -> int:
    """Turn the events since the cursor into alerts and deliveries; returns how many of them
    were worth a notice."""
    cursor = NotifyCursor.current()
    events = Event.after(cursor.last_event_id, limit=BATCH)
    if not events:
        return 0
    made: list[int] = []
    notices = 0
    with db.atomic():
        if not cursor.advance(events[-1].id):
            return 0   # another worker routed them
        for event in events:
            notice = engine.notice_of(event.kind, event.level, event.message, event.payload or {})
            if notice is not None:
                notices += 1
                made += _route_one(notice, event)
    if enqueue:
        for delivery_id in made:
            deliver(delivery_id)
    return notices


def _route_one(notice: engine.Notice, event: Event) -> list[int]:
    if notice.key in engine.ALERTS:
        # Imports come in batches (a season's files blocked for the same reason): one alert
        # for what happens within a few minutes of the last.
        batch = IMPORT_BATCH if notice.key.startswith("import.") else None
        # A profile's backups or checks failing run after run are one problem, its.
        profile = (event.payload or {}).get("profile")
        problem = f"profile:{profile}" if profile and not batch else ""
        Alert.raise_or_count(notice.key, notice.level, notice.title, notice.body,
                             event.subject, event.at, problem, batch)
    about = _breaker_name(event) if notice.key == "breaker.opened" else ""
    # A target whose own breaker opened is not told so through itself: that call would fail
    # and open it again, once more at every try.
    return [_delivery(target, notice).id for target in NotificationTarget.wanting(notice.key)
            if target.breaker_name != about]


def _breaker_name(event: Event) -> str:
    breaker = Breaker.get_or_none(Breaker.id == (event.payload or {}).get("breaker"))
    return breaker.name if breaker else ""


def _delivery(target: NotificationTarget, notice: engine.Notice) -> Delivery:
    return Delivery.create(target=target, key=notice.key, title=notice.title[:200],
                           body=notice.body, level=notice.level)


def send_test(target: NotificationTarget, by: str = "", enqueue: bool = True) -> Delivery:
    """A test notification to one target, now (its breaker still decides)."""
    delivery = _delivery(target, engine.Notice(
        "test", "Cairn: test notification",
        f"This is a test from Cairn{f', sent by {by}' if by else ''}. If you read it, "
        f"notifications to {target.name} work.", "info"))
    if enqueue:
        deliver(delivery.id)
    return delivery


@huey.task()
@with_db
def deliver(delivery_id: int) -> None:
    delivery = Delivery.get_or_none(Delivery.id == delivery_id)
    if delivery is None or not delivery.move(("pending",), "sending"):
        return
    target = NotificationTarget.get_or_none(NotificationTarget.id == delivery.target_id)
    if target is None:
        return
    now = utcnow()
    try:
        breakers.check(target.breaker_name, f"Notifications to {target.name}", now)
    except breakers.Paused as paused:
        delivery.move(("sending",), "pending", not_before=paused.breaker.next_try)
        return
    try:
        engine.send(target.url, engine.Notice(delivery.key, delivery.title, delivery.body,
                                              delivery.level))
    except engine.NotifyError as error:
        _failed(delivery, target, str(error), now)
        return
    breakers.succeeded(target.breaker_name, now)
    delivery.move(("sending",), "sent", sent_at=now, attempts=delivery.attempts + 1, error="")
    NotificationTarget.update(last_sent_at=now).where(NotificationTarget.id == target.id).execute()
    Event.publish("notify.sent", target.subject, f"Sent “{delivery.title}” to {target.name}.",
                  target=target.id)


def _failed(delivery: Delivery, target: NotificationTarget, error: str, now: dt.datetime) -> None:
    breaker = breakers.failed(target.breaker_name, error, f"Notifications to {target.name}", now)
    delivery.move(("sending",), "pending", attempts=delivery.attempts + 1, error=error,
                  not_before=breaker.next_try)
    NotificationTarget.update(last_error=error, last_error_at=now).where(
        NotificationTarget.id == target.id).execute()
    Event.publish("notify.failed", target.subject,
                  f"Could not send “{delivery.title}” to {target.name}: {error}",
                  level="warning", target=target.id)


@huey.periodic_task(crontab())
@with_db
def deliver_due() -> None:
    """Deliveries whose target's breaker allows another try; the hopeless ones expire."""
    now = utcnow()
    Delivery.expire(now)
    for delivery in Delivery.due(now):
        deliver(delivery.id)   # a task still queued for it finds it taken, and does nothing
