"""The media import, run for real on temp folders: files settle in an inbox, are identified
from their names, decided on, and placed into the library (hardlinked, or copied across
filesystems), with every refusal's reasons kept and nothing lost."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from jobs import imports
from jobs import library as lib
from jobs.engines import placing
from models import Event, ImportItem, Inbox, Library, Movie, MovieFile, QualityProfile
from tests.helpers.settings import use_settings
from tests.helpers.trees import write

pytestmark = pytest.mark.usefixtures("inline")
MB = 1024 * 1024
NOW = dt.datetime(2026, 11, 29, 12, 0)
LATER = NOW + dt.timedelta(minutes=5)


@pytest.fixture
def folders(tmp_path):
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    inbox.mkdir()
    library.mkdir()
    lib.set_root(str(library))
    lib.add_inbox(str(inbox))
    return inbox, library


def movie(inbox: Path, name: str, size: int = 2 * MB, fill: bytes = b"m") -> Path:
    data = (fill * (size // len(fill) + 1))[:size]
    return write(inbox / name, data)


def run(**kwargs) -> imports.Sweep:
    """One sweep now, and one after the files settled."""
    imports.sweep(now=NOW, **kwargs)
    return imports.sweep(now=LATER, **kwargs)


def item_of(path: Path) -> ImportItem:
    return ImportItem.get(ImportItem.path == str(path))


def test_a_settled_movie_is_hardlinked_into_the_library_under_the_template(folders):
    inbox, library = folders
    source = movie(inbox, "Heat.1995.1080p.BluRay.x264-GRP/Heat.1995.1080p.BluRay.x264-GRP.mkv")
    run()
    item = item_of(source)
    assert item.state == "imported", item.reasons
    placed = library / "Heat (1995)" / "Heat (1995) [Bluray-1080p].mkv"
    assert item.destination == "Heat (1995)/Heat (1995) [Bluray-1080p].mkv"
    assert placed.stat().st_ino == source.stat().st_ino and item.method == "hardlink"
    assert source.exists(), "the inbox file stays (keep mode)"
    assert (item.title, item.year, item.quality, item.group) == ("Heat", 1995, "Bluray-1080p", "GRP")
    record = MovieFile.get()
    assert (record.movie.title, record.movie.year, record.quality, record.size) == \
        ("Heat", 1995, "Bluray-1080p", 2 * MB)
    assert record.content_hash == placing.file_hash(placed)
    steps = [e.kind for e in Event.select().where(Event.subject == item.subject).order_by(Event.id)]
    assert steps == ["import.waiting", "import.identifying", "import.deciding", "import.importing",
                     "import.imported"]
    assert item.identity_note.startswith("TMDB lookups are off")


def test_a_file_is_taken_only_once_it_stopped_changing(folders):
    inbox, library = folders
    source = movie(inbox, "Heat.1995.720p.WEB-DL.mkv", size=MB)
    imports.sweep(now=NOW)
    assert item_of(source).state == "waiting"
    with open(source, "ab") as grows:
        grows.write(b"more")
    os.utime(source, ns=(0, source.stat().st_mtime_ns + 1_000_000))
    imports.sweep(now=NOW + dt.timedelta(seconds=59))
    assert item_of(source).state == "waiting", "it changed: the wait starts over"
    imports.sweep(now=NOW + dt.timedelta(seconds=100))
    assert item_of(source).state == "waiting"
    imports.sweep(now=NOW + dt.timedelta(seconds=160))
    assert item_of(source).state == "imported"


def test_files_still_being_written_wait_with_the_reason(folders):
    inbox, library = folders
    part = movie(inbox, "Heat.1995.1080p.BluRay.mkv.part")
    unpacking = movie(inbox, "_UNPACK_Heat.1995.1080p.BluRay/Heat.1995.1080p.BluRay.mkv")
    run()
    assert item_of(part).state == "waiting" and item_of(part).message == "Still downloading (.part)."
    assert "working folder (_UNPACK_)" in item_of(unpacking).message
    assert not list(library.iterdir())


def test_side_files_and_hidden_files_are_left_alone(folders):
    inbox, _ = folders
    for name in ("Heat.1995.nfo", "Heat.1995.srt", "poster.jpg", ".DS_Store"):
        write(inbox / name, "x")
    run()
    assert ImportItem.select().count() == 0


def test_a_refused_file_keeps_every_reason_and_import_anyway_takes_it(folders):
    inbox, library = folders
    profile = QualityProfile.create(name="HD", allowed=["WEB 1080p", "Bluray-1080p"],
                                    cutoff="Bluray-1080p")
    Library.update(profile=profile).execute()
    source = movie(inbox, "Heat.1995.DVDRip.sample.avi", size=MB)
    run()
    item = item_of(source)
    assert item.state == "blocked" and item.needs_attention and item.overridable
    assert item.reasons == ["A sample, not the movie.",
                            "The quality profile 'HD' does not take DVD."]
    assert imports.import_anyway(item)
    item = item_of(source)
    assert item.state == "imported"
    assert item.reasons == ["Imported anyway: A sample, not the movie.",
                            "Imported anyway: The quality profile 'HD' does not take DVD."]
    assert (library / item.destination).exists()


def test_an_upgrade_replaces_the_library_file_and_recycles_the_old_one(folders):
    inbox, library = folders
    old = movie(inbox, "Heat.1995.720p.WEB-DL.mkv", fill=b"old")
    run()
    better = movie(inbox, "Heat.1995.1080p.BluRay.mkv", fill=b"new")
    imports.sweep(now=LATER + dt.timedelta(minutes=1))
    imports.sweep(now=LATER + dt.timedelta(minutes=5))
    item = item_of(better)
    assert item.state == "imported" and item.action == "upgrade"
    assert sorted(p.relative_to(library).as_posix() for p in library.rglob("*.mkv")) == [
        ".cairn-recycle/" + lib.recycle_day(LATER) +
        "/Heat (1995)/Heat (1995) [WEB 720p].mkv",
        "Heat (1995)/Heat (1995) [Bluray-1080p].mkv"]
    assert item.recycled.endswith("Heat (1995) [WEB 720p].mkv")
    assert [f.quality for f in MovieFile.select()] == ["Bluray-1080p"]
    assert old.exists() and Movie.select().count() == 1


def test_a_worse_copy_is_refused_as_not_an_upgrade(folders):
    inbox, _ = folders
    movie(inbox, "Heat.1995.1080p.BluRay.mkv", fill=b"good")
    run()
    worse = movie(inbox, "Heat.1995.720p.HDTV.mkv", fill=b"worse")
    imports.sweep(now=LATER + dt.timedelta(minutes=1))
    imports.sweep(now=LATER + dt.timedelta(minutes=5))
    assert item_of(worse).reasons == [
        "Not an upgrade: the library has it in Bluray-1080p, this is HDTV-720p."]


def test_content_already_in_the_library_is_not_copied_again(folders):
    inbox, library = folders
    movie(library, "Movies/Heat 1995/heat.mkv", fill=b"same")
    assert lib.scan_library() == (1, 0)
    assert MovieFile.get().origin == "found" and MovieFile.get().content_hash == ""
    renamed = movie(inbox, "heat-1995-bluray-1080p-other.mkv", fill=b"same")
    run()
    item = item_of(renamed)
    assert item.state == "imported" and item.action == "link_identical" and item.method == "none"
    assert item.destination == "Movies/Heat 1995/heat.mkv"
    assert item.message.startswith("The same content is already in the library")
    assert len(list(library.rglob("*.mkv"))) == 1


def test_a_file_already_imported_is_not_imported_twice(folders):
    inbox, _ = folders
    first = movie(inbox, "Heat.1995.1080p.BluRay.mkv", fill=b"once")
    run()
    imports.sweep(now=LATER + dt.timedelta(hours=1))
    assert ImportItem.select().count() == 1 and item_of(first).state == "imported"
    again = movie(inbox, "redownloaded/Heat (1995) Remux.mkv", fill=b"once")
    imports.sweep(now=LATER + dt.timedelta(hours=2))
    imports.sweep(now=LATER + dt.timedelta(hours=3))
    assert item_of(again).reasons == [
        "Already imported: a file with the same content was imported before."]


def test_the_library_scan_records_files_it_was_given_and_forgets_removed_ones(folders):
    _, library = folders
    heat = movie(library, "Heat (1995)/Heat.1995.720p.HDTV.mkv")
    movie(library, "Alien (1979)/Alien.1979.2160p.UHD.BluRay.REMUX.mkv")
    write(library / "Alien (1979)/poster.jpg", "x")
    assert lib.scan_library() == (2, 0)
    assert sorted((f.movie.label, f.quality) for f in MovieFile.select()) == [
        ("Alien (1979)", "Remux-2160p"), ("Heat (1995)", "HDTV-720p")]
    heat.unlink()
    assert lib.scan_library() == (0, 1)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_across_filesystems_the_file_is_copied_and_checked(folders, tmp_path):
    inbox, _ = folders
    with tmpfs(tmp_path / "other", "16m") as other:
        Library.update(root="", free_margin_mb=1).execute()
        lib.set_root(str(other))
        source = movie(inbox, "Heat.1995.1080p.BluRay.mkv")
        run()
        item = item_of(source)
        assert item.state == "imported" and item.method in ("copy", "reflink"), item.reasons
        placed = other / item.destination
        assert placed.stat().st_ino != source.stat().st_ino
        assert placing.file_hash(placed) == placing.file_hash(source) == item.content_hash


def test_a_full_library_disk_blocks_the_import_and_loses_nothing(folders, tmp_path):
    inbox, _ = folders
    with tmpfs(tmp_path / "small", "4m") as small:
        Library.update(root="", free_margin_mb=1).execute()
        lib.set_root(str(small))
        source = movie(inbox, "Heat.1995.1080p.BluRay.mkv", size=3 * MB + MB // 2)
        run()
        item = item_of(source)
        assert item.state == "blocked"
        assert item.reasons == ["Not enough free space in the library: 4.2 MB free, 3.7 MB needed "
                                "plus a margin of 1.0 MB."]
        assert source.stat().st_size == 3 * MB + MB // 2 and not list(small.rglob("*.mkv"))


@pytest.mark.parametrize("name, title, year", [
    ("Heat.1080p.BluRay.mkv", "Heat", None),
    ("Amélie.2001.1080p.BluRay.mkv", "Amélie", 2001),
    ("Léon.The.Professional.1994.720p.WEB-DL.mkv", "Léon The Professional", 1994),
    ("Heat.1995.1080p.WEB-DL-GRP/a8f3b1c9d2.mkv", "Heat", 1995),
])
def test_odd_names_are_imported_from_what_they_say(folders, name, title, year):
    inbox, library = folders
    source = movie(inbox, name, size=MB)
    run()
    item = item_of(source)
    assert item.state == "imported", item.reasons
    assert (item.title, item.year) == (title, year)
    assert (library / item.destination).exists()


def test_a_255_byte_name_is_imported_under_a_name_that_fits(folders):
    inbox, library = folders
    name = "The." + "Très.Long." * 20 + "Title.2001.1080p.BluRay.mkv"
    assert 250 <= len(name.encode()) <= 255
    source = movie(inbox, name, size=MB)
    run()
    item = item_of(source)
    assert item.state == "imported"
    assert all(len(part.encode()) <= 255 for part in item.destination.split("/"))
    assert (library / item.destination).exists()


def test_a_name_that_says_no_quality_is_refused_until_imported_anyway(folders):
    inbox, library = folders
    source = movie(inbox, "Heat.mkv", size=MB)
    run()
    assert item_of(source).reasons == [
        "The quality could not be read from the name (no 1080p, BluRay, WEB-DL or the like in "
        "it), and the quality profile 'Any' takes only the qualities it lists."]
    imports.import_anyway(item_of(source))
    assert (library / "Heat" / "Heat [Unknown].mkv").exists()


def test_a_name_with_no_title_waits_for_a_person_who_names_it(folders):
    inbox, library = folders
    source = movie(inbox, "1080p.BluRay.x264.mkv", size=MB)
    run()
    item = item_of(source)
    assert item.state == "blocked"
    assert item.reasons == ["The name says no title: identify it by hand."]
    assert imports.identify(item, "Heat", 1995)
    item = item_of(source)
    assert item.state == "imported" and item.destination.startswith("Heat (1995)/")
    assert (item.manual_title, item.manual_year, item.title) == ("Heat", 1995, "")


def test_empty_files_symlinks_and_executables_are_refused_with_their_reasons(folders, tmp_path):
    inbox, library = folders
    empty = write(inbox / "Heat.1995.1080p.BluRay.mkv", b"")
    loop = inbox / "Loop.2000.1080p.BluRay.mkv"
    loop.symlink_to(loop)
    outside = inbox / "Outside.2001.1080p.BluRay.mkv"
    outside.symlink_to(write(tmp_path / "elsewhere.mkv", b"x" * 100))
    setup = movie(inbox, "Heat.1995.1080p.BluRay.mkv.exe", size=MB)
    run()
    assert item_of(empty).reasons == ["The file is empty (0 bytes)."]
    assert not item_of(empty).overridable
    for link in (loop, outside):
        assert item_of(link).state == "blocked"
        assert item_of(link).reasons[0].startswith("A symbolic link: Cairn imports only real files")
    assert item_of(setup).reasons == [
        "Dangerous file type .exe: an executable or script is never imported."]
    assert not list(library.rglob("*.*"))
    assert empty.exists() and setup.exists() and loop.is_symlink()


def test_a_refused_file_that_changes_gets_a_fresh_look(folders):
    inbox, _ = folders
    source = write(inbox / "Heat.1995.1080p.BluRay.mkv", b"")
    run()
    assert item_of(source).state == "blocked"
    write(source, b"now the whole movie")
    imports.sweep(now=LATER + dt.timedelta(minutes=1))
    assert item_of(source).state == "waiting"
    imports.sweep(now=LATER + dt.timedelta(minutes=5))
    assert item_of(source).state == "imported"


def test_a_failure_is_retried_then_dead_lettered_until_someone_retries(folders, monkeypatch):
    inbox, library = folders
    use_settings(monkeypatch, retry_delay=1)
    source = movie(inbox, "Heat.1995.1080p.BluRay.mkv", size=MB)
    library.rename(library.with_name("unplugged"))
    imports.sweep(now=NOW)
    clock = LATER
    for attempt in range(1, 4):
        imports.sweep(now=clock)
        item = item_of(source)
        assert (item.state, item.attempts) == ("waiting", attempt)
        assert item.message.startswith(f"Try {attempt} of 4 failed: The library folder")
        clock += dt.timedelta(minutes=10)
    imports.sweep(now=clock)
    item = item_of(source)
    assert item.state == "failed" and item.attempts == 4 and item.needs_attention
    assert "is not there (a drive unplugged?)" in item.message
    library.with_name("unplugged").rename(library)
    assert imports.retry(item)
    assert item_of(source).state == "imported"


def test_move_mode_takes_the_file_out_of_the_inbox_once_it_is_recorded(folders):
    inbox, library = folders
    Library.update(mode="move").execute()
    source = movie(inbox, "Heat.1995.1080p.BluRay.mkv")
    run()
    assert item_of(source).state == "imported"
    assert not source.exists() and len(list(library.rglob("*.mkv"))) == 1


def test_a_file_that_left_the_inbox_is_marked_gone(folders):
    inbox, _ = folders
    source = movie(inbox, "Heat.1995.1080p.BluRay.mkv")
    imports.sweep(now=NOW)
    source.unlink()
    imports.sweep(now=LATER)
    assert item_of(source).state == "gone"


def test_without_a_library_folder_files_wait(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    lib.add_inbox(str(inbox))
    source = movie(inbox, "Heat.1995.1080p.BluRay.mkv")
    found = run()
    assert found.problems == ["No library folder is set: files wait in the inbox until an admin "
                              "sets one (Library settings, or `library root PATH`)."]
    assert item_of(source).state == "waiting"


@pytest.mark.parametrize("text, says", [
    ("", "Name the library folder."), ("relative/path", "must be an absolute path"),
    ("/etc", "is a system folder"), ("/nonexistent/folder", "is not a folder on this box"),
])
def test_library_and_inbox_folders_are_checked(text, says):
    with pytest.raises(lib.FolderRefused, match=says):
        lib.set_root(text)


def test_inbox_and_library_may_not_overlap(folders):
    inbox, library = folders
    (library / "incoming").mkdir()
    with pytest.raises(lib.FolderRefused, match="overlaps the library"):
        lib.add_inbox(str(library / "incoming"))
    with pytest.raises(lib.FolderRefused, match="overlaps the inbox"):
        lib.set_root(str(inbox))


def test_an_inbox_that_cannot_be_listed_loses_nothing(folders, tmp_path):
    inbox, _ = folders
    source = movie(inbox, "Heat.1995.1080p.BluRay.mkv")
    write(source.with_name("Alien.1979.mkv"), b"")
    imports.sweep(now=NOW)
    imports.sweep(now=LATER)
    inbox.rename(tmp_path / "unmounted")
    found = imports.sweep(now=LATER + dt.timedelta(minutes=1))
    assert found.problems[0].startswith(f"Cannot list the inbox {inbox}")
    assert [i.state for i in ImportItem.select().order_by(ImportItem.name)] == ["blocked", "imported"]
    assert Inbox.get().problem == found.problems[0]
    (tmp_path / "unmounted").rename(inbox)
    imports.sweep(now=LATER + dt.timedelta(minutes=2))
    assert Inbox.get().problem == ""


def test_the_recycle_folder_keeps_replaced_files_for_the_library_s_days(folders):
    _, library = folders
    Library.update(recycle_days=30).execute()
    recycle = library / placing.RECYCLE
    for day in ("2026-10-29", "2026-10-30", "2026-11-28"):
        write(recycle / day / "Heat (1995)" / "Heat.mkv", b"old")
    write(recycle / "kept by hand" / "note.txt", b"mine")
    assert lib.empty_recycle(dt.datetime(2026, 11, 29, 12, 0)) == ["2026-10-29"]
    assert sorted(p.name for p in recycle.iterdir()) == ["2026-10-30", "2026-11-28", "kept by hand"]
    assert Event.select().where(Event.kind == "library.recycled").count() == 1
    assert lib.empty_recycle(dt.datetime(2026, 11, 29, 12, 0)) == []
