"""Notification targets (Apprise URLs, each with the events it wants), the deliveries owed to
them, the in-app alert centre, and how far the notifier has read the events.

Delivery states: pending → sending → sent, or back to pending (the target failed: it waits
for its breaker's next try) until it is sent or, after EXPIRE_AFTER, expired.
"""

from __future__ import annotations

import datetime as dt

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    TextField,
)

from models.base import BaseModel, Stateful
from models.db import utcnow
from models.event import Event

EXPIRE_AFTER = dt.timedelta(days=3)


class NotificationTarget(BaseModel):
    name = CharField(max_length=100, unique=True)
    url = TextField()                                 # secret: shown masked
    events = JSONField(default=list)                  # keys of jobs/engines/notify.EVENTS
    enabled = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    last_sent_at = DateTimeField(null=True)
    last_error = TextField(default="")
    last_error_at = DateTimeField(null=True)

    @property
    def breaker_name(self) -> str:
        return f"notify:{self.id}"

    @property
    def subject(self) -> str:
        return f"notify:{self.id}"

    @classmethod
    def wanting(cls, key: str) -> list[NotificationTarget]:
        return [t for t in cls.select().where(cls.enabled) if key in t.events]


class Delivery(Stateful, BaseModel):
    target = ForeignKeyField(NotificationTarget, backref="deliveries", on_delete="CASCADE")
    key = CharField(max_length=32)
    title = CharField(max_length=200)
    body = TextField()
    level = CharField(max_length=16, default="info")
    state = CharField(max_length=16, default="pending", index=True)
    attempts = IntegerField(default=0)
    not_before = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)
    error = TextField(default="")

    @classmethod
    def due(cls, now: dt.datetime):
        return cls.select().where((cls.state == "pending")
                                  & (cls.not_before.is_null() | (cls.not_before <= now)))

    @classmethod
    def prune(cls, before: dt.datetime) -> int:
        return cls.delete().where(cls.state.in_(("sent", "expired"))
                                  & (cls.created_at < before)).execute()

    @classmethod
    def expire(cls, now: dt.datetime) -> int:
        return cls.update(state="expired").where(
            cls.state.in_(("pending", "sending")) & (cls.created_at < now - EXPIRE_AFTER)).execute()


class Alert(BaseModel):
    at = DateTimeField(default=utcnow, index=True)
    key = CharField(max_length=32)
    level = CharField(max_length=16, default="warning")
    title = CharField(max_length=200)
    message = TextField()
    subject = CharField(max_length=128, default="")    # what it is about: run:12, import:3...
    acknowledged_at = DateTimeField(null=True, index=True)
    acknowledged_by = CharField(max_length=64, default="")
    problem = CharField(max_length=128, default="")   # what makes two alerts the same one
    count = IntegerField(default=1)       # how many times it happened while open
    first_at = DateTimeField(null=True)   # when the first of them did

    @classmethod
    def raise_or_count(cls, key: str, level: str, title: str, message: str, subject: str,
                       at: dt.datetime, problem: str = "",
                       batch: dt.timedelta | None = None) -> Alert:
        """One open alert per problem: the same problem again (the next failed run of the
        same profile, the next file of one import batch) counts on the open alert and takes
        its newest words and link, instead of being an alert of its own. The same problem:
        the same key and `problem` (default: the subject), or with `batch`, the same key
        within that time of the open alert's last."""
        problem = problem or subject
        same = cls.key == key
        if batch is None:
            same &= cls.problem == problem
        else:
            same &= (cls.problem == problem) | (cls.at >= at - batch)
        open_one = (cls.select().where(same & cls.acknowledged_at.is_null())
                    .order_by(cls.id.desc()).first())
        if open_one is None:
            return cls.create(key=key, level=level, title=title, message=message,
                              subject=subject, at=at, first_at=at, problem=problem)
        cls.update(count=cls.count + 1, at=at, message=message, title=title, level=level,
                   subject=subject).where(cls.id == open_one.id).execute()
        return cls.get_by_id(open_one.id)

    @classmethod
    def open(cls):
        return cls.select().where(cls.acknowledged_at.is_null()).order_by(cls.id.desc())

    @classmethod
    def open_count(cls) -> int:
        return cls.select().where(cls.acknowledged_at.is_null()).count()

    def acknowledge(self, by: str, now: dt.datetime) -> bool:
        return bool(Alert.update(acknowledged_at=now, acknowledged_by=by).where(
            (Alert.id == self.id) & Alert.acknowledged_at.is_null()).execute())

    @classmethod
    def prune(cls, before: dt.datetime) -> int:
        return cls.delete().where(cls.acknowledged_at.is_null(False)
                                  & (cls.acknowledged_at < before)).execute()

    @classmethod
    def acknowledge_all(cls, by: str, now: dt.datetime) -> int:
        return cls.update(acknowledged_at=now, acknowledged_by=by).where(
            cls.acknowledged_at.is_null()).execute()


class NotifyCursor(BaseModel):
    """One row: the newest Event the notifier has turned into alerts and deliveries."""

    last_event_id = BigIntegerField(default=0)

    @classmethod
    def current(cls) -> NotifyCursor:
        cursor = cls.select().order_by(cls.id).first()
        # A new box starts from now: the events before it are history, not news.
        return cursor if cursor is not None else cls.create(last_event_id=Event.last_id())

    def advance(self, to_id: int) -> bool:
        """Move from where this process read it; False if another process got there first."""
        return bool(NotifyCursor.update(last_event_id=to_id).where(
            (NotifyCursor.id == self.id) & (NotifyCursor.last_event_id == self.last_event_id)).execute())
