"""The scanner totals what rsync will copy, folder by folder, without following links."""

import os
import subprocess
import time

import pytest

from jobs.engines.filters import Excludes
from jobs.engines.scan import ScanCallbacks, ScanCancelled, count_excluded, scan, totals_from_listing
from tests.helpers.trees import awkward_tree, write


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


def test_a_folder_swapped_for_a_link_while_scanning_is_not_followed(tmp_path):
    write(tmp_path / "src" / "top.txt", "x")
    write(tmp_path / "src" / "sub" / "inside.txt", "y")
    for i in range(5):
        write(tmp_path / "outside" / f"secret-{i}.txt", "z" * 1000)
    errors, calls = [], []

    def swap_after_the_top_is_read():
        # Asked before each folder is opened: the second time, "sub" has been listed as a
        # folder and is about to be opened.
        calls.append(1)
        if len(calls) == 2:
            (tmp_path / "src" / "sub").rename(tmp_path / "sub-moved")
            (tmp_path / "src" / "sub").symlink_to(tmp_path / "outside")
        return False

    root = scan(str(tmp_path / "src"), callbacks=ScanCallbacks(
        should_stop=swap_after_the_top_is_read, on_error=lambda p, e: errors.append(p)))
    assert len(calls) == 2
    assert (root.files, root.bytes) == (1, 1)
    assert errors == []


@pytest.fixture
def two_filesystems(tmp_path):
    """src/here.txt, and src/mnt/elsewhere.txt on a tmpfs mounted at src/mnt."""
    write(tmp_path / "src" / "here.txt", "x")
    mount = tmp_path / "src" / "mnt"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        write(mount / "elsewhere.txt", "y" * 100)
        yield tmp_path / "src"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_one_file_system_stops_at_a_mount_point(two_filesystems):
    assert scan(str(two_filesystems), one_file_system=True).files == 1
    assert scan(str(two_filesystems), one_file_system=False).files == 2


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
    # The wall clock on purpose: ctimes come from it, and the scan compares them with `looked`;
    # the pauses keep the file's ctime strictly before it and the move's strictly after.
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


# --- What exclude patterns leave out (the profile form's preview) ----------------------------

def left_out(count) -> tuple[int, int]:
    """Files and bytes all patterns leave out together."""
    return sum(f for f, _ in count.by_pattern), sum(b for _, b in count.by_pattern)


@pytest.mark.parametrize("patterns", [["*.jpg"], ["/docs/", "*.jpg"], ["names/*/file", "photos/"],
                                      ["nothing-*"], ["*", "*.jpg"], ["**/2024/***"]])
def test_what_is_left_out_plus_what_is_kept_is_everything(tmp_path, patterns):
    source = awkward_tree(tmp_path / "src")
    count = count_excluded(str(source), Excludes(patterns))
    everything, kept = scan(str(source)), scan(str(source), Excludes(patterns))
    assert (count.files, count.bytes) == (everything.files, everything.bytes)
    assert (count.files - left_out(count)[0], count.bytes - left_out(count)[1]) == \
        (kept.files, kept.bytes) == rsync_totals(source, patterns)


def test_each_file_is_charged_to_the_first_pattern_that_leaves_it_out(tmp_path):
    write(tmp_path / "src" / "cache" / "a.tmp", "x" * 10)     # cache/ takes the whole folder
    write(tmp_path / "src" / "cache" / "deep" / "b.txt", "y" * 20)
    write(tmp_path / "src" / "c.tmp", "z" * 5)
    write(tmp_path / "src" / "keep.txt", "k")
    count = count_excluded(str(tmp_path / "src"), Excludes(["cache/", "*.tmp", "*.none"]))
    assert count.by_pattern == [[2, 30], [1, 5], [0, 0]]
    assert (count.files, count.bytes, *left_out(count)) == (4, 36, 3, 35)


def test_counting_adds_to_a_count_across_folders_and_reports_progress(tmp_path, monkeypatch):
    import jobs.engines.scan as engine
    monkeypatch.setattr(engine, "PROGRESS_EVERY", 2)
    for n in range(5):
        write(tmp_path / "a" / f"{n}.log", "x")
        write(tmp_path / "b" / f"{n}.txt", "y")
    seen = []
    callbacks = ScanCallbacks(on_progress=lambda files, size: seen.append(files))
    count = count_excluded(str(tmp_path / "a"), Excludes(["*.log"]), callbacks=callbacks)
    count_excluded(str(tmp_path / "b"), Excludes(["*.log"]), callbacks=callbacks, count=count)
    assert (count.files, left_out(count)[0]) == (10, 5) and seen and seen == sorted(seen)


def test_counting_stops_at_a_mount_point_when_asked(two_filesystems):
    assert count_excluded(str(two_filesystems), Excludes(["*.txt"]), True).files == 1
    assert count_excluded(str(two_filesystems), Excludes(["*.txt"]), False).files == 2


def test_counting_can_be_stopped(tmp_path):
    write(tmp_path / "src" / "a" / "f", "x")
    with pytest.raises(ScanCancelled):
        count_excluded(str(tmp_path / "src"), Excludes(["f"]),
                       callbacks=ScanCallbacks(should_stop=lambda: True))


@pytest.mark.parametrize("excludes", [[], ["*.txt", "deep/"]])
def test_a_listing_from_rsync_totals_each_folder_as_the_walk_does(tmp_path, excludes):
    root = awkward_tree(tmp_path / "src")
    walked, listed = {}, {}
    scan(str(root), Excludes(excludes), callbacks=ScanCallbacks(
        on_dir=lambda t: walked.setdefault(t.path, (t.files, t.bytes, t.dirs, t.subdirs))))
    listing = subprocess.run(["rsync", "-r", "-l", "--list-only", "--no-human-readable",
                              "--protect-args", *(f"--exclude={p}" for p in excludes),
                              f"{root}/"], check=True, capture_output=True).stdout
    lines = [line.decode("utf-8", "backslashreplace") for line in listing.splitlines()]
    totals = totals_from_listing(lines, ScanCallbacks(
        on_dir=lambda t: listed.setdefault(t.path, (t.files, t.bytes, t.dirs, t.subdirs))))
    plain = {k: v for k, v in walked.items() if k.isprintable() and "\\" not in k}
    assert {k: listed[k] for k in plain} == plain
    assert (totals.files, totals.bytes, totals.dirs) == walked[""][:3]
