"""Walk a source folder and total its files and bytes per folder, as rsync will see them.

One `os.scandir` pass, no symlinks followed, user excludes applied with rsync's rules, and
optionally no crossing into other filesystems (rsync -x). The walk keeps only the folders on
the current path in memory; every folder's totals go to `on_dir` as soon as they are final
(children before parents), so a caller can stream them to the database.

Files with more than one link are reported to `on_link`: units are separate rsync processes,
and the backup restores hardlinks between units afterwards from this list.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from jobs.engines.filters import Excludes

PROGRESS_EVERY = 2000


class ScanCancelled(Exception):
    pass


@dataclass
class DirTotals:
    path: str            # relative to the source folder; "" for the folder itself
    depth: int
    own_files: int = 0   # entries that are not folders, directly inside
    own_bytes: int = 0
    files: int = 0       # ... and in every folder below
    bytes: int = 0
    dirs: int = 0        # folders below, at any depth
    subdirs: int = 0     # folders directly inside


@dataclass
class _Frame:
    totals: DirTotals
    absolute: str
    pending: list[str] = field(default_factory=list)


@dataclass
class ScanCallbacks:
    on_dir: Callable[[DirTotals], None] = lambda totals: None
    on_link: Callable[[int, int, str], None] = lambda dev, ino, path: None
    on_error: Callable[[str, OSError], None] = lambda path, error: None
    on_progress: Callable[[int, int], None] = lambda files, size: None
    should_stop: Callable[[], bool] = lambda: False


def scan(root: str, excludes: Excludes | None = None, one_file_system: bool = False,
         callbacks: ScanCallbacks | None = None) -> DirTotals:
    """Total `root` (an absolute folder path); return the root's totals."""
    cb = callbacks or ScanCallbacks()
    excludes = excludes or Excludes([])
    root_dev = os.stat(root, follow_symlinks=False).st_dev
    walker = _Walker(excludes, one_file_system, root_dev, cb)
    stack = [walker.open("", root, 0)]
    while stack:
        top = stack[-1]
        if top.pending:
            name = top.pending.pop()
            rel = f"{top.totals.path}/{name}" if top.totals.path else name
            stack.append(walker.open(rel, os.path.join(top.absolute, name), top.totals.depth + 1))
            continue
        stack.pop()
        done = top.totals
        done.files += done.own_files
        done.bytes += done.own_bytes
        cb.on_dir(done)
        if stack:
            parent = stack[-1].totals
            parent.files += done.files
            parent.bytes += done.bytes
            parent.dirs += done.dirs + 1
    return done


class _Walker:
    def __init__(self, excludes: Excludes, one_file_system: bool, root_dev: int,
                 cb: ScanCallbacks) -> None:
        self.excludes = excludes
        self.one_file_system = one_file_system
        self.root_dev = root_dev
        self.cb = cb
        self.seen_files = 0
        self.seen_bytes = 0
        self.next_report = PROGRESS_EVERY

    def open(self, rel: str, absolute: str, depth: int) -> _Frame:
        frame = _Frame(DirTotals(rel, depth), absolute)
        if self.cb.should_stop():
            raise ScanCancelled()
        try:
            # Read the folder whole and close it: a deep tree must not hold one open
            # descriptor per level.
            with os.scandir(absolute) as entries:
                for entry in entries:
                    self._entry(frame, rel, entry)
        except FileNotFoundError:
            pass  # vanished since its parent was read; rsync will say so too
        except OSError as error:
            self.cb.on_error(rel, error)
        if self.seen_files >= self.next_report:
            self.next_report = self.seen_files + PROGRESS_EVERY
            self.cb.on_progress(self.seen_files, self.seen_bytes)
        return frame

    def _entry(self, frame: _Frame, rel: str, entry: os.DirEntry) -> None:
        path = f"{rel}/{entry.name}" if rel else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as error:
            self.cb.on_error(path, error)
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        if self.excludes and self.excludes.excluded(path, is_dir):
            return
        if is_dir:
            frame.totals.subdirs += 1
            if self.one_file_system and st.st_dev != self.root_dev:
                # rsync -x copies the mount point as an empty folder.
                frame.totals.dirs += 1
                return
            frame.pending.append(entry.name)
            return
        frame.totals.own_files += 1
        frame.totals.own_bytes += st.st_size
        self.seen_files += 1
        self.seen_bytes += st.st_size
        if st.st_nlink > 1:
            self.cb.on_link(st.st_dev, st.st_ino, path)
