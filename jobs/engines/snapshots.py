"""Where snapshots live on a destination, and the checks made before anything is copied.

Layout: `<dest>/<profile-slug>/<timestamp>/` for complete snapshots, `<timestamp>.partial/`
while a run writes one, and a `latest` symlink to the newest complete snapshot. Inside a
snapshot each source sits at `<host>/<absolute path>` (as rsnapshot does), so two sources
never collide. A mirror (for filesystems without hardlinks) is one folder, `mirror/`.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from jobs.engines import confine, rsync

PARTIAL_SUFFIX = ".partial"
LATEST = "latest"
MIRROR = "mirror"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
SNAPSHOT_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{6}Z$")
MAX_PATH_BYTES = 4096
# Filesystems without hardlinks or POSIX modes (ntfs-3g mounts show as fuseblk).
MIRROR_ONLY = {"vfat", "msdos", "fat", "exfat", "ntfs", "ntfs3", "fuseblk", "hfsplus"}
LOCAL_HOST = "localhost"
MIN_FREE_BYTES = 1024 * 1024


class CheckError(Exception):
    """A source or destination that cannot be used, with a message for people."""


# --- names -----------------------------------------------------------------------------------

def snapshot_name(now: dt.datetime) -> str:
    return now.strftime(TIMESTAMP_FORMAT)


def unused_snapshot_name(root: Path, now: dt.datetime) -> str:
    """The name of a new snapshot in `root`: `now`, or one second after the newest name there
    (complete or partial) if that is not earlier. Names only ever grow, so the newest snapshot
    is always the last by name, even when runs follow each other within a second, retention
    has freed an older name, or the clock went back."""
    try:
        names = [e.name.removesuffix(PARTIAL_SUFFIX) for e in os.scandir(root)]
    except FileNotFoundError:
        names = []
    return next_name([n for n in names if SNAPSHOT_NAME.match(n)], now)


def next_name(taken: list[str], now: dt.datetime) -> str:
    newest = max(taken, default="")
    name = snapshot_name(now)
    if name > newest:
        return name
    return snapshot_name(dt.datetime.strptime(newest, TIMESTAMP_FORMAT) + dt.timedelta(seconds=1))


def in_snapshot(source: str, host: str = LOCAL_HOST) -> str:
    """Where a source folder sits inside a snapshot: `localhost/home/ada/Photos`."""
    return host + "/" + source.strip("/") if source.strip("/") else host


def list_snapshots(root: Path) -> list[str]:
    """Complete snapshots in `root`, oldest first. A `.partial` folder is never one."""
    try:
        names = [e.name for e in os.scandir(root)
                 if SNAPSHOT_NAME.match(e.name) and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    return sorted(names)


def latest_snapshot(root: Path) -> str | None:
    snapshots = list_snapshots(root)
    return snapshots[-1] if snapshots else None


def finalize(root: Path, name: str) -> Path:
    """Rename `<name>.partial` to `<name>` and point `latest` at it, each step atomic, once
    everything in it is on disk: rsync does not fsync, so without the flush a power cut
    could leave a "complete" snapshot with empty or cut files."""
    partial = root / (name + PARTIAL_SUFFIX)
    final = root / name
    confine.flush(root)
    if partial.exists():
        os.rename(partial, final)
    elif not final.is_dir():
        raise FileNotFoundError(f"neither {partial} nor {final} exists")
    point_latest(root, name)
    _fsync_dir(root)
    return final


def point_latest(root: Path, name: str) -> None:
    tmp = root / f".{LATEST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(name, tmp)
    os.replace(tmp, root / LATEST)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_partial(root: Path, name: str) -> bool:
    """Delete a run's own unfinished snapshot. Refuses anything that is not one."""
    if not SNAPSHOT_NAME.match(name):
        raise ValueError(f"{name!r} is not a snapshot name")
    partial = root / (name + PARTIAL_SUFFIX)
    if not partial.is_dir() or partial.is_symlink():
        return False
    # rm, not shutil.rmtree: that recurses once per folder level and fails on deep trees.
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(partial)], check=True,
                   capture_output=True)
    return True


def remove_snapshot(root: Path, name: str) -> bool:
    """Delete a complete snapshot that retention let go. Refuses anything that is not a
    snapshot folder (a name Cairn gives, a real folder, not a link) and the one `latest`
    points at."""
    if not SNAPSHOT_NAME.match(name):
        raise ValueError(f"{name!r} is not a snapshot name")
    folder = root / name
    if folder.is_symlink() or not folder.is_dir():
        return False
    if os.path.islink(root / LATEST) and os.readlink(root / LATEST) == name:
        raise ValueError(f"{name} is the latest snapshot")
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(folder)], check=True,
                   capture_output=True)
    return True


def snapshot_time(name: str) -> dt.datetime:
    """When a snapshot was taken, from its name (naive UTC)."""
    return dt.datetime.strptime(name, TIMESTAMP_FORMAT)


# --- filesystems -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Filesystem:
    mountpoint: str
    fstype: str
    device: str

    @property
    def mirror_only(self) -> bool:
        return self.fstype.lower() in MIRROR_ONLY


def filesystem_of(path: str) -> Filesystem:
    real = os.path.realpath(path)
    best = Filesystem("/", "unknown", "")
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) \
                and len(mount) >= len(best.mountpoint):
            best = Filesystem(mount, part.fstype, part.device)
    if best.fstype == "fuseblk" and best.device.startswith("/dev/"):
        # exFAT and NTFS drives mounted through FUSE all say "fuseblk"; the device knows.
        best = Filesystem(best.mountpoint, _probe_type(best.device) or best.fstype, best.device)
    return best


def _probe_type(device: str) -> str:
    done = subprocess.run(["blkid", "-o", "value", "-s", "TYPE", "--", device],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def supports_hardlinks(folder: str) -> bool:
    try:
        with tempfile.TemporaryDirectory(prefix=".cairn-probe-", dir=folder) as tmp:
            first = os.path.join(tmp, "a")
            open(first, "wb").close()
            os.link(first, os.path.join(tmp, "b"))
            return os.stat(first).st_nlink == 2
    except OSError:
        return False


def probe_attributes(folder: str) -> tuple[bool, bool]:
    """(ACLs, xattrs): whether rsync can keep them on this destination.

    Asked of rsync itself, copying a probe file, because support depends on the build of
    rsync, the filesystem and its mount options alike. Both probes run at once.
    """
    try:
        with tempfile.TemporaryDirectory(prefix=".cairn-probe-", dir=folder) as tmp:
            src = os.path.join(tmp, "src")
            os.mkdir(src)
            open(os.path.join(src, "probe"), "wb").close()
            probes = [subprocess.Popen(["rsync", "-a", flag, "--", src + "/",
                                        os.path.join(tmp, f"dst{flag}/")],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL,
                                       env={"LC_ALL": "C", "PATH": rsync.SEARCH_PATH})
                      for flag in ("--acls", "--xattrs")]
            acls, xattrs = (probe.wait() == 0 for probe in probes)
            return acls, xattrs
    except OSError:
        return False, False


def copy_folder_times(source: str, dest: str, folders: Iterable[str]) -> list[str]:
    """Give each folder (a path relative to both roots, "" for the root) in `dest` the
    modification time it has in `source`; returns what could not be done. Cheaper than
    another rsync pass, and all it has to mend: other units wrote into these folders."""
    problems = []
    for rel in folders:
        src, dst = os.path.join(source, rel), os.path.join(dest, rel)
        try:
            st = os.stat(src, follow_symlinks=False)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        except FileNotFoundError:
            continue  # vanished from the source during the run: its unit said so
        except OSError as error:
            problems.append(f"{rel or '.'}: {error.strerror}")
    return problems


# --- the worker's rights --------------------------------------------------------------------

CAP_CHOWN = 0
CAP_FOWNER = 3


def keeps_owners_without_root() -> bool:
    """True when this process is not root but holds the capabilities to set any file's owner
    and modes (the installed worker): rsync then needs --super to keep owners."""
    return os.geteuid() != 0 and _has_capability(CAP_CHOWN) and _has_capability(CAP_FOWNER)


def _has_capability(bit: int) -> bool:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


# --- checks ----------------------------------------------------------------------------------

def check_path_text(path: str, what: str) -> None:
    if not path:
        raise CheckError(f"The {what} is empty.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise CheckError(f"The {what} {path!r} contains a tab, a line break or a control "
                         "character.")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckError(f"The {what} {path.encode('utf-8', 'surrogateescape')!r} is not valid "
                         "UTF-8; rename the folder or choose its parent.") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise CheckError(f"The {what} is longer than {MAX_PATH_BYTES} bytes.")
    if any(len(part) > 255 for part in encoded.split(b"/")):
        raise CheckError(f"The {what} has a name longer than 255 bytes, more than any "
                         "filesystem takes.")
    if not os.path.isabs(path):
        raise CheckError(f"The {what} {path!r} must be an absolute path (starting with /).")


def check_source(path: str) -> None:
    check_path_text(path, "source folder")
    if not os.path.lexists(path):
        raise CheckError(f"Source folder {path} does not exist.")
    if not os.path.isdir(path):
        raise CheckError(f"Source {path} is not a folder.")
    real = os.path.realpath(path)
    if real != os.path.normpath(path):
        # The web confines sources to its roots by their text; a link could lead elsewhere.
        raise CheckError(f"Source {path} is reached through a symbolic link (it leads to "
                         f"{real}); choose the real folder instead.")
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except PermissionError:
        raise CheckError(f"Source folder {path} cannot be read by the worker "
                         "(permission denied).") from None
    except OSError as error:
        raise CheckError(f"Source folder {path} cannot be read: {error.strerror}.") from None


def check_destination(path: str, sources: Iterable[str]) -> None:
    check_path_text(path, "destination folder")
    if not os.path.isdir(path):
        raise CheckError(f"Destination folder {path} does not exist (create it, or plug in "
                         "and mount its drive).")
    check_apart(path, os.path.realpath(path), sources)
    if not os.access(path, os.W_OK | os.X_OK):
        raise CheckError(f"Destination folder {path} is not writable by the worker.")


def check_apart(path: str, real_dest: str, sources: Iterable[str]) -> None:
    """The destination (really at `real_dest`) is neither inside a source nor holds one."""
    for source in sources:
        real_source = os.path.realpath(source)
        if within(real_dest, real_source):
            raise CheckError(f"Destination {path} is inside source {source}: each backup "
                             "would copy the ones before it.")
        if within(real_source, real_dest):
            raise CheckError(f"Source {source} is inside destination {path}.")


def check_writable(folder: Path) -> None:
    """Create and remove a file: catches read-only mounts and full disks that access() misses."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=".cairn-probe-", dir=folder) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
        if shutil.disk_usage(folder).free < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CheckError(f"Destination {folder} is full.") from None
        raise CheckError(f"Cannot write to destination {folder}: {error.strerror}.") from None


def make_private(folder: Path) -> None:
    """Only the worker may enter a profile's folder of snapshots. The copies in it keep
    their owners, so otherwise a local user could change the copies of their own files, or
    swap a folder of theirs for a link while a restore reads it."""
    try:
        os.chmod(folder, 0o700)
    except OSError:
        pass   # FAT and exFAT keep no modes; such a drive holds a mirror, not snapshots


def within(path: str, folder: str) -> bool:
    """`path` is `folder` or lies inside it (both normalized)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def free_bytes(path: str) -> int:
    return shutil.disk_usage(path).free


# --- hardlinks between units -----------------------------------------------------------------

def relink(tree: Path, groups: Iterable[list[str]]) -> tuple[int, list[str]]:
    """Make each group of paths (files that share one inode at the source) share one inode in
    `tree` again. Separate rsync processes copy such files separately when they fall into
    different units. Returns (files relinked, warnings)."""
    relinked, warnings = 0, []
    for group in groups:
        count, warning = _relink_group(tree, group)
        relinked += count
        if warning:
            warnings.append(warning)
    return relinked, warnings


def _relink_group(tree: Path, group: list[str]) -> tuple[int, str | None]:
    present = []
    for rel in group:
        try:
            present.append((tree / rel, os.stat(tree / rel, follow_symlinks=False)))
        except FileNotFoundError:
            continue  # excluded or vanished
    if len(present) < 2:
        return 0, None
    (master, first), count = present[0], 0
    for path, st in present[1:]:
        if (st.st_dev, st.st_ino) == (first.st_dev, first.st_ino):
            continue
        if (st.st_size, st.st_mtime_ns) != (first.st_size, first.st_mtime_ns):
            return count, f"{path.relative_to(tree)} changed during the backup; it is kept as " \
                          f"a separate copy instead of a hardlink of {master.relative_to(tree)}."
        parent = os.stat(path.parent)
        tmp = path.parent / f".cairn-link-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.link(master, tmp)
        os.replace(tmp, path)
        # The rename touched the folder; give it back the time rsync set.
        os.utime(path.parent, ns=(parent.st_atime_ns, parent.st_mtime_ns))
        count += 1
    return count, None
