"""The audit log: who did what, when and from where. Rows are only ever added."""

from __future__ import annotations

import datetime as dt

from peewee import CharField, DateTimeField, ForeignKeyField, TextField

from models.base import BaseModel
from models.db import utcnow
from models.user import User

# Friendly names for the filter; actions added by later features show their raw name
# until they get one here.
ACTION_LABELS = {
    "auth.setup": "First admin created",
    "auth.login": "Logged in",
    "auth.login_failed": "Failed login",
    "auth.logout": "Logged out",
    "account.password": "Changed own password",
    "user.create": "User added",
    "user.role": "Role changed",
    "user.disable": "User disabled",
    "user.enable": "User enabled",
    "user.password_reset": "Password reset by admin",
    "setting.change": "Setting changed",
    "profile.create": "Backup profile added",
    "profile.update": "Backup profile changed",
    "profile.delete": "Backup profile deleted",
    "run.start": "Backup started by hand",
    "run.cancel": "Run cancelled",
    "run.retry": "Failed parts retried",
    "restore.start": "Restore started",
    "restore.preview": "Restore previewed",
    "restore.cancel": "Restore cancelled",
    "snapshot.download": "Downloaded from a snapshot",
    "snapshot.verify": "Verification started",
}


class AuditEntry(BaseModel):
    at = DateTimeField(default=utcnow, index=True)
    actor = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="audit_entries")
    # Kept as text too: failed logins name users that may not exist.
    actor_name = CharField(max_length=64, default="", index=True)
    action = CharField(max_length=64, index=True)
    target = CharField(max_length=255, default="")
    detail = TextField(default="")
    address = CharField(max_length=64, default="")

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)

    @classmethod
    def record(cls, action: str, *, actor: User | None = None, actor_name: str = "",
               target: str = "", detail: str = "", address: str = "",
               now: dt.datetime | None = None) -> AuditEntry:
        name = actor.username if actor is not None else actor_name
        return cls.create(at=now or utcnow(), actor=actor, actor_name=name[:64], action=action,
                          target=target[:255], detail=detail, address=address[:64])

    @classmethod
    def search(cls, *, user: str = "", action: str = "", since: dt.datetime | None = None,
               until: dt.datetime | None = None):
        """Newest first; `since` is inclusive and `until` exclusive (naive UTC)."""
        query = cls.select().order_by(cls.at.desc(), cls.id.desc())
        if user:
            query = query.where(cls.actor_name == user.strip().lower())
        if action:
            query = query.where(cls.action == action)
        if since:
            query = query.where(cls.at >= since)
        if until:
            query = query.where(cls.at < until)
        return query

    @classmethod
    def actions(cls) -> list[tuple[str, str]]:
        """(action, label) for every action in the log or known to Cairn, for filters."""
        seen = {row.action for row in cls.select(cls.action).distinct()}
        return sorted(((a, ACTION_LABELS.get(a, a)) for a in seen | set(ACTION_LABELS)),
                      key=lambda pair: pair[1])
