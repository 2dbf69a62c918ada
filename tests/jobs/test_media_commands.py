"""`cairn library ...` and `cairn import scan` from a shell, against a real worker, and the
inotify watch that imports a file dropped into an inbox with no command at all."""

import datetime as dt
import os
import shutil
import subprocess

import pytest

from jobs.queue import settings
from models import ImportItem, Inbox, Library, MovieFile
from tests.helpers.cli import CAIRN, ROOT, cairn
from tests.helpers.trees import write
from tests.jobs.conftest import wait_until

pytestmark = pytest.mark.slow
MB = 1024 * 1024


def test_library_and_inboxes_are_set_and_a_scan_imports_what_is_there(tmp_path, worker_factory):
    inbox, library = tmp_path / "downloads", tmp_path / "movies"
    inbox.mkdir()
    library.mkdir()
    assert cairn("library", "root", check=True).stdout == "No library folder is set.\n"
    refused = cairn("library", "root", "/etc")
    assert refused.returncode == 1 and "/etc is a system folder" in refused.stderr
    assert f"The movie library is {library}." in cairn("library", "root", str(library),
                                                       check=True).stdout
    assert f"Watching the inbox {inbox}." in cairn("library", "inbox", "add", str(inbox),
                                                   check=True).stdout
    overlapping = cairn("library", "inbox", "add", str(library))
    assert overlapping.returncode == 1 and "overlaps the library" in overlapping.stderr
    assert cairn("library", "inbox", "list", check=True).stdout == f"{inbox}\n"

    write(inbox / "Heat.1995.1080p.BluRay.x264-GRP.mkv", b"h" * MB)
    write(inbox / "Alien.1979.DVDRip.sample.avi", b"a" * MB)
    write(inbox / "Alien.1979.1080p.WEB-DL.mkv.exe", b"x" * MB)
    refused = cairn("import", "scan", "--now")
    assert refused.returncode == 1 and "No worker is running" in refused.stderr

    worker_factory().start()
    done = cairn("import", "scan", "--now", "--wait")
    assert done.returncode == 1, done.stderr   # two files need attention
    assert done.stdout.splitlines() == [
        "Alien.1979.1080p.WEB-DL.mkv.exe\tblocked\tWEB 1080p\tDangerous file type .exe: an "
        "executable or script is never imported.",
        "Alien.1979.DVDRip.sample.avi\tblocked\tDVD\tA sample, not the movie.",
        "Heat.1995.1080p.BluRay.x264-GRP.mkv\timported\tBluray-1080p\t→ Heat (1995)/Heat (1995) "
        "[Bluray-1080p].mkv (unverified)",
    ]
    assert (library / "Heat (1995)" / "Heat (1995) [Bluray-1080p].mkv").stat().st_nlink == 2
    again = cairn("import", "scan", "--now", "--wait")
    assert "Heat.1995" not in again.stdout, "imported before: not listed again"

    shutil.copy(library / "Heat (1995)" / "Heat (1995) [Bluray-1080p].mkv", library / "heat copy.mkv")
    write(library / "Heat (1995)" / "Heat.1995.720p.HDTV.mkv", b"older")
    dupes = cairn("library", "dupes", check=True).stdout
    assert "1 set of identical files, 1.0 MB to gain." in dupes
    assert ("Identical, 1.0 MB each:\n  Heat (1995)/Heat (1995) [Bluray-1080p].mkv\n"
            "  heat copy.mkv\n") in dupes
    assert ("Heat (1995), 2 versions:\n  Bluray-1080p\t1.0 MB\tHeat (1995)/Heat (1995) "
            "[Bluray-1080p].mkv\n  HDTV-720p\t5 B\tHeat (1995)/Heat.1995.720p.HDTV.mkv\n") in dupes
    assert cairn("library", "dupes", "--last", check=True).stdout.split("\n\n")[1:] == \
        dupes.split("\n\n")[1:]


def test_a_file_dropped_into_an_inbox_is_imported_by_itself(tmp_path, worker_factory):
    inbox, library = tmp_path / "downloads", tmp_path / "movies"
    inbox.mkdir()
    library.mkdir()
    cairn("library", "root", str(library), check=True)
    cairn("library", "inbox", "add", str(inbox), check=True)
    Library.update(stable_seconds=1).execute()
    # The minute sweep runs at :00 on the wall clock, so this test waits for the clock: files
    # written from :02 on and imported before :58 were found by the inotify watch (one that
    # came while no worker ran, by the sweep the watch starts with).
    wait_until(lambda: 2 <= dt.datetime.now().second <= 20, timeout=90)
    minute = dt.datetime.now().replace(second=0, microsecond=0)
    write(inbox / "Alien.1979.1080p.BluRay.mkv", b"a" * MB)
    worker_factory().start()
    imported = ImportItem.select().where(ImportItem.state == "imported")
    wait_until(lambda: imported.count() == 1, timeout=60)
    write(inbox / "Heat.1995.1080p.BluRay.mkv", b"h" * MB)
    wait_until(lambda: imported.count() == 2, timeout=60)
    assert dt.datetime.now() < minute + dt.timedelta(seconds=58)
    assert sorted(f.path for f in MovieFile.select()) == [
        "Alien (1979)/Alien (1979) [Bluray-1080p].mkv", "Heat (1995)/Heat (1995) [Bluray-1080p].mkv"]


# Root without the rights to read other people's files, as a worker run with fewer rights.
WITHOUT_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_files_and_folders_cairn_may_not_read_are_named_and_nothing_is_lost(tmp_path,
                                                                           worker_factory):
    inbox, library = tmp_path / "downloads", tmp_path / "movies"
    inbox.mkdir()
    library.mkdir()
    cairn("library", "root", str(library), check=True)
    cairn("library", "inbox", "add", str(inbox), check=True)
    secret = write(inbox / "Heat.1995.1080p.BluRay.mkv", b"h" * 1000, mode=0o000)
    write(inbox / "locked" / "Alien.1979.1080p.BluRay.mkv", b"a" * 1000)
    (inbox / "locked").chmod(0o000)
    write(inbox / "Ok.2000.1080p.BluRay.mkv", b"o" * 1000)
    try:
        worker_factory(prefix=WITHOUT_DAC).start()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")},
               "CAIRN_DATA_DIR": str(settings().data_dir)}
        done = subprocess.run([*WITHOUT_DAC, str(CAIRN), "import", "scan", "--now",
                               "--wait"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        (inbox / "locked").chmod(0o755)
    assert done.returncode == 1, done.stderr
    assert f"Cairn may not read 1 folder in {inbox}: locked." in done.stderr
    assert done.stdout.splitlines() == [
        "Heat.1995.1080p.BluRay.mkv\tblocked\t-\tCairn may not read the file (permission denied); "
        "fix its permissions and retry.",
        "Ok.2000.1080p.BluRay.mkv\timported\tBluray-1080p\t→ Ok (2000)/Ok (2000) [Bluray-1080p].mkv "
        "(unverified)",
    ]
    assert secret.stat().st_size == 1000 and (inbox / "locked" / "Alien.1979.1080p.BluRay.mkv").exists()
    assert Inbox.get().problem.startswith("Cairn may not read 1 folder")
