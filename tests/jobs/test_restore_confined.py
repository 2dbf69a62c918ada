"""Where a restore may write, checked by the worker: back to the files' original place, or
into a folder under the restore roots; and never through a link it did not make, however a
local user plants or swaps one, before or during the restore.

These run as root (so the worker may keep owners), with a stand-in for another local user:
folders owned by uid MALLORY, who plants the links."""

import os
import stat
import threading

import pytest

from jobs import backup, restores
from jobs.engines import restore as engine
from jobs.queue import settings
from models import Restore, Run, Snapshot
from tests.helpers.cli import cairn
from tests.helpers.settings import use_settings
from tests.helpers.trees import write
from tests.jobs.conftest import make_profile

MALLORY = 4242


def backed_up(tmp_path, source, name="Home"):
    profile = make_profile(name=name, sources=[source], dest=tmp_path / "backups")
    run = Run.get_by_id(backup.request_run(profile).id)
    assert run.state == "succeeded", run.message
    return Snapshot.get(Snapshot.name == run.snapshot)


def inside(source, *parts) -> str:
    return "/".join(["localhost" + str(source), *parts])


def finished(restore: Restore) -> Restore:
    return Restore.get_by_id(restore.id)


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Restores may write under tmp/home only (and to the files' original places)."""
    home = tmp_path / "home"
    home.mkdir()
    use_settings(monkeypatch, restore_roots=(str(home),))
    return home


@pytest.fixture
def mallory(roots):
    """A home of another local user, with a file she backed up: a crafted 'passwd'."""
    folder = roots / "mallory"
    write(folder / "crafted" / "passwd", "root::0:0::/root:/bin/sh\n")
    write(folder / "crafted" / "authorized_keys", "ssh-ed25519 AAAA mallory\n")
    for path in (folder, folder / "crafted", folder / "crafted" / "passwd"):
        os.chown(path, MALLORY, MALLORY)
    return folder


@pytest.mark.usefixtures("inline")
class TestWhereARestoreMayWrite:
    @pytest.mark.parametrize("dry_run", [True, False])
    def test_a_folder_outside_the_roots_and_the_original_place_is_refused(
            self, tmp_path, mallory, dry_run):
        snap = backed_up(tmp_path, mallory)
        system = tmp_path / "etc"   # as /etc would be: outside every root
        system.mkdir()
        for target in (str(system), "/etc", "/root/.ssh", "/etc/cron.d"):
            with pytest.raises(engine.RestoreError, match="neither where these files came from"):
                restores.request(snap, [inside(mallory, "crafted", "passwd")], target=target,
                                 overwrite=True, dry_run=dry_run)
        assert list(system.iterdir()) == [] and Restore.select().count() == 0

    def test_the_worker_refuses_it_too_whatever_the_row_says(self, tmp_path, mallory):
        snap = backed_up(tmp_path, mallory)
        system = tmp_path / "etc"
        system.mkdir()
        # A row that no check let through, as a changed web process could write it.
        row = Restore.create(profile=snap.profile_id, snapshot=snap, target=str(system),
                             paths=[inside(mallory, "crafted", "passwd")], overwrite=True)
        done = restores.perform(row.id)
        assert done.state == "failed" and "neither where these files came from" in done.message
        assert list(system.iterdir()) == []

    def test_cairns_own_data_is_never_a_target(self, tmp_path, mallory, monkeypatch):
        snap = backed_up(tmp_path, mallory)
        use_settings(monkeypatch, restore_roots=(str(settings().data_dir.parent),))
        with pytest.raises(engine.RestoreError, match="Cairn's own data"):
            restores.request(snap, [inside(mallory, "crafted")], target=str(settings().data_dir))

    def test_outside_the_original_place_files_belong_to_the_target_folders_owner(
            self, tmp_path, roots):
        source = roots / "ada"
        write(source / "tools" / "su-copy", "#!/bin/sh\n", mode=0o4755)
        write(source / "tools" / "group-tool", "#!/bin/sh\n", mode=0o2750)
        os.mknod(source / "tools" / "disk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
        snap = backed_up(tmp_path, source)
        target = roots / "mallory-restores"
        target.mkdir()
        os.chown(target, MALLORY, MALLORY + 1)
        done = finished(restores.request(snap, [inside(source, "tools")], target=str(target)))
        assert done.state == "succeeded", done.message
        back = target / "tools"
        assert sorted(p.name for p in back.iterdir()) == ["group-tool", "su-copy"]   # no device
        for path in (back, back / "su-copy", back / "group-tool"):
            st = os.lstat(path)
            assert (st.st_uid, st.st_gid) == (MALLORY, MALLORY + 1)
            assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID)
        assert stat.S_IMODE(os.stat(back / "su-copy").st_mode) == 0o755

    def test_overwriting_at_the_original_place_brings_a_folders_mode_and_times_back(
            self, tmp_path, roots):
        source = roots / "ada"
        write(source / "private" / "diary.txt", "dear diary")
        (source / "private").chmod(0o700)
        os.utime(source / "private", (1_600_000_000, 1_600_000_000))
        snap = backed_up(tmp_path, source)
        (source / "private").chmod(0o777)
        os.utime(source / "private", (1_700_000_000, 1_700_000_000))
        done = finished(restores.request(snap, [inside(source, "private")], target=None,
                                         overwrite=True))
        assert done.state == "succeeded", done.message
        st = os.stat(source / "private")
        assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o700, 1_600_000_000)

    def test_at_the_original_place_owners_modes_and_devices_come_back_as_they_were(
            self, tmp_path, roots):
        source = roots / "ada"
        tool = write(source / "tools" / "su-copy", "#!/bin/sh\n", mode=0o4755)
        os.chown(tool, 1234, 1234)
        os.chmod(tool, 0o4755)   # chown clears the bit
        os.mknod(source / "tools" / "disk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
        snap = backed_up(tmp_path, source)
        tool.unlink()
        (source / "tools" / "disk").unlink()
        done = finished(restores.request(snap, [inside(source, "tools")], target=None))
        assert done.state == "succeeded", done.message
        st = os.lstat(tool)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (1234, 0o4755)
        assert stat.S_ISBLK(os.lstat(source / "tools" / "disk").st_mode)


@pytest.mark.usefixtures("inline")
class TestLinksAreNeverFollowed:
    def test_a_planted_default_folder_is_not_used_a_new_one_is_made(self, tmp_path, mallory):
        snap = backed_up(tmp_path, mallory)
        paths = [inside(mallory, "crafted")]
        planted = engine.beside_original(paths, snap.name)
        elsewhere = tmp_path / "etc"
        elsewhere.mkdir()
        os.symlink(elsewhere, planted)
        done = finished(restores.request(snap, paths, target=planted, fresh=True))
        assert done.state == "succeeded", done.message
        assert list(elsewhere.iterdir()) == []
        made = done.target
        assert made.startswith(planted + "-") and os.path.isdir(made) and not os.path.islink(made)
        assert (mallory / os.path.basename(made) / "crafted" / "passwd").exists()
        assert os.lstat(made).st_uid == MALLORY   # the folder it was made in is hers
        assert [p.name for p in mallory.iterdir() if p.name.startswith(".cairn")] == []

    def test_a_link_on_the_way_to_the_target_is_refused_with_the_reason(self, tmp_path, mallory):
        snap = backed_up(tmp_path, mallory)
        elsewhere = tmp_path / "etc"
        elsewhere.mkdir()
        os.symlink(elsewhere, mallory / "restored")
        done = finished(restores.request(snap, [inside(mallory, "crafted")],
                                         target=str(mallory / "restored" / "here")))
        assert done.state == "failed" and "is a symbolic link" in done.message
        assert list(elsewhere.iterdir()) == []

    def test_a_folder_swapped_for_a_link_during_the_restore_is_caught(self, tmp_path, mallory):
        write(mallory / "crafted" / "big.bin", os.urandom(48 * 1024 * 1024))
        snap = backed_up(tmp_path, mallory)
        elsewhere = tmp_path / "etc"
        elsewhere.mkdir()
        target = mallory / "target"
        (target / "crafted").mkdir(parents=True)

        def swap_once_staging_appears():
            # While rsync fills the worker's staging folder, the folder the staged files are
            # to move into becomes a link to somewhere else.
            while not any(p.name.startswith(".cairn-restore-") for p in target.iterdir()):
                pass
            (target / "crafted").rename(target / "real")
            os.symlink(elsewhere, target / "crafted")

        swapper = threading.Thread(target=swap_once_staging_appears, daemon=True)
        swapper.start()
        done = finished(restores.request(snap, [inside(mallory, "crafted")], target=str(target),
                                         overwrite=True))
        swapper.join(timeout=30)
        assert list(elsewhere.iterdir()) == []
        assert done.state == "partial"
        assert any(e.startswith("crafted ") and "nothing was written through it" in e
                   for e in done.errors), done.errors
        assert [p.name for p in target.iterdir() if p.name.startswith(".cairn")] == []

    def test_a_parent_swapped_back_and_forth_never_lets_a_write_through(self, tmp_path, mallory):
        snap = backed_up(tmp_path, mallory)
        elsewhere = tmp_path / "etc"
        elsewhere.mkdir()
        (mallory / "crafted" / "passwd").unlink()
        stop = threading.Event()

        def swap():
            folder, aside = mallory / "crafted", mallory / "crafted.real"
            while not stop.is_set():
                folder.rename(aside)
                os.symlink(elsewhere, folder)
                folder.unlink()
                aside.rename(folder)

        swapper = threading.Thread(target=swap, daemon=True)
        swapper.start()
        try:
            states = {finished(restores.request(snap, [inside(mallory, "crafted", "passwd")],
                                                target=None)).state for _ in range(15)}
        finally:
            stop.set()
            swapper.join(timeout=10)
        assert list(elsewhere.iterdir()) == [], "a restore wrote through the link"
        assert states <= {"succeeded", "failed"}

    def test_a_link_inside_the_snapshot_never_leads_out_of_it(self, tmp_path, roots):
        source = roots / "ada"
        write(source / "notes.txt", "notes")
        secret = write(tmp_path / "secret" / "shadow", "root:$6$hash")
        os.symlink(secret.parent, source / "link")
        snap = backed_up(tmp_path, source)
        row = Restore.create(profile=snap.profile_id, snapshot=snap, target=str(roots / "out"),
                             paths=[inside(source, "link", "shadow")])
        done = restores.perform(row.id)
        assert done.state == "failed" and "never followed" in done.message
        assert not (roots / "out" / "shadow").exists()


def test_a_file_whose_name_is_not_utf8_comes_back_from_the_command_line(tmp_path, shared_db):
    from jobs.queue import huey
    source = tmp_path / "src"
    name = os.fsencode(str(source)) + b"/caf\xe9.txt"
    os.makedirs(source)
    with open(name, "wb") as fh:
        fh.write(b"latin-1 name")
    huey.immediate = True
    try:
        backed_up(tmp_path, source)
    finally:
        huey.immediate = False
    done = cairn("restore", "Home", "latest", os.fsdecode(name), "--to", str(tmp_path / "back"))
    assert done.returncode == 0, done.stdout + done.stderr
    with open(os.fsencode(str(tmp_path / "back")) + b"/caf\xe9.txt", "rb") as fh:
        assert fh.read() == b"latin-1 name"
    assert "caf\\xe9.txt" in Restore.get().message or Restore.get().state == "succeeded"
    assert Restore.select().where(Restore.state.in_(("queued", "running"))).count() == 0
