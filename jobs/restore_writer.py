"""How a restore writes, so that nothing lands where it should not, even when the operator
is also a local user who plants links.

On this box every folder on the way to the target is opened without following links
(jobs/engines/confine.py); rsync reads each item through a descriptor of its folder in the
snapshot and writes into a staging folder the worker just made inside the target (mode
0700, a random name, nobody else can write there), entered by descriptor. The staged
files are then moved into place by rename, folder by folder, never through a link: a
folder swapped for a link during the restore is named and left alone. Before the restore
is reported done, the target's filesystem is flushed (syncfs), so done means on disk.

On a host, rsync writes over ssh as the host's user; that user's rights bound it there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator

from jobs import hosts
from jobs.engines import confine, manifest, rsync, ssh
from jobs.engines import restore as engine
from models import Event, Host, Restore

PROGRESS_SECONDS = 0.5
STAGING_PREFIX = ".cairn-restore-"


class CannotRestore(Exception):
    """A restore that cannot start; the message says why."""


class Watch:
    """A restore's progress, saved twice a second, and whether someone cancelled it."""

    def __init__(self, restore: Restore) -> None:
        self.restore = restore
        self.next_save = 0.0
        self.base = (0, 0)

    def should_stop(self) -> bool:
        return self.restore.cancel_wanted()

    def progress(self, counts: rsync.Counts) -> None:
        now = time.monotonic()
        if now < self.next_save:
            return
        self.next_save = now + PROGRESS_SECONDS
        files, size = self.base[0] + counts.files, self.base[1] + counts.done_bytes
        Restore.update(files_done=files, bytes_done=size).where(
            Restore.id == self.restore.id).execute()
        Event.publish("restore.progress", self.restore.subject, f"{files:,} files",
                      restore=self.restore.id)


@contextlib.contextmanager
def sources(tree: str, paths: tuple[str, ...]) -> Iterator[tuple[list[str], tuple[int, ...]]]:
    """rsync's source arguments for `paths` inside the snapshot `tree`, each through a
    descriptor of its folder opened without following links (`/proc/self/fd/N/name`): a
    link inside a snapshot never leads a restore out of it. Also the descriptors to pass."""
    opened: dict[str, int] = {}
    try:
        names = []
        for path in paths:
            parent, _, name = path.rpartition("/")
            if parent not in opened:
                opened[parent] = _open_in_snapshot(tree, parent, path)
            names.append(f"/proc/self/fd/{opened[parent]}/{name}")
        yield names, tuple(opened.values())
    finally:
        for fd in opened.values():
            os.close(fd)


def _open_in_snapshot(tree: str, parent: str, path: str) -> int:
    try:
        if not parent:
            return os.open(tree, confine.FOLDER)
        return manifest.open_inside(tree, parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise CannotRestore(f"{engine.shown(path)}: the snapshot holds no folder on the way to "
                            f"it ({error.strerror}); a link there is never followed.") from None


class Writer:
    """Previews and copies for one restore, group by group."""

    def __init__(self, restore: Restore, tree, host: Host | None, flags: dict[str, bool]) -> None:
        self.restore, self.tree, self.host, self.flags = restore, str(tree), host, flags
        self.watch = Watch(restore)
        self.rsh = _rsh(host) if host is not None else None

    def preview(self, group: engine.Group, back: bool) -> rsync.Result:
        """rsync's dry run against the target as it is (for a new folder, nothing there)."""
        with sources(self.tree, group.paths) as (names, fds):
            if self.host is not None:
                return rsync.run(self._transfer(names, fds, self._remote(group.dest), back,
                                                dry_run=True), should_stop=self.watch.should_stop)
            if self.restore.fresh:   # nothing is there: a dry run into an empty folder
                with tempfile.TemporaryDirectory(prefix="cairn-preview-") as empty:
                    return rsync.run(self._transfer(names, fds, empty, back, dry_run=True),
                                     should_stop=self.watch.should_stop)
            fd, rest = confine.open_existing(group.dest)
            try:
                return rsync.run(self._transfer(names, (*fds, fd), rest or ".", back,
                                                dry_run=True, cwd_fd=fd),
                                 should_stop=self.watch.should_stop)
            finally:
                os.close(fd)

    def copy(self, group: engine.Group, back: bool) -> tuple[rsync.Result, str, list[str]]:
        """Copy a group; rsync's result, the folder it went to, and problems found placing it."""
        with sources(self.tree, group.paths) as (names, fds):
            if self.host is not None:
                result = rsync.run(self._transfer(names, fds, self._remote(group.dest), back),
                                   on_progress=self.watch.progress,
                                   should_stop=self.watch.should_stop)
                return result, group.dest, []
            return self._copy_here(group, back, names, fds)

    def _copy_here(self, group, back, names, fds) -> tuple[rsync.Result, str, list[str]]:
        dest, target, parent = self._target(group.dest)
        try:
            owner = os.fstat(target) if parent is None else parent
            staging, staged = confine.fresh_folder(target, STAGING_PREFIX)
            try:
                # Both by descriptor, never by path: rsync resolves a relative or named
                # folder again later, and a folder above swapped in between would fail it.
                result = rsync.run(
                    self._transfer(names, (*fds, staged, target), f"/proc/self/fd/{staged}",
                                   back, cwd_fd=staged, compare_dest=f"/proc/self/fd/{target}",
                                   owner=(owner.st_uid, owner.st_gid)),
                    on_progress=self.watch.progress, should_stop=self.watch.should_stop)
                merged = confine.merge(staged, target, self.restore.overwrite)
            finally:
                os.close(staged)
                confine.remove_tree(target, staging)
            if parent is not None:   # the new folder: its place's owner and modes, now
                confine.like(target, parent)
            confine.syncfs(target)
        finally:
            os.close(target)
        return result, dest, merged.problems

    def _target(self, dest: str) -> tuple[str, int, os.stat_result | None]:
        """The folder to write into, opened: `dest` itself (made if missing), or for a fresh
        restore a new folder named after it; with the stat of the folder it was made in."""
        if not self.restore.fresh:
            return dest, confine.open_folder(dest, create=True), None
        where, prefix = os.path.split(dest)
        parent_fd = confine.open_folder(where, create=True)
        try:
            name, fd = confine.fresh_folder(parent_fd, prefix + "-")
            parent = os.fstat(parent_fd)
        finally:
            os.close(parent_fd)
        made = os.path.join(where, name)
        Restore.update(target=made).where(Restore.id == self.restore.id).execute()
        return made, fd, parent

    def _transfer(self, names, fds, dest, back, **more) -> engine.Transfer:
        owner = more.pop("owner", None)
        # rsync's messages name the snapshot, not the descriptors it was given.
        aliases = tuple((prefix, f"{self.tree}/…")
                        for prefix in sorted({n.rsplit("/", 1)[0] for n in names}))
        return engine.Transfer(tuple(names), dest, fds=fds, aliases=aliases,
                               overwrite=self.restore.overwrite,
                               as_before=back, owner=None if back else owner, rsh=self.rsh,
                               acls=self.flags["acls"] and back, xattrs=self.flags["xattrs"] and back,
                               super_user=self.flags["super_user"], **more)

    def _remote(self, folder: str) -> str:
        return ssh.remote_spec(hosts.target_of(self.host), folder)


def _rsh(host: Host) -> str:
    if host.blocked or not host.pinned:
        raise CannotRestore(f"{host.target} cannot be used until its host key is pinned "
                            "(see Hosts).")
    return hosts.rsh(host)
