"""Retention on real snapshot folders: after each run, on demand from the command line, by
count and by free space; never what a run uses, never anything but a snapshot."""

import datetime as dt
import os
import subprocess

import pytest

from jobs import backup, retention
from jobs.engines import snapshots
from models import Event, Profile, Run
from tests.helpers.cli import cairn
from tests.helpers.trees import write
from tests.jobs.conftest import make_profile

NOW = dt.datetime(2026, 11, 28, 12, 0)


def fake_snapshots(profile, *names, size=1000):
    """Snapshot folders as runs leave them, with `latest` on the newest."""
    root = profile.root()
    for name in names:
        write(root / name / "localhost" / "data.bin", os.urandom(size))
    snapshots.point_latest(root, sorted(names)[-1])
    return root


def on_disk(root) -> list[str]:
    return snapshots.list_snapshots(root)


@pytest.mark.usefixtures("inline")
class TestAfterEachRun:
    def test_each_successful_run_lets_go_of_what_the_policy_does_not_keep(self, tmp_path):
        source = write(tmp_path / "src" / "a.txt", "a").parent
        profile = make_profile(sources=[source], dest=tmp_path / "backups", keep_last=2)
        runs = []
        for _ in range(4):
            runs.append(Run.get_by_id(backup.request_run(profile).id))
            assert runs[-1].state == "succeeded"
        assert on_disk(profile.root()) == [runs[2].snapshot, runs[3].snapshot]
        pruned = [r.id for r in Run.select().where(Run.pruned_at.is_null(False)).order_by(Run.id)]
        assert pruned == [runs[0].id, runs[1].id]
        said = Event.select().where(Event.kind == "retention.pruned").order_by(Event.id.desc()).get()
        assert runs[1].snapshot in said.message and "keep the last 2" in said.message

    def test_a_profile_without_a_policy_keeps_every_snapshot(self, tmp_path):
        source = write(tmp_path / "src" / "a.txt", "a").parent
        profile = make_profile(sources=[source], dest=tmp_path / "backups")
        for _ in range(3):
            backup.request_run(profile)
        assert len(on_disk(profile.root())) == 3


@pytest.mark.usefixtures("inline")
def test_a_snapshot_a_run_uses_is_kept(tmp_path):
    profile = make_profile(sources=[tmp_path], dest=tmp_path / "b", keep_last=1)
    names = ["2026-11-01T030000Z", "2026-11-02T030000Z", "2026-11-03T030000Z"]
    root = fake_snapshots(profile, *names)
    Run.create(profile=profile, state="running", link_from=names[0])
    result = retention.prune(Profile.get_by_id(profile.id), NOW)
    assert result.deleted == [names[1]] and on_disk(root) == [names[0], names[2]]
    assert dict((d.name, d.reasons) for d in result.decisions)[names[0]] == ("in use by a run",)


@pytest.mark.usefixtures("inline")
def test_the_free_space_rule_deletes_the_oldest_until_enough_is_free(tmp_path):
    dest = tmp_path / "small"
    dest.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(dest)], check=True)
    try:
        profile = make_profile(sources=[tmp_path / "src"], dest=dest, keep_last=10,
                               keep_min_free=50)
        names = [f"2026-11-0{d}T030000Z" for d in range(1, 6)]
        root = fake_snapshots(profile, *names, size=600_000)   # 3 MB of 4: 25% free, 40% after one
        result = retention.prune(profile, NOW)
        assert result.deleted == [] and result.for_space == names[:2]
        assert on_disk(root) == names[2:]
        usage = os.statvfs(dest)
        assert usage.f_bavail / usage.f_blocks >= 0.50
    finally:
        subprocess.run(["umount", str(dest)], check=True)


def test_only_snapshot_folders_are_ever_removed(tmp_path):
    root = tmp_path / "root"
    write(root / "notes" / "x", "mine")
    write(root / "2026-11-01T030000Z" / "x", "old")
    write(root / "2026-11-02T030000Z" / "x", "new")
    os.symlink(tmp_path / "elsewhere", root / "2026-11-03T030000Z")
    snapshots.point_latest(root, "2026-11-02T030000Z")
    for bad in ("notes", "../root", "2026-11-01T030000Z/x"):
        with pytest.raises(ValueError, match="not a snapshot name"):
            snapshots.remove_snapshot(root, bad)
    assert not snapshots.remove_snapshot(root, "2026-11-03T030000Z")   # a link, not a folder
    with pytest.raises(ValueError, match="latest"):
        snapshots.remove_snapshot(root, "2026-11-02T030000Z")
    assert snapshots.remove_snapshot(root, "2026-11-01T030000Z")
    assert sorted(p.name for p in root.iterdir()) == \
        ["2026-11-02T030000Z", "2026-11-03T030000Z", "latest", "notes"]


@pytest.mark.slow
def test_prune_from_the_command_line_says_what_it_keeps_and_why(tmp_path, shared_db):
    profile = make_profile(name="Photos", sources=[tmp_path], dest=tmp_path / "b",
                           keep_daily=2)
    names = ["2026-11-20T030000Z", "2026-11-21T030000Z", "2026-11-21T150000Z"]
    root = fake_snapshots(profile, *names)
    dry = cairn("prune", "Photos", "--dry-run", check=True).stdout
    assert "Photos: Keep 2 daily." in dry
    assert "2026-11-21T150000Z\tkeep\tnewest; newest of day 2026-11-21 (daily 2)" in dry
    assert "2026-11-21T030000Z\twould delete\tno rule keeps it" in dry
    assert on_disk(root) == names
    done = cairn("prune", "Photos", check=True).stdout
    assert "2026-11-21T030000Z\tdeleted" in done
    assert on_disk(root) == [names[0], names[2]]
    missing = cairn("prune", "Nobody")
    assert missing.returncode == 1 and "No profile named 'Nobody'" in missing.stderr
