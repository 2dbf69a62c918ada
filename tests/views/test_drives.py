"""The Drives page: what the watcher saw, live; adopt and eject by role, with their problems
said on the page. (Jobs run inline here; real udev and mounting are in tests/jobs.)"""

import datetime as dt

import pytest

from jobs.queue import settings
from models import AuditEntry, Drive, Event, Profile, Run, db, utcnow
from tests.conftest import html, log_in, post
from tests.helpers.feed import connect, receive_until, session_cookie


@pytest.fixture
def environ(environ):
    # The web and the inline jobs read their drive root from the same place.
    return {**environ, "CAIRN_DRIVE_ROOT": str(settings().drive_root), "CAIRN_DRIVE_AWAY_DAYS": "10"}


def drive(**fields) -> Drive:
    values = {"uuid": "1111-2222", "label": "BACKUP", "fstype": "ext4", "size": 500 * 10**9,
              "bus": "usb", "devnode": "/dev/sdz1", **fields}
    with db.connection_context():
        return Drive.create(**values)


def card(client, d: Drive):
    return html(client.get("/drives/")).select_one(f"#drive-{d.id}")


def test_a_new_box_explains_how_drives_arrive(client, ada):
    log_in(client, ada)
    page = html(client.get("/drives/"))
    assert "Plug in a USB drive" in page.select_one("#drives").text
    assert page.select_one("nav a[aria-current=page]").text == "Drives"


def test_each_drive_says_what_it_is_and_where_it_stands(client, vera, tmp_path):
    media = settings().drive_root
    stick = drive(label="", uuid="abcd1234-0000", fstype="exfat", bus="usb")
    adopted = drive(uuid="5555-6666", label="FAMILY", adopted_at=utcnow(), token="t",
                    mount_point=str(tmp_path))
    away = drive(uuid="7777-8888", label="OFFSITE", adopted_at=utcnow(), connected=False,
                 last_seen_at=utcnow() - dt.timedelta(days=12))
    with db.connection_context():
        photos = Profile.create(name="Photos", slug="photos", sources=["/home/a"],
                                destination=str(media / "5555-6666" / "backups"))
        Run.create(profile=photos, state="succeeded", snapshot="s",
                   finished_at=utcnow() - dt.timedelta(hours=3))
    log_in(client, vera)
    page = html(client.get("/drives/"))
    ids = [li["id"] for li in page.select(".drive-list > li")]
    assert ids == [f"drive-{adopted.id}", f"drive-{away.id}", f"drive-{stick.id}"]  # adopted first
    plain = page.select_one(f"#drive-{stick.id}")
    assert plain.strong.text == "Drive abcd1234" and "mirror only" in plain.text
    assert "exfat · 500 GB · usb · UUID abcd1234-0000" in plain.select_one("[data-figure=what]").text
    mine = page.select_one(f"#drive-{adopted.id}")
    assert mine.select_one("[data-figure=state]").text == "Mounted"
    assert " free of " in mine.select_one("[data-figure=space]").text
    said = mine.select_one("[data-figure=profiles]")
    assert said.a.text == "Photos" and "last good backup 3 h ago" in said.text
    gone = page.select_one(f"#drive-{away.id}")
    assert "overdue" in gone["class"] and gone.select_one("[data-figure=state]").text == "Not connected"
    assert "Last connected 12 d ago: plug it in" in gone.select_one("[data-figure=seen]").text
    assert not page.select("#drives button")   # a viewer only looks


def test_an_admin_adopts_a_drive_and_a_mount_failure_is_said_on_the_page(client, ada, otto):
    stick = drive(devnode="/dev/cairn-no-such-device")
    log_in(client, otto)
    assert not card(client, stick).select("button")   # operators do not adopt
    assert post(client, f"/drives/{stick.id}/adopt").status_code == 403
    log_in(client, ada)
    assert card(client, stick).button.text == "Adopt as a backup drive"
    response = post(client, f"/drives/{stick.id}/adopt")
    assert response.status_code == 303
    shown = card(client, stick)
    assert "Could not mount BACKUP" in shown.select_one("[data-figure=problem]").text
    with db.connection_context():
        stored = Drive.get_by_id(stick.id)
        assert not stored.adopted and stored.busy == ""
        assert AuditEntry.select().where(AuditEntry.action == "drive.adopt").count() == 1
        assert Event.select().where(Event.kind == "drive.adopt_failed").exists()


def test_a_drive_that_cannot_be_adopted_now_says_why(client, ada):
    gone = drive(connected=False)
    log_in(client, ada)
    response = post(client, f"/drives/{gone.id}/adopt", follow_redirects=True)
    assert "cannot be adopted now: it is not connected" in response.get_data(as_text=True)
    assert post(client, "/drives/999/adopt").status_code == 404


def test_an_operator_ejects_an_adopted_drive_and_is_told_when_to_unplug(client, otto, vera):
    stick = drive(adopted_at=utcnow(), token="t", devnode="/dev/cairn-not-mounted")
    log_in(client, vera)
    assert post(client, f"/drives/{stick.id}/eject").status_code == 403
    log_in(client, otto)
    assert post(client, f"/drives/{stick.id}/eject").status_code == 303
    assert card(client, stick).select_one("[data-figure=state]").text == "Safe to unplug"
    assert not card(client, stick).select("button")
    again = post(client, f"/drives/{stick.id}/eject", follow_redirects=True)
    assert "cannot be ejected now" in again.get_data(as_text=True)


def test_a_drive_being_written_to_is_not_ejected(client, otto):
    stick = drive(adopted_at=utcnow(), token="t")
    with db.connection_context():
        profile = Profile.create(name="Photos", slug="photos", sources=["/home/a"],
                                 destination=str(settings().drive_root / stick.uuid / "b"))
        running = Run.create(profile=profile, state="running")
    log_in(client, otto)
    post(client, f"/drives/{stick.id}/eject")
    problem = card(client, stick).select_one("[data-figure=problem]").text
    assert f"Run {running.id} of Photos is writing to it" in problem
    with db.connection_context():
        assert not Drive.get_by_id(stick.id).ejected


def test_the_page_follows_drives_coming_and_going_live(app, live_server, vera):
    ws = connect(live_server, session_cookie(app, vera), query="s=drives")
    receive_until(ws, "#drives")
    stick = drive(label="HOLIDAY")
    with db.connection_context():
        Event.publish("drive.connected", stick.subject, "HOLIDAY connected.", drive=stick.id)
    pushed = receive_until(ws, f"#drive-{stick.id}")
    assert pushed.select_one(f"#drive-{stick.id} [data-figure=state]").text == "Connected"
    with db.connection_context():
        Drive.get_by_id(stick.id).mark_gone()
        Event.publish("drive.disconnected", stick.subject, "HOLIDAY was disconnected.",
                      drive=stick.id)
    gone = receive_until(ws, f"#drive-{stick.id}.offline")
    assert "Last connected" in gone.text
    ws.close()


def test_the_dashboard_shows_each_adopted_drive_and_warns_of_one_away_too_long(client, vera):
    here = drive(uuid="5555-6666", label="FAMILY", adopted_at=utcnow(), token="t")
    away = drive(uuid="7777-8888", label="OFFSITE", adopted_at=utcnow(), connected=False,
                 last_seen_at=utcnow() - dt.timedelta(days=11))
    drive(uuid="9999-0000", label="STRANGER")   # not adopted: not on the dashboard
    with db.connection_context():
        photos = Profile.create(name="Photos", slug="photos", sources=["/home/a"],
                                destination=str(settings().drive_root / "5555-6666" / "b"))
        Run.create(profile=photos, state="succeeded", snapshot="s",
                   finished_at=utcnow() - dt.timedelta(days=2))
    log_in(client, vera)
    cards = html(client.get("/")).select("#drive-cards > li")
    assert [c["id"] for c in cards] == [f"drive-card-{here.id}", f"drive-card-{away.id}"]
    assert cards[0].select_one("[data-figure=state]").text == "online"
    assert cards[0].select_one("[data-figure=last-backup]").text == "Last backup to it 2 d ago"
    assert "overdue" not in cards[0]["class"] and "overdue" in cards[1]["class"]
    assert cards[1].select_one("[data-figure=seen]").text == "Last connected 11 d ago: plug it in"
    assert cards[1].select_one("[data-figure=last-backup]").text == "No backup to it yet"
