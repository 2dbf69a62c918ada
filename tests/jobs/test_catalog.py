"""Every finished snapshot gets a row and a manifest in the data dir; the next one reads only
its new data; retention takes both away; older snapshots are indexed when the worker starts."""

import os

import pytest
import xxhash

from jobs import backup, catalog
from jobs.engines import manifest
from models import Run, Snapshot
from tests.helpers.trees import write
from tests.jobs.conftest import make_profile

pytestmark = pytest.mark.usefixtures("inline")


def run_now(profile) -> Run:
    return Run.get_by_id(backup.request_run(profile).id)


def test_a_finished_snapshot_has_a_manifest_and_its_totals(tmp_path):
    source = tmp_path / "src"
    write(source / "a.txt", "hello")
    write(source / "photos" / "b.jpg", os.urandom(40_000))
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = run_now(profile)
    snapshot = Snapshot.get(Snapshot.profile == profile)
    assert snapshot.name == run.snapshot and snapshot.run_id == run.id
    assert (snapshot.files, snapshot.bytes, snapshot.new_files) == (2, 40_005, 2)
    path = catalog.manifest_path(snapshot)
    assert path.parent.parent == catalog.manifests_dir()
    inside = f"localhost{source}/photos/b.jpg"
    with manifest.Manifest(path) as m:
        assert m.entry(inside).size == 40_000


def test_the_next_snapshot_reads_only_what_changed(tmp_path):
    source = tmp_path / "src"
    write(source / "big.bin", os.urandom(500_000))
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    backup.request_run(profile)
    write(source / "new.txt", "new")
    second = run_now(profile)
    snapshot = Snapshot.get(Snapshot.name == second.snapshot)
    assert (snapshot.files, snapshot.new_files, snapshot.new_bytes) == (2, 1, 3)
    # The new file's hash came from the rsync that copied it: nothing was read again.
    assert any("Manifest: 2 files, 1 new (1 hashed by rsync while copying, 0 B read)" in m
               for m in second.messages("info"))


def test_a_full_snapshot_reads_no_file_again_for_its_manifest(tmp_path):
    source = tmp_path / "src"
    contents = {f"d{i}/f{i}.bin": os.urandom(1000 * i) for i in range(1, 6)}
    for name, data in contents.items():
        write(source / name, data)
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = run_now(profile)
    snapshot = Snapshot.get(Snapshot.name == run.snapshot)
    assert (snapshot.files, snapshot.new_files) == (5, 5)
    assert any("(5 hashed by rsync while copying, 0 B read)" in m for m in run.messages("info"))
    with manifest.Manifest(catalog.manifest_path(snapshot)) as m:
        for name, data in contents.items():
            assert m.entry(f"localhost{source}/{name}").hash == xxhash.xxh3_128(data).digest()
    assert not (backup.settings().logs_dir / f"run-{run.id}").exists()   # sums gone with the logs


def test_retention_takes_the_manifest_away_with_the_snapshot(tmp_path):
    source = tmp_path / "src"
    write(source / "a.txt", "a")
    profile = make_profile(sources=[source], dest=tmp_path / "backups", keep_last=1)
    first = run_now(profile)
    old = Snapshot.get(Snapshot.name == first.snapshot)
    backup.request_run(profile)
    old = Snapshot.get_by_id(old.id)
    assert old.pruned_at is not None and not catalog.manifest_path(old).exists()
    assert [s.name for s in Snapshot.kept(profile)] != [first.snapshot]


def test_snapshots_older_than_manifests_are_indexed_when_the_worker_starts(tmp_path):
    source = tmp_path / "src"
    write(source / "a.txt", "abc")
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = run_now(profile)
    snapshot = Snapshot.get(Snapshot.name == run.snapshot)
    catalog.manifest_path(snapshot).unlink()
    Snapshot.update(indexed_at=None, files=0).execute()
    catalog.index_missing()
    snapshot = Snapshot.get_by_id(snapshot.id)
    assert snapshot.indexed_at is not None and snapshot.files == 1
    assert catalog.manifest_path(snapshot).exists()


def test_two_writers_of_one_manifest_take_turns_and_both_succeed(tmp_path):
    # A finish resumed after a worker died finishing, and the new worker's start-up
    # indexing, may come for the same snapshot at once.
    import threading
    source = tmp_path / "src"
    for i in range(3000):
        write(source / f"d{i % 30}" / f"f{i}.txt", f"file {i}")
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run_now(profile)
    snapshot = Snapshot.get(Snapshot.profile == profile)
    catalog.manifest_path(snapshot).unlink()
    problems = []

    def index():
        try:
            catalog.index(snapshot)
        except Exception as error:   # what the second writer met: the first one's temp file gone
            problems.append(repr(error))

    writers = [threading.Thread(target=index) for _ in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert problems == []
    with manifest.Manifest(catalog.manifest_path(snapshot)) as m:
        assert m.entry(f"localhost{source}/d7/f7.txt").size == len("file 7")


def test_startup_indexing_leaves_a_snapshot_whose_run_is_still_finishing_to_it(tmp_path):
    source = write(tmp_path / "src" / "a.txt", "a").parent
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = run_now(profile)
    snapshot = Snapshot.get(Snapshot.profile == profile)
    Snapshot.update(indexed_at=None).execute()
    Run.update(state="finalizing").where(Run.id == run.id).execute()
    assert catalog.index_missing.call_local() == 0
    Run.update(state="succeeded").where(Run.id == run.id).execute()
    assert catalog.index_missing.call_local() == 1 and snapshot.id
