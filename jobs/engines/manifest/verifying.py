"""Re-reading a snapshot's files against its manifest."""

from __future__ import annotations

import os
import random
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jobs.engines.hashing import BUFFER_BYTES, _without_atime, hash_fd
from jobs.engines.manifest.paths import open_inside
from jobs.engines.manifest.reading import Entry, Manifest
from jobs.engines.manifest.schema import PROGRESS_SECONDS

# --- verifying -------------------------------------------------------------------------------

@dataclass
class Check:
    """What re-reading a snapshot against its manifest found."""

    total: int = 0           # files the manifest lists
    chosen: int = 0          # files picked to check (all, or the sample)
    checked: int = 0
    bytes: int = 0           # read so far, the file being read included
    chosen_bytes: int = 0    # the sizes of the chosen files
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)   # their paths, in the snapshot
    stopped: bool = False

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.changed) + len(self.unreadable)

    @property
    def intact(self) -> bool:
        return not self.problems and not self.stopped


def choose(manifest: Manifest, percent: float | None, rng: random.Random) -> list[Entry]:
    """The files to check: all of them, or `percent` of them at random (at least one)."""
    files = list(manifest.files())
    if percent is None or percent >= 100 or not files:
        return files
    k = max(1, round(len(files) * percent / 100))
    return rng.sample(files, min(k, len(files)))


def verify(tree: Path, manifest: Manifest, chosen: list[Entry], *,
           on_progress: Callable[[Check], None] | None = None,
           should_stop: Callable[[], bool] | None = None) -> Check:
    """Re-read each chosen file in `tree` and compare it with the manifest. Progress is
    reported about twice a second, inside large files too, and a stop is heeded there."""
    check = Check(total=manifest.file_count(), chosen=len(chosen),
                  chosen_bytes=sum(entry.size for entry in chosen))
    buffer = bytearray(BUFFER_BYTES)
    root = str(tree)
    next_report = time.monotonic() + PROGRESS_SECONDS

    def read(n: int) -> None:
        nonlocal next_report
        check.bytes += n
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + PROGRESS_SECONDS
            if should_stop and should_stop():
                raise _Stopped
            if on_progress:
                on_progress(check)

    try:
        for entry in sorted(chosen, key=lambda e: e.path):   # folder order reads the disk in order
            _verify_one(root, entry, check, buffer, read)
            check.checked += 1
            read(0)
    except _Stopped:
        check.stopped = True
    return check


class _Stopped(Exception):
    pass


def _verify_one(root: str, entry: Entry, check: Check, buffer: bytearray,
                on_bytes: Callable[[int], None]) -> None:
    # O_NONBLOCK: a fifo standing where the file was must not block the check.
    try:
        fd = _without_atime(lambda flags: open_inside(root, entry.path, flags),
                            os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        note(check, check.missing, entry.path, entry.path)
        return
    except OSError as error:
        if error.errno == 40:   # ELOOP: a symlink now stands where the file was
            note(check, check.changed, entry.path, f"{entry.path} (is no longer a file)")
        else:
            note(check, check.unreadable, entry.path, f"{entry.path}: {error.strerror}")
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            note(check, check.changed, entry.path, f"{entry.path} (is no longer a file)")
            return
        digest, read = hash_fd(fd, buffer, on_bytes)
    except OSError as error:
        note(check, check.unreadable, entry.path, f"{entry.path}: {error.strerror}")
        return
    finally:
        os.close(fd)
    if entry.hash is None:
        return   # it could not be read when indexed either; now it can
    if read != entry.size or digest != entry.hash:
        note(check, check.changed, entry.path, f"{entry.path} (content differs from the manifest)")


def note(check: Check, problems: list[str], path: str, text: str) -> None:
    problems.append(text)
    check.damaged.append(path)
