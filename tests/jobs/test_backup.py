"""Backup runs end to end, tasks inline: real rsync into real snapshot folders."""

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from jobs import backup, run_logs, run_scan, run_transfer
from jobs.engines import snapshots
from models import AlreadyRunning, Event, Run, RunMessage, Scan, ScanDir, Unit
from tests.helpers.trees import awkward_tree, describe, inodes, link_groups, write
from tests.jobs.conftest import make_profile

pytestmark = pytest.mark.usefixtures("inline")


def snapshot_tree(profile, run, source):
    return profile_root(profile) / run.snapshot / snapshots.in_snapshot(str(source))


def profile_root(profile):
    return Path(profile.destination) / profile.slug


def run_now(profile, **kwargs) -> Run:
    return Run.get_by_id(backup.request_run(profile, **kwargs).id)


def test_a_backup_makes_a_complete_snapshot_and_points_latest_at_it(tmp_path, small_units):
    source = awkward_tree(tmp_path / "home" / "ada")
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = run_now(profile)
    assert run.state == "succeeded", run.message
    root = profile_root(profile)
    assert set(os.listdir(root)) == {run.snapshot, "latest"}
    tree = snapshot_tree(profile, run, source)
    assert str(tree).endswith(f"{run.snapshot}/localhost{source}")
    assert describe(tree) == describe(source)
    assert link_groups(tree) == link_groups(source)
    assert Unit.select().where(Unit.run == run).count() > 1
    assert run.progress == 1.0 and run.files_done == run.total_files > 0
    assert [e.kind for e in Event.select().where(Event.subject == run.subject)][-1] == "run.finished"
    assert not Event.select().where(Event.kind.in_(["run.progress", "run.scanning"])).exists()
    assert all(not e.is_progress for e in Event.recent(100))


def test_an_unchanged_second_snapshot_shares_every_inode_with_the_first(tmp_path, small_units):
    source = awkward_tree(tmp_path / "src")
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    first, second = run_now(profile), run_now(profile)
    assert second.state == "succeeded" and second.link_from == first.snapshot
    assert second.new_files == 0 and second.changed_files == 0
    assert inodes(snapshot_tree(profile, second, source)) == inodes(snapshot_tree(profile, first, source))
    assert os.readlink(profile_root(profile) / "latest") == second.snapshot


def test_hardlinks_split_across_units_are_restored(tmp_path, small_units):
    source = tmp_path / "src"
    for i in range(6):
        write(source / f"album{i}" / "big.jpg", os.urandom(50_000))
    os.link(source / "album0" / "big.jpg", source / "album5" / "same-photo.jpg")
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = run_now(profile)
    units = list(Unit.select().where(Unit.run == run))
    assert not any("album0" in u.label and "album5" in u.label for u in units)
    tree = snapshot_tree(profile, run, source)
    assert os.stat(tree / "album0" / "big.jpg").st_ino == os.stat(tree / "album5" / "same-photo.jpg").st_ino
    assert describe(tree) == describe(source)


def test_several_sources_sit_side_by_side(tmp_path):
    docs = write(tmp_path / "ada" / "Documents" / "cv.txt", "cv").parent
    photos = write(tmp_path / "otto" / "Photos" / "p.jpg", "p").parent
    profile = make_profile(sources=[docs, photos], dest=tmp_path / "backups")
    run = run_now(profile)
    assert run.state == "succeeded"
    assert (snapshot_tree(profile, run, docs) / "cv.txt").read_text() == "cv"
    assert (snapshot_tree(profile, run, photos) / "p.jpg").read_text() == "p"


def test_the_scan_is_stored_per_folder(tmp_path):
    source = awkward_tree(tmp_path / "src")
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = run_now(profile)
    scan = Scan.get(Scan.run == run)
    assert (scan.state, scan.files) == ("done", run.total_files)
    assert scan.folder("photos").files == 3
    assert {c.path for c in scan.children("photos")} == {"photos/2024"}
    assert ScanDir.select().where(ScanDir.scan == scan).count() > 20
    run_now(profile)
    assert Scan.select().where(Scan.root == str(source)).count() == 1  # the old one is replaced


def test_excluded_files_are_neither_counted_nor_copied(tmp_path):
    source = awkward_tree(tmp_path / "src")
    profile = make_profile(sources=[source], dest=tmp_path / "backups", excludes=["*.jpg", "/names/"])
    run = run_now(profile)
    tree = snapshot_tree(profile, run, source)
    assert not (tree / "names").exists() and not (tree / "photos" / "2024" / "beach.jpg").exists()
    assert run.files_done == run.total_files


def test_a_second_request_while_running_says_already_running(tmp_path):
    profile = make_profile(sources=[write(tmp_path / "src" / "f", "x").parent], dest=tmp_path / "b")
    Run.create(profile=profile, state="running")
    with pytest.raises(AlreadyRunning, match="already running"):
        backup.request_run(profile)


def test_a_dry_run_reports_changes_and_writes_nothing(tmp_path):
    source = tmp_path / "src"
    write(source / "old.txt", "old")
    write(source / "edited.txt", "v1", mtime=1_600_000_000)
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    first = run_now(profile)
    write(source / "new.txt", "new")
    write(source / "edited.txt", "v2!", mtime=1_700_000_000)
    dry = run_now(profile, dry_run=True)
    assert dry.state == "succeeded" and dry.snapshot == ""
    assert (dry.new_files, dry.changed_files) == (1, 1)
    assert "1 new and 1 changed files" in dry.message
    items = dry.messages("item")
    assert any(i.endswith(" new.txt") and i.startswith(">f+") for i in items)
    assert any(i.endswith(" edited.txt") for i in items)
    assert snapshots.list_snapshots(profile_root(profile)) == [first.snapshot]


@pytest.mark.parametrize("problem, message", [
    ("missing-source", "does not exist"), ("missing-dest", "does not exist"),
    ("dest-in-source", "inside source"),
])
def test_bad_folders_fail_the_run_before_copying(tmp_path, problem, message):
    source = write(tmp_path / "src" / "f", "x").parent
    (tmp_path / "backups").mkdir()
    sources, dest = [source], tmp_path / "backups"
    if problem == "missing-source":
        sources = [tmp_path / "gone"]
    elif problem == "missing-dest":
        dest = tmp_path / "nowhere"
        run = run_now(make_profile(sources=sources, dest=dest, create_dest=False))
        assert run.state == "failed" and message in run.message
        return
    else:
        dest = source / "inner"
        dest.mkdir()
    run = run_now(make_profile(sources=sources, dest=dest))
    assert run.state == "failed" and message in run.message


def test_snapshots_are_refused_on_exfat_and_a_mirror_is_made_instead(tmp_path, exfat_drive):
    source = write(tmp_path / "src" / "photo.jpg", "jpeg").parent
    write(source / "sub" / "note.txt", "n")
    profile = make_profile(sources=[source], dest=exfat_drive)
    run = run_now(profile)
    assert run.state == "failed"
    assert "exfat filesystem" in run.message and "mirror mode" in run.message
    profile.mode = "mirror"
    profile.save()
    run = run_now(profile)
    assert run.state == "succeeded", run.message
    mirror = exfat_drive / profile.slug / "mirror" / snapshots.in_snapshot(str(source))
    assert (mirror / "sub" / "note.txt").read_text() == "n"
    (source / "photo.jpg").unlink()
    assert run_now(profile).state == "succeeded"
    assert not (mirror / "photo.jpg").exists()


def test_a_full_destination_fails_cleanly_and_keeps_older_snapshots(tmp_path):
    dest = tmp_path / "small"
    dest.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(dest)], check=True)
    try:
        source = tmp_path / "src"
        write(source / "a.bin", os.urandom(600_000))
        profile = make_profile(sources=[source], dest=dest)
        first = run_now(profile)
        assert first.state == "succeeded"
        write(source / "b.bin", os.urandom(4_000_000))
        second = run_now(profile)
        assert second.state == "failed" and "full" in second.message
        assert snapshots.list_snapshots(profile_root(profile)) == [first.snapshot]
        assert not any(n.endswith(".partial") for n in os.listdir(profile_root(profile)))
        assert describe(snapshot_tree(profile, first, source))[b"a.bin"][2] == 600_000
    finally:
        subprocess.run(["umount", str(dest)], check=True)


def test_a_first_snapshot_bigger_than_the_free_space_is_refused_before_copying(tmp_path):
    dest = tmp_path / "small"
    dest.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(dest)], check=True)
    try:
        source = write(tmp_path / "src" / "big.bin", os.urandom(3_000_000)).parent
        run = run_now(make_profile(sources=[source], dest=dest))
        assert run.state == "failed" and "needs 3.0 MB" in run.message
    finally:
        subprocess.run(["umount", str(dest)], check=True)


def test_cancelling_a_queued_run_ends_it_at_once(tmp_path):
    profile = make_profile(sources=[write(tmp_path / "src" / "f", "x").parent], dest=tmp_path / "b")
    run = Run.request(profile)
    assert backup.cancel(run)
    assert Run.get_by_id(run.id).state == "cancelled"
    assert not backup.cancel(Run.get_by_id(run.id))


def test_the_itemized_output_is_kept_in_a_compressed_log(tmp_path):
    source = write(tmp_path / "src" / "hello.txt", "hi").parent
    run = run_now(make_profile(sources=[source], dest=tmp_path / "backups"))
    lines = run_logs.read_log(run.id)
    assert any(line.endswith(" hello.txt") and line.startswith(">f+++++++++") for line in lines)
    assert not RunMessage.select().where(RunMessage.level == "error").exists()


def test_extended_attributes_are_kept_and_rsync_is_spared_them_when_there_are_none(tmp_path):
    source = write(tmp_path / "src" / "photo.jpg", "jpeg").parent
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    first = run_now(profile)
    assert first.options["attributes_skipped"] and not first.options["xattrs"]
    assert Scan.get(Scan.run == first.id).xattrs is False
    os.setxattr(source / "photo.jpg", "user.origin", b"camera")
    second = run_now(profile)
    assert second.options["xattrs"] and "attributes_skipped" not in second.options
    assert Scan.get(Scan.run == second.id).xattrs is True
    copy = snapshot_tree(profile, second, source) / "photo.jpg"
    assert os.getxattr(copy, "user.origin") == b"camera"
    os.removexattr(source / "photo.jpg", "user.origin")
    third = run_now(profile)
    # The snapshot it links against kept attributes, so rsync must still compare them.
    assert third.options["xattrs"]
    assert os.listxattr(snapshot_tree(profile, third, source) / "photo.jpg") == []


def test_a_scan_trusts_an_earlier_empty_look_for_attributes_only_of_the_same_selection(tmp_path):
    source = write(tmp_path / "src" / "photo.jpg", "jpeg").parent
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    first = run_now(profile)
    looked = Scan.get(Scan.run == first.id)
    assert looked.xattrs is False
    same = Scan.create(root=str(source), excludes=[], one_file_system=False)
    started = looked.started_at.replace(tzinfo=dt.UTC).timestamp()
    assert run_scan.no_xattrs_before(same) == started - run_scan.CTIME_SLACK_SECONDS
    # Other excludes may let in files the earlier look never saw.
    assert run_scan.no_xattrs_before(Scan.create(root=str(source), excludes=["*.raw"])) is None
    assert run_scan.no_xattrs_before(Scan.create(root=str(source), one_file_system=True)) is None
    Scan.update(xattrs=None).where(Scan.id == looked.id).execute()  # never looked
    assert run_scan.no_xattrs_before(Scan.create(root=str(source))) is None


def test_resume_restarts_only_what_a_dead_worker_left_and_says_so_only_then(tmp_path):
    import socket

    from models import WorkerProcess
    source = write(tmp_path / "src" / "f.txt", "data").parent
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = Run.request(profile)
    snapshot = "2026-11-22T120000Z"
    (profile_root(profile) / (snapshot + ".partial")).mkdir(parents=True)
    run.move(("queued",), "running", snapshot=snapshot, options={"mirror": False}, concurrency=2)
    healthy = WorkerProcess.register(socket.gethostname(), os.getpid(), 2, "cairn")
    busy = Unit.create(run=run, seq=0, source=str(source), state="running", worker=healthy,
                       attempts=1)
    assert backup.resume(startup=True) == 0
    assert Unit.get_by_id(busy.id).state == "running"
    assert not Event.select().where(Event.kind == "run.resumed").exists()

    finished = subprocess.Popen(["true"])
    finished.wait()  # its pid now belongs to no process, like a killed worker's
    gone = WorkerProcess.register(socket.gethostname(), finished.pid, 2, "cairn")
    Unit.update(worker=gone).where(Unit.id == busy.id).execute()
    assert backup.resume(startup=True) == 1
    run = Run.get_by_id(run.id)
    assert run.state == "succeeded", run.message
    assert Unit.get_by_id(busy.id).attempts == 1  # a worker's death is not a failed attempt
    assert (profile_root(profile) / snapshot / snapshots.in_snapshot(str(source)) / "f.txt").exists()
    assert Event.select().where(Event.kind == "run.resumed").count() == 1


def test_the_runs_speed_is_recorded_for_its_graph(tmp_path):
    profile = make_profile(sources=[awkward_tree(tmp_path / "src")], dest=tmp_path / "backups")
    run = Run.create(profile=profile, state="running", started_at=dt.datetime(2026, 11, 1),
                     total_bytes=10_000_000)
    Unit.create(run=run, seq=0, source="/x", bytes_done=0)
    for second in range(1, 4):
        Unit.update(bytes_done=second * 1_000_000, written_bytes=second * 1_000_000).where(
            Unit.run == run).execute()
        assert backup.refresh_progress(run, now=dt.datetime(2026, 11, 1, 0, 0, second))
    points = Run.get_by_id(run.id).speed["points"]
    assert [at for at, _ in points] == [1.0, 2.0, 3.0]
    assert points[-1][1] == 1_000_000


def test_files_only_linked_to_the_last_snapshot_are_no_speed(tmp_path):
    profile = make_profile(sources=[awkward_tree(tmp_path / "src")], dest=tmp_path / "backups")
    run = Run.create(profile=profile, state="running", started_at=dt.datetime(2026, 11, 1),
                     total_bytes=10_000_000_000)
    Unit.create(run=run, seq=0, source="/x", bytes_done=0)
    for second in range(1, 4):
        Unit.update(bytes_done=second * 1_000_000_000).where(Unit.run == run).execute()
        assert backup.refresh_progress(run, now=dt.datetime(2026, 11, 1, 0, 0, second))
    run = Run.get_by_id(run.id)
    assert run.byte_rate == 0 and {rate for _, rate in run.speed["points"]} == {0}
    assert run.bytes_done == 3_000_000_000


def test_the_bandwidth_limit_is_the_runs_shared_by_the_parts_that_run_together(tmp_path):
    profile = make_profile(sources=[tmp_path], dest=tmp_path / "backups", bwlimit_kib=40960)
    run = Run.request(profile)
    run.move(("queued",), "running", concurrency=4)
    alone = Unit.create(run=run, seq=0, source=str(tmp_path), state="running")
    assert run_transfer.bandwidth_share(run, 40960) == 40960      # not a quarter of it
    units = [Unit.create(run=run, seq=n, source=str(tmp_path)) for n in range(1, 6)]
    assert run_transfer.bandwidth_share(run, 40960) == 10240      # four of six at once
    for unit in units[:4]:
        unit.state = "done"
        unit.save()
    assert run_transfer.bandwidth_share(run, 40960) == 20480      # two left
    alone.state = "done"
    alone.save()
    assert run_transfer.bandwidth_share(run, 40960) == 40960
    assert run_transfer.bandwidth_share(run, None) is None


def test_a_run_that_fails_before_its_first_part_logs_why_as_an_error(tmp_path):
    source = write(tmp_path / "src" / "a.txt", "a").parent
    profile = make_profile(sources=[source], dest=tmp_path / "unplugged" / "backups")
    (tmp_path / "unplugged" / "backups").rmdir()   # a drive not mounted
    run = run_now(profile)
    assert run.state == "failed" and not Unit.select().where(Unit.run == run).exists()
    logged = [m.text for m in RunMessage.select().where((RunMessage.run == run)
                                                        & (RunMessage.level == "error"))]
    assert logged == [run.message] and run.error_count == 1
    assert [m.id for m in RunMessage.problems()] != []
