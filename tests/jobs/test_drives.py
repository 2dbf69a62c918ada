"""USB drives through real udev: loop images plugged in and pulled out while a real worker
watches, adopts, mounts, backs up, is interrupted and resumes."""

import json
import subprocess
import time

import pytest

from jobs import drives
from models import Drive, Event, Run, Unit
from tests.helpers.trees import SMALL_UNITS, describe, slow_tree, snapshot_tree
from tests.jobs.conftest import make_profile, wait_for_run, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def media(tmp_path):
    return tmp_path / "media"


@pytest.fixture
def worker(worker_factory, media):
    return worker_factory({**SMALL_UNITS, "CAIRN_DRIVE_ROOT": str(media)}).start()


def seen(stick, timeout=2.0) -> Drive:
    """The drive's row, once the worker's udev watcher has recorded it as connected."""
    return wait_until(lambda: Drive.get_or_none((Drive.uuid == stick.uuid) & Drive.connected),
                      timeout=timeout)


def adopt(drive: Drive) -> Drive:
    Drive.update(busy="adopting").where(Drive.id == drive.id).execute()   # as the page does
    drives.adopt_drive(drive.id)
    return wait_until(lambda: (d := Drive.get_by_id(drive.id)).adopted and not d.busy and d,
                      timeout=20)


def kinds(drive: Drive) -> list[str]:
    return [e.kind for e in Event.select().where(Event.subject == drive.subject).order_by(Event.id)]


def test_a_drive_is_seen_within_two_seconds_of_plugging_in_and_gone_when_pulled(
        worker, loop_drives):
    stick = loop_drives("CAIRNTEST")
    started = time.monotonic()
    stick.plug()
    drive = seen(stick)
    assert time.monotonic() - started < 2.5
    assert (drive.label, drive.fstype, drive.devnode, drive.size) == \
        ("CAIRNTEST", "ext4", stick.device, 64 * 1024 * 1024)
    assert not drive.adopted and drive.mount_point == ""
    stick.pull()
    wait_until(lambda: not Drive.get_by_id(drive.id).connected, timeout=5)
    assert kinds(drive) == ["drive.connected", "drive.disconnected"]


def test_an_adopted_drive_is_mounted_by_uuid_backed_up_to_and_ejected(
        worker, loop_drives, media, tmp_path):
    stick = loop_drives("CAIRNTEST").plug()
    drive = adopt(seen(stick))
    root = media / stick.uuid
    assert drive.mount_point == str(root)
    marker = json.loads((root / ".cairn-drive.json").read_text())
    assert marker["uuid"] == stick.uuid and marker["token"] == drive.token
    source = slow_tree(tmp_path / "src", folders=2, size=40_000)
    profile = make_profile(sources=[source], dest=root / "backups", create_dest=False)
    run = wait_for_run(drives.backup.request_run(profile))
    assert run.state == "succeeded", run.message
    assert describe(snapshot_tree(profile, run, source)) == describe(source)

    Drive.update(busy="ejecting").where(Drive.id == drive.id).execute()
    drives.eject_drive(drive.id)
    drive = wait_until(lambda: (d := Drive.get_by_id(drive.id)).ejected and d, timeout=20)
    assert drive.state_label == "Safe to unplug" and not drive.mount_point
    assert subprocess.run(["findmnt", stick.device], capture_output=True).returncode != 0
    # With the drive ejected (or gone), a run never writes into the empty mount point.
    refused = wait_for_run(drives.backup.request_run(profile))
    assert refused.state == "interrupted" and "Nothing is mounted" in refused.message
    assert list((root).iterdir()) == []
    assert "drive.ejected" in kinds(drive)


def test_a_drive_pulled_mid_run_interrupts_it_and_plugging_it_back_finishes_it(
        worker, loop_drives, media, tmp_path):
    stick = loop_drives("CAIRNTEST").plug()
    drive = adopt(seen(stick))
    root = media / stick.uuid
    source = slow_tree(tmp_path / "src", size=800_000)
    profile = make_profile(sources=[source], dest=root / "backups", create_dest=False,
                           bwlimit_kib=400)
    run = drives.backup.request_run(profile)
    wait_until(lambda: Run.get_by_id(run.id).files_done > 2, timeout=30)
    stick.pull()
    run = wait_for_run(run, timeout=20)
    assert run.state == "interrupted", run.message
    assert "disconnected" in run.message or "Nothing is mounted" in run.message
    assert "when the drive is back" in run.message
    # No retry storm: no part was counted as a failed attempt, none was given up on.
    assert not Unit.select().where((Unit.run == run) & (Unit.state == "failed")).exists()
    assert not Event.select().where(Event.kind == "unit.retrying").exists()
    wait_until(lambda: not Drive.get_by_id(drive.id).connected, timeout=10)

    stick.plug()
    run = wait_until(lambda: (r := Run.get_by_id(run.id)).state == "running" and r, timeout=20)
    run = wait_for_run(run, timeout=90)
    assert run.state == "succeeded", run.message
    assert describe(snapshot_tree(profile, run, source)) == describe(source)
    assert Event.select().where((Event.kind == "run.resumed") & (Event.subject == run.subject)).exists()


def test_a_profile_set_to_run_on_connect_starts_when_its_drive_is_plugged_in(
        worker, loop_drives, media, tmp_path):
    stick = loop_drives("CAIRNTEST").plug()
    drive = adopt(seen(stick))
    source = slow_tree(tmp_path / "src", folders=1, size=4_000)
    profile = make_profile(sources=[source], dest=media / stick.uuid / "backups",
                           create_dest=False, run_on_connect=True)
    Drive.update(busy="ejecting").where(Drive.id == drive.id).execute()
    drives.eject_drive(drive.id)
    wait_until(lambda: Drive.get_by_id(drive.id).ejected, timeout=20)
    stick.pull()
    wait_until(lambda: not Drive.get_by_id(drive.id).connected, timeout=10)
    assert not Run.select().exists()
    stick.plug()
    run = wait_for_run(wait_until(lambda: Run.get_or_none(Run.profile == profile), timeout=20))
    assert run.state == "succeeded" and run.trigger == "drive"
    assert run.requested_by == "CAIRNTEST"


def test_another_drive_at_the_mount_point_is_not_written_to(worker, loop_drives, media, tmp_path):
    stick = loop_drives("CAIRNTEST").plug()
    drive = adopt(seen(stick))
    root = media / stick.uuid
    (root / ".cairn-drive.json").write_text(json.dumps({"uuid": stick.uuid, "token": "forged"}))
    source = slow_tree(tmp_path / "src", folders=1, size=4_000)
    profile = make_profile(sources=[source], dest=root / "backups", create_dest=False)
    run = wait_for_run(drives.backup.request_run(profile))
    assert run.state == "interrupted" and "another drive" in run.message
    assert not (root / "backups").exists()
    assert drive.adopted
