"""What finishing a backup run does to its snapshot before it is renamed complete: the
hardlinks split between parts made links again, the times of folders parts shared set back,
the figures summed, and the manifest written (a failure there is a warning: the snapshot is
whole).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from jobs import catalog, hosts, run_logs
from jobs.engines import manifest, snapshots
from jobs.engines.humane import format_bytes, format_count
from models import Run, Scan, ScanLink, Unit

log = logging.getLogger(__name__)


def index_snapshot(run: Run) -> int:
    """Write the new snapshot's manifest; a failure is a warning: the snapshot is complete."""
    snapshot = catalog.record(run)
    try:
        summary = catalog.index(snapshot, run.link_from, fresh=run_logs.copied_hashes(run))
    except (OSError, manifest.ManifestError) as error:
        log.warning("indexing snapshot %s of run %s failed", run.snapshot, run.id, exc_info=True)
        catalog.index_failed(snapshot, str(error))
        run.add_message("warning", f"Could not write the snapshot's manifest: {error}")
        return 1
    run.add_message("info", f"Manifest: {summary.files:,} files, {summary.new_files:,} new "
                    f"({summary.rsync_hashed:,} hashed by rsync while copying, "
                    f"{format_bytes(summary.hashed_bytes)} read) in {summary.seconds:.1f} s.")
    for problem in summary.unreadable:
        run.add_message("warning", f"Could not read for the manifest: {problem}")
    return len(summary.unreadable)


def tree_of(run: Run) -> Path:
    root = run.profile.root()
    if run.options.get("mirror"):
        return root / snapshots.MIRROR
    return root / (run.snapshot + snapshots.PARTIAL_SUFFIX)


def restore_hardlinks(run: Run, tree: Path) -> int:
    if run.options.get("mirror") or Unit.select().where(Unit.run == run).count() < 2:
        return 0
    scans = {s.id: s.root for s in Scan.select().where(Scan.run == run)}
    rows = (ScanLink.select(ScanLink.scan, ScanLink.dev, ScanLink.ino, ScanLink.path)
            .where(ScanLink.scan.in_(list(scans))).order_by(ScanLink.dev, ScanLink.ino).tuples())

    def groups():
        current, group = None, []
        for scan_id, dev, ino, path in rows.iterator():
            if (dev, ino) != current and group:
                yield group
                group = []
            current = (dev, ino)
            inside = snapshots.in_snapshot(scans[scan_id])
            group.append(os.path.join(inside, os.fsdecode(bytes(path))))
        if group:
            yield group

    relinked, warnings = snapshots.relink(tree, groups())
    for warning in warnings:
        run.add_message("warning", warning)
    if relinked:
        run.add_message("info", f"Restored {format_count(relinked, 'hardlink')} between parts.")
    return len(warnings)


def fix_folder_times(run: Run, tree: Path) -> int:
    """Units write into folders they share; give those folders their source times back."""
    warnings = 0
    for index, source in enumerate(run.profile.sources):
        if hosts.remote_source(source):
            continue   # one unit: rsync set its folders' times itself
        # The source's own folder too: every unit writes into it.
        split = ["", *run.options.get("split", {}).get(str(index), [])]
        problems = snapshots.copy_folder_times(source, str(tree / snapshots.in_snapshot(source)),
                                               split)
        if problems:
            warnings += 1
            run.add_message("warning", f"Could not set the times of split folders in {source}: "
                            + "; ".join(problems[:3]))
    return warnings


def summed_stats(run: Run) -> dict[str, int]:
    stats: dict[str, int] = {}
    for unit in Unit.select(Unit.stats).where(Unit.run == run):
        for key, value in (unit.stats or {}).items():
            stats[key] = stats.get(key, 0) + int(value)
    return stats


def dry_run_summary(totals: dict[str, int]) -> str:
    return (f"Dry run: {totals['new_files']:,} new and {totals['changed_files']:,} changed files "
            f"({format_bytes(totals['sent_bytes'])}) of {totals['files']:,} would be copied.")
