"""Other machines Cairn reaches over SSH, each with the host key an admin pinned, and how
the last check of the connection went."""

from __future__ import annotations

from peewee import BooleanField, CharField, DateTimeField, IntegerField, JSONField, TextField

from models.base import BaseModel
from models.db import utcnow


class Host(BaseModel):
    user = CharField(max_length=32)
    hostname = CharField(max_length=253)
    port = IntegerField(default=22)
    created_at = DateTimeField(default=utcnow)
    key_line = TextField(default="")              # the pinned host key: "ssh-ed25519 AAAA…"
    fingerprint = CharField(max_length=100, default="")
    pinned_at = DateTimeField(null=True)
    offered_key = TextField(default="")           # what the host offered, waiting for an admin
    offered_fingerprint = CharField(max_length=100, default="")
    blocked = TextField(default="")               # why all work with it stopped (key changed)
    busy = CharField(max_length=16, default="")   # fetching | testing
    checked_at = DateTimeField(null=True)
    check_ok = BooleanField(null=True)
    check_message = TextField(default="")
    rsync_version = CharField(max_length=32, default="")
    restore_roots = JSONField(default=list)       # folders restores may write to there

    class Meta:
        indexes = ((("user", "hostname", "port"), True),)

    @property
    def target(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{self.user}@{host}" + (f":{self.port}" if self.port != 22 else "")

    @property
    def subject(self) -> str:
        return f"host:{self.id}"

    @property
    def breaker_name(self) -> str:
        return f"host:{self.id}"

    @property
    def pinned(self) -> bool:
        return bool(self.key_line)

    def claim(self, busy: str) -> bool:
        """Mark the host busy (fetching, testing) unless it already is; True if this caller did."""
        return bool(Host.update(busy=busy).where((Host.id == self.id) & (Host.busy == "")).execute())

    def check_failed(self, message: str) -> None:
        """A key fetch or a test that failed: no longer busy, and why, for the page."""
        Host.update(busy="", check_ok=False, check_message=message, checked_at=utcnow()).where(
            Host.id == self.id).execute()
