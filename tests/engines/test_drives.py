"""Drives as udev describes them, mounted and proved, on real loop devices."""

import os
import time

import pytest
import pyudev

from jobs.engines import drives

PROPERTIES = {"DEVNAME": "/dev/sdb1", "ID_FS_UUID": "1234-ABCD", "ID_FS_LABEL": "BACKUP",
              "ID_FS_TYPE": "exfat", "ID_FS_USAGE": "filesystem", "ID_BUS": "usb"}


def test_a_filesystem_is_read_from_udev_properties():
    fs = drives.from_properties(PROPERTIES, 2048)
    assert fs == drives.BlockFs("1234-ABCD", "BACKUP", "exfat", 1024 * 1024, "usb", "/dev/sdb1")
    assert fs.mirror_only
    assert not drives.from_properties({**PROPERTIES, "ID_FS_TYPE": "ext4"}, 1).mirror_only


@pytest.mark.parametrize("change", [
    {"ID_FS_UUID": ""},                                    # a disk with partitions, an empty loop
    {"ID_FS_USAGE": "other", "ID_FS_TYPE": "swap"},        # swap, not a filesystem
    {"ID_FS_USAGE": "crypto", "ID_FS_TYPE": "crypto_LUKS"},
])
def test_block_devices_without_a_filesystem_are_not_drives(change):
    assert drives.from_properties({**PROPERTIES, **change}, 2048) is None


def wait_for(condition, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := condition()):
            return value
        time.sleep(0.05)
    return condition()


def test_a_plugged_in_drive_is_present_within_two_seconds_and_gone_after(loop_drives):
    stick = loop_drives("CAIRNTEST")
    context = pyudev.Context()
    stick.plug()
    found = wait_for(lambda: [fs for fs in drives.present(context) if fs.uuid == stick.uuid])
    assert found, "udev did not describe the drive within 2 s"
    assert (found[0].label, found[0].fstype, found[0].devnode) == ("CAIRNTEST", "ext4", stick.device)
    assert found[0].size == 64 * 1024 * 1024
    stick.pull()
    assert wait_for(lambda: not [fs for fs in drives.present(context) if fs.uuid == stick.uuid])


def test_only_the_adopted_drive_mounted_at_its_place_is_proved(loop_drives, tmp_path):
    stick = loop_drives("CAIRNTEST").plug()
    fs = wait_for(lambda: next((f for f in drives.present(pyudev.Context()) if f.uuid == stick.uuid),
                               None))
    root = str(tmp_path / "media" / stick.uuid)
    os.makedirs(root)
    assert "Nothing is mounted" in drives.prove(root, stick.uuid, "t0k3n")
    drives.mount(fs, root)
    try:
        assert drives.mount_point_of(stick.device) == root and drives.is_mounted_at(root)
        assert "no Cairn marker" in drives.prove(root, stick.uuid, "t0k3n")
        drives.write_marker(root, stick.uuid, "t0k3n")
        assert drives.prove(root, stick.uuid, "t0k3n") is None
        assert "another drive" in drives.prove(root, stick.uuid, "other")
        assert "another drive" in drives.prove(root, "5678-EFAB", "t0k3n")
    finally:
        drives.unmount(root)
    assert drives.mount_point_of(stick.device) is None
    assert "Nothing is mounted" in drives.prove(root, stick.uuid, "t0k3n")
    with pytest.raises(drives.DriveError, match="not mounted"):
        drives.unmount(root)
    broken = drives.BlockFs(stick.uuid, "", "xfs", 0, "", stick.device)
    with pytest.raises(drives.DriveError, match="Could not mount"):
        drives.mount(broken, root)
