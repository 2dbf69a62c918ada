"""Putting a file into the library without ever losing one: hardlink when inbox and library
share a filesystem, else a reflink where the filesystem has them (btrfs, XFS), else a copy
whose hash is checked against the source's. A file it replaces goes to the recycle folder,
never away. Any failure undoes every step taken, in reverse.

Never overwrites: the destination must not exist (the replaced file is moved aside first).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from jobs.engines import confine, hashing

FICLONE = 0x40049409   # linux/fs.h: _IOW(0x94, 9, int)
CHUNK = 1024 * 1024
RECYCLE = ".cairn-recycle"


class PlaceError(Exception):
    """The file could not be placed; everything done was undone. The message says why."""


@dataclass
class Placed:
    path: Path
    method: str                     # hardlink | reflink | copy
    content_hash: str
    recycled: Path | None = None    # where the file it replaced went
    undo: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def rollback(self) -> None:
        """Undo the placing (say, the database could not record it): the new file goes,
        the replaced one comes back from the recycle folder, made folders are removed."""
        _undo(self.undo)
        self.undo = []


def file_hash(path: Path | str, on_bytes: Callable[[int], None] | None = None) -> str:
    return hashing.hash_file(path, on_bytes=on_bytes)[0].hex()


def recycle_path(library: Path, relative: str, day: str) -> Path:
    """Where a replaced library file goes: `<library>/.cairn-recycle/<day>/<its path>`, with
    a number added should that be taken."""
    target = library / RECYCLE / day / relative
    n = 1
    while target.exists() or target.is_symlink():
        n += 1
        target = target.with_name(f"{target.stem} ({n}){target.suffix}")
    return target


def place(source: Path, library: Path, relative: str, *, replace: Path | None = None,
          day: str = "today", expected_hash: str = "",
          on_bytes: Callable[[int], None] | None = None) -> Placed:
    """Put `source` at `library/relative` (see the module's rules). `replace` is the
    library file this one supersedes; it is recycled. The source is left where it is: in
    move mode the caller removes it once the import is recorded, so that nothing that cannot
    be undone happens before then."""
    dest = library / relative
    undo: list[Callable[[], None]] = []
    try:
        recycled = _recycle(library, replace, day, undo) if replace is not None else None
        if dest.exists() or dest.is_symlink():
            raise PlaceError(f"{relative} is already in the library; nothing was overwritten.")
        _make_parents(dest.parent, library, undo)
        undo.append(lambda: dest.unlink(missing_ok=True))   # also a half-written copy
        method, digest = _put(source, dest, expected_hash, on_bytes)
        confine.flush(dest.parent)   # an import is recorded done only once it is on disk
        return Placed(dest, method, digest, recycled, undo)
    except BaseException as error:
        _undo(undo)
        if isinstance(error, PlaceError):
            raise
        if isinstance(error, OSError):
            raise PlaceError(_explain(error, relative)) from error
        raise


def recycle(library: Path, path: Path, day: str) -> Path:
    """Move one library file into the recycle folder (a person chose to let it go)."""
    undo: list[Callable[[], None]] = []
    try:
        return _recycle(library, path, day, undo)
    except BaseException:
        _undo(undo)
        raise


def relink(keep: Path, other: Path) -> None:
    """Make `other` a hardlink of `keep`: both names stay, one copy's space is freed. Their
    contents are compared first, right now, not trusted from an older scan; the swap is one
    rename, so `other` is never missing."""
    if os.stat(keep).st_dev != os.stat(other).st_dev:
        raise PlaceError(f"{other.name} is on another filesystem than {keep.name}; a hardlink "
                         "cannot join them (recycle it instead).")
    if file_hash(keep) != file_hash(other):
        raise PlaceError(f"{other.name} no longer has the same content as {keep.name}; "
                         "nothing was changed.")
    temporary = other.with_name(f".cairn-link-{os.urandom(6).hex()}")
    os.link(keep, temporary)
    try:
        os.rename(temporary, other)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _undo(steps: list[Callable[[], None]]) -> None:
    for step in reversed(steps):
        try:
            step()
        except OSError:
            pass


def _recycle(library: Path, replace: Path, day: str, undo: list) -> Path:
    relative = replace.relative_to(library).as_posix()
    target = recycle_path(library, relative, day)
    _make_parents(target.parent, library, undo)
    os.rename(replace, target)   # same filesystem: the recycle folder is inside the library
    undo.append(lambda: os.rename(target, replace))
    return target


def _make_parents(folder: Path, library: Path, undo: list) -> None:
    missing = []
    current = folder
    while not current.exists() and current != library and library in current.parents:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir()
        undo.append(lambda p=path: p.rmdir())


def _put(source: Path, dest: Path, expected_hash: str, on_bytes) -> tuple[str, str]:
    src_stat = os.stat(source, follow_symlinks=False)   # a link is not the file it names
    if not stat.S_ISREG(src_stat.st_mode):
        raise PlaceError(f"{source.name} is not a regular file.")
    if src_stat.st_dev == os.stat(dest.parent).st_dev:
        try:
            os.link(source, dest, follow_symlinks=False)
            return "hardlink", expected_hash or file_hash(dest, on_bytes)
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EMLINK, errno.EXDEV, errno.ENOTSUP):
                raise
    if _reflink(source, dest):
        digest = file_hash(dest, on_bytes)
        return "reflink", _checked(digest, expected_hash or file_hash(source), dest)
    digest = _copy(source, dest, on_bytes)
    return "copy", _checked(file_hash(dest), expected_hash or digest, dest)


def _reflink(source: Path, dest: Path) -> bool:
    with open(source, "rb") as src, open(dest, "xb") as out:
        try:
            fcntl.ioctl(out.fileno(), FICLONE, src.fileno())
        except OSError:
            out.close()
            dest.unlink()
            return False
    shutil.copystat(source, dest)
    return True


def _copy(source: Path, dest: Path, on_bytes) -> str:
    digest = xxhash.xxh3_128()
    with open(source, "rb") as src, open(dest, "xb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            if on_bytes:
                on_bytes(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    shutil.copystat(source, dest)
    return digest.hexdigest()


def _checked(digest: str, expected: str, dest: Path) -> str:
    if digest != expected:
        dest.unlink(missing_ok=True)
        raise PlaceError("The copy in the library does not match the source (hash differs); "
                         "it was removed and the source kept.")
    return digest


def _explain(error: OSError, relative: str) -> str:
    if error.errno == errno.ENOSPC:
        return f"The library's disk is full; {relative} was not imported and nothing was lost."
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"No permission to write {relative} into the library: {error.strerror}."
    return f"Could not place {relative}: {error.strerror or error}."
