import datetime as dt

import pytest

from jobs.queue import with_db
from jobs.worker import Heartbeat, prune
from models import Alert, Delivery, Event, NotificationTarget, WorkerProcess, db, open_database
from models.migrate import migrate
from tests.helpers.settings import use_settings

NOW = dt.datetime(2026, 11, 22, 12, 0)


@pytest.fixture
def database(database_url):
    database = open_database(database_url)
    migrate(database)
    return database


def test_a_task_gets_its_own_connection_and_closes_it(database):
    seen = {}

    @with_db
    def task():
        seen["open"] = not db.is_closed()
        return Event.last_id()

    assert db.is_closed()
    assert task() == 0
    assert seen["open"] and db.is_closed()


def test_the_heartbeat_belongs_to_the_process_not_each_thread(database, database_url, monkeypatch):
    use_settings(monkeypatch, database_url=database_url)
    heartbeat = Heartbeat()
    for _ in range(3):  # huey calls the startup hook in every worker thread
        heartbeat.worker_thread_started()
    with db.connection_context():
        worker = WorkerProcess.get()
        assert worker.threads == 3 and worker.stopped_at is None
        assert WorkerProcess.status().is_alive
        assert [e.kind for e in Event.after(0)] == ["worker.online"]
    heartbeat.worker_thread_stopped()
    heartbeat.worker_thread_stopped()
    with db.connection_context():
        assert WorkerProcess.get().stopped_at is None  # one thread still runs
    heartbeat.worker_thread_stopped()
    with db.connection_context():
        assert WorkerProcess.get().stopped_at is not None
        assert not WorkerProcess.status().is_alive
        assert [e.kind for e in Event.after(0)] == ["worker.online", "worker.offline"]


def test_prune_keeps_recent_events_and_workers(database):
    with db.connection_context():
        Event.publish("old", "system", "Old.", now=NOW - dt.timedelta(days=40))
        Event.publish("new", "system", "New.", now=NOW - dt.timedelta(days=1))
        WorkerProcess.register("gone", 1, 1, "cairn", now=NOW - dt.timedelta(days=8))
        WorkerProcess.register("here", 2, 1, "cairn", now=NOW - dt.timedelta(minutes=1))
        target = NotificationTarget.create(name="Hook", url="json://127.0.0.1:9/h", events=[])
        for days, state in [(40, "sent"), (40, "pending"), (1, "sent")]:
            Delivery.create(target=target, key="test", title="t", body="b", state=state,
                            created_at=NOW - dt.timedelta(days=days))
        Alert.create(key="backup.failed", title="t", message="m", at=NOW - dt.timedelta(days=41),
                     acknowledged_at=NOW - dt.timedelta(days=40))
        Alert.create(key="backup.failed", title="t", message="m", at=NOW - dt.timedelta(days=41))
        assert prune(NOW, retention_days=30) == (1, 2, 1)
        assert [e.kind for e in Event.after(0)] == ["new"]
        assert sorted(d.state for d in Delivery.select()) == ["pending", "sent"]
        assert Alert.get().acknowledged_at is None, "an alert nobody saw stays"
        assert [w.hostname for w in WorkerProcess.select()] == ["here"]
