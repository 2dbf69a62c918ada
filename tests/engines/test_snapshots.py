"""Snapshot layout on the destination, filesystem detection, checks, and hardlink repair."""

import datetime as dt
import os
import subprocess

import pytest

from jobs.engines import snapshots
from jobs.engines.snapshots import CheckError
from tests.helpers.trees import write

NOW = dt.datetime(2026, 11, 22, 10, 15, 0)


def test_names_are_utc_timestamps_and_never_collide(tmp_path):
    assert snapshots.snapshot_name(NOW) == "2026-11-22T101500Z"
    (tmp_path / "2026-11-22T101500Z").mkdir()
    (tmp_path / "2026-11-22T101501Z.partial").mkdir()
    assert snapshots.unused_snapshot_name(tmp_path, NOW) == "2026-11-22T101502Z"


def test_new_names_only_ever_grow(tmp_path):
    # A freed older name (retention) or a clock that went back never gives an older name.
    (tmp_path / "2026-11-22T101503Z").mkdir()
    assert snapshots.unused_snapshot_name(tmp_path, NOW) == "2026-11-22T101504Z"
    assert snapshots.unused_snapshot_name(tmp_path, NOW.replace(year=2027)) == "2027-11-22T101500Z"
    assert snapshots.unused_snapshot_name(tmp_path / "none-yet", NOW) == "2026-11-22T101500Z"


def test_a_partial_snapshot_is_never_listed_or_linked_as_complete(tmp_path):
    for name in ["2026-01-01T000000Z", "2026-02-01T000000Z.partial", "notes", "latest"]:
        (tmp_path / name).mkdir()
    assert snapshots.list_snapshots(tmp_path) == ["2026-01-01T000000Z"]
    assert snapshots.latest_snapshot(tmp_path) == "2026-01-01T000000Z"


def test_finalize_renames_and_moves_latest(tmp_path):
    (tmp_path / "2026-01-01T000000Z").mkdir()
    snapshots.point_latest(tmp_path, "2026-01-01T000000Z")
    (tmp_path / "2026-02-01T000000Z.partial" / "x").mkdir(parents=True)
    final = snapshots.finalize(tmp_path, "2026-02-01T000000Z")
    assert final.is_dir() and not (tmp_path / "2026-02-01T000000Z.partial").exists()
    assert os.readlink(tmp_path / "latest") == "2026-02-01T000000Z"
    assert (tmp_path / "latest" / "x").is_dir()


def test_remove_partial_removes_only_a_partial_snapshot(tmp_path):
    (tmp_path / "2026-02-01T000000Z.partial" / "deep").mkdir(parents=True)
    (tmp_path / "2026-01-01T000000Z").mkdir()
    assert snapshots.remove_partial(tmp_path, "2026-02-01T000000Z")
    assert not snapshots.remove_partial(tmp_path, "2026-01-01T000000Z")
    assert (tmp_path / "2026-01-01T000000Z").is_dir()
    with pytest.raises(ValueError):
        snapshots.remove_partial(tmp_path, "../etc")


def test_sources_sit_under_the_host_and_their_absolute_path():
    assert snapshots.in_snapshot("/home/ada/Photos") == "localhost/home/ada/Photos"
    assert snapshots.in_snapshot("/") == "localhost"


def test_an_exfat_drive_is_detected_as_mirror_only(exfat_drive):
    fs = snapshots.filesystem_of(str(exfat_drive))
    assert fs.fstype == "exfat" and fs.mirror_only
    assert not snapshots.supports_hardlinks(str(exfat_drive))


def test_an_ordinary_folder_can_hold_snapshots(tmp_path):
    assert not snapshots.filesystem_of(str(tmp_path)).mirror_only
    assert snapshots.supports_hardlinks(str(tmp_path))
    # ext4, as root: rsync keeps both; the probes leave nothing behind.
    assert snapshots.probe_attributes(str(tmp_path)) == (True, True)
    assert os.listdir(tmp_path) == []


def test_folder_times_are_copied_from_the_source(tmp_path):
    source, dest = tmp_path / "src", tmp_path / "dst"
    for root in (source, dest):
        (root / "a" / "b").mkdir(parents=True)
        (root / "c").mkdir()
    for when, rel in enumerate(["a/b", "a", ""], start=1):
        os.utime(source / rel, ns=(when * 10**9, when * 10**9 + 123))
    (source / "c").rmdir()  # vanished during the run: nothing to mend, no complaint
    os.chmod(dest / "a", 0o500)
    problems = snapshots.copy_folder_times(str(source), str(dest), ["", "a", "a/b", "c", "gone"])
    assert problems == []
    for rel in ("", "a", "a/b"):
        assert os.stat(dest / rel).st_mtime_ns == os.stat(source / rel).st_mtime_ns
    (dest / "a" / "b").rmdir()
    write(dest / "a" / "b", "not a folder")
    (source / "a" / "b" / "x").mkdir()
    problems = snapshots.copy_folder_times(str(source), str(dest), ["a/b/x"])
    assert problems == ["a/b/x: Not a directory"]


@pytest.mark.parametrize("source, message", [
    ("relative/path", "absolute path"), ("/nonexistent/cairn", "does not exist"),
    ("/etc/hostname", "is not a folder"), ("/tmp/a\nb", "line break"),
    ("/" + "x" * 5000, "longer than 4096"), ("/tmp/caf\udce9", "not valid UTF-8"),
])
def test_bad_sources_are_refused_with_a_reason(source, message):
    with pytest.raises(CheckError, match=message):
        snapshots.check_source(source)


def test_a_source_reached_through_a_symbolic_link_is_refused(tmp_path):
    (tmp_path / "home" / "ada").mkdir(parents=True)
    (tmp_path / "home" / "ada" / "etc").symlink_to("/etc")
    with pytest.raises(CheckError, match="symbolic link .* leads to /etc"):
        snapshots.check_source(str(tmp_path / "home" / "ada" / "etc"))
    (tmp_path / "elsewhere").symlink_to(tmp_path / "home")
    with pytest.raises(CheckError, match="symbolic link"):
        snapshots.check_source(str(tmp_path / "elsewhere" / "ada"))
    snapshots.check_source(str(tmp_path / "home" / "ada"))


def test_a_destination_inside_a_source_is_refused(tmp_path):
    (tmp_path / "src" / "backups").mkdir(parents=True)
    with pytest.raises(CheckError, match="inside source"):
        snapshots.check_destination(str(tmp_path / "src" / "backups"), [str(tmp_path / "src")])
    with pytest.raises(CheckError, match="does not exist"):
        snapshots.check_destination(str(tmp_path / "nope"), [str(tmp_path / "src")])


def test_a_full_destination_is_reported_as_full(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        with open(mount / "filler", "wb") as fh:
            try:
                fh.write(b"x" * 1_000_000)
            except OSError:
                pass
        with pytest.raises(CheckError, match="full"):
            snapshots.check_writable(mount / "profile")
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_relink_joins_copies_that_share_an_inode_at_the_source(tmp_path):
    tree = tmp_path / "snap"
    a = write(tree / "one" / "a.txt", "same", mtime=1_700_000_000)
    b = write(tree / "two" / "b.txt", "same", mtime=1_700_000_000)
    c = write(tree / "two" / "c.txt", "changed", mtime=1_700_000_001)
    os.utime(tree / "two", (1_600_000_000, 1_600_000_000))
    relinked, warnings = snapshots.relink(tree, [["one/a.txt", "two/b.txt"],
                                                 ["one/a.txt", "two/c.txt"], ["gone", "also-gone"]])
    assert relinked == 1 and os.stat(a).st_ino == os.stat(b).st_ino
    assert os.stat(tree / "two").st_mtime == 1_600_000_000
    assert "two/c.txt changed during the backup" in warnings[0]
    assert os.stat(c).st_ino != os.stat(a).st_ino
