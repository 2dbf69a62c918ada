"""This box's folder of snapshots answers what a host's does (engines/remote.py, tested over
a real sshd in tests/jobs/test_pull.py), on real folders."""

import datetime as dt
import os

import pytest

from jobs.engines import snapshots
from jobs.engines.destination import LocalRoot, SnapshotRoot
from jobs.engines.remote import RemoteRoot


def test_a_new_root_answers_before_its_first_run(tmp_path):
    there = LocalRoot(tmp_path / "backups" / "photos")
    assert there.remote is False
    assert there.list_snapshots() == [] and there.latest_snapshot() is None
    assert there.partials() == []
    assert there.free_bytes() > 0 and 0 < there.free_percent() <= 100   # measured above it
    assert there.filesystem_type() and there.supports_hardlinks() in (True, False)
    assert not (tmp_path / "backups").exists()   # asking made nothing


def test_a_run_makes_finishes_and_removes_snapshots_through_it(tmp_path):
    there = LocalRoot(tmp_path / "photos")
    first = there.unused_name(dt.datetime(2026, 12, 1, 2, 30))
    there.make_dir(first + snapshots.PARTIAL_SUFFIX, "localhost/home")
    assert there.has_partial(first) and there.partials() == [first]
    (tmp_path / "photos" / "not-a-snapshot.partial").mkdir()   # not a name Cairn gives
    assert there.partials() == [first]
    there.finalize(first)
    assert there.list_snapshots() == [first] and there.latest_snapshot() == first
    assert os.readlink(tmp_path / "photos" / "latest") == first
    second = there.unused_name(dt.datetime(2026, 12, 1, 2, 30))
    assert second > first
    there.make_dir(second + snapshots.PARTIAL_SUFFIX)
    assert there.remove_partial(second) and not there.has_partial(second)
    with pytest.raises(ValueError, match="latest"):
        there.remove_snapshot(first)
    assert there.spec(first, "x") == str(tmp_path / "photos" / first / "x")


def test_both_kinds_of_root_have_every_operation_the_jobs_use():
    wanted = {name for name in vars(SnapshotRoot) if not name.startswith("_")} - {"remote"}
    for kind in (LocalRoot, RemoteRoot):
        assert wanted <= set(dir(kind)), (kind, wanted - set(dir(kind)))
    assert RemoteRoot.remote is True and LocalRoot.remote is False
