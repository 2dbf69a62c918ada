"""Notification targets and the alert centre: an admin adds a webhook target (sent for real to
a receiver on loopback), its secret shown masked, a bad URL refused beside its field; alerts
seen by everyone, acknowledged by operators."""

import datetime as dt

import pytest

from jobs import notify
from models import Alert, Breaker, Event, NotificationTarget, NotifyCursor, db
from tests.conftest import html, log_in, post
from tests.helpers.webhook import Receiver


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def test_an_admin_adds_a_target_tests_it_and_its_secret_stays_masked(client, ada, receiver):
    log_in(client, ada)
    page = html(client.get("/notifications/"))
    assert {box["value"] for box in page.select("#events input[checked]")} >= {"backup.failed",
                                                                                "import.blocked"}
    for url, says in [("", "Write the target's Apprise URL"), ("nonsense://x", "Apprise does not know"),
                      ("json://a\nb", "one line")]:
        refused = post(client, "/notifications/", {"name": "Hook", "url": url, "events": ["backup.failed"]})
        assert refused.status_code == 422 and says in html(refused).select_one("#url-msg").text
    secret = receiver.url.replace("json://", "json://user:s3cret@")
    added = post(client, "/notifications/", {"name": "Hook", "url": secret,
                                             "events": ["backup.failed", "import.failed"], "enabled": "y"})
    assert added.status_code == 303
    with db.connection_context():
        target = NotificationTarget.get()
    shown = html(client.get("/notifications/")).select_one(f"#target-{target.id}")
    assert "s3cret" not in str(shown) and "****" in shown.select_one("[data-figure=url]").text
    assert shown.select_one("[data-figure=events]").text == "Backup failed, Import failed"
    assert post(client, f"/notifications/{target.id}/test", headers={"HX-Request": "true"}).status_code == 200
    assert receiver.received[-1]["title"] == "Cairn: test notification"
    shown = html(client.get("/notifications/")).select_one(f"#target-{target.id}")
    assert shown.select_one("[data-figure=state]").text == "working"

    edit = html(client.get(f"/notifications/{target.id}"))
    assert edit.select_one("#url")["value"] == "", "the secret is never sent back to the browser"
    kept = post(client, f"/notifications/{target.id}",
                {"name": "Hook", "url": "", "events": ["backup.failed"], "enabled": "y"})
    assert kept.status_code == 303
    with db.connection_context():
        assert NotificationTarget.get().url == secret
    removed = post(client, f"/notifications/{target.id}/delete", headers={"HX-Request": "true"})
    assert removed.status_code == 200 and "Notification target Hook removed." in removed.text
    with db.connection_context():
        assert not NotificationTarget.select().exists()


def test_a_failing_target_shows_its_error_and_its_pause(client, ada, receiver):
    receiver.status = 500
    with db.connection_context():
        target = NotificationTarget.create(name="Hook", url=receiver.url, events=["backup.failed"])
        notify.send_test(target)
    log_in(client, ada)
    shown = html(client.get("/notifications/")).select_one(f"#target-{target.id}")
    assert shown.select_one("[data-figure=state]").text == "paused"
    assert shown.select_one("[data-figure=error]").text.strip()
    assert "Paused; next try" in shown.select_one("[data-figure=breaker]").text


def test_alerts_are_seen_by_everyone_and_acknowledged_by_operators(client, vera, otto):
    with db.connection_context():
        NotifyCursor.current()
        Event.publish("run.finished", "run:7", "Backup of Home: failed.", level="error", run=7,
                      state="failed")
        Event.publish("verification.finished", "verification:3", "Verification: damaged.",
                      state="damaged", verification=3)
        notify.route()
        alert = Alert.get(Alert.key == "backup.failed")
    log_in(client, vera)
    page = html(client.get("/alerts/"))
    assert page.select_one("[data-figure=alerts-open]").text == "2"
    assert page.select_one(f"#alert-{alert.id} [data-figure=message]").text == "Backup of Home: failed."
    assert page.select_one(f"#alert-{alert.id} a")["href"] == "/runs/7"
    assert not page.select("#alerts button")
    assert post(client, f"/alerts/{alert.id}/ack").status_code == 403
    log_in(client, otto)
    assert post(client, f"/alerts/{alert.id}/ack", headers={"HX-Request": "true"}).status_code == 200
    again = post(client, f"/alerts/{alert.id}/ack", headers={"HX-Request": "true"})
    assert again.status_code == 409
    assert html(client.get("/alerts/")).select_one("[data-figure=alerts-open]").text == "1"
    assert post(client, "/alerts/ack-all").status_code == 303
    page = html(client.get("/alerts/"))
    assert not page.select("[data-figure=alerts-open]") and "Nothing needs you." in page.text
    every = html(client.get("/alerts/?show=all")).select("[data-figure=acknowledged]")
    assert [a.text for a in every] == ["acknowledged by otto", "acknowledged by otto"]


def test_a_webhook_whose_path_is_its_secret_is_shown_masked_everywhere(client, ada, receiver):
    receiver.status = 500
    url = receiver.url + "/s3cretpath?:Authorization=Bearer%20t0kenvalue"
    with db.connection_context():
        target = NotificationTarget.create(name="Hook", url=url, events=["backup.failed"])
        notify.send_test(target)
        said = [e.message for e in Event.select()] + [b.last_error for b in Breaker.select()]
    log_in(client, ada)
    page = client.get("/notifications/").text
    assert "s3cretpath" not in page and "t0kenvalue" not in page
    assert "s3cretpath" not in " ".join(said) and "t0kenvalue" not in " ".join(said)
    assert receiver.received[-1]["path"] == "/hook/s3cretpath"   # the secret still works


def test_an_alert_that_happened_again_says_how_often_since_when(client, vera):
    with db.connection_context():
        for run in (1, 2, 3):
            Alert.raise_or_count("backup.failed", "error", "Backup failed", f"Failed ({run}).",
                                 f"run:{run}", dt.datetime(2026, 12, 1, 2, run), "profile:1")
    log_in(client, vera)
    [shown] = html(client.get("/alerts/")).select("#alerts li")
    assert shown.select_one("[data-figure=count]").text == "3 times since 2026-12-01 02:01"
    assert shown.select_one("[data-figure=message]").text == "Failed (3)."
