import datetime as dt

import pytest

from models import AuditEntry, Event, User, WorkerProcess
from models.worker import STALE_AFTER

NOW = dt.datetime(2026, 11, 22, 12, 0)


@pytest.fixture(autouse=True)
def _db(migrated):
    pass


def test_events_are_read_back_in_order_after_an_id():
    first = Event.publish("worker.online", "system", "Worker started.", now=NOW, worker=1)
    second = Event.publish("note", "system", "Second.", level="warning", now=NOW)
    assert [e.id for e in Event.after(0)] == [first.id, second.id]
    assert [e.id for e in Event.after(first.id)] == [second.id]
    assert Event.after(second.id) == []
    assert Event.last_id() == second.id
    assert Event.get_by_id(first.id).payload == {"worker": 1}


def test_a_jobs_events_are_one_line_of_recent_activity_its_newest():
    Event.publish("worker.online", "system", "Worker started.")
    Event.publish("run.queued", "run:1", "Run 1 queued.")
    Event.publish("run.queued", "run:2", "Run 2 queued.")
    Event.publish("run.started", "run:1", "Run 1 started.")
    Event.publish("drive.connected", "drive:1", "Drive plugged in.")
    Event.publish("drive.connected", "drive:1", "Drive plugged in again.")
    Event.publish("run.finished", "run:1", "Run 1 finished.")
    shown = [e.message for e in Event.recent(10)]
    assert shown == ["Run 1 finished.", "Drive plugged in again.", "Drive plugged in.",
                     "Run 2 queued.", "Worker started."]
    assert [e.message for e in Event.recent(2)] == ["Run 1 finished.", "Drive plugged in again."]
    assert Event.recent(10)[0].line_id == "activity-run-1"


def test_an_empty_event_table_has_last_id_zero():
    assert Event.last_id() == 0


def test_an_unknown_event_level_is_refused():
    with pytest.raises(ValueError):
        Event.publish("x", "system", "msg", level="loud")


def test_old_events_are_pruned_by_age():
    Event.publish("old", "system", "Old.", now=NOW - dt.timedelta(days=91))
    kept = Event.publish("new", "system", "New.", now=NOW - dt.timedelta(days=89))
    assert Event.prune(NOW - dt.timedelta(days=90)) == 1
    assert [e.id for e in Event.after(0)] == [kept.id]


def test_a_worker_is_alive_while_its_heartbeat_is_fresh():
    worker = WorkerProcess.register("box", 123, 4, "cairn", now=NOW)
    assert WorkerProcess.status(NOW + STALE_AFTER - dt.timedelta(seconds=1)).is_alive
    assert not WorkerProcess.status(NOW + STALE_AFTER).is_alive
    worker.beat(NOW + STALE_AFTER)
    status = WorkerProcess.status(NOW + STALE_AFTER)
    assert status.is_alive and status.threads == 4 and status.last_seen == NOW + STALE_AFTER


def test_a_stopped_worker_is_not_alive_but_remembered():
    worker = WorkerProcess.register("box", 123, 4, "cairn", now=NOW)
    worker.stop(NOW)
    status = WorkerProcess.status(NOW)
    assert not status.is_alive and status.last_seen == NOW


def test_no_worker_ever_means_never_seen():
    status = WorkerProcess.status(NOW)
    assert not status.is_alive and status.last_seen is None


def test_audit_search_filters_by_user_action_and_time():
    ada = User.create_account("ada", "correct horse battery", "admin")
    AuditEntry.record("auth.login", actor=ada, now=NOW - dt.timedelta(days=2))
    AuditEntry.record("auth.login_failed", actor_name="mallory", now=NOW - dt.timedelta(days=1))
    AuditEntry.record("auth.logout", actor=ada, now=NOW)
    assert [e.action for e in AuditEntry.search(user="ADA")] == ["auth.logout", "auth.login"]
    assert [e.actor_name for e in AuditEntry.search(action="auth.login_failed")] == ["mallory"]
    window = AuditEntry.search(since=NOW - dt.timedelta(days=1), until=NOW)
    assert [e.action for e in window] == ["auth.login_failed"]


def test_audit_entries_name_their_actor_and_target():
    ada = User.create_account("ada", "correct horse battery", "admin")
    entry = AuditEntry.record("user.create", actor=ada, target="vera", now=NOW)
    assert (entry.actor_name, entry.target) == ("ada", "vera")


def test_audit_action_choices_include_known_and_recorded_actions():
    AuditEntry.record("drive.adopt", actor_name="ada", now=NOW)
    actions = dict(AuditEntry.actions())
    assert actions["auth.login_failed"] == "Failed login"
    assert actions["drive.adopt"] == "drive.adopt"


def test_an_event_id_is_never_handed_out_twice():
    # The live feed reads events after the last id it saw; a reused id would go unseen.
    first = Event.publish("run.progress", "run:1", "50%", now=NOW)
    Event.drop_progress("run:1")
    assert Event.publish("run.finished", "run:1", "Done.", now=NOW).id > first.id
    Event.prune(before=NOW + dt.timedelta(days=1))
    assert Event.select().count() == 0
    assert Event.publish("note", "system", "Hello.", now=NOW).id > first.id + 1
