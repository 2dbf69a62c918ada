"""A backup run's scan of its sources, before the plan: each folder walked (or, on a host,
listed by rsync over ssh) into Scan rows, while rsync asks whether the destination keeps
ACLs and extended attributes, which are left out when nothing has any.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jobs import hosts
from jobs.engines import rsync, snapshots
from jobs.engines.filters import Excludes
from jobs.engines.scan import DirTotals, scan, totals_from_listing
from jobs.engines.snapshots import CheckError
from jobs.scans import ScanWriter
from models import Event, Profile, Run, Scan, ScanDir
from models.backup import path_key

CANCEL_CHECK_SECONDS = 0.5
# Clocks and timestamps are coarse on some filesystems: a file changed this long before an
# earlier scan started still counts as changed since.
CTIME_SLACK_SECONDS = 2.0


def scan_sources(run: Run, root: Path, options: dict, link_from: str) -> list[DirTotals]:
    """Scan every source; meanwhile ask rsync whether the destination keeps ACLs and xattrs
    (two short rsync runs that would otherwise wait for each other and for the scan)."""
    if options["mirror"] or options.get("remote"):
        return [_scan_source(run, source, False) for source in run.profile.sources]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-probe") as pool:
        probe = pool.submit(snapshots.probe_attributes, str(root))
        roots = [_scan_source(run, source, True) for source in run.profile.sources]
        options["acls"], options["xattrs"] = probe.result()
    look_for_xattrs = options["acls"] or options["xattrs"]
    if look_for_xattrs and not any(r.xattrs for r in roots) \
            and not _linked_snapshot_kept_xattrs(run.profile, link_from):
        # Nothing has extended attributes or ACLs, so there are none to keep, and asking
        # for them costs rsync extra system calls on every file (a third of an
        # incremental run's time on a plain disk).
        options["acls"] = options["xattrs"] = False
        options["attributes_skipped"] = True
    return roots


def _linked_snapshot_kept_xattrs(profile: Profile, link_from: str) -> bool:
    """Whether the snapshot to link against was made keeping xattrs or ACLs (or nobody
    knows): its files may carry some, and only rsync with the flags compares them."""
    if not link_from:
        return False
    maker = (Run.select(Run.options).where((Run.profile == profile) & (Run.snapshot == link_from))
             .order_by(Run.id.desc()).first())
    return maker is None or bool(maker.options.get("acls") or maker.options.get("xattrs"))


def _scan_source(run: Run, source: str, find_xattrs: bool) -> DirTotals:
    profile = run.profile
    remote = hosts.remote_source(source)
    record = Scan.create(root=source, excludes=profile.excludes, run=run,
                         one_file_system=profile.one_file_system)
    verb = "Listing" if remote else "Scanning"
    writer = ScanWriter(record, source, should_stop=CancelWatch(run),
                        report_error=lambda text: run.add_message("warning", text),
                        report_progress=lambda files, size: Event.publish(
                            "run.scanning", run.subject, f"{verb} {source}: {files:,} files.",
                            run=run.id, files=files, bytes=size))
    if remote:
        root, find_xattrs = _list_remote(profile, source, writer), False
    else:
        root = scan(source, Excludes(profile.excludes), profile.one_file_system,
                    writer.callbacks(), find_xattrs=find_xattrs,
                    xattrs_none_before=no_xattrs_before(record) if find_xattrs else None)
    writer.flush()
    record.finish(root.files, root.bytes, root.dirs, writer.errors,
                  xattrs=root.xattrs if find_xattrs else None)
    Scan.replaced_by(record)
    return root


def _list_remote(profile: Profile, source: str, writer: ScanWriter) -> DirTotals:
    """A host's folder is listed by rsync over ssh, with the same excludes: the totals the
    copy will see. (No extended attributes are looked for on hosts.)"""
    host = hosts.host_for(hosts.remote_source(source)[0])
    listing = rsync.list_files(hosts.rsync_source(source), rsh=hosts.rsh(host),
                               excludes=tuple(profile.excludes),
                               one_file_system=profile.one_file_system)
    try:
        return totals_from_listing(listing, writer.callbacks())
    except rsync.ListError as error:
        raise CheckError(f"Cannot list {source}: {error}") from None


def no_xattrs_before(record: Scan) -> float | None:
    """When the last finished scan of the same selection started, if it looked for extended
    attributes and ACLs and found none: files unchanged since need not be asked again."""
    previous = (Scan.select(Scan.started_at, Scan.xattrs, Scan.excludes)
                .where((Scan.root == record.root) & (Scan.id < record.id) & (Scan.state == "done")
                       & (Scan.one_file_system == record.one_file_system))
                .order_by(Scan.id.desc()).first())
    if previous is None or previous.xattrs is not False or previous.excludes != record.excludes:
        return None
    started = previous.started_at.replace(tzinfo=dt.UTC).timestamp()
    return started - CTIME_SLACK_SECONDS


class CancelWatch:
    """Whether the run was asked to stop, read from the database at most twice a second: it
    is asked for every folder scanned and every tick of every rsync."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.next_check = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self.next_check:
            return False
        self.next_check = now + CANCEL_CHECK_SECONDS
        return self.run.cancel_wanted()


def children_reader(run: Run):
    scans = list(Scan.select().where(Scan.run == run).order_by(Scan.id))

    pushed = bool(hosts.remote_source(run.profile.destination))
    remote = [pushed or bool(hosts.remote_source(s)) for s in run.profile.sources]

    def children_of(source: int, path: str) -> list[DirTotals]:
        if remote[source]:
            return []   # one rsync over one ssh connection per folder
        rows = (ScanDir.select(ScanDir.path, ScanDir.depth, ScanDir.own_files,
                               ScanDir.own_bytes, ScanDir.files, ScanDir.bytes, ScanDir.dirs,
                               ScanDir.subdirs)
                .where((ScanDir.scan == scans[source]) & (ScanDir.parent_key == path_key(path)))
                .tuples())
        return [DirTotals(*row) for row in rows]
    return children_of
