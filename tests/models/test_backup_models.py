"""Runs and units: one active run per profile, and every claim won by exactly one caller."""

import datetime as dt
import threading

import pytest

from models import AlreadyRunning, Profile, Run, RunMessage, Scan, ScanDir, Unit, WorkerProcess, db
from models.backup import path_key, slugify

pytestmark = pytest.mark.usefixtures("migrated")
NOW = dt.datetime(2026, 11, 22, 12, 0, 0)


def profile(name="Home"):
    return Profile.create(name=name, slug=Profile.free_slug(name), sources=["/home"],
                          destination="/mnt/backup")


def test_slugs_are_readable_and_unique():
    assert slugify("Family Photos (Ada's)") == "family-photos-ada-s"
    assert slugify("写真") == "profile"
    profile("Photos")
    assert Profile.free_slug("photos!") == "photos-2"


def test_a_profile_has_one_active_run_at_a_time():
    home = profile()
    run = Run.request(home)
    with pytest.raises(AlreadyRunning, match="already running"):
        Run.request(home)
    assert run.finish("succeeded", "done")
    assert Run.request(home).state == "queued"


def test_concurrent_requests_start_one_run(database_url):
    home = profile()
    outcomes = []

    def request():
        with db.connection_context():
            try:
                outcomes.append(Run.request(home).id)
            except AlreadyRunning:
                outcomes.append("busy")

    threads = [threading.Thread(target=request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("busy") == 5
    assert Run.select().count() == 1


def test_state_moves_only_from_the_expected_states():
    run = Run.request(profile())
    assert run.move(("queued",), "scanning")
    assert not Run.get_by_id(run.id).move(("queued",), "scanning")
    assert run.finish("cancelled", "stop")
    assert not run.finish("failed", "too late")
    with pytest.raises(ValueError):
        run.finish("running", "not final")


def test_a_unit_is_claimed_by_exactly_one_worker():
    run = Run.request(profile())
    unit = Unit.create(run=run, seq=0, source="/home")
    handed = Unit.hand_out(run, 5, NOW)
    assert [u.id for u in handed] == [unit.id] and Unit.hand_out(run, 5, NOW) == []
    a = WorkerProcess.register("box", 1, 4, "cairn")
    b = WorkerProcess.register("box", 2, 4, "cairn")
    assert Unit.get_by_id(unit.id).claim(a)
    assert not Unit.get_by_id(unit.id).claim(b)
    claimed = Unit.get_by_id(unit.id)
    assert (claimed.state, claimed.worker_id, claimed.attempts) == ("running", a.id, 1)


def test_units_waiting_for_a_retry_are_not_handed_out_early():
    run = Run.request(profile())
    Unit.create(run=run, seq=0, source="/home", not_before=NOW + dt.timedelta(seconds=30))
    Unit.create(run=run, seq=1, source="/home")
    assert [u.seq for u in Unit.hand_out(run, 5, NOW)] == [1]
    assert [u.seq for u in Unit.hand_out(run, 5, NOW + dt.timedelta(minutes=1))] == [0]
    assert Unit.busy(run) == 2


def test_units_of_a_vanished_worker_are_orphans():
    run = Run.request(profile())
    alive = WorkerProcess.register("box", 1, 4, "cairn")
    dead = WorkerProcess.register("box", 2, 4, "cairn")
    mine = Unit.create(run=run, seq=0, source="/home", state="running", worker=alive)
    lost = Unit.create(run=run, seq=1, source="/home", state="running", worker=dead)
    assert [u.id for u in Unit.orphaned([alive.id])] == [lost.id]
    assert mine.id not in [u.id for u in Unit.orphaned([alive.id])]


def test_unit_counts_never_go_back_and_sum_into_the_run():
    run = Run.request(profile())
    unit = Unit.create(run=run, seq=0, source="/home")
    unit.save_progress(10, 1000, 5, 1, 600, 600)
    unit.save_progress(3, 300, 1, 0, 100, 80)  # a restarted attempt, 80 bytes written so far
    Unit.create(run=run, seq=1, source="/home", files_done=2, bytes_done=20)
    assert run.unit_totals() | {} == {"files": 12, "bytes": 1020, "new_files": 5,
                                      "changed_files": 1, "sent_bytes": 600, "warnings": 0,
                                      "errors": 0, "written": 80}


def test_messages_are_kept_per_level():
    run = Run.request(profile())
    run.add_message("error", "cannot open x")
    run.add_message("warning", "vanished y")
    run.add_message("item", ">f+++++++++ 3 z")
    assert run.messages("error") == ["cannot open x"]
    assert run.messages("item") == [">f+++++++++ 3 z"]
    assert RunMessage.select().count() == 3


def test_scan_folders_are_found_by_path_even_very_long_ones():
    scan = Scan.create(root="/home")
    long_path = "/".join(["d" * 200] * 20)
    for path, parent in [("", None), ("ada", ""), (long_path, "ada")]:
        ScanDir.create(scan=scan, path=path, key=path_key(path),
                       parent_key=None if parent is None else path_key(parent), depth=1, files=1,
                       bytes=1, own_files=1, own_bytes=1, dirs=0, subdirs=0)
    assert scan.folder(long_path).path == long_path
    assert [c.path for c in scan.children("ada")] == [long_path]
    newer = Scan.create(root="/home", state="done")
    scan.state = "done"
    scan.save()
    assert Scan.replaced_by(newer) == 1
    assert not ScanDir.select().exists()


def test_a_scan_that_an_active_run_plans_from_is_not_replaced():
    busy = Run.request(profile())
    kept = Scan.create(root="/home", run=busy, state="running")
    finished = Run.create(profile=profile("Other"), state="succeeded")
    old = Scan.create(root="/home", run=finished, state="done")
    newest = Scan.create(root="/home", state="done")
    assert Scan.replaced_by(newest) == 1
    assert Scan.get_or_none(Scan.id == old.id) is None
    assert Scan.get_or_none(Scan.id == kept.id) is not None


def test_scan_rows_are_bulk_inserted_with_raw_byte_paths():
    from models import ScanLink
    from models.base import bulk_insert
    scan = Scan.create(root="/home")
    bulk_insert(ScanDir, ("scan", "path", "key", "parent_key", "depth", "files", "bytes",
                          "own_files", "own_bytes", "dirs", "subdirs"),
                [(scan.id, "", path_key(""), None, 0, 2, 20, 0, 0, 1, 1),
                 (scan.id, "ada", path_key("ada"), path_key(""), 1, 2, 20, 2, 20, 0, 0)])
    bulk_insert(ScanLink, ("scan", "dev", "ino", "path"), [(scan.id, 2**40, 7, b"caf\xe9.txt")])
    assert [c.path for c in scan.children("")] == ["ada"]
    assert bytes(ScanLink.get().path) == b"caf\xe9.txt"
