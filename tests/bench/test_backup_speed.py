"""Cairn's snapshots against plain rsync and Debian's rsnapshot, on the same data, in one run.

`make bench` (not part of `make test`). Builds a seeded tree (about 100,000 files and 2 GB,
one dominant folder) in BENCH_DIR (default /var/tmp/cairn-bench, kept between runs), then
times a full and an unchanged incremental snapshot with each tool and prints the ratios,
Cairn's own CPU (the worker process, rsync excluded) against rsync's, and the worker's peak
memory at two tree sizes. BENCH_FILES scales the tree (default 100000); BENCH_ROUNDS (default
3) repeats each measurement, the tools taking turns, and keeps each tool's best.

Every timing starts after `sync` (no writeback of an earlier run left to pay for) and ends
after `sync` (the snapshot is on disk), and the source is in the page cache for all tools.
Point BENCH_DIR at a tmpfs to compare the tools without the disk.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from jobs import backup
from jobs.engines import scan
from models import Run, Scan, Unit, db
from tests.jobs.conftest import Worker, empty_shared_store, make_profile, wait_for_run

# Not CAIRN_*: the test suite's conftest clears those.
BENCH_DIR = Path(os.environ.get("BENCH_DIR", "/var/tmp/cairn-bench"))
FILES = int(os.environ.get("BENCH_FILES", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SEED = 20261122
BLOCK = random.Random(SEED).randbytes(64 * 1024 * 1024)


def build_tree(root: Path, files: int) -> tuple[int, int]:
    """One dominant Videos folder (60% of the bytes), photos, many small documents, tiny code
    files. Deterministic for a seed and size; reused when already built."""
    marker = root / ".cairn-bench-tree"
    if marker.exists() and json.loads(marker.read_text())["files"] == files:
        info = json.loads(marker.read_text())
        return info["files"], info["bytes"]
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(SEED)
    scale = files / 100_000
    plan = [("Videos", max(4, int(40 * scale)), 1, lambda: 30_000_000),
            ("Photos", max(4, int(20 * scale)), 500, lambda: rng.randint(20_000, 60_000)),
            ("Documents", max(4, int(600 * scale)), 100, lambda: rng.randint(1_000, 8_000))]
    rest = files - sum(folders * per for _, folders, per, _ in plan)
    plan.append(("Code", max(1, rest // 10), 10, lambda: rng.randint(100, 2_000)))
    count = size = 0
    for top, folders, per_folder, sizes in plan:
        for i in range(folders):
            folder = root / top / f"{top.lower()}-{i:04d}"
            folder.mkdir(parents=True)
            for j in range(per_folder):
                length = sizes()
                start = rng.randrange(0, len(BLOCK) - min(length, len(BLOCK)))
                with open(folder / f"file-{j:05d}.bin", "wb") as fh:
                    remaining = length
                    while remaining:
                        chunk = BLOCK[start:start + min(remaining, len(BLOCK) - start)]
                        fh.write(chunk)
                        remaining -= len(chunk)
                        start = 0
                count += 1
                size += length
    marker.write_text(json.dumps({"files": count, "bytes": size}))
    return count, size


def timed(args: list[str]) -> float:
    os.sync()
    started = time.monotonic()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    os.sync()
    return time.monotonic() - started


def in_turn(measurements, turn: int) -> None:
    """Every measurement once, the `turn`-th going first."""
    for index in range(len(measurements)):
        measurements[(turn + index) % len(measurements)]()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class CairnRun:
    seconds: float
    own_cpu: float
    rsync_cpu: float
    peak_rss: int
    run: Run

    phases: str = ""


def _phases(run: Run) -> str:
    """Where a run's time went: scan (before any copy), copy (first part started to last
    part done), finish (hardlinks, folder times, rename, manifest). Read at once: the next
    run's scan replaces this one's."""
    run = Run.get_by_id(run.id)
    scanned = max(s.finished_at for s in Scan.select().where(Scan.run == run))
    units = list(Unit.select().where(Unit.run == run))
    first = min(u.started_at for u in units)
    last = max(u.finished_at for u in units)
    manifest = next((m for m in run.messages("info") if m.startswith("Manifest:")), "")
    return (f"scan {(scanned - run.started_at).total_seconds():.2f} s, copy "
            f"{(last - first).total_seconds():.2f} s, finish "
            f"{(run.finished_at - last).total_seconds():.2f} s\n               {manifest}")


def cairn_snapshot(tmp_path: Path, profile) -> CairnRun:
    """One run on a fresh worker process, so its peak memory is this run's."""
    worker = Worker(tmp_path, {"CAIRN_WORKERS": "4"}, []).start()
    try:
        process = psutil.Process(worker.process.pid)
        os.sync()
        before = process.cpu_times()
        started = time.monotonic()
        run = wait_for_run(backup.request_run(profile), timeout=3600)
        os.sync()
        seconds = time.monotonic() - started
        after = process.cpu_times()
        peak = _peak_rss(worker.process.pid)
    finally:
        worker.stop()
    assert run.state == "succeeded", run.message
    own = (after.user - before.user) + (after.system - before.system)
    children = (after.children_user - before.children_user) \
        + (after.children_system - before.children_system)
    return CairnRun(seconds, own, children, peak, run, _phases(run))


def _scan_cpu(source: Path) -> float:
    """CPU seconds of one scan of `source` in this process, as a run scans it."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    scan.scan(str(source), find_xattrs=True, xattrs_none_before=time.time())
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def rsnapshot_config(path: Path, source: Path, root: Path) -> Path:
    lines = [("config_version", "1.2"), ("snapshot_root", f"{root}/"), ("no_create_root", "0"),
             ("cmd_rsync", "/usr/bin/rsync"), ("link_dest", "1"), ("retain", "alpha\t5"),
             ("lockfile", f"{root.parent}/rsnapshot.pid"), ("backup", f"{source}/\tlocalhost/")]
    path.write_text("".join(f"{key}\t{value}\n" for key, value in lines))
    return path


@pytest.fixture
def bench_db():
    empty_shared_store()
    with db.connection_context():
        yield


def test_snapshot_speed_against_rsync_and_rsnapshot(tmp_path, bench_db):
    source = BENCH_DIR / "tree"
    out = BENCH_DIR / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files, size = build_tree(source, FILES)
    print(f"\nTree: {files:,} files, {size / 1e9:.2f} GB in {source}")
    def clear(*paths):
        for path in paths:
            shutil.rmtree(out / path, ignore_errors=True)

    rsync_a = ["rsync", "-a", f"{source}/"]
    conf = rsnapshot_config(out / "rsnapshot.conf", source, out / "rsnapshot")
    rsnapshot = ["rsnapshot", "-c", str(conf), "alpha"]
    (out / "cairn").mkdir()
    profile = make_profile(name="Bench", sources=[source], dest=out / "cairn")
    rsync_full, rsnap_full, fulls = [], [], []
    rsync_link, rsnap_incr, incrementals = [], [], []
    try:
        # Rounds take the tools in turn, each round starting with another tool, so that a
        # machine getting slower or faster during the benchmark (a virtual machine's disk,
        # say) weighs on all of them alike.
        def rsync_full_once():
            rsync_full.append(timed([*rsync_a, f"{out}/rsync-full/"]))
            clear("rsync-full")

        def rsnap_full_once():
            rsnap_full.append(timed(rsnapshot))
            clear("rsnapshot")

        def cairn_full_once():
            fulls.append(cairn_snapshot(tmp_path, profile))
            clear("cairn/bench")

        for turn in range(ROUNDS):
            in_turn([rsync_full_once, rsnap_full_once, cairn_full_once], turn)

        timed([*rsync_a, f"{out}/rsync-full/"])
        rsync_again = timed([*rsync_a, f"{out}/rsync-full/"])
        timed(rsnapshot)
        cairn_snapshot(tmp_path, profile)
        def rsync_link_once():
            rsync_link.append(timed([*rsync_a, f"--link-dest={out}/rsync-full",
                                     f"{out}/rsync-link/"]))
            clear("rsync-link")

        def rsnap_incr_once():
            rsnap_incr.append(timed(rsnapshot))
            clear("rsnapshot/alpha.2")

        def cairn_incr_once():
            incrementals.append(cairn_snapshot(tmp_path, profile))
            shutil.rmtree(sorted((out / "cairn" / "bench").glob("2*"))[-1])

        for turn in range(ROUNDS):
            in_turn([rsync_link_once, rsnap_incr_once, cairn_incr_once], turn)
        print("\nEvery round, in seconds (the tables below use each tool's best):")
        for name, times in (("rsync -a", rsync_full), ("rsnapshot full", rsnap_full),
                            ("Cairn full", [r.seconds for r in fulls]),
                            ("rsync --link-dest", rsync_link), ("rsnapshot incremental", rsnap_incr),
                            ("Cairn incremental", [r.seconds for r in incrementals])):
            print(f"  {name:<24}" + "".join(f"{t:8.2f}" for t in times))
        print("\nMedian of the rounds, Cairn against rsync:")
        print(f"  full {median([r.seconds for r in fulls]) / median(rsync_full):5.2f}x"
              f"   incremental {median([r.seconds for r in incrementals]) / median(rsync_link):5.2f}x")
        full = min(fulls, key=lambda r: r.seconds)
        incremental = min(incrementals, key=lambda r: r.seconds)
        rsync_full, rsnap_full = min(rsync_full), min(rsnap_full)
        rsync_link, rsnap_incr = min(rsync_link), min(rsnap_incr)
        units = full.run.units_query().count()
        clear("rsync-full", "rsnapshot", "cairn")

        small_source = BENCH_DIR / "tree-small"
        small_files, small_size = build_tree(small_source, max(1000, FILES // 4))
        (out / "cairn-small").mkdir()
        small = cairn_snapshot(tmp_path, make_profile(name="Small", sources=[small_source],
                                                      dest=out / "cairn-small"))
    finally:
        shutil.rmtree(out, ignore_errors=True)

    def row(name, seconds, reference):
        return f"  {name:<38} {seconds:8.2f} s   {seconds / reference:5.2f}x"

    print("\nFull snapshot (fresh destination):")
    print(row("rsync -a", rsync_full, rsync_full))
    print(row("rsnapshot (link_dest 1)", rsnap_full, rsync_full))
    print(row(f"Cairn ({units} units, 4 worker threads)", full.seconds, rsync_full)
          + "   target <= 0.90x")
    print("\nUnchanged incremental snapshot:")
    print(row("rsync -a --link-dest (new tree)", rsync_link, rsync_link))
    print(row("rsync -a (same tree again)", rsync_again, rsync_link))
    print(row("rsnapshot (rotate + link-dest)", rsnap_incr, rsync_link))
    print(row("Cairn", incremental.seconds, rsync_link) + "   target <= 1.00x")
    print("\nWhere Cairn's time went (best runs):")
    print(f"  full         {full.phases}")
    print(f"  incremental  {incremental.phases}")
    print("\nCairn's own CPU (worker process, rsync excluded) against rsync's:")
    for name, result in (("full", full), ("incremental", incremental)):
        share = result.own_cpu / result.rsync_cpu if result.rsync_cpu else float("inf")
        print(f"  {name:<12} own {result.own_cpu:6.2f} s, rsync {result.rsync_cpu:6.2f} s "
              f"= {share:6.1%}   target <= 5%")
    scan_cpu = min(_scan_cpu(source) for _ in range(3))
    print(f"  of which the scan alone (an lstat of every file, measured by itself): "
          f"{scan_cpu:.2f} s = {scan_cpu / incremental.rsync_cpu:.1%} of the incremental's rsync")
    print("\nWorker peak memory (VmHWM, whole process):")
    print(f"  {small_files:>8,} files, {small_size / 1e9:.2f} GB: {small.peak_rss / 2**20:6.1f} MiB")
    print(f"  {files:>8,} files, {size / 1e9:.2f} GB: {full.peak_rss / 2**20:6.1f} MiB"
          f" (incremental {incremental.peak_rss / 2**20:.1f} MiB)   target < 200 MiB, flat")
