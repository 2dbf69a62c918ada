"""A backup run's logs: each unit's rsync log and the hashes rsync gave of what it copied,
while the run goes; joined into one gzip file per run when it ends.

`<logs dir>/run-<id>/unit-<seq>.log.gz` and `.sums` while it runs, `<logs dir>/run-<id>.log.gz`
after.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from jobs.engines import rsync, snapshots
from jobs.queue import settings
from models import Run, Unit


def run_log(run_id: int, logs_dir: Path | None = None) -> Path:
    """Where a finished run's log is; the web passes its own settings' folder."""
    return (logs_dir or settings().logs_dir) / f"run-{run_id}.log.gz"


def unit_log(run: Run, unit: Unit) -> Path:
    folder = settings().logs_dir / f"run-{run.id}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"unit-{unit.seq}.log.gz"


def unit_sums(run: Run, unit: Unit) -> Path:
    """The hashes rsync gave of the files a unit copied, until the manifest is written."""
    return unit_log(run, unit).with_name(f"unit-{unit.seq}.sums")


def copied_hashes(run: Run):
    """(path in the snapshot, size, hash) of every file the run's units copied, as rsync
    computed them, unit by unit and in the order copied."""
    for unit in Unit.select(Unit.seq, Unit.source).where(Unit.run == run).order_by(Unit.seq):
        path = unit_sums(run, unit)
        if not path.exists():
            continue
        inside = os.fsencode(snapshots.in_snapshot(unit.source)) + b"/"
        for name, size, digest in rsync.read_sums(path):
            yield inside + name, size, digest


def collect_logs(run: Run) -> None:
    """Join the units' logs into one file: gzip members may simply follow each other."""
    folder = settings().logs_dir / f"run-{run.id}"
    if not folder.is_dir():
        return
    with open(run_log(run.id), "ab") as out:
        for part in sorted(folder.glob("unit-*.log.gz"), key=lambda p: int(p.stem.split("-")[1][:-4])):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out)
    shutil.rmtree(folder)


def read_log(run_id: int) -> list[str]:
    path = run_log(run_id)
    if not path.exists():
        return []
    with gzip.open(path, "rt", encoding="utf-8", errors="backslashreplace") as fh:
        return fh.read().splitlines()
