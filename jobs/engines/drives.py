"""Drives: block devices that carry a filesystem, as udev describes them; mounting them where
Cairn expects them; and proving that a folder is on the adopted drive and not on an empty
mount point.

A drive is known by its filesystem UUID, never by its device name or mount path, which
change from one plug-in to the next. On adoption Cairn writes a marker file holding the UUID
and a random token at the drive's root; a destination counts as the drive only when the
filesystem mounted at Cairn's mount point is that device and the marker is there.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

import psutil

MARKER = ".cairn-drive.json"
MIRROR_ONLY = frozenset({"vfat", "exfat", "ntfs", "ntfs3", "msdos", "fat"})
COMMAND_ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
MOUNT_TIMEOUT = 60


class DriveError(Exception):
    """A drive could not be mounted, unmounted or proved; the message says why."""


@dataclass(frozen=True)
class BlockFs:
    uuid: str
    label: str
    fstype: str
    size: int             # bytes
    bus: str              # usb, ata, ... ("" for loop devices)
    devnode: str          # /dev/sdb1 today; something else tomorrow

    @property
    def mirror_only(self) -> bool:
        return self.fstype in MIRROR_ONLY


def from_properties(properties: Mapping[str, str], size_sectors: int | None) -> BlockFs | None:
    """The filesystem udev describes, or None for a block device without one (a whole disk
    with partitions, a swap area, an empty loop device)."""
    uuid = properties.get("ID_FS_UUID", "")
    if not uuid or properties.get("ID_FS_USAGE", "filesystem") != "filesystem":
        return None
    return BlockFs(uuid=uuid, label=properties.get("ID_FS_LABEL", ""),
                   fstype=properties.get("ID_FS_TYPE", ""),
                   size=(size_sectors or 0) * 512, bus=properties.get("ID_BUS", ""),
                   devnode=properties.get("DEVNAME", ""))


def from_udev(device) -> BlockFs | None:
    """A pyudev Device as a BlockFs (None without a filesystem)."""
    try:
        size = device.attributes.asint("size")
    except (KeyError, ValueError):
        size = None
    return from_properties(dict(device.properties), size)


def present(context) -> list[BlockFs]:
    """Every block device with a filesystem that udev knows of now."""
    found = (from_udev(d) for d in context.list_devices(subsystem="block"))
    return [fs for fs in found if fs is not None]


def mount_point_of(devnode: str, where: str | None = None) -> str | None:
    """Where `devnode` is mounted (`where` if it is mounted there, else its first mount)."""
    if not devnode:
        return None
    real = os.path.realpath(devnode)
    points = [p.mountpoint for p in psutil.disk_partitions(all=True)
              if p.device and os.path.realpath(p.device) == real]
    if where is not None and where in points:
        return where
    return points[0] if points else None


def is_mounted_at(path: str) -> bool:
    return any(p.mountpoint == path for p in psutil.disk_partitions(all=True))


def mount(fs: BlockFs, target: str) -> None:
    """Mount `fs` at `target` (created if missing): no set-uid programs, no device files."""
    os.makedirs(target, mode=0o755, exist_ok=True)
    _run(["mount", "-t", fs.fstype, "-o", "nosuid,nodev", "--", fs.devnode, target],
         f"Could not mount {fs.label or fs.uuid} at {target}")


def unmount(target: str, lazy: bool = False) -> None:
    """Write out what is cached, then unmount; `lazy` detaches a mount whose device is gone."""
    os.sync()
    _run(["umount", *(["--lazy"] if lazy else []), "--", target], f"Could not unmount {target}")


def _run(args: list[str], what: str) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=COMMAND_ENV,
                              timeout=MOUNT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DriveError(f"{what}: {error}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise DriveError(f"{what}: {said[-1] if said else f'exit code {done.returncode}'}")


def new_token() -> str:
    return secrets.token_hex(16)


def write_marker(root: str, uuid: str, token: str) -> None:
    """Claim the drive: the marker is what tells this drive from an empty mount point."""
    path = os.path.join(root, MARKER)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as fh:
            json.dump({"uuid": uuid, "token": token, "by": "Cairn"}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as error:
        raise DriveError(f"Could not write Cairn's marker on the drive at {root}: "
                         f"{error.strerror}") from None


def prove(root: str, uuid: str, token: str) -> str | None:
    """None if `root` is the adopted drive: a mount point (not the empty folder beneath it)
    holding the marker Cairn wrote there; otherwise why not."""
    try:
        here, parent = os.stat(root), os.stat(os.path.dirname(root.rstrip("/")) or "/")
    except OSError as error:
        return f"{root} cannot be read ({error.strerror})."
    if here.st_dev == parent.st_dev and not is_mounted_at(root):
        return f"Nothing is mounted at {root}: the drive is not connected."
    try:
        with open(os.path.join(root, MARKER)) as fh:
            marker = json.load(fh)
    except FileNotFoundError:
        return f"The drive mounted at {root} is not the adopted one (it has no Cairn marker)."
    except (OSError, ValueError) as error:
        text = getattr(error, "strerror", None) or str(error)
        return f"Cairn's marker on the drive at {root} cannot be read ({text})."
    if not isinstance(marker, dict) or marker.get("uuid") != uuid \
            or not secrets.compare_digest(str(marker.get("token", "")), token):
        return f"The drive mounted at {root} is another drive than the adopted one."
    return None
