"""`cairn profile|backup ...` from a shell, against a real worker; `cairn --help` by domain."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models import Profile, Run
from tests.helpers.cli import cairn
from tests.helpers.trees import describe, write
from tests.jobs.conftest import wait_for_run, wait_until

pytestmark = pytest.mark.slow


def test_a_profile_is_added_listed_run_and_waited_for(tmp_path, worker_factory):
    source = write(tmp_path / "my photos" / "beach.jpg", "jpeg").parent
    (tmp_path / "backups").mkdir()
    added = cairn("profile", "add", "Family photos", "--source", str(source), "--exclude", "*.tmp",
                  "--dest", str(tmp_path / "backups"), "--bwlimit", "10M", check=True)
    assert "saved" in added.stdout and "family-photos" in added.stdout
    profile = Profile.by_name("Family photos")
    assert profile.bwlimit_kib == 10240 and profile.excludes == ["*.tmp"]
    assert "Family photos\tsnapshot\tnever run" in cairn("profile", "list", check=True).stdout

    refused = cairn("backup", "run", "Family photos")
    assert refused.returncode == 1 and "No worker is running" in refused.stderr
    assert not Run.select().exists()

    worker_factory().start()
    done = cairn("backup", "run", "Family photos", "--wait")
    assert done.returncode == 0, done.stderr
    run = Run.get()
    assert f"Run {run.id} queued." in done.stdout
    assert f"Run {run.id}: succeeded." in done.stdout
    snapshot = Path(done.stdout.split("Snapshot: ")[1].strip())
    assert snapshot == tmp_path / "backups" / "family-photos" / run.snapshot
    assert describe(snapshot / "localhost" / str(source).lstrip("/")) == describe(source)
    status = cairn("backup", "status", check=True).stdout
    assert "Worker: running" in status and f"Run {run.id}\tFamily photos\tsucceeded" in status

    dry = cairn("backup", "run", "Family photos", "--dry-run", "--wait")
    assert dry.returncode == 0 and "Dry run: 0 new and 0 changed files" in dry.stdout


def test_bad_profiles_are_refused_with_every_reason(tmp_path, shared_db):
    done = cairn("profile", "add", "x", "--source", "relative/dir", "--dest", "/",
                 "--exclude", "[oops", "--bwlimit", "fast", "--schedule", "61 * * * *")
    assert done.returncode == 1
    for reason in ["must be an absolute path", "not the root of the filesystem", "never closes",
                   "is not a rate", "minute 0-59"]:
        assert reason in done.stderr
    zone = cairn("profile", "add", "y", "--source", str(tmp_path), "--dest", "/mnt/y",
                 "--schedule", "@daily", "--timezone", "Mars/Olympus")
    assert zone.returncode == 1 and "not a time zone name" in zone.stderr
    plugged = cairn("profile", "add", "z", "--source", str(tmp_path), "--dest", "/mnt/z",
                    "--run-on-connect")
    assert plugged.returncode == 1 and "needs a destination on an adopted drive" in plugged.stderr
    assert not Profile.select().exists()


def test_a_profile_can_be_scheduled_from_the_command_line(tmp_path, shared_db):
    added = cairn("profile", "add", "Nightly", "--source", str(tmp_path), "--dest", "/mnt/n",
                  "--schedule", "30  2 * * *", "--timezone", "Europe/Berlin", check=True)
    assert "Schedule: At 02:30 (Europe/Berlin); first run " in added.stdout
    profile = Profile.by_name("Nightly")
    assert (profile.schedule, profile.schedule_tz) == ("30 2 * * *", "Europe/Berlin")
    assert profile.schedule_looked_at is not None


def test_a_failed_run_exits_1_and_a_running_one_can_be_cancelled(tmp_path, worker_factory):
    worker_factory().start()
    (tmp_path / "dest").mkdir()
    cairn("profile", "add", "Gone", "--source", str(tmp_path / "missing"), "--dest",
          str(tmp_path / "dest"), check=True)
    failed = cairn("backup", "run", "Gone", "--wait")
    assert failed.returncode == 1 and ": failed. Source folder" in failed.stdout

    source = tmp_path / "big"
    write(source / "a.bin", os.urandom(3_000_000))
    cairn("profile", "add", "Slow", "--source", str(source), "--dest", str(tmp_path / "dest"),
          "--bwlimit", "100K", check=True)
    cairn("backup", "run", "Slow", check=True)
    run = Run.select().order_by(Run.id.desc()).get()
    wait_until(lambda: Run.get_by_id(run.id).state == "running")
    assert "already running" in cairn("backup", "run", "Slow").stderr
    assert f"Run {run.id} is being cancelled." in cairn("backup", "cancel", str(run.id), check=True).stdout
    assert wait_for_run(run).state == "cancelled"
    assert "already ended" in cairn("backup", "cancel", str(run.id)).stderr


@pytest.mark.parametrize("backend", ["postgresql"])
def test_backups_run_the_same_on_postgresql_and_redis(tmp_path, database_url):
    """Scale-out mode: the database on PostgreSQL, the queue on Redis."""
    import uuid

    import config
    from jobs.queue import make_huey
    environ = {"CAIRN_DATA_DIR": str(tmp_path / "var"), "CAIRN_DATABASE_URL": database_url,
               "CAIRN_REDIS_URL": "redis://127.0.0.1:6379/0",
               "CAIRN_QUEUE_NAME": f"cairn-test-{uuid.uuid4().hex[:8]}"}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}, **environ}

    def cli(*args):
        return cairn(*args, env=env)

    source = write(tmp_path / "src" / "docs" / "cv.txt", "cv").parent.parent
    write(source / "photos" / "p.jpg", os.urandom(50_000))
    (tmp_path / "backups").mkdir()
    assert cli("profile", "add", "Both", "--source", str(source), "--dest",
               str(tmp_path / "backups")).returncode == 0
    worker = subprocess.Popen([str(Path(sys.executable).parent / "cairn"), "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_until(lambda: "Worker: running" in cli("backup", "status").stdout, timeout=60)
        done = cli("backup", "run", "Both", "--wait")
        assert done.returncode == 0, done.stdout + done.stderr
        snapshot = Path(done.stdout.split("Snapshot: ")[1].strip())
        assert describe(snapshot / "localhost" / str(source).lstrip("/")) == describe(source)
    finally:
        worker.send_signal(2)
        worker.wait(timeout=30)
        make_huey(config.load(environ)).storage.flush_all()
