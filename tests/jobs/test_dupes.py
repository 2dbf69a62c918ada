"""Duplicate scans of a real library folder, their hash cache, and resolving what they found:
hardlink or recycle identical copies, keep the best version of a movie."""

import os

import pytest

from jobs import dupes
from jobs import library as lib
from jobs.engines import placing
from models import DupeScan, DuplicateSet, Event, FileHash, MovieFile
from tests.helpers.trees import write

pytestmark = pytest.mark.usefixtures("inline")


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "movies"
    root.mkdir()
    lib.set_root(str(root))
    write(root / "Heat (1995)/Heat (1995) [Bluray-1080p].mkv", b"heat" * 50_000)
    write(root / "Heat (1995)/Heat.1995.720p.HDTV.mkv", b"older" * 1000)
    write(root / "Old Stuff/heat-copy.mkv", b"heat" * 50_000)
    write(root / "Alien (1979)/Alien (1979) [DVD].avi", b"alien" * 30_000)
    return root


def test_a_scan_finds_identical_files_and_caches_their_hashes(library):
    scan = dupes.request("ada")
    assert scan.state == "done", scan.message
    assert scan.message == "4 files looked at: 1 set of identical files, 200 kB to gain."
    [found] = scan.sets
    assert found.paths == ["Heat (1995)/Heat (1995) [Bluray-1080p].mkv", "Old Stuff/heat-copy.mkv"]
    assert found.size == 200_000
    assert FileHash.select().count() == 2
    assert Event.select().where(Event.kind == "dupes.done").count() == 1
    again = dupes.request("ada")
    # Only the funnel's first stages read again (4 KiB heads, 64 KiB edges); the full
    # hashes came from the cache.
    assert again.id != scan.id and again.bytes_read == 2 * (4096 + 2 * 65536) < scan.bytes_read


def test_versions_of_one_movie_are_listed_best_first(library):
    lib.scan_library()
    [(movie, files)] = dupes.versions()
    assert movie.label == "Heat (1995)"
    assert [f.quality for f in files] == ["Bluray-1080p", "HDTV-720p"]


def test_identical_copies_are_hardlinked_keeping_both_names(library):
    found = dupes.request().sets.get()
    dupes.resolve_set(found, "Heat (1995)/Heat (1995) [Bluray-1080p].mkv", "hardlink", "ada")
    keep, other = (library / p for p in found.paths)
    assert keep.stat().st_ino == other.stat().st_ino and other.read_bytes() == b"heat" * 50_000
    resolved = DuplicateSet.get_by_id(found.id)
    assert resolved.resolution == "1 file hardlinked to Heat (1995)/Heat (1995) [Bluray-1080p].mkv."
    with pytest.raises(dupes.CannotResolve, match="resolved already"):
        dupes.resolve_set(resolved, found.paths[0], "recycle")


def test_a_copy_that_changed_since_the_scan_is_left_alone(library):
    found = dupes.request().sets.get()
    write(library / "Old Stuff/heat-copy.mkv", b"HEAT" * 50_000)
    dupes.resolve_set(found, found.paths[0], "hardlink")
    assert (library / "Old Stuff/heat-copy.mkv").read_bytes() == b"HEAT" * 50_000
    assert "no longer has the same content" in DuplicateSet.get_by_id(found.id).resolution


def test_recycling_moves_the_other_copies_aside(library):
    found = dupes.request().sets.get()
    dupes.resolve_set(found, found.paths[0], "recycle")
    assert not (library / "Old Stuff/heat-copy.mkv").exists()
    recycled = list((library / placing.RECYCLE).rglob("heat-copy.mkv"))
    assert len(recycled) == 1 and recycled[0].read_bytes() == b"heat" * 50_000


def test_keeping_the_best_version_recycles_the_rest(library):
    lib.scan_library()
    [(movie, files)] = dupes.versions()
    dupes.keep_version(movie, files[0], "ada")
    assert [f.path for f in MovieFile.select().where(MovieFile.movie == movie)] == [files[0].path]
    assert not (library / "Heat (1995)/Heat.1995.720p.HDTV.mkv").exists()
    assert list((library / placing.RECYCLE).rglob("Heat.1995.720p.HDTV.mkv"))


def test_bad_choices_are_refused(library):
    found = dupes.request().sets.get()
    with pytest.raises(dupes.CannotResolve, match="Keep one of the set's own files"):
        dupes.resolve_set(found, "Alien (1979)/Alien (1979) [DVD].avi", "hardlink")
    with pytest.raises(dupes.CannotResolve, match="hardlink or to recycle"):
        dupes.resolve_set(found, found.paths[0], "delete")


def test_without_a_library_the_scan_fails_with_the_reason(tmp_path):
    scan = dupes.request()
    assert scan.state == "failed" and "No library folder" in scan.message
    assert DupeScan.select().count() == 1 and os.path.exists(tmp_path)
