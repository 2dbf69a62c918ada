"""Peewee models, one module per aggregate; `ALL_MODELS` in dependency order."""

from models.audit import AuditEntry
from models.backup import (
                           ACTIVE_STATES,
                           FINISHED_STATES,
                           AlreadyRunning,
                           ExcludePreview,
                           Profile,
                           Run,
                           RunMessage,
                           Scan,
                           ScanDir,
                           ScanLink,
                           Unit,
)
from models.breaker import Breaker
from models.db import db, open_database, utcnow
from models.drive import Drive
from models.event import Event
from models.host import Host
from models.media import MetadataLookup
from models.snapshot import Restore, Snapshot, Verification
from models.user import SetupToken, User
from models.worker import WorkerProcess

ALL_MODELS = [User, SetupToken, AuditEntry, Event, WorkerProcess, Profile, Run, Unit, RunMessage,
              Scan, ScanDir, ScanLink, ExcludePreview, Drive, Host, Breaker, Snapshot, Verification, Restore,
              MetadataLookup]

__all__ = ["ACTIVE_STATES", "ALL_MODELS", "AlreadyRunning", "AuditEntry", "Breaker", "Drive", "Event",
           "ExcludePreview", "FINISHED_STATES", "Host", "MetadataLookup", "Profile", "Restore", "Run",
           "RunMessage", "Scan", "ScanDir", "ScanLink", "SetupToken", "Snapshot", "Unit", "User",
           "Verification", "WorkerProcess", "db", "open_database", "utcnow"]
