"""Verification for real: snapshots re-read against their manifests, damage found and named,
test restores compared byte for byte, schedules, and the command line's exit codes."""

import datetime as dt
import os
import shutil

import pytest

from jobs import backup, catalog, verify
from jobs.queue import huey
from models import Event, Profile, Run, Snapshot, Verification
from tests.helpers.cli import cairn
from tests.helpers.trees import write
from tests.jobs.conftest import make_profile


def backed_up(tmp_path, name="Home", **fields):
    source = tmp_path / "src"
    for i in range(30):
        write(source / "photos" / f"img{i:02}.jpg", os.urandom(3000 + i))
    profile = make_profile(name=name, sources=[source], dest=tmp_path / "backups", **fields)
    run = Run.get_by_id(backup.request_run(profile).id)
    assert run.state == "succeeded", run.message
    return Snapshot.get(Snapshot.name == run.snapshot)


def backed_up_again(profile):
    run = Run.get_by_id(backup.request_run(profile).id)
    assert run.state == "succeeded", run.message
    return Snapshot.get(Snapshot.name == run.snapshot)


def flip_a_byte(snapshot, name="img07.jpg"):
    path = next(catalog.tree(snapshot).rglob(name))
    # A snapshot file shares its inode with the next snapshot's; damage it in place, as a
    # failing disk would.
    with open(path, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))
    return path


@pytest.mark.usefixtures("inline")
class TestVerification:
    def test_an_untouched_snapshot_is_intact(self, tmp_path):
        snap = backed_up(tmp_path)
        done = verify.request(snap)
        assert done.state == "intact", done.message
        assert (done.checked_files, done.total_files) == (30, 30)
        assert Snapshot.get_by_id(snap.id).verify_state == "intact"
        assert Verification.last_failed() == set()

    def test_a_corrupted_byte_is_found_and_the_profile_is_marked(self, tmp_path):
        snap = backed_up(tmp_path)
        flip_a_byte(snap)
        done = verify.request(snap)
        assert done.state == "damaged" and done.changed == 1
        assert done.problems[0].endswith("photos/img07.jpg (content differs from the manifest)")
        assert Snapshot.get_by_id(snap.id).verify_state == "damaged"
        assert Verification.last_failed() == {snap.profile_id}
        said = Event.get(Event.kind == "verification.finished")
        assert said.level == "error" and "damaged" in said.message
        flip_a_byte(snap)   # mended: the next check finds it intact and the profile is not red
        assert verify.request(snap).state == "intact" and Verification.last_failed() == set()

    def test_a_missing_file_is_named(self, tmp_path):
        snap = backed_up(tmp_path)
        next(catalog.tree(snap).rglob("img03.jpg")).unlink()
        done = verify.request(snap)
        assert done.state == "damaged" and done.missing == 1 and "img03.jpg" in done.problems[0]

    def test_a_sample_reads_that_share(self, tmp_path):
        snap = backed_up(tmp_path)
        done = verify.request(snap, percent=10)
        assert done.state == "intact" and done.chosen_files == done.checked_files == 3
        assert "3 of 30 files" in done.message

    def test_a_test_restore_compares_restored_copies_and_cleans_up(self, tmp_path):
        snap = backed_up(tmp_path)
        done = verify.request(snap, kind="test_restore", percent=50)
        assert done.state == "intact" and done.checked_files == 15, done.message
        assert "restored and compared" in done.message
        flip_a_byte(snap)
        damaged = verify.request(snap, kind="test_restore")
        assert damaged.state == "damaged" and damaged.changed == 1

    def test_the_bar_is_the_data_read_and_a_finished_check_is_whole(self, tmp_path):
        snap = backed_up(tmp_path)
        done = verify.request(snap)
        assert done.chosen_bytes == done.checked_bytes == sum(3000 + i for i in range(30))
        assert done.progress == 1.0 and done.reading_rate(dt.datetime(2030, 1, 1)) is None
        half = Verification(state="running", chosen_bytes=1000, checked_bytes=500,
                            chosen_files=2, checked_files=0,
                            started_at=dt.datetime(2026, 12, 1, 12, 0, 0))
        now = dt.datetime(2026, 12, 1, 12, 0, 20)
        assert half.progress == 0.5 and half.reading_rate(now) == 25
        assert half.eta_seconds(now) == 20

    def test_a_damaged_file_names_the_newest_good_copy_of_its_own(self, tmp_path):
        first = backed_up(tmp_path)
        source = tmp_path / "src" / "photos"
        original = (source / "img07.jpg").read_bytes()
        write(source / "img07.jpg", os.urandom(10))            # edited...
        second = backed_up_again(first.profile)
        write(source / "img07.jpg", original)                  # ...and put back
        os.utime(source / "img07.jpg", (1, 1))
        third = backed_up_again(first.profile)
        assert len({first.name, second.name, third.name}) == 3
        flip_a_byte(third)          # img03 and the rest are hardlinks shared by all three
        next(catalog.tree(third).rglob("img03.jpg")).unlink()
        flip_a_byte(third, "img05.jpg")
        done = verify.request(third)
        copies = {c["path"].rpartition("/")[2]: c["snapshot"] for c in done.copies}
        # img07 is a copy of its own in the first snapshot only (the second holds the edit);
        # img03 was only unlinked from the third, so the second's link to it is good;
        # img05 is the same inode in every snapshot: damaged everywhere, no good copy.
        assert copies == {"img07.jpg": first.name, "img03.jpg": second.name, "img05.jpg": ""}

    def test_a_snapshot_that_is_gone_cannot_be_checked_and_says_so(self, tmp_path):
        snap = backed_up(tmp_path)
        shutil.rmtree(catalog.tree(snap))
        done = verify.request(snap)
        assert done.state == "failed" and "is not there" in done.message
        assert Verification.last_failed() == {snap.profile_id}

    def test_a_snapshot_without_a_manifest_is_indexed_first_and_says_so(self, tmp_path):
        snap = backed_up(tmp_path)
        catalog.manifest_path(snap).unlink()
        done = verify.request(snap)
        assert done.state == "intact" and "It had no manifest" in done.message


@pytest.mark.usefixtures("inline")
def test_the_verification_schedule_checks_the_newest_snapshot(tmp_path):
    backed_up(tmp_path, verify_schedule="0 3 * * 0", verify_percent=50.0)
    newest = Snapshot.get(Snapshot.name == max(s.name for s in Snapshot.select()))
    Profile.update(verify_looked_at=dt.datetime(2026, 11, 29, 2, 0)).execute()
    assert verify.start_due(dt.datetime(2026, 11, 29, 2, 59)) == []
    started = verify.start_due(dt.datetime(2026, 11, 29, 3, 0, 30))
    assert [v.snapshot_id for v in started] == [newest.id]
    assert started[0].sample_percent == 50.0 and started[0].trigger == "schedule"
    assert verify.start_due(dt.datetime(2026, 11, 29, 3, 1, 30)) == []   # once per occurrence


@pytest.mark.slow
def test_verify_from_the_command_line_exits_1_and_names_the_damage(tmp_path, shared_db):
    huey.immediate = True
    try:
        snap = backed_up(tmp_path)
    finally:
        huey.immediate = False
    intact = cairn("verify", "Home")
    assert intact.returncode == 0 and "Intact" in intact.stdout, intact.stdout + intact.stderr
    flip_a_byte(snap, "img11.jpg")
    damaged = cairn("verify", "Home", snap.name, "--sample", "100")
    assert damaged.returncode == 1
    assert "photos/img11.jpg (content differs from the manifest)" in damaged.stdout
    assert f"{snap.name}\tdamaged\t30 files" in cairn("snapshot", "list", "Home").stdout


@pytest.mark.usefixtures("inline")
def test_a_damaged_manifest_is_written_again_before_checking(tmp_path):
    snap = backed_up(tmp_path)
    catalog.manifest_path(snap).write_bytes(b"not a database")
    done = verify.request(snap)
    assert done.state == "intact" and "It had no manifest" in done.message


@pytest.mark.usefixtures("inline")
def test_retention_keeps_a_snapshot_while_it_is_being_checked_or_restored(tmp_path):
    from jobs import retention
    from models import Restore
    snap = backed_up(tmp_path, keep_last=1)
    profile = Profile.get_by_id(snap.profile_id)
    check = Verification.create(profile=profile, snapshot=snap, state="running")
    assert Run.get_by_id(backup.request_run(profile).id).state == "succeeded"
    assert catalog.tree(snap).is_dir() and Snapshot.get_by_id(snap.id).pruned_at is None
    Verification.update(state="intact").where(Verification.id == check.id).execute()
    restore = Restore.create(profile=profile, snapshot=snap, paths=["localhost/x"], target="/x")
    assert retention.prune(profile).deleted == []
    Restore.update(state="succeeded").where(Restore.id == restore.id).execute()
    assert retention.prune(profile).deleted == [snap.name]
    assert not catalog.tree(snap).exists()
