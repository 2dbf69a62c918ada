"""Peewee models, one module per aggregate; `ALL_MODELS` in dependency order."""

from models.audit import AuditEntry
from models.db import db, open_database, utcnow
from models.event import Event
from models.user import SetupToken, User
from models.worker import WorkerProcess

ALL_MODELS = [User, SetupToken, AuditEntry, Event, WorkerProcess]

__all__ = ["ALL_MODELS", "AuditEntry", "Event", "SetupToken", "User", "WorkerProcess", "db",
           "open_database", "utcnow"]
