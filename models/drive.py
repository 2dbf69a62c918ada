"""Drives the watcher has seen (every block device with a filesystem), and those adopted as
backup destinations. Known by filesystem UUID; device names and mount paths are only where
the drive happens to be today."""

from __future__ import annotations

import datetime as dt
import os

from peewee import BigIntegerField, BooleanField, CharField, DateTimeField, TextField

from models.base import BaseModel
from models.db import utcnow


class Drive(BaseModel):
    uuid = CharField(max_length=64, unique=True)
    label = CharField(max_length=128, default="")
    fstype = CharField(max_length=32, default="")
    size = BigIntegerField(default=0)
    bus = CharField(max_length=32, default="")
    devnode = CharField(max_length=255, default="")
    connected = BooleanField(default=True, index=True)
    mount_point = TextField(default="")          # where it is mounted now, "" if nowhere
    first_seen_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(default=utcnow)  # connected now, or when it was last
    adopted_at = DateTimeField(null=True)
    token = CharField(max_length=64, default="")  # also in the marker file on the drive
    busy = CharField(max_length=16, default="")   # adopting | ejecting | mounting
    problem = TextField(default="")               # the last thing that went wrong, for the page
    ejected = BooleanField(default=False)         # unmounted on request: left alone until re-plugged

    @property
    def subject(self) -> str:
        return f"drive:{self.id}"

    @property
    def name(self) -> str:
        return self.label or f"Drive {self.uuid[:8]}"

    @property
    def adopted(self) -> bool:
        return self.adopted_at is not None

    def root(self, mount_root: str) -> str:
        """Where Cairn mounts this drive, and where its profiles' destinations start."""
        return os.path.join(mount_root, self.uuid)

    @property
    def state_label(self) -> str:
        if not self.connected:
            return "Not connected"
        if self.busy:
            return {"adopting": "Adopting…", "ejecting": "Ejecting…", "mounting": "Mounting…"}.get(
                self.busy, self.busy)
        if self.ejected:
            return "Safe to unplug"
        return "Mounted" if self.mount_point else "Connected"

    @classmethod
    def seen(cls, uuid: str, now: dt.datetime | None = None, **fields) -> tuple[Drive, bool]:
        """Record a drive as connected with what udev says of it; True if it was not before."""
        now = now or utcnow()
        drive = cls.get_or_none(cls.uuid == uuid)
        if drive is None:
            return cls.create(uuid=uuid, first_seen_at=now, last_seen_at=now, connected=True,
                              **fields), True
        arrived = not drive.connected
        changes = {"connected": True, "last_seen_at": now, **fields}
        if arrived:
            changes.update(ejected=False, problem="", busy="")
        cls.update(**changes).where(cls.id == drive.id).execute()
        return cls.get_by_id(drive.id), arrived

    def mark_gone(self, now: dt.datetime | None = None) -> bool:
        """The drive left; True if it was connected until now."""
        return bool(Drive.update(connected=False, last_seen_at=now or utcnow(), mount_point="",
                                 busy="")
                    .where((Drive.id == self.id) & Drive.connected).execute())

    @classmethod
    def of_path(cls, path: str, mount_root: str) -> Drive | None:
        """The adopted drive whose Cairn mount point holds `path`, if any."""
        root = os.path.normpath(mount_root)
        rel = os.path.relpath(os.path.normpath(path), root)
        if rel == "." or rel.startswith(".."):
            return None
        return cls.get_or_none((cls.uuid == rel.split(os.sep)[0]) & cls.adopted_at.is_null(False))

    @classmethod
    def listing(cls) -> list[Drive]:
        """Adopted drives first, then the others; connected before gone; by name."""
        drives = list(cls.select())
        return sorted(drives, key=lambda d: (not d.adopted, not d.connected, d.name.lower(), d.id))
