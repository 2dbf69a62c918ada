"""Circuit breakers' state, shared by every worker: one row per outside service (a host).
The decisions are jobs/engines/breaker.py's; jobs/breakers.py applies them here."""

from __future__ import annotations

from peewee import CharField, DateTimeField, IntegerField, TextField

from models.base import BaseModel
from models.db import utcnow

STATE_LABELS = {"closed": "Working", "open": "Paused", "half_open": "Trying again"}


class Breaker(BaseModel):
    name = CharField(max_length=100, unique=True)   # "host:3"
    label = CharField(max_length=300, default="")   # what people call it: ada@laptop:22
    state = CharField(max_length=16, default="closed")
    failures = IntegerField(default=0)
    next_try = DateTimeField(null=True)
    last_error = TextField(default="")
    last_error_at = DateTimeField(null=True)
    last_success_at = DateTimeField(null=True)
    updated_at = DateTimeField(default=utcnow)

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    @classmethod
    def named(cls, name: str, label: str = "") -> Breaker:
        breaker = cls.get_or_none(cls.name == name)
        if breaker is None:
            cls.insert(name=name, label=label).on_conflict_ignore().execute()
            breaker = cls.get(cls.name == name)
        return breaker
