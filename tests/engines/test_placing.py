"""Placing files into a library on real filesystems: a hardlink on the same one, a reflink on
XFS, a checked copy across filesystems; the replaced file recycled; a full disk or a clash
leaves everything as it was."""

import os
import subprocess
from pathlib import Path

import pytest

from jobs.engines import placing
from tests.helpers.trees import write


@pytest.fixture
def mounted(tmp_path):
    """Mount filesystems under tmp_path for one test; unmount them after."""
    mounts = []

    def mount(name: str, *args: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        subprocess.run(["mount", *args, str(point)], check=True)
        mounts.append(point)
        return point

    yield mount
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_on_one_filesystem_a_file_is_hardlinked(tmp_path):
    source = write(tmp_path / "inbox" / "Heat.1995.mkv", b"movie" * 1000)
    library = tmp_path / "library"
    library.mkdir()
    placed = placing.place(source, library, "Heat (1995)/Heat (1995).mkv")
    assert placed.method == "hardlink" and os.stat(placed.path).st_ino == os.stat(source).st_ino
    assert placed.content_hash == placing.file_hash(source) and source.exists()


def test_across_filesystems_a_copy_is_checked_against_the_source(tmp_path, mounted):
    library = mounted("library", "-t", "tmpfs", "-o", "size=8m", "tmpfs")
    source = write(tmp_path / "inbox" / "Heat.mkv", os.urandom(2_000_000), mtime=1_600_000_000)
    placed = placing.place(source, library, "Heat/Heat.mkv")
    assert placed.method == "copy" and placed.path.read_bytes() == source.read_bytes()
    assert placed.path.stat().st_mtime == 1_600_000_000


def test_a_reflink_is_made_where_the_filesystem_has_them_and_nowhere_else(tmp_path, mounted):
    """Inbox and library on one XFS (or on two btrfs subvolumes, which hardlinks cannot
    cross) share the data blocks instead of copying them."""
    image = tmp_path / "xfs.img"
    image.write_bytes(b"")
    os.truncate(image, 320 * 1024 * 1024)
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
    volume = mounted("xfs", "-o", "loop", str(image))
    source = write(volume / "inbox" / "Heat.mkv", os.urandom(1_000_000))
    (volume / "library").mkdir()
    assert placing._reflink(source, volume / "library" / "Heat.mkv")
    assert (volume / "library" / "Heat.mkv").read_bytes() == source.read_bytes()
    on_ext4 = write(tmp_path / "inbox" / "Heat.mkv", b"ext4 has no reflinks")
    assert not placing._reflink(on_ext4, tmp_path / "Heat-copy.mkv")
    assert not (tmp_path / "Heat-copy.mkv").exists()


def test_a_replaced_file_goes_to_the_recycle_folder_and_comes_back_on_rollback(tmp_path):
    library = tmp_path / "library"
    old = write(library / "Heat (1995)" / "Heat (1995) [WEB 720p].mkv", b"old")
    source = write(tmp_path / "inbox" / "Heat.1995.1080p.mkv", b"new")
    placed = placing.place(source, library, "Heat (1995)/Heat (1995) [WEB 1080p].mkv",
                           replace=old, day="2026-11-29")
    assert not old.exists() and placed.recycled.read_bytes() == b"old"
    assert placed.recycled == library / ".cairn-recycle" / "2026-11-29" / "Heat (1995)" / old.name
    placed.rollback()
    assert old.read_bytes() == b"old" and not placed.path.exists()
    assert not (library / ".cairn-recycle" / "2026-11-29" / "Heat (1995)").exists()


def test_an_existing_file_is_never_overwritten(tmp_path):
    library = tmp_path / "library"
    there = write(library / "Heat" / "Heat.mkv", b"keep me")
    source = write(tmp_path / "inbox" / "Heat.mkv", b"other")
    with pytest.raises(placing.PlaceError, match="already in the library"):
        placing.place(source, library, "Heat/Heat.mkv")
    assert there.read_bytes() == b"keep me" and source.read_bytes() == b"other"


def test_a_full_library_disk_undoes_everything(tmp_path, mounted):
    library = mounted("library", "-t", "tmpfs", "-o", "size=1m", "tmpfs")
    old = write(library / "Heat" / "Heat [SD].mkv", b"old")
    source = write(tmp_path / "inbox" / "Heat.mkv", os.urandom(3_000_000))
    with pytest.raises(placing.PlaceError, match="disk is full"):
        placing.place(source, library, "Heat (1995)/Heat [HD].mkv", replace=old)
    assert old.read_bytes() == b"old" and source.stat().st_size == 3_000_000
    assert sorted(p.name for p in library.rglob("*")) == ["Heat", "Heat [SD].mkv"]
