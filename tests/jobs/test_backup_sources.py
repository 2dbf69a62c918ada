"""A backup reads only its sources: a folder swapped for a link after the checks, or during
the run, leads it nowhere; a file that vanishes is a warning, a whole source that vanishes
is no success; and the snapshots are the worker's alone."""

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from jobs import backup
from jobs.engines import rsync, snapshots
from models import Run, Unit
from tests.helpers.trees import write
from tests.jobs.conftest import make_profile

pytestmark = pytest.mark.usefixtures("inline")


def run_now(profile) -> Run:
    return Run.get_by_id(backup.request_run(profile).id)


def snapshot_files(profile, run) -> list[str]:
    root = Path(profile.destination) / profile.slug
    folder = root / (run.snapshot + snapshots.PARTIAL_SUFFIX)
    folder = folder if folder.exists() else root / run.snapshot
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def tree(tmp_path):
    """ada's home with a big Videos folder (split off into a part of its own), and a secret
    folder outside it that she may not read but would like a backup to copy for her."""
    home = tmp_path / "home" / "ada"
    for i in range(4):
        write(home / "Videos" / f"clip{i}.mp4", os.urandom(40_000))
    write(home / "Documents" / "cv.txt", "cv")
    write(home / "notes.txt", "notes")
    secret = write(tmp_path / "secret" / "shadow", "root:$6$hash").parent
    write(secret / "Videos" / "private.mp4", "private")
    return home, secret


def swap_during_the_first_part(monkeypatch, swap):
    """Runs `swap` once, while the run's first rsync is copying: the later parts start on
    the swapped tree."""
    real = rsync.run
    done = []

    def run(transfer, **kwargs):
        if not done:
            done.append(True)
            swap()
        return real(transfer, **kwargs)

    monkeypatch.setattr(rsync, "run", run)


def test_a_split_part_swapped_for_a_link_mid_run_copies_nothing_outside(tree, tmp_path, monkeypatch,
                                                                        small_units):
    home, secret = tree
    profile = make_profile(sources=[home], dest=tmp_path / "backups", max_parallel=1, retries=0)

    def swap():
        (home / "Videos").rename(home / "Videos.real")
        os.symlink(secret, home / "Videos")

    swap_during_the_first_part(monkeypatch, swap)
    run = run_now(profile)
    assert Unit.select().where(Unit.run == run).count() > 1
    copied = snapshot_files(profile, run)
    assert not any("shadow" in f or "private" in f for f in copied), copied


def test_a_source_swapped_for_a_link_after_the_checks_is_not_followed(tree, tmp_path, monkeypatch,
                                                                     small_units):
    home, secret = tree
    profile = make_profile(sources=[home], dest=tmp_path / "backups", max_parallel=1, retries=0)

    def swap():
        home.rename(home.with_name("ada.real"))
        os.symlink(secret, home)

    swap_during_the_first_part(monkeypatch, swap)
    run = run_now(profile)
    copied = snapshot_files(profile, run)
    assert not any("shadow" in f or "private" in f for f in copied), copied
    assert run.state == "partial"
    said = [u.message for u in Unit.select().where((Unit.run == run) & (Unit.state == "failed"))]
    assert any("is a symbolic link" in m for m in said), said     # the parts after the swap
    assert any("vanished during the run" in m for m in said), said   # the one it happened in


def test_the_snapshots_folder_is_the_workers_alone(tree, tmp_path):
    home, _ = tree
    profile = make_profile(sources=[home], dest=tmp_path / "backups")
    assert run_now(profile).state == "succeeded"
    mode = os.stat(tmp_path / "backups" / profile.slug).st_mode
    assert stat.S_IMODE(mode) == 0o700


def vanish_while_copying(path: Path, after: float = 0.4) -> threading.Thread:
    def remove():
        time.sleep(after)
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):
                child.rmdir() if child.is_dir() else child.unlink()
            path.rmdir()
        else:
            path.unlink()

    thread = threading.Thread(target=remove, daemon=True)
    thread.start()
    return thread


# Both tests below give rsync a bandwidth limit so that a big file takes about two seconds to
# copy, and remove something meanwhile: a race with the real rsync, won by a wide margin.

def test_a_file_that_vanishes_during_the_run_is_a_warning(tmp_path):
    source = tmp_path / "src"
    write(source / "a-big.bin", os.urandom(2 * 1024 * 1024))
    small = write(source / "z-small.txt", "gone soon")
    profile = make_profile(sources=[source], dest=tmp_path / "backups", bwlimit_kib=1024)
    remover = vanish_while_copying(small)
    run = run_now(profile)
    remover.join()
    assert run.state == "succeeded", run.message
    assert (run.error_count, run.warning_count) == (0, 1)
    assert "1 warning" in run.message and "could not be copied" not in run.message


def test_a_whole_source_that_vanishes_mid_run_is_no_success(tmp_path):
    source = tmp_path / "share"
    write(source / "a-big.bin", os.urandom(2 * 1024 * 1024))
    write(source / "z-small.txt", "small")
    profile = make_profile(sources=[source], dest=tmp_path / "backups", bwlimit_kib=1024,
                           retries=0)
    remover = vanish_while_copying(source)
    run = run_now(profile)
    remover.join()
    assert run.state == "partial"
    assert f"The source folder {source} vanished during the run" in run.message
