"""Backup runs on a real worker process: parallel units, a killed worker, retries, cancel."""

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from jobs import backup
from jobs.engines import snapshots
from models import Event, Run, Unit
from tests.helpers.trees import SMALL_UNITS, awkward_tree, describe, slow_tree, snapshot_tree, write
from tests.jobs.conftest import make_profile, wait_for_run, wait_until

pytestmark = pytest.mark.slow
def rsyncs_of(run):
    return [u.pid for u in Unit.select().where((Unit.run == run) & (Unit.state == "running"))
            if u.pid]


def test_units_run_in_parallel_and_the_figures_only_grow(tmp_path, worker_factory):
    worker_factory(SMALL_UNITS).start()
    source = slow_tree(tmp_path / "src")
    profile = make_profile(sources=[source], dest=tmp_path / "backups", bwlimit_kib=600)
    run = backup.request_run(profile)
    most_running, fractions = 0, []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = Run.get_by_id(run.id)
        fractions.append(current.progress)
        most_running = max(most_running, Unit.select().where(
            (Unit.run == run) & (Unit.state == "running")).count())
        if not current.is_active:
            break
        time.sleep(0.1)
    run = Run.get_by_id(run.id)
    assert run.state == "succeeded", run.message
    assert most_running >= 2
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert 0 < max(f for f in fractions if f < 1.0) < 1.0
    assert describe(snapshot_tree(profile, run, source)) == describe(source)


def test_a_run_whose_worker_is_killed_finishes_after_a_restart_identical_to_the_source(
        tmp_path, worker_factory):
    worker = worker_factory(SMALL_UNITS).start()
    source = awkward_tree(slow_tree(tmp_path / "src", size=800_000))
    profile = make_profile(sources=[source], dest=tmp_path / "backups", bwlimit_kib=400)
    run = backup.request_run(profile)
    wait_until(lambda: Run.get_by_id(run.id).files_done > 2 and rsyncs_of(run))
    pids = rsyncs_of(run)
    worker.kill()
    # rsync dies with the worker (parent-death signal), so nothing writes on unattended.
    wait_until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                               for p in pids), timeout=10)
    assert Run.get_by_id(run.id).state == "running"
    worker_factory(SMALL_UNITS).start()
    run = wait_for_run(run, timeout=90)
    assert run.state == "succeeded", run.message
    assert describe(snapshot_tree(profile, run, source)) == describe(source)
    assert Event.select().where((Event.kind == "run.resumed") & (Event.subject == run.subject)).exists()


def test_a_failed_unit_is_retried_and_then_succeeds(tmp_path, worker_factory):
    worker_factory().start()
    source = slow_tree(tmp_path / "src", folders=1)
    profile = make_profile(sources=[source], dest=tmp_path / "backups", bwlimit_kib=200)
    run = backup.request_run(profile)
    pid = wait_until(lambda: rsyncs_of(run))[0]
    os.kill(pid, signal.SIGKILL)  # the OOM killer, say
    run = wait_for_run(run)
    assert run.state == "succeeded", run.message
    unit = Unit.get(Unit.run == run)
    assert unit.attempts == 2
    assert Event.select().where(Event.kind == "unit.retrying").exists()
    assert describe(snapshot_tree(profile, run, source)) == describe(source)


def test_a_unit_out_of_retries_is_dead_lettered_and_can_be_retried_into_the_same_snapshot(
        tmp_path, worker_factory):
    worker_factory().start()
    source = slow_tree(tmp_path / "src", folders=1)
    profile = make_profile(sources=[source], dest=tmp_path / "backups", bwlimit_kib=200, retries=0)
    run = backup.request_run(profile)
    os.kill(wait_until(lambda: rsyncs_of(run))[0], signal.SIGKILL)
    run = wait_for_run(run)
    assert run.state == "partial" and "retrying the failed parts" in run.message
    root = Path(profile.destination) / profile.slug
    assert snapshots.list_snapshots(root) == []
    assert (root / (run.snapshot + ".partial")).is_dir()
    assert Unit.get(Unit.run == run).state == "failed"
    assert backup.retry_failed(run) == 1
    run = wait_for_run(run)
    assert run.state == "succeeded", run.message
    assert snapshots.list_snapshots(root) == [run.snapshot]
    assert describe(snapshot_tree(profile, run, source)) == describe(source)


def test_cancel_stops_rsync_and_removes_the_unfinished_snapshot(tmp_path, worker_factory):
    worker_factory(SMALL_UNITS).start()
    source = slow_tree(tmp_path / "src", size=2_000_000)
    profile = make_profile(sources=[source], dest=tmp_path / "backups", bwlimit_kib=200)
    run = backup.request_run(profile)
    pids = wait_until(lambda: rsyncs_of(run))
    assert backup.cancel(Run.get_by_id(run.id))
    run = wait_for_run(run, timeout=30)
    assert run.state == "cancelled" and "removed" in run.message
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
    assert os.listdir(Path(profile.destination) / profile.slug) == []


def test_an_unreadable_file_makes_the_run_partial_and_names_the_file(tmp_path, worker_factory):
    # Root reads every file; this worker lacks the two capabilities that let it, so a file
    # with mode 000 is as unreadable to it as another user's private file is.
    worker_factory(prefix=["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]).start()
    source = tmp_path / "src"
    write(source / "fine.txt", "ok")
    write(source / "locked.txt", "secret", mode=0)
    profile = make_profile(sources=[source], dest=tmp_path / "backups")
    run = wait_for_run(backup.request_run(profile))
    assert run.state == "partial"
    assert "could not be copied" in run.message
    assert any("locked.txt" in line and "Permission denied" in line for line in run.messages("error"))
    tree = snapshot_tree(profile, run, source)
    assert (tree / "fine.txt").read_text() == "ok" and not (tree / "locked.txt").exists()
    assert snapshots.latest_snapshot(Path(profile.destination) / profile.slug) == run.snapshot

    closed = tmp_path / "closed"
    write(closed / "inside.txt", "x")
    os.chmod(closed, 0)
    other = make_profile(name="Closed", sources=[closed], dest=tmp_path / "backups")
    refused = wait_for_run(backup.request_run(other))
    assert refused.state == "failed" and "cannot be read by the worker" in refused.message


def test_the_resource_monitor_lowers_concurrency_and_says_why(tmp_path, worker_factory):
    # Memory use is the one reading sure to be above 1 % on any box; load may be near zero.
    worker_factory({**SMALL_UNITS, "CAIRN_THROTTLE_MEMORY": "1"}).start()
    source = slow_tree(tmp_path / "src", size=1_600_000)
    profile = make_profile(sources=[source], dest=tmp_path / "backups", bwlimit_kib=400)
    run = backup.request_run(profile)
    event = wait_until(lambda: Event.select().where(Event.kind == "run.throttled").first(), timeout=30)
    assert "memory use" in event.message.lower() and "above 1%" in event.message
    assert Run.get_by_id(run.id).concurrency < 4
    assert wait_for_run(run, timeout=90).state == "succeeded"
