"""The real worker process (`cairn worker` → huey_consumer) on the SQLite and Redis queues."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import config
from jobs.queue import make_huey
from models import Event, WorkerProcess, db, open_database

ROOT = Path(__file__).resolve().parents[2]
CAIRN = Path(sys.executable).parent / "cairn"
ENQUEUE = """
import app
from jobs.worker import prune_history
print(type(app.huey).__name__)
print(prune_history().get(blocking=True, timeout=30))
"""

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "redis"])
def queue_environ(request, tmp_path):
    environ = {"CAIRN_DATA_DIR": str(tmp_path / "var"), "CAIRN_WORKERS": "2"}
    if request.param == "redis":
        environ |= {"CAIRN_REDIS_URL": "redis://127.0.0.1:6379/0",
                    "CAIRN_QUEUE_NAME": f"cairn-test-{uuid.uuid4().hex[:8]}"}
    yield request.param, environ
    if request.param == "redis":
        make_huey(config.load(environ)).storage.flush_all()


def run_env(environ):
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}, **environ}


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_the_worker_runs_queued_jobs_and_keeps_a_heartbeat(queue_environ, tmp_path):
    kind, environ = queue_environ
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen([str(CAIRN), "worker"], cwd=tmp_path, env=run_env(environ),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        enqueue = subprocess.run([sys.executable, "-c", ENQUEUE], cwd=ROOT, env=run_env(environ),
                                 capture_output=True, text=True, timeout=60)
        assert enqueue.returncode == 0, enqueue.stderr
        queue_class, result = enqueue.stdout.split()[0], " ".join(enqueue.stdout.split()[1:])
        assert queue_class == {"sqlite": "SqliteHuey", "redis": "RedisHuey"}[kind]
        assert result == "(0, 0, 0)"  # nothing old enough to prune yet

        open_database(config.load(environ).database_url)
        with db.connection_context():
            wait_for(lambda: WorkerProcess.status().is_alive)
            assert WorkerProcess.get().threads == 2
            assert [e.kind for e in Event.after(0)] == ["worker.online"]
    finally:
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0
        log.close()
    with db.connection_context():
        assert not WorkerProcess.status().is_alive
        assert WorkerProcess.get().stopped_at is not None
        assert [e.kind for e in Event.after(0)] == ["worker.online", "worker.offline"]


def test_a_malformed_setting_stops_the_worker_with_a_message(tmp_path):
    result = subprocess.run([str(CAIRN), "worker"], cwd=tmp_path, capture_output=True, text=True,
                            env=run_env({"CAIRN_DATA_DIR": str(tmp_path), "CAIRN_WORKERS": "lots"}),
                            timeout=30)
    assert result.returncode != 0
    assert "CAIRN_WORKERS: expected a whole number from 1 to 64, got 'lots'" in result.stderr
