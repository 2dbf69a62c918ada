"""What a snapshot's manifest costs, against the rsync that made the snapshot; and how fast
verification reads, against `cat` on the same files. On the benchmark tree of
test_backup_speed.py (BENCH_DIR, about 100,000 files and 2 GB).

Targets (issue 6): the manifest of an unchanged 100k-file snapshot costs under 10% of that
snapshot's rsync time (its hashes come from the previous manifest: only new data is read);
verification reads at 80% or more of cat's rate (hashing is not the bottleneck), with the page
cache emptied before each read and, separately, warm.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from pathlib import Path

from jobs.engines import manifest
from tests.bench.test_backup_speed import BENCH_DIR, FILES, ROUNDS, build_tree


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def seconds(work) -> float:
    os.sync()
    started = time.monotonic()
    work()
    os.sync()
    return time.monotonic() - started


def rsync(*args: str) -> None:
    subprocess.run(["rsync", "-a", *args], check=True, stdout=subprocess.DEVNULL)


def cat_all(listing: Path) -> None:
    # xargs -0 cat: one cat per few thousand files, as a person would read them all.
    with open(listing, "rb") as names:
        subprocess.run(["xargs", "-0", "cat"], stdin=names, stdout=subprocess.DEVNULL, check=True)


def test_manifest_and_verification_speed():
    source = BENCH_DIR / "tree"
    out = BENCH_DIR / "manifest"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files, size = build_tree(source, FILES)
    print(f"\nTree: {files:,} files, {size / 1e9:.2f} GB in {source}")
    first, second = out / "2026-01-01T000000Z", out / "2026-01-02T000000Z"
    rsync_full = seconds(lambda: rsync(f"{source}/", f"{first}/"))
    full = manifest.write(first, out / "first.sqlite")
    print(f"Full snapshot: rsync {rsync_full:.1f} s; its manifest {full.seconds:.1f} s "
          f"({full.hashed_bytes / 1e9:.2f} GB hashed, {full.hashed_bytes / full.seconds / 1e6:.0f} MB/s)")

    rsync_times, manifest_times = [], []
    for turn in range(ROUNDS):
        shutil.rmtree(second, ignore_errors=True)
        (out / "second.sqlite").unlink(missing_ok=True)
        rsync_times.append(seconds(lambda: rsync(f"--link-dest={first}", f"{source}/", f"{second}/")))
        summary = manifest.write(second, out / "second.sqlite", out / "first.sqlite")
        assert summary.reused == full.files and summary.hashed_bytes == 0
        manifest_times.append(summary.seconds)
        print(f"  round {turn + 1}: unchanged snapshot rsync {rsync_times[-1]:.2f} s, "
              f"manifest {summary.seconds:.2f} s")
    ratio = min(manifest_times) / min(rsync_times)
    print(f"Unchanged snapshot: manifest {min(manifest_times):.2f} s = {ratio:.1%} of rsync's "
          f"{min(rsync_times):.2f} s (target under 10%)")

    listing = out / "files.list"
    with manifest.Manifest(out / "first.sqlite") as index:
        chosen = sorted(index.files(), key=lambda e: e.path)
    listing.write_bytes(b"\0".join(os.fsencode(str(first / e.path)) for e in chosen))
    rates = {}
    for cache in ("cold", "warm"):
        cat_times, verify_times = [], []
        for _ in range(ROUNDS):
            for tool in random.sample(["cat", "verify"], 2):
                if cache == "cold":
                    drop_caches()
                elif not cat_times and not verify_times:
                    cat_all(listing)   # fill the cache once
                if tool == "cat":
                    cat_times.append(seconds(lambda: cat_all(listing)))
                else:
                    with manifest.Manifest(out / "first.sqlite") as index:
                        started = time.monotonic()
                        check = manifest.verify(first, index, chosen)
                        verify_times.append(time.monotonic() - started)
                    assert check.intact and check.bytes == full.bytes
        cat_rate, verify_rate = full.bytes / min(cat_times), full.bytes / min(verify_times)
        rates[cache] = verify_rate / cat_rate
        print(f"Verification, {cache} cache: {verify_rate / 1e6:.0f} MB/s against cat's "
              f"{cat_rate / 1e6:.0f} MB/s = {rates[cache]:.0%} (target 80% or more)")
    shutil.rmtree(out, ignore_errors=True)
