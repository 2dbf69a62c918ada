"""Scans of this box's folders: the rows behind the folder picker, and the writer that
streams any scan (a run's too) into the database.

The web process runs unprivileged and cannot read other users' folders, so it shows only
what a scan stored. Opening a folder no scan covers, or pressing Rescan, queues
`scan_folder`: the worker walks it (engines.scan), stores a row per folder, reports its
count as it goes, and says when it is done (events with subject `scans`).

The profile form's exclude preview works the same way: `preview_excludes` walks the chosen
folders whole and counts what each pattern would leave out (events with subject `previews`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from jobs.engines.filters import Excludes
from jobs.engines.humane import natural_key
from jobs.engines.scan import (
    DirTotals,
    ExcludeCount,
    ScanCallbacks,
    ScanCancelled,
    count_excluded,
    scan,
)
from jobs.engines.snapshots import CheckError, check_source, within
from jobs.queue import huey, settings, with_db
from models import Event, ExcludePreview, Scan, ScanDir, ScanLink, db, utcnow
from models.backup import path_key
from models.base import bulk_insert
from models.setting import live

SCAN_PROGRESS_SECONDS = 1.0
SCAN_BATCH = 1000
SCAN_DIR_COLUMNS = ("scan", "path", "key", "parent_key", "depth", "files", "bytes", "own_files",
                    "own_bytes", "dirs", "subdirs", "sort_key")
ERRORS_REPORTED = 100


class Throttled:
    """Calls `report` at most once every SCAN_PROGRESS_SECONDS, the first time after that long."""

    def __init__(self, report: Callable[[int, int], None]) -> None:
        self.report = report
        self.next_at = time.monotonic() + SCAN_PROGRESS_SECONDS

    def __call__(self, files: int, size: int) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + SCAN_PROGRESS_SECONDS
        self.report(files, size)


class ScanWriter:
    """Streams a scan's folder rows and multi-link files to the database in batches."""

    def __init__(self, record: Scan, source: str, *, should_stop: Callable[[], bool],
                 report_error: Callable[[str], None],
                 report_progress: Callable[[int, int], None]) -> None:
        self.record, self.source = record, source
        self.dirs: list[tuple] = []
        self.links: list[tuple] = []
        self.errors = 0
        self.should_stop = should_stop
        self.report_error, self.on_progress = report_error, Throttled(report_progress)

    def callbacks(self) -> ScanCallbacks:
        return ScanCallbacks(on_dir=self.on_dir, on_link=self.on_link, on_error=self.on_error,
                             on_progress=self.on_progress, should_stop=self.should_stop)

    def on_dir(self, totals: DirTotals) -> None:
        try:
            totals.path.encode("utf-8")
        except UnicodeEncodeError:
            return  # not storable as text; its totals live on in its parent's
        parent = None if totals.path == "" else totals.path.rpartition("/")[0]
        self.dirs.append((self.record.id, totals.path, path_key(totals.path),
                          None if parent is None else path_key(parent), totals.depth,
                          totals.files, totals.bytes, totals.own_files, totals.own_bytes,
                          totals.dirs, totals.subdirs,
                          natural_key(totals.path.rpartition("/")[2])))
        if len(self.dirs) >= SCAN_BATCH:
            self.flush()

    def on_link(self, dev: int, ino: int, path: str) -> None:
        self.links.append((self.record.id, dev, ino, os.fsencode(path)))
        if len(self.links) >= SCAN_BATCH:
            self.flush()

    def on_error(self, path: str, error: OSError) -> None:
        self.errors += 1
        if self.errors <= ERRORS_REPORTED:
            shown = os.path.join(self.source, path).encode("utf-8", "backslashreplace").decode()
            self.report_error(f"Cannot read {shown}: {error.strerror}")

    def flush(self) -> None:
        with db.atomic():
            bulk_insert(ScanDir, SCAN_DIR_COLUMNS, self.dirs)
            bulk_insert(ScanLink, ("scan", "dev", "ino", "path"), self.links)
        self.dirs, self.links = [], []


def request_scan(path: str) -> Scan:
    """Queue a scan of `path` for the picker, unless one is queued or running already."""
    pending = Scan.in_progress(path)
    if pending is not None:
        return pending
    record = Scan.create(root=path, state="queued")
    scan_folder(record.id)
    return record


@huey.task()
@with_db
def scan_folder(scan_id: int) -> None:
    record = Scan.get_or_none(Scan.id == scan_id)
    if record is None or not record.move(("queued",), "running"):
        return
    try:
        _check(record.root)
        root = _walk(record)
    except (CheckError, ScanCancelled, OSError) as problem:
        message = str(problem) if isinstance(problem, CheckError) else \
            f"Cannot scan {record.root}: {getattr(problem, 'strerror', None) or problem}"
        record.fail(message)
        Event.publish("scan.failed", "scans", message, level="warning", key=path_key(record.root))
    else:
        Scan.replaced_by(record)
        Event.publish("scan.finished", "scans", f"Scanned {record.root}: {root.files:,} files, "
                      f"{root.dirs:,} folders.", key=path_key(record.root))
    # Progress is news only while it lasts (another scan's next report is sent anew).
    Event.drop_progress("scans")


def _check(path: str) -> None:
    """Only folders under the roots the worker allows, reached without symbolic links."""
    if not any(within(path, allowed) for allowed in live(settings()).source_roots):
        raise CheckError(f"{path} is outside the folders Cairn may back up.")
    check_source(path)


def _walk(record: Scan) -> DirTotals:
    def progress(files: int, size: int) -> None:
        Scan.update(files=files, bytes=size).where(Scan.id == record.id).execute()
        Event.publish("scan.progress", "scans", f"Scanning {record.root}: {files:,} files.",
                      key=path_key(record.root), files=files)

    writer = ScanWriter(record, record.root, should_stop=lambda: False,
                        report_error=lambda text: None, report_progress=progress)
    root = scan(record.root, Excludes([]), False, writer.callbacks())
    writer.flush()
    record.finish(root.files, root.bytes, root.dirs, writer.errors)
    return root


def request_preview(sources: list[str], excludes: list[str],
                    one_file_system: bool) -> ExcludePreview:
    """Queue a count of what `excludes` leave out of `sources`, unless the same count is
    under way or just done."""
    preview, new = ExcludePreview.request(sources, excludes, one_file_system)
    if new:
        preview_excludes(preview.id)
        preview = ExcludePreview.get_by_id(preview.id)   # counted already when Huey is immediate
    return preview


@huey.task()
@with_db
def preview_excludes(preview_id: int) -> None:
    preview = ExcludePreview.get_or_none(ExcludePreview.id == preview_id)
    if preview is None or not preview.move(("queued",), "running"):
        return
    count = ExcludeCount()

    def progress(files: int, size: int) -> None:
        ExcludePreview.update(files=files, bytes=size).where(
            ExcludePreview.id == preview_id).execute()
        Event.publish("preview.progress", "previews", f"Counting: {files:,} files so far.",
                      preview=preview_id)

    callbacks = ScanCallbacks(on_progress=Throttled(progress))
    try:
        excludes = Excludes(preview.excludes)
        for source in preview.sources:
            _check(source)
            count_excluded(source, excludes, preview.one_file_system, callbacks, count)
    except (CheckError, ScanCancelled, OSError) as problem:
        message = str(problem) if isinstance(problem, CheckError) else \
            f"Cannot count {getattr(problem, 'filename', None) or 'the folders'}: " \
            f"{getattr(problem, 'strerror', None) or problem}"
        preview.move(("running",), "failed", message=message, finished_at=utcnow())
        Event.publish("preview.failed", "previews", message, level="warning", preview=preview_id)
    else:
        preview.move(("running",), "done", files=count.files, bytes=count.bytes,
                     by_pattern=count.by_pattern, finished_at=utcnow())
        Event.publish("preview.finished", "previews", f"Counted {count.files:,} files; the "
                      f"patterns leave out {preview.excluded_files:,}.", preview=preview_id)
    Event.drop_progress("previews")
