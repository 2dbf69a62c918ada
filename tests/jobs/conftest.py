"""Backup jobs run for real: rsync on temp trees, Huey inline or a real worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.queue import huey, settings
from models import ALL_MODELS, FINISHED_STATES, Event, Profile, Run, WorkerProcess, db, open_database
from models.migrate import migrate
from tests.helpers.settings import use_settings
from tests.helpers.tmdb import fake  # noqa: F401 (the fake TMDB, for test_metadata)

CAIRN = Path(sys.executable).parent / "cairn"


@pytest.fixture
def inline(database_url):
    """Tasks run inline as they are enqueued (huey immediate mode), on a fresh database."""
    migrate(open_database(database_url))
    huey.immediate = True
    try:
        with db.connection_context():
            yield
    finally:
        huey.immediate = False


@pytest.fixture
def small_units(monkeypatch):
    """Split even tiny trees, so a test tree makes several units."""
    use_settings(monkeypatch, min_unit_size=1)


def make_profile(name="Home", sources=(), dest="", create_dest=True, **fields) -> Profile:
    if create_dest and dest and not os.path.exists(dest):
        os.makedirs(dest)
    return Profile.create(name=name, slug=Profile.free_slug(name), sources=[str(s) for s in sources],
                          destination=str(dest), **fields)


def wait_for_run(run: Run, states=FINISHED_STATES, timeout=60.0) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = Run.get_by_id(run.id)
        if current.state in states:
            return current
        time.sleep(0.2)
    raise AssertionError(f"run {run.id} stayed {Run.get_by_id(run.id).state}")


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


class Worker:
    """`cairn worker` in its own process group, on this test process's data dir."""

    def __init__(self, tmp_path: Path, environ: dict[str, str], prefix: list[str]) -> None:
        self.log_path = tmp_path / "worker.log"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")},
                    "CAIRN_DATA_DIR": str(settings().data_dir), "CAIRN_WORKERS": "4",
                    "CAIRN_RETRY_DELAY": "0.5", **environ}
        self.prefix = prefix
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([*self.prefix, str(CAIRN), "worker"], env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        # Started means announced: after its watchers (drives, inboxes) and file server are up.
        wait_until(self._online, timeout=30)
        return self

    def _online(self) -> bool:
        ids = [w.id for w in WorkerProcess.status().alive if w.pid == self.process.pid]
        return bool(ids) and any(e.payload.get("worker") == ids[0]
                                 for e in Event.select().where(Event.kind == "worker.online"))

    def kill(self) -> None:
        """SIGKILL the whole worker process, as a power cut or the OOM killer would."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def empty_shared_store() -> None:
    """Migrate and empty the database and queue of this process's data dir, which a worker
    process started by a test shares."""
    migrate(open_database(settings().database_url))
    huey.storage.flush_all()
    with db.connection_context():
        for model in reversed(ALL_MODELS):
            model.delete().execute()


@pytest.fixture
def shared_db():
    """The shared database and queue, emptied, with a connection held for the test."""
    empty_shared_store()
    with db.connection_context():
        yield
    huey.storage.flush_all()


@pytest.fixture
def worker_factory(tmp_path, shared_db):
    workers: list[Worker] = []

    def make(environ: dict[str, str] | None = None, prefix: list[str] | None = None) -> Worker:
        worker = Worker(tmp_path, environ or {}, prefix or [])
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
