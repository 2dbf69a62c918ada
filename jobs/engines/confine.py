"""Folders reached without following links, for what the worker writes where a local user
may have planted one (restores above all).

Every folder on the way is opened relative to the one before it with O_NOFOLLOW and
O_DIRECTORY, so a symbolic link anywhere on a path is refused, never followed; what is then
written goes through the descriptor, so replacing a folder on the way by a link afterwards
redirects nothing. Python's os module takes `dir_fd` everywhere this needs except for
renameat2 (RENAME_NOREPLACE) and syncfs, which no library wraps: both are called in libc
through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
import stat
from dataclasses import dataclass, field

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RENAME_NOREPLACE = 1
AT_FDCWD = -100
MAX_LISTED = 200

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Refused(Exception):
    """A place that cannot be written without following a link (or is not a folder); the
    message is for people."""


def _parts(path: str) -> list[str]:
    if not path.startswith("/") or "\x00" in path:
        raise Refused(f"{path!r} is not an absolute folder path.")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise Refused(f"{path!r} must not contain '.' or '..'.")
    return parts


def open_folder(path: str, create: bool = False) -> int:
    """A descriptor of the folder at `path`, every component opened without following links.
    With `create`, missing folders are made one by one, each owned like the folder it is in
    and with its permission bits (so a folder made in ada's home is ada's)."""
    fd = os.open("/", FOLDER)
    walked = ""
    try:
        for part in _parts(path):
            walked += "/" + part
            try:
                next_fd = os.open(part, FOLDER, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise Refused(f"{walked} does not exist.") from None
                next_fd = _make(fd, part, walked)
            except OSError as error:
                raise _refusal(error, walked) from None
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_existing(path: str) -> tuple[int, str]:
    """The deepest folder of `path` that exists (opened as open_folder does) and the rest
    of the path below it, '' when all of it exists."""
    parts = _parts(path)
    for depth in range(len(parts), -1, -1):
        try:
            fd = open_folder("/" + "/".join(parts[:depth]))
        except Refused:
            if depth and not os.path.lexists("/" + "/".join(parts[:depth])):
                continue
            raise
        return fd, "/".join(parts[depth:])
    raise Refused(f"{path} cannot be opened.")  # "/" always exists: not reached


def _make(parent_fd: int, name: str, walked: str) -> int:
    made = True
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        made = False   # made meanwhile by someone else: opened below like any other folder
    except OSError as error:
        raise _refusal(error, walked) from None
    try:
        fd = os.open(name, FOLDER, dir_fd=parent_fd)
    except OSError as error:
        raise _refusal(error, walked) from None
    if made:
        like(fd, os.fstat(parent_fd))
    return fd


def like(fd: int, parent: os.stat_result) -> None:
    """Give the folder `fd` the owner and permission bits of `parent` (where the worker may
    change owners; elsewhere it stays the worker's own)."""
    try:
        os.fchown(fd, parent.st_uid, parent.st_gid)
    except PermissionError:
        pass
    os.fchmod(fd, stat.S_IMODE(parent.st_mode) & 0o777)


def _refusal(error: OSError, walked: str) -> Refused:
    if error.errno in (errno.ELOOP, errno.ENOTDIR):
        kind = "a symbolic link" if os.path.islink(walked) else "not a folder"
        return Refused(f"{walked} is {kind}: a restore never writes through a link or into "
                       "anything but a real folder.")
    return Refused(f"{walked}: {error.strerror}.")


def fresh_folder(parent_fd: int, prefix: str, mode: int = 0o700) -> tuple[str, int]:
    """A folder made now in `parent_fd`, named `prefix` and a random suffix, that nobody else
    had (exclusive create: a name planted in advance is never reused); its name and fd."""
    for _ in range(20):
        name = f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(name, mode, dir_fd=parent_fd)
        except FileExistsError:
            continue
        return name, os.open(name, FOLDER, dir_fd=parent_fd)
    raise Refused(f"Could not make a new folder named {prefix}…: every name tried exists.")


def rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """Move `src` to `dst` unless `dst` exists (FileExistsError); nothing followed."""
    if _libc.renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst),
                       RENAME_NOREPLACE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), dst)


def syncfs(fd: int) -> None:
    """Write out everything of the filesystem `fd` is on (data and metadata) and wait."""
    if _libc.syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def flush(folder) -> None:
    """syncfs for the filesystem `folder` is on: all that waits in memory there is written
    out, and this returns when it is on disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        syncfs(fd)
    finally:
        os.close(fd)


@dataclass
class Merged:
    """What moving a staged tree into its target did."""

    moved: int = 0                # entries (files, or whole folders) put in place
    replaced: int = 0             # existing files replaced (overwrite only)
    kept: int = 0                 # existing entries left as they were
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)


def merge(staging_fd: int, target_fd: int, overwrite: bool, where: str = "",
          merged: Merged | None = None) -> Merged:
    """Move everything in `staging_fd` into `target_fd`: what is not there yet moves in whole
    (a folder with all it holds, in one rename); into a folder there already, entry by entry;
    an existing file is replaced only with `overwrite`, and a folder never. A folder that is
    a link by the time it is reached is refused and named, nothing written through it."""
    merged = merged or Merged()
    with os.scandir(staging_fd) as entries:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in names:
        shown = f"{where}/{name}" if where else name
        try:
            _place(staging_fd, target_fd, name, is_dir, overwrite, shown, merged)
        except OSError as error:
            merged.problem(f"{shown}: {error.strerror or error}")
    return merged


def _place(staging_fd: int, target_fd: int, name: str, is_dir: bool, overwrite: bool,
           shown: str, merged: Merged) -> None:
    try:
        rename_noreplace(staging_fd, name, target_fd, name)
        merged.moved += 1
        return
    except FileExistsError:
        pass
    there = os.stat(name, dir_fd=target_fd, follow_symlinks=False)
    if is_dir and stat.S_ISDIR(there.st_mode):
        try:
            inner = os.open(name, FOLDER, dir_fd=target_fd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                merged.problem(f"{shown} was replaced by a link or a file during the restore; "
                               "nothing was written through it.")
                return
            raise
        staged = os.open(name, FOLDER, dir_fd=staging_fd)
        try:
            merge(staged, inner, overwrite, shown, merged)
            if overwrite:   # the folder there takes the restored one's owner, mode and times
                _take_attributes(staged, inner)
        finally:
            os.close(staged)
            os.close(inner)
    elif stat.S_ISDIR(there.st_mode):
        merged.kept += 1
        merged.problem(f"{shown} is a folder there; the file was not restored over it.")
    elif not overwrite:
        merged.kept += 1
    elif is_dir:
        merged.kept += 1
        what = "a symbolic link" if stat.S_ISLNK(there.st_mode) else "a file"
        merged.problem(f"{shown} is {what} there; the folder was not restored over it, and "
                       "nothing was written through it.")
    else:
        # rename() replaces the name itself, a link included; it never follows one.
        os.rename(name, name, src_dir_fd=staging_fd, dst_dir_fd=target_fd)
        merged.replaced += 1


def _take_attributes(source_fd: int, target_fd: int) -> None:
    st = os.fstat(source_fd)
    try:
        os.fchown(target_fd, st.st_uid, st.st_gid)
    except PermissionError:
        pass   # a worker that may not change owners keeps the folder's
    os.fchmod(target_fd, stat.S_IMODE(st.st_mode))
    os.utime(target_fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def remove_tree(parent_fd: int, name: str) -> None:
    """Remove `name` in `parent_fd` and all below it, never following a link (shutil's
    descriptor-based rmtree)."""
    shutil.rmtree(name, dir_fd=parent_fd)
