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
from models.media import (
    DupeScan,
    DuplicateSet,
    FileHash,
    ImportItem,
    Inbox,
    Library,
    MetadataLookup,
    Movie,
    MovieFile,
    QualityProfile,
)
from models.notify import Alert, Delivery, NotificationTarget, NotifyCursor
from models.setting import StoredSetting
from models.snapshot import Restore, Snapshot, Verification
from models.user import SetupToken, User
from models.worker import WorkerProcess

ALL_MODELS = [User, SetupToken, AuditEntry, Event, WorkerProcess, Profile, Run, Unit, RunMessage,
              Scan, ScanDir, ScanLink, ExcludePreview, Drive, Host, Breaker, Snapshot, Verification, Restore,
              MetadataLookup, QualityProfile, Library, Inbox, Movie, MovieFile, ImportItem, DupeScan,
              DuplicateSet, FileHash, NotificationTarget, Delivery, Alert, NotifyCursor, StoredSetting]

__all__ = ["ACTIVE_STATES", "Alert", "ALL_MODELS", "AlreadyRunning", "AuditEntry", "Breaker", "db",
           "Delivery", "Drive", "DupeScan", "DuplicateSet", "Event", "ExcludePreview", "FileHash",
           "FINISHED_STATES", "Host", "ImportItem", "Inbox", "Library", "MetadataLookup", "Movie",
           "MovieFile", "NotificationTarget", "NotifyCursor", "open_database", "Profile",
           "QualityProfile", "Restore", "Run", "RunMessage", "Scan", "ScanDir", "ScanLink",
           "SetupToken", "Snapshot", "StoredSetting", "Unit", "User", "utcnow", "Verification",
           "WorkerProcess"]
