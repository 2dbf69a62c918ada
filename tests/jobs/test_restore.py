"""Restores for real: rsync from real snapshots back into folders, previewed first, never
overwriting without being told, confined to the snapshot; and the command line's round trip
of a torture tree."""

import os

import pytest

from jobs import backup, restores
from jobs.engines import manifest
from jobs.engines import restore as engine
from jobs.queue import huey
from models import Restore, Run, Snapshot
from tests.helpers.cli import cairn
from tests.helpers.trees import describe, link_groups, torture_tree, write, xattrs
from tests.jobs.conftest import make_profile


def backed_up(tmp_path, source):
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = Run.get_by_id(backup.request_run(profile).id)
    assert run.state == "succeeded", run.message
    return Snapshot.get(Snapshot.name == run.snapshot)


def inside(source, *parts) -> str:
    return "/".join(["localhost" + str(source), *parts])


@pytest.mark.usefixtures("inline")
class TestRestoreJobs:
    @pytest.fixture
    def home(self, tmp_path):
        source = tmp_path / "home" / "ada"
        write(source / "Photos" / "beach.jpg", "beach v1", mtime=1_600_000_000)
        write(source / "Photos" / "dunes.jpg", "dunes v1", mtime=1_600_000_000)
        write(source / "notes.txt", "notes")
        return source

    def test_a_folder_goes_to_a_new_folder_beside_the_original_by_default(self, tmp_path, home):
        snap = backed_up(tmp_path, home)
        paths = [inside(home, "Photos")]
        target = engine.beside_original(paths, snap.name)
        assert target == f"{home}/cairn-restore-{snap.name}"
        done = restores.request(snap, paths, target=target)
        done = Restore.get_by_id(done.id)
        assert done.state == "succeeded" and done.created >= 2, done.message
        assert describe(os.path.join(target, "Photos")) == describe(home / "Photos")
        assert done.progress == 1.0

    def test_the_preview_says_what_would_be_created_and_what_exists_and_copies_nothing(
            self, tmp_path, home):
        snap = backed_up(tmp_path, home)
        write(home / "Photos" / "beach.jpg", "beach v2 edited")
        (home / "Photos" / "dunes.jpg").unlink()
        preview = Restore.get_by_id(restores.request(snap, [inside(home, "Photos")], target=None,
                                                     dry_run=True).id)
        assert preview.state == "succeeded", preview.message
        assert (preview.created, preview.kept, preview.overwritten) == (1, 1, 0)
        actions = {action: path for action, path in preview.items}
        assert actions["create"].endswith("Photos/dunes.jpg") and actions["keep"].endswith("beach.jpg")
        assert "would be left as they are" in preview.message
        assert not (home / "Photos" / "dunes.jpg").exists()

    def test_existing_files_are_kept_unless_overwriting_was_chosen(self, tmp_path, home):
        snap = backed_up(tmp_path, home)
        write(home / "Photos" / "beach.jpg", "beach v2 edited")
        (home / "Photos" / "dunes.jpg").unlink()
        kept = Restore.get_by_id(restores.request(snap, [inside(home, "Photos")], target=None).id)
        assert kept.state == "succeeded" and (kept.created, kept.kept) == (1, 1)
        assert (home / "Photos" / "beach.jpg").read_text() == "beach v2 edited"
        assert (home / "Photos" / "dunes.jpg").read_text() == "dunes v1"
        replaced = Restore.get_by_id(restores.request(snap, [inside(home, "Photos")], target=None,
                                                      overwrite=True).id)
        assert replaced.state == "succeeded" and replaced.overwritten == 1
        assert (home / "Photos" / "beach.jpg").read_text() == "beach v1"

    def test_a_restore_never_deletes_what_is_at_the_target(self, tmp_path, home):
        snap = backed_up(tmp_path, home)
        write(home / "Photos" / "new since.jpg", "keep me")
        restores.request(snap, [inside(home, "Photos")], target=None, overwrite=True)
        assert (home / "Photos" / "new since.jpg").read_text() == "keep me"

    @pytest.mark.parametrize("path", ["../../etc", "/etc/passwd", "localhost/../..", "localhost/%2e%2e"])
    def test_paths_outside_the_snapshot_or_not_in_it_are_refused(self, tmp_path, home, path):
        snap = backed_up(tmp_path, home)
        with pytest.raises((manifest.PathRefused, engine.RestoreError)):
            restores.request(snap, [path], target=str(tmp_path / "out"))
        assert Restore.select().count() == 0

    def test_a_target_inside_a_snapshot_is_refused(self, tmp_path, home):
        snap = backed_up(tmp_path, home)
        with pytest.raises(engine.RestoreError, match="snapshot"):
            restores.request(snap, [inside(home, "notes.txt")],
                             target=str(tmp_path / "backups" / "home" / snap.name / "x"))

    def test_a_cancelled_restore_stops(self, tmp_path, home):
        snap = backed_up(tmp_path, home)
        queued = restores.request(snap, [inside(home, "Photos")], target=str(tmp_path / "o"),
                                  enqueue=False)
        assert restores.cancel(queued)
        done = restores.perform(queued.id)
        assert done.state == "cancelled" and not (tmp_path / "o" / "Photos").exists()


@pytest.mark.slow
def test_a_torture_tree_comes_back_identical_from_the_command_line(tmp_path, shared_db):
    source = torture_tree(tmp_path / "src")
    assert xattrs(source), "the test needs a filesystem that keeps user.* attributes"
    huey.immediate = True
    try:
        snap = backed_up(tmp_path, source)
    finally:
        huey.immediate = False
    listed = cairn("snapshot", "list", "Home", check=True).stdout
    assert listed.startswith(f"{snap.name}\tnot verified\t")
    assert "partial" not in listed
    Run.update(state="partial").where(Run.id == snap.run_id).execute()
    listed = cairn("snapshot", "list", "Home", check=True).stdout
    assert listed.rstrip("\n").endswith("\tfrom a partial run")
    Run.update(state="succeeded").where(Run.id == snap.run_id).execute()
    preview = cairn("restore", "Home", "latest", str(source), "--to", str(tmp_path / "back"),
                    "--dry-run", check=True)
    assert "Preview:" in preview.stdout and not (tmp_path / "back").exists()
    done = cairn("restore", "Home", snap.name, str(source), "--to", str(tmp_path / "back"))
    assert done.returncode == 0, done.stdout + done.stderr
    back = tmp_path / "back" / "src"
    assert describe(back) == describe(source)
    assert link_groups(back) == link_groups(source)
    assert xattrs(back) == xattrs(source)
    assert os.stat(back / "sparse.img").st_blocks * 512 < 1024 * 1024   # still sparse
    refused = cairn("restore", "Home", snap.name, "/etc/../etc", "--to", str(tmp_path / "x"))
    assert refused.returncode == 1 and "not a plain path" in refused.stderr
