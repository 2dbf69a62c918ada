"""Manifests written from real trees: every entry with its hash, hashes reused across
hardlinked snapshots, folders listed, found and compared, files re-read and checked."""

import os
import random
import subprocess

import pytest
import xxhash

from jobs.engines import manifest, rsync
from tests.helpers.trees import awkward_tree, write


def index(tree, out, previous=None, fresh=()):
    return manifest.write(tree, out, previous, fresh=fresh)


def rows(path):
    """Every entry of a manifest with its folder's path, sorted."""
    with manifest.Manifest(path) as m:
        return sorted(m.con.execute(
            "SELECT f.path, e.name, e.kind, e.size, e.files, e.mtime_ns, e.mode, e.uid, "
            "e.gid, e.ino, e.hash, e.target FROM entry e JOIN folder f ON f.id = e.parent"))


def test_every_entry_is_listed_with_its_hash(tmp_path):
    tree = awkward_tree(tmp_path / "snap")
    summary = index(tree, tmp_path / "m.sqlite")
    with manifest.Manifest(tmp_path / "m.sqlite") as m:
        report = m.entry("docs/report.txt")
        assert report.kind == "f" and report.size == 10 and report.mode & 0o777 == 0o640
        assert report.mtime_ns == 1_600_000_000 * 10**9
        assert report.hash == xxhash.xxh3_128(b"quarterly\n").digest()
        assert m.entry("dangling").kind == "l" and m.entry("dangling").target == "/nonexistent/target"
        assert m.entry("empty/nested-empty").kind == "d"
        assert m.entry("names/latin1-\udce9t\udce9/caf\udce9.txt").size == len(b"invalid utf-8 name")
        assert m.entry("names/new\nline/file").kind == "f"
        files = [e for e in m.files()]
    on_disk = sum(len(f) for _, _, f in os.walk(tree))
    # symlinks count as entries, not files
    assert summary.files == len(files) == on_disk - 2
    assert summary.bytes == sum(e.size for e in files)


def test_folders_carry_the_totals_of_everything_below_them(tmp_path):
    tree = tmp_path / "snap"
    write(tree / "a" / "b" / "one", b"x" * 100)
    write(tree / "a" / "two", b"x" * 20)
    write(tree / "three", b"x" * 3)
    index(tree, tmp_path / "m.sqlite")
    with manifest.Manifest(tmp_path / "m.sqlite") as m:
        assert (m.entry("a").size, m.entry("a").files) == (120, 2)
        assert (m.entry("a/b").size, m.entry("a/b").files) == (100, 1)
        assert (m.entry("").size, m.entry("").files) == (123, 3)


def test_a_hardlinked_snapshot_reuses_the_previous_hashes_and_reads_only_new_data(tmp_path):
    first = tmp_path / "2026-01-01T000000Z"
    write(first / "big.bin", os.urandom(300_000))
    write(first / "small.txt", "unchanged")
    index(first, tmp_path / "first.sqlite")
    second = tmp_path / "2026-01-02T000000Z"
    subprocess.run(["rsync", "-a", f"--link-dest={first}", f"{first}/", f"{second}/"], check=True)
    write(second / "added.txt", "new file")
    summary = index(second, tmp_path / "second.sqlite", tmp_path / "first.sqlite")
    assert (summary.reused, summary.new_files, summary.hashed_bytes) == (2, 1, len("new file"))
    with manifest.Manifest(tmp_path / "second.sqlite") as m:
        assert m.entry("big.bin").hash == xxhash.xxh3_128((first / "big.bin").read_bytes()).digest()
        assert m.entry("added.txt").hash == xxhash.xxh3_128(b"new file").digest()


def test_a_file_changed_in_place_is_hashed_again(tmp_path):
    first = tmp_path / "one"
    write(first / "f", "aaaa", mtime=1_600_000_000)
    index(first, tmp_path / "1.sqlite")
    second = tmp_path / "two"
    write(second / "f", "bbbb", mtime=1_600_000_000)   # another inode, same size and time
    summary = index(second, tmp_path / "2.sqlite", tmp_path / "1.sqlite")
    assert summary.reused == 0
    with manifest.Manifest(tmp_path / "2.sqlite") as m:
        assert m.entry("f").hash == xxhash.xxh3_128(b"bbbb").digest()


def test_a_manifest_is_whole_or_absent(tmp_path):
    out = tmp_path / "m.sqlite"
    with pytest.raises(FileNotFoundError):
        index(tmp_path / "missing", out)
    assert not out.exists()


class TestReading:
    @pytest.fixture
    def folder(self, tmp_path):
        tree = tmp_path / "snap"
        for i in range(250):
            write(tree / "big" / f"file{i:03}.txt", b"x" * i, mtime=1_600_000_000 + (i * 7) % 250)
        (tree / "big" / "sub").mkdir()
        os.utime(tree / "big" / "sub", (1_500_000_000, 1_500_000_000))
        index(tree, tmp_path / "m.sqlite")
        with manifest.Manifest(tmp_path / "m.sqlite") as m:
            yield m

    def test_a_folder_pages_with_its_folders_first(self, folder):
        assert folder.count("big") == 251
        first = folder.children("big", limit=3)
        assert [e.name for e in first] == ["sub", "file000.txt", "file001.txt"]
        assert [e.name for e in folder.children("big", offset=250)] == ["file249.txt"]

    def test_names_sort_as_people_read_them(self, tmp_path):
        tree = tmp_path / "photos"
        names = ["photo 10.jpg", "Photo 2.jpg", "photo 1.jpg", "apple.txt", "Zebra.txt",
                 "photo 02b.jpg", "Été.txt", "IMG_0100.jpg", "IMG_99.jpg"]
        for name in names:
            write(tree / name, b"x")
        index(tree, tmp_path / "p.sqlite")
        with manifest.Manifest(tmp_path / "p.sqlite") as m:
            assert [e.name for e in m.children("")] == [
                "apple.txt", "Été.txt", "IMG_99.jpg", "IMG_0100.jpg", "photo 1.jpg",
                "Photo 2.jpg", "photo 02b.jpg", "photo 10.jpg", "Zebra.txt"]
            assert [e.name for e in m.children("", descending=True, limit=2)] == [
                "Zebra.txt", "photo 10.jpg"]

    def test_it_sorts_by_size_and_time_both_ways(self, folder):
        assert folder.children("big", sort="size", descending=True, limit=1)[0].name == "file249.txt"
        newest = folder.children("big", sort="mtime", descending=True, limit=1)[0]
        assert newest.mtime_ns == max(e.mtime_ns for e in folder.files())

    def test_find_matches_part_of_a_name_ignoring_case_and_treats_wildcards_literally(self, folder):
        assert [e.path for e in folder.find("FILE24")] == [f"big/file24{i}.txt" for i in range(10)]
        assert folder.find("%") == [] and folder.find("_") == []


def test_compare_counts_and_lists_added_removed_and_changed_files(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for tree in (old, new):
        write(tree / "same.txt", "same", mtime=1_600_000_000)
    write(old / "gone.txt", "bye")
    write(old / "edited.txt", "before")
    write(new / "edited.txt", "after!")
    write(new / "sub" / "added.txt", "hello")
    index(old, tmp_path / "old.sqlite")
    index(new, tmp_path / "new.sqlite")
    diff = manifest.compare(tmp_path / "old.sqlite", tmp_path / "new.sqlite")
    assert diff.counts == {"added": 1, "removed": 1, "changed": 1}
    assert [e.path for e in diff.added] == ["sub/added.txt"]
    assert [e.path for e in diff.removed] == ["gone.txt"]
    assert [e.path for e in diff.changed] == ["edited.txt"]


class TestVerify:
    @pytest.fixture
    def snap(self, tmp_path):
        tree = tmp_path / "snap"
        for i in range(20):
            write(tree / "d" / f"f{i}", os.urandom(5000))
        index(tree, tmp_path / "m.sqlite")
        return tree

    def check(self, tmp_path, snap, percent=None):
        with manifest.Manifest(tmp_path / "m.sqlite") as m:
            return manifest.verify(snap, m, manifest.choose(m, percent, random.Random(4)))

    def test_an_untouched_snapshot_is_intact(self, tmp_path, snap):
        result = self.check(tmp_path, snap)
        assert result.intact and result.checked == 20 and result.bytes == 100_000

    def test_one_flipped_byte_is_found(self, tmp_path, snap):
        with open(snap / "d" / "f7", "r+b") as fh:
            fh.seek(2500)
            byte = fh.read(1)
            fh.seek(2500)
            fh.write(bytes([byte[0] ^ 1]))
        result = self.check(tmp_path, snap)
        assert result.changed == ["d/f7 (content differs from the manifest)"] and not result.intact

    def test_missing_replaced_and_unreadable_files_are_told_apart(self, tmp_path, snap):
        (snap / "d" / "f1").unlink()
        (snap / "d" / "f2").unlink()
        os.symlink("f3", snap / "d" / "f2")
        (snap / "d" / "f4").unlink()
        os.mkfifo(snap / "d" / "f4")
        result = self.check(tmp_path, snap)
        assert result.missing == ["d/f1"]
        assert sorted(result.changed) == ["d/f2 (is no longer a file)", "d/f4 (is no longer a file)"]

    def test_a_sample_reads_that_share_of_the_files(self, tmp_path, snap):
        result = self.check(tmp_path, snap, percent=25)
        assert result.chosen == result.checked == 5 and result.total == 20

    def test_a_symlinked_folder_cannot_lead_the_check_out_of_the_snapshot(self, tmp_path, snap):
        outside = tmp_path / "outside"
        (snap / "d").rename(outside)
        os.symlink(outside, snap / "d")
        result = self.check(tmp_path, snap)
        assert result.checked == 20 and len(result.unreadable) + len(result.changed) == 20


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "..",
                                  "a\x00b", "x/" + "y" * 5000])
def test_paths_that_leave_or_bend_the_snapshot_are_refused(path):
    with pytest.raises(manifest.PathRefused):
        manifest.clean_path(path)


@pytest.mark.parametrize("path,clean", [("", ""), ("a/b/", "a/b"), ("%2e%2e", "%2e%2e"),
                                        ("..a/b..", "..a/b..")])
def test_plain_paths_pass(path, clean):
    assert manifest.clean_path(path) == clean


def test_opening_inside_a_snapshot_never_follows_a_symlink(tmp_path):
    root = tmp_path / "snap"
    write(root / "real" / "f", "inside")
    write(tmp_path / "secret", "outside")
    os.symlink(tmp_path, root / "escape")
    os.symlink(tmp_path / "secret", root / "real" / "link")
    fd = manifest.open_inside(str(root), "real/f")
    assert os.read(fd, 100) == b"inside"
    os.close(fd)
    for path in ("escape/secret", "real/link"):
        with pytest.raises(OSError):
            manifest.open_inside(str(root), path)


@pytest.mark.parametrize("by", ["listing", "lstat"])
def test_rows_taken_from_the_previous_manifest_equal_a_fresh_index(tmp_path, monkeypatch, by):
    if by == "lstat":   # as on a filesystem whose listing's inode numbers are not st_ino
        monkeypatch.setattr(manifest._Walk, "PROBE_FILES", 10**9)
    first = tmp_path / "2026-01-01T000000Z"
    awkward_tree(first)
    for i in range(100):   # more files than the d_ino probe checks
        write(first / "many" / f"{i}.txt", f"{i}" * i, mode=0o600 if i % 2 else 0o644)
    index(first, tmp_path / "first.sqlite")
    second = tmp_path / "2026-01-02T000000Z"
    subprocess.run(["rsync", "-aH", f"--link-dest={first}", f"{first}/", f"{second}/"], check=True)
    write(second / "many" / "new.txt", "new")
    os.unlink(second / "many" / "7.txt")
    write(second / "many" / "7.txt", "7" * 7)   # a new inode, same size and content
    reused = index(second, tmp_path / "reused.sqlite", tmp_path / "first.sqlite")
    fresh = index(second, tmp_path / "fresh.sqlite")
    assert reused.reused == fresh.files - 2 and reused.hashed_bytes == 3 + 7
    assert reused.new_files == 2 and (reused.files, reused.bytes) == (fresh.files, fresh.bytes)
    assert rows(tmp_path / "reused.sqlite") == rows(tmp_path / "fresh.sqlite")


def test_hashes_rsync_computed_while_copying_spare_reading_the_files(tmp_path):
    source = awkward_tree(tmp_path / "src")
    write(source / "back\\#123slash", "a name rsync must escape")
    write(source / "big.bin", os.urandom(3_000_000))
    snap = tmp_path / "snap"
    transfer = rsync.Transfer(source=str(source), dest=str(snap), checksums=True)
    result = rsync.run(transfer, sums_path=str(tmp_path / "unit.sums"))
    assert result.exit_code == 0
    fresh = list(rsync.read_sums(tmp_path / "unit.sums"))
    assert len(fresh) >= 10
    summary = index(snap, tmp_path / "sums.sqlite", fresh=fresh)
    plain = index(snap, tmp_path / "plain.sqlite")
    # Every file rsync copied took rsync's hash; only the second of the hardlinked pairs
    # (which rsync links, not copies) was read.
    assert summary.rsync_hashed == len(fresh) == summary.files - 2
    assert summary.hashed_bytes == plain.hashed_bytes - sum(size for _, size, _ in fresh)
    assert rows(tmp_path / "sums.sqlite") == rows(tmp_path / "plain.sqlite")


def test_a_hash_from_rsync_for_a_file_whose_size_changed_since_is_not_taken(tmp_path):
    tree = tmp_path / "snap"
    write(tree / "a" / "kept.txt", "same")
    write(tree / "a" / "grown.txt", "longer now")
    wrong = b"\0" * 16
    summary = index(tree, tmp_path / "m.sqlite",
                    fresh=[(b"a/kept.txt", 4, wrong), (b"a/grown.txt", 4, wrong), (b"gone", 1, wrong)])
    assert (summary.rsync_hashed, summary.hashed_bytes) == (1, len("longer now"))
    with manifest.Manifest(tmp_path / "m.sqlite") as m:
        assert m.entry("a/kept.txt").hash == wrong   # taken as rsync gave it
        assert m.entry("a/grown.txt").hash == xxhash.xxh3_128(b"longer now").digest()


def test_a_check_reports_the_data_read_inside_a_large_file_and_stops_there(tmp_path,
                                                                           monkeypatch):
    write(tmp_path / "snap" / "video.mkv", os.urandom(8 * manifest.BUFFER_BYTES))
    index(tmp_path / "snap", tmp_path / "m.sqlite")
    monkeypatch.setattr(manifest.verifying, "PROGRESS_SECONDS", 0.0)   # report after every read
    with manifest.Manifest(tmp_path / "m.sqlite") as m:
        chosen = list(m.files())
        seen = []
        check = manifest.verify(tmp_path / "snap", m, chosen,
                                on_progress=lambda c: seen.append((c.checked, c.bytes)))
        assert check.intact and check.chosen_bytes == check.bytes == 8 * manifest.BUFFER_BYTES
        assert len({read for checked, read in seen if checked == 0 and 0 < read}) >= 4, seen
        stopped = manifest.verify(tmp_path / "snap", m, chosen, should_stop=lambda: True)
        assert stopped.stopped and stopped.checked == 0 and stopped.bytes < check.bytes
