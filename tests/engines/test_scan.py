"""The scanner totals what rsync will copy, folder by folder, without following links."""

import os
import subprocess
import time

import pytest

from jobs.engines.filters import Excludes
from jobs.engines.scan import ScanCallbacks, ScanCancelled, scan
from tests.trees import awkward_tree, write


def rsync_totals(source, excludes=()):
    args = ["rsync", "-a", "-n", "--out-format=%i %l"] + [f"--exclude={p}" for p in excludes]
    out = subprocess.run(args + ["--", f"{source}/", "/nonexistent-dest/"], check=True,
                         capture_output=True, text=True, errors="replace").stdout.splitlines()
    files = [line for line in out if line[1:2] != "d" and not line.startswith("created ")]
    return len(files), sum(int(line.split()[1]) for line in files)


def test_totals_match_what_rsync_lists(tmp_path):
    source = awkward_tree(tmp_path / "src")
    folders = {}
    root = scan(str(source), callbacks=ScanCallbacks(on_dir=lambda t: folders.update({t.path: t})))
    assert (root.files, root.bytes) == rsync_totals(source)
    assert folders["photos/2024"].files == 2
    assert folders["photos"].files == 3 and folders["photos"].subdirs == 1
    assert folders["empty/nested-empty"].files == 0
    assert root.path == "" and folders[""] is root


def test_children_are_reported_before_their_parents(tmp_path):
    write(tmp_path / "a" / "b" / "c" / "f", "x")
    order = []
    scan(str(tmp_path / "a"), callbacks=ScanCallbacks(on_dir=lambda t: order.append(t.path)))
    assert order == ["b/c", "b", ""]


def test_excludes_are_applied_like_rsync(tmp_path):
    source = awkward_tree(tmp_path / "src")
    patterns = ["*.jpg", "/docs/", "names/*/file"]
    root = scan(str(source), Excludes(patterns))
    assert (root.files, root.bytes) == rsync_totals(source, patterns)


def test_files_with_several_links_are_reported(tmp_path):
    source = awkward_tree(tmp_path / "src")
    links = []
    scan(str(source), callbacks=ScanCallbacks(on_link=lambda dev, ino, p: links.append((ino, p))))
    by_inode = {}
    for ino, path in links:
        by_inode.setdefault(ino, set()).add(path)
    assert {"docs/report.txt", "photos/report-hardlink.txt"} in by_inode.values()
    assert {"photos/2024/beach.jpg", "names/beach-again.jpg"} in by_inode.values()


def test_one_file_system_stops_at_a_mount_point(tmp_path):
    write(tmp_path / "src" / "here.txt", "x")
    mount = tmp_path / "src" / "mnt"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        write(mount / "elsewhere.txt", "y" * 100)
        assert scan(str(tmp_path / "src"), one_file_system=True).files == 1
        assert scan(str(tmp_path / "src"), one_file_system=False).files == 2
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_deep_tree_does_not_exhaust_descriptors_or_the_stack(tmp_path):
    deep = tmp_path / "src"
    path = os.fsencode(str(deep))
    os.mkdir(path)
    for _ in range(1500):
        path += b"/d"
        os.mkdir(path)
    open(path + b"/f", "wb").close()
    try:
        assert scan(str(deep)).files == 1
    finally:
        # shutil.rmtree (pytest's cleanup) recurses once per level and would fail here.
        subprocess.run(["rm", "-rf", "--", str(deep)], check=True)


def test_a_scan_stops_when_asked(tmp_path):
    for i in range(20):
        write(tmp_path / "src" / f"d{i}" / "f", "x")
    with pytest.raises(ScanCancelled):
        scan(str(tmp_path / "src"), callbacks=ScanCallbacks(should_stop=lambda: True))


def test_extended_attributes_are_found_only_when_asked(tmp_path):
    write(tmp_path / "src" / "plain" / "a.txt", "a")
    tagged = write(tmp_path / "src" / "deep" / "er" / "b.txt", "b")
    assert not scan(str(tmp_path / "src"), find_xattrs=True).xattrs
    os.setxattr(tagged, "user.origin", b"camera")
    assert scan(str(tmp_path / "src"), find_xattrs=True).xattrs
    assert not scan(str(tmp_path / "src"), find_xattrs=False).xattrs


def test_files_unchanged_since_an_earlier_empty_look_are_not_asked_again(tmp_path):
    tagged = write(tmp_path / "src" / "deep" / "er" / "b.txt", "b")
    os.setxattr(tagged, "user.origin", b"camera")
    # An earlier look "after" every change found nothing, so nothing here is asked again...
    later = time.time() + 60
    assert not scan(str(tmp_path / "src"), find_xattrs=True, xattrs_none_before=later).xattrs
    # ... but what changed since that look is.
    earlier = time.time() - 60
    assert scan(str(tmp_path / "src"), find_xattrs=True, xattrs_none_before=earlier).xattrs


def test_a_folder_moved_in_whole_has_every_file_asked_however_old(tmp_path):
    write(tmp_path / "src" / "plain" / "a.txt", "a")
    old = write(tmp_path / "elsewhere" / "album" / "day 1" / "c.jpg", "c")
    os.setxattr(old, "user.origin", b"camera")
    time.sleep(0.05)
    looked = time.time()
    time.sleep(0.05)
    assert not scan(str(tmp_path / "src"), find_xattrs=True, xattrs_none_before=looked).xattrs
    # Moving changes the moved folder's ctime, not that of the old files inside it.
    os.rename(tmp_path / "elsewhere" / "album", tmp_path / "src" / "plain" / "album")
    assert os.stat(tmp_path / "src" / "plain" / "album" / "day 1" / "c.jpg").st_ctime < looked
    assert scan(str(tmp_path / "src"), find_xattrs=True, xattrs_none_before=looked).xattrs


def test_extended_attributes_directly_in_the_folder_count_too(tmp_path):
    os.setxattr(write(tmp_path / "src" / "a.txt", "a"), "user.tag", b"1")
    assert scan(str(tmp_path / "src"), find_xattrs=True).xattrs
