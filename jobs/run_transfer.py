"""The rsync of one part of a backup run: its source opened without following links (and
still the folder it was when the copy ends), where in the snapshot it writes, what it links
against, and its share of the run's bandwidth limit.
"""

from __future__ import annotations

import contextlib
import os

from jobs import hosts
from jobs.destinations import root_of
from jobs.engines import confine, rsync, snapshots
from models import Run, Unit


@contextlib.contextmanager
def opened_source(source: str):
    """A folder of this box opened without following a link anywhere on its path, at the
    moment its rsync starts (the checks before the run may be minutes old): rsync reads it
    through the descriptor. None for a host's folder."""
    if hosts.remote_source(source):
        yield None
        return
    fd = confine.open_folder(source)
    try:
        yield fd
    finally:
        os.close(fd)


def still_there(source: str, fd: int) -> bool:
    """Whether `source` is still the folder that `fd` opened (rsync read through the fd, so
    a folder deleted meanwhile only looks like one whose files vanished)."""
    try:
        now = confine.open_folder(source)
    except confine.Refused:
        return False
    try:
        before, after = os.fstat(fd), os.fstat(now)
    finally:
        os.close(now)
    return (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino) and before.st_nlink > 0


def transfer(run: Run, unit: Unit, source_fd: int | None = None) -> rsync.Transfer:
    profile = run.profile
    remote = hosts.remote_source(unit.source)
    if remote:
        host = hosts.host_for(remote[0])
        inside = snapshots.in_snapshot(remote[1], host=remote[0].host)
        source, rsh = hosts.rsync_source(unit.source), hosts.rsh(host)
    else:
        inside = snapshots.in_snapshot(unit.source)
        source, rsh = unit.source, None
    fds, aliases = (), ()
    if source_fd is not None:
        fds, aliases = (source_fd,), ((f"/proc/self/fd/{source_fd}", unit.source.rstrip("/")),)
        source = f"/proc/self/fd/{source_fd}"
    mirror = bool(run.options.get("mirror"))
    if mirror:
        base = snapshots.MIRROR
    elif run.dry_run:
        # Compare against the last snapshot itself (or nothing): rsync -n writes nothing.
        base = run.link_from or ".cairn-no-snapshot-yet"
    else:
        base = run.snapshot + snapshots.PARTIAL_SUFFIX
    link_from = run.link_from if run.link_from and not run.dry_run and not mirror else None
    there = root_of(profile)
    if not run.dry_run:
        there.make_dir(base, inside)
    dest = there.spec(base, inside)
    link_dest = there.path(link_from, inside) if link_from else None
    pushed = there.remote
    if pushed:   # the snapshot is on a host (the source is then on this box)
        rsh = hosts.rsh(hosts.host_for(there.target))
    bwlimit = bandwidth_share(run, profile.bwlimit_kib)
    # The manifest takes the hashes of copied files from rsync: for snapshots on this box,
    # of folders on this box (a host's rsync may not offer xxh128).
    checksums = not (remote or pushed or mirror or run.dry_run) and rsync.reports_checksums()
    return rsync.Transfer(source=source, rsh=rsh, dest=dest, link_dest=link_dest,
                          rules=tuple(unit.rules), excludes=tuple(profile.excludes),
                          one_file_system=profile.one_file_system, bwlimit_kib=bwlimit,
                          dry_run=run.dry_run, checksums=checksums, fds=fds, aliases=aliases,
                          **run_flags(run))


def bandwidth_share(run: Run, limit_kib: int | None) -> int | None:
    """This part's share of the run's bandwidth limit, fixed when its rsync starts (rsync
    cannot change its limit while it runs): the limit over the parts that can run at once
    from now on, at most the run's ceiling and at most the parts not yet done. A part that
    runs alone gets all of it; the parts running together never get more than all of it
    (those left only ever shrink). A part that started as one of four keeps its quarter
    when the others end before it."""
    if not limit_kib:
        return None
    left = Unit.select().where((Unit.run == run)
                               & Unit.state.in_(("pending", "queued", "running"))).count()
    together = max(min(max(1, run.concurrency), left), Unit.busy(run), 1)
    return max(1, limit_kib // together)


def run_flags(run: Run) -> dict[str, bool]:
    """The rsync flags decided for the whole run when it was prepared."""
    return {name: bool(run.options.get(name)) for name in ("mirror", "acls", "xattrs", "super_user")}
