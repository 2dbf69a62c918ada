"""Profile schedules in the browser's terms: every kind saved, said in words with their next
runs in the viewer's zone, refused beside their field when wrong, and what they change on
the list and the dashboard (when each backup runs next, when it is overdue)."""

import datetime as dt

import pytest

from models import Profile, Run, User, db, utcnow
from tests.conftest import html, log_in, post
from tests.helpers.profiles import form, make, messages, profile_home, profiles


@pytest.fixture
def environ(environ, tmp_path):
    return {**environ, "CAIRN_SOURCE_ROOTS": str(tmp_path / "home")}


@pytest.fixture
def home(tmp_path):
    return profile_home(tmp_path)


def test_a_daily_preset_is_saved_as_cron_and_shown_in_words_with_its_next_runs(client, ada, home):
    log_in(client, ada)
    response = post(client, "/profiles/", form(home, schedule_kind="daily", schedule_time="02:30",
                                               schedule_tz="Europe/Berlin"))
    assert response.status_code == 302, messages(response)
    [profile] = profiles()
    assert (profile.schedule, profile.schedule_tz) == ("30 2 * * *", "Europe/Berlin")
    assert utcnow() - profile.schedule_looked_at < dt.timedelta(minutes=1)
    shown = html(client.get(response.headers["Location"])).select_one("[data-figure=schedule]")
    assert shown.text.startswith("At 02:30") and "(Europe/Berlin clock)" in shown.text
    times = shown.select("time")
    assert len(times) == 3
    # ada reads times in UTC: 02:30 in Berlin is 00:30 or 01:30 UTC, a day apart
    assert all(t.text.endswith(("00:30", "01:30")) for t in times)


@pytest.mark.parametrize("fields, expression", [
    ({"schedule_kind": "hourly", "schedule_minute": "15"}, "15 * * * *"),
    ({"schedule_kind": "weekly", "schedule_time": "23:05", "schedule_weekday": "6"}, "5 23 * * 6"),
    ({"schedule_kind": "cron", "schedule_cron": " */15  8-18 * * 1-5 "}, "*/15 8-18 * * 1-5"),
    ({"schedule_kind": "cron", "schedule_cron": "@weekly"}, "0 0 * * 0"),
    ({"schedule_kind": "manual", "schedule_cron": "nonsense", "schedule_tz": ""}, ""),
])
def test_every_kind_of_schedule_is_saved(client, ada, home, fields, expression):
    log_in(client, ada)
    response = post(client, "/profiles/", form(home, **{"schedule_tz": "UTC", **fields}))
    assert response.status_code == 302, messages(response)
    assert profiles()[0].schedule == expression


@pytest.mark.parametrize("fields, field, says", [
    ({"schedule_kind": "cron", "schedule_cron": "61 * * * *"}, "schedule_cron", "minute 0-59"),
    ({"schedule_kind": "cron", "schedule_cron": "0 3 * *"}, "schedule_cron", "five fields"),
    ({"schedule_kind": "cron", "schedule_cron": "0 0 30 2 *"}, "schedule_cron", "never comes round"),
    ({"schedule_kind": "cron", "schedule_cron": ""}, "schedule_cron", "Write a cron expression"),
    ({"schedule_kind": "daily", "schedule_time": "25:00"}, "schedule_time", "such as 02:30"),
    ({"schedule_kind": "daily", "schedule_time": "2:3"}, "schedule_time", "such as 02:30"),
    ({"schedule_kind": "hourly", "schedule_minute": "60"}, "schedule_minute", "between 0 and 59"),
    ({"schedule_kind": "hourly", "schedule_minute": ""}, "schedule_minute", "Enter the minute"),
    ({"schedule_kind": "weekly", "schedule_weekday": "9"}, "schedule_weekday", ""),
    ({"schedule_kind": "daily", "schedule_tz": "Mars/Olympus"}, "schedule_tz", "not a time zone"),
    ({"schedule_kind": "sometimes"}, "schedule_kind", ""),
])
def test_bad_schedules_are_refused_beside_their_field(client, ada, home, fields, field, says):
    log_in(client, ada)
    response = post(client, "/profiles/", form(home, **{"schedule_tz": "UTC", **fields}))
    assert response.status_code == 422
    shown = messages(response)
    assert field in shown and says in shown[field]
    assert profiles() == []


def test_the_edit_form_shows_the_schedule_as_it_was_chosen(client, ada, home):
    profile = make(home, schedule="5 23 * * 6", schedule_tz="Asia/Tokyo")
    log_in(client, ada)
    page = html(client.get(f"/profiles/{profile.id}/edit"))
    assert page.select_one("input[name=schedule_kind][checked]")["value"] == "weekly"
    assert page.select_one("#schedule_time")["value"] == "23:05"
    assert page.select_one("#schedule_weekday option[selected]")["value"] == "6"
    assert page.select_one("#schedule_tz")["value"] == "Asia/Tokyo"
    assert page.select_one("#schedule-preview").text.strip().startswith("At 23:05, only on Saturday.")
    custom = make(home, name="Custom", slug="custom", schedule="*/10 * * * *")
    page = html(client.get(f"/profiles/{custom.id}/edit"))
    assert page.select_one("input[name=schedule_kind][checked]")["value"] == "cron"
    assert page.select_one("#schedule_cron")["value"] == "*/10 * * * *"


def test_a_new_profile_reads_times_on_the_admins_clock(client, ada, home):
    with db.connection_context():
        User.update(timezone="America/New_York").where(User.id == ada.id).execute()
    log_in(client, ada)
    page = html(client.get("/profiles/new"))
    assert page.select_one("#schedule_tz")["value"] == "America/New_York"
    assert page.select_one("input[name=schedule_kind][checked]")["value"] == "manual"


def test_changing_the_schedule_owes_nothing_from_before_and_other_edits_keep_its_place(
        client, ada, home):
    long_ago = dt.datetime(2026, 1, 1)
    profile = make(home, schedule="0 3 * * *", schedule_tz="UTC", schedule_looked_at=long_ago)
    log_in(client, ada)
    same = form(home, schedule_kind="daily", schedule_time="03:00", schedule_tz="UTC", retries="5")
    assert post(client, f"/profiles/{profile.id}/edit", same).status_code == 302
    with db.connection_context():
        assert Profile.get_by_id(profile.id).schedule_looked_at == long_ago
    other = {**same, "schedule_time": "04:00"}
    assert post(client, f"/profiles/{profile.id}/edit", other).status_code == 302
    with db.connection_context():
        saved = Profile.get_by_id(profile.id)
    assert saved.schedule == "0 4 * * *" and saved.schedule_looked_at > long_ago


def test_the_form_says_the_schedule_in_words_as_it_is_typed(client, ada, vera):
    log_in(client, ada)
    said = html(client.get("/profiles/schedule", query_string={
        "schedule_kind": "weekly", "schedule_time": "07:45", "schedule_weekday": "1",
        "schedule_tz": "UTC"}))
    figure = said.select_one("[data-figure=schedule]")
    assert figure.strong.text == "At 07:45, only on Monday."
    assert len(figure.select("time")) == 3
    wrong = html(client.get("/profiles/schedule", query_string={
        "schedule_kind": "cron", "schedule_cron": "0 3 * *", "schedule_tz": "UTC"}))
    assert "five fields" in wrong.select_one(".error-text").text
    zone = html(client.get("/profiles/schedule", query_string={
        "schedule_kind": "daily", "schedule_time": "03:00", "schedule_tz": "Nowhere"}))
    assert "not a time zone" in zone.select_one(".error-text").text
    manual = html(client.get("/profiles/schedule", query_string={"schedule_kind": "manual"}))
    assert "only when someone starts it" in manual.text
    log_in(client, vera)
    assert client.get("/profiles/schedule").status_code == 403


def test_the_list_and_the_dashboard_show_when_each_backup_runs_next(client, vera, home):
    scheduled = make(home, schedule="0 * * * *")
    by_hand = make(home, name="By hand", slug="by-hand")
    log_in(client, vera)
    page = html(client.get("/profiles/"))
    row = page.select_one(f"#profile-{scheduled.id} [data-figure=schedule]")
    assert row.text.startswith("Every hour") and "next" in row.text and row.select("time")
    assert page.select_one(f"#profile-{by_hand.id} [data-figure=schedule]").text == \
        "Only when started by hand"
    dashboard = html(client.get("/"))
    assert dashboard.select_one(f"#backup-{scheduled.id} [data-figure=next-run] time")
    assert not dashboard.select(f"#backup-{by_hand.id} [data-figure=next-run]")


@pytest.mark.parametrize("schedule, hours_ago, overdue", [
    ("0 * * * *", 3, True),       # hourly, nothing good for three hours
    ("0 * * * *", 0.5, False),
    ("0 3 * * *", 3, False),      # daily: three hours is fine
    ("0 3 * * *", 49, True),      # ...two days is not
    ("", 49, False),              # by hand: a week
    ("", 24 * 8, True),
])
def test_a_scheduled_backup_is_overdue_once_it_falls_a_period_behind(client, vera, home,
                                                                      schedule, hours_ago, overdue):
    profile = make(home, schedule=schedule)
    with db.connection_context():
        Run.create(profile=profile, state="succeeded", snapshot="s",
                   finished_at=utcnow() - dt.timedelta(hours=hours_ago))
    log_in(client, vera)
    card = html(client.get("/")).select_one(f"#backup-{profile.id}")
    assert ("overdue" in card["class"]) is overdue
