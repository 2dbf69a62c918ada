"""Notifications sent for real through Apprise to a webhook receiver on loopback: events
routed once to the targets that want them, alerts for the ones to acknowledge, a failing
target paused by its breaker and its deliveries kept until it works again."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs import breakers, imports, notify
from jobs import library as lib
from models import Alert, Breaker, Delivery, Event, NotificationTarget, NotifyCursor, utcnow
from tests.helpers.trees import write
from tests.helpers.webhook import Receiver

pytestmark = pytest.mark.usefixtures("inline")


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def target(receiver, events=("backup.failed", "import.blocked", "breaker.opened"), **fields):
    NotifyCursor.current()
    return NotificationTarget.create(name=fields.pop("name", "Phone"), url=receiver.url,
                                     events=list(events), **fields)


def backup_failed(message="Backup of Home: failed. The destination is full."):
    return Event.publish("run.finished", "run:1", message, level="error", run=1, state="failed",
                         profile=1)


def test_an_event_is_sent_to_the_targets_that_want_it_once(receiver):
    phone = target(receiver)
    target(receiver, events=("backup.succeeded",), name="Log")
    backup_failed()
    Event.publish("run.finished", "run:2", "Backup of Home: succeeded.", run=2, state="partial")
    assert notify.route() == 2
    assert notify.route() == 0, "each event is routed once"
    assert receiver.received == [{"path": "/hook", "version": "1.0", "title": "Cairn: Backup failed",
                                  "message": "Backup of Home: failed. The destination is full.",
                                  "type": "failure", "attachments": []}]
    sent = Delivery.get()
    assert (sent.state, sent.target_id, sent.attempts) == ("sent", phone.id, 1)
    assert NotificationTarget.get_by_id(phone.id).last_sent_at is not None
    alerts = [(a.key, a.level) for a in Alert.open()]
    assert alerts == [("backup.partial", "warning"), ("backup.failed", "error")]


def test_events_from_before_the_notifier_started_are_history_not_news(receiver):
    backup_failed("old news")
    target(receiver)
    backup_failed("new")
    notify.route()
    assert [r["message"] for r in receiver.received] == ["new"]


def test_a_failing_target_is_paused_and_its_deliveries_wait_for_it(receiver):
    phone = target(receiver)
    receiver.status = 500
    backup_failed()
    notify.route()
    delivery = Delivery.get()
    assert delivery.state == "pending" and delivery.attempts == 1
    assert "500" in delivery.error or "HTTP" in delivery.error, delivery.error
    breaker = Breaker.get(Breaker.name == phone.breaker_name)
    assert breaker.state == "open" and delivery.not_before == breaker.next_try
    assert NotificationTarget.get_by_id(phone.id).last_error == delivery.error
    assert Delivery.select().count() == 1, "not told of its own breaker through itself"

    backup_failed("second")
    notify.route()
    waiting = Delivery.get(Delivery.body == "second")
    assert waiting.state == "pending" and waiting.attempts == 0, "paused: not even tried"

    receiver.status = 200
    breakers.reset(breaker)
    Delivery.update(not_before=utcnow() - dt.timedelta(seconds=1)).execute()
    notify.deliver_due.call_local()
    assert [d.state for d in Delivery.select().order_by(Delivery.id)] == ["sent", "sent"]
    assert [r["message"] for r in receiver.received[-2:]] == [
        "Backup of Home: failed. The destination is full.", "second"]


def test_hopeless_deliveries_expire_after_three_days(receiver):
    phone = target(receiver)
    Delivery.create(target=phone, key="backup.failed", title="t", body="b",
                    created_at=utcnow() - dt.timedelta(days=4))
    notify.deliver_due.call_local()
    assert Delivery.get().state == "expired" and not receiver.received


def test_the_test_button_sends_a_test(receiver):
    phone = target(receiver)
    notify.send_test(phone, by="ada")
    assert receiver.received[0]["title"] == "Cairn: test notification"
    assert "sent by ada" in receiver.received[0]["message"]


def test_a_blocked_import_is_notified_and_alerted(receiver, tmp_path):
    target(receiver)
    (tmp_path / "in").mkdir()
    (tmp_path / "lib").mkdir()
    lib.set_root(str(tmp_path / "lib"))
    lib.add_inbox(str(tmp_path / "in"))
    write(tmp_path / "in" / "Heat.1995.1080p.BluRay.mkv", b"")
    imports.sweep(hurry=True)
    notify.route()
    [sent] = receiver.received
    assert sent["title"] == "Cairn: Import blocked"
    assert "Heat.1995.1080p.BluRay.mkv needs attention: The file is empty (0 bytes)." in sent["message"]
    assert Alert.get().key == "import.blocked" and Alert.get().subject.startswith("import:")


def test_an_alert_is_acknowledged_once():
    NotifyCursor.current()
    backup_failed()
    notify.route()
    alert = Alert.get()
    now = utcnow()
    assert alert.acknowledge("otto", now) and not alert.acknowledge("ada", now)
    assert Alert.open_count() == 0 and Alert.get().acknowledged_by == "otto"


def test_one_alert_per_problem_with_a_count_not_one_per_run_or_file(receiver, tmp_path):
    NotifyCursor.current()
    for run in (1, 2, 3):   # a profile failing run after run
        Event.publish("run.finished", f"run:{run}", f"Backup of Home: failed ({run}).",
                      level="error", run=run, state="failed", profile=1)
    Event.publish("run.finished", "run:4", "Backup of Music: failed.", level="error", run=4,
                  state="failed", profile=2)
    (tmp_path / "in").mkdir()
    (tmp_path / "lib").mkdir()
    lib.set_root(str(tmp_path / "lib"))
    lib.add_inbox(str(tmp_path / "in"))
    for episode in range(1, 6):   # a batch of files blocked for the same reason
        write(tmp_path / "in" / f"Show.S01E0{episode}.1080p.mkv", b"")
    imports.sweep(hurry=True)
    notify.route()
    alerts = {(a.key, a.problem): a for a in Alert.open()}
    home = alerts[("backup.failed", "profile:1")]
    assert (home.count, home.subject, home.message) == (3, "run:3", "Backup of Home: failed (3).")
    assert alerts[("backup.failed", "profile:2")].count == 1
    [batch] = [a for (key, _), a in alerts.items() if key == "import.blocked"]
    assert batch.count == 5 and len(alerts) == 3
    home.acknowledge("otto", utcnow())      # once seen, the next failure is news again
    Event.publish("run.finished", "run:5", "Backup of Home: failed (5).", level="error", run=5,
                  state="failed", profile=1)
    notify.route()
    assert Alert.open().where(Alert.problem == "profile:1").get().count == 1
