import datetime as dt

import pytest

from models import AuditEntry, User, db
from tests.conftest import html, log_in


@pytest.fixture
def admin_client(client, ada):
    with db.connection_context():
        User.update(timezone="Asia/Tokyo").where(User.id == ada.id).execute()
        ada = User.get_by_id(ada.id)
    log_in(client, ada)
    return client


def record(action, name, at):
    with db.connection_context():
        AuditEntry.record(action, actor_name=name, now=at)


def rows(response) -> list[tuple[str, str]]:
    return [(tr.select("td")[1].text, tr.select("td")[2].text)
            for tr in html(response).select("#audit tbody tr")]


def test_the_audit_log_lists_newest_first(admin_client):
    record("auth.login", "ada", dt.datetime(2026, 11, 1, 9))
    record("auth.login_failed", "mallory", dt.datetime(2026, 11, 2, 9))
    assert rows(admin_client.get("/audit")) == [("mallory", "Failed login"), ("ada", "Logged in")]


def test_filters_by_user_and_action(admin_client):
    record("auth.login", "ada", dt.datetime(2026, 11, 1, 9))
    record("auth.login", "vera", dt.datetime(2026, 11, 1, 10))
    record("auth.logout", "vera", dt.datetime(2026, 11, 1, 11))
    assert rows(admin_client.get("/audit?user=VERA")) == [("vera", "Logged out"), ("vera", "Logged in")]
    assert rows(admin_client.get("/audit?user=vera&action=auth.login")) == [("vera", "Logged in")]


def test_date_filters_are_days_in_the_viewers_time_zone(admin_client):
    # 2026-11-01 20:00 UTC is already 2 November in Tokyo (UTC+9).
    record("auth.login", "late", dt.datetime(2026, 11, 1, 20))
    record("auth.login", "early", dt.datetime(2026, 11, 1, 10))
    assert rows(admin_client.get("/audit?since=2026-11-02&until=2026-11-02")) == [("late", "Logged in")]
    assert rows(admin_client.get("/audit?until=2026-11-01")) == [("early", "Logged in")]


def test_times_show_in_the_viewers_zone_with_utc_on_hover(admin_client):
    record("auth.login", "ada", dt.datetime(2026, 11, 1, 20, 0, 5))
    cell = html(admin_client.get("/audit")).select_one("#audit time")
    assert cell.text == "2026-11-02 05:00:05"
    assert cell["title"] == "2026-11-01 20:00:05 UTC"


@pytest.mark.parametrize("query, field", [("since=yesterday", "since"),
                                          ("since=2026-11-05&until=2026-11-01", "until"),
                                          ("user=" + "u" * 200, "user")])
def test_a_malformed_filter_gets_a_message_not_an_error(admin_client, query, field):
    response = admin_client.get(f"/audit?{query}")
    assert response.status_code == 400
    assert html(response).select_one(f"#{field}-msg").text.strip()


def test_an_unknown_action_simply_matches_nothing(admin_client):
    record("auth.login", "ada", dt.datetime(2026, 11, 1, 9))
    response = admin_client.get("/audit?action=no.such")
    assert response.status_code == 200 and rows(response) == []


def test_long_logs_are_paged_and_pages_keep_the_filter(admin_client):
    for minute in range(55):
        record("auth.login", "ada", dt.datetime(2026, 11, 1, 9, minute))
    first = html(admin_client.get("/audit?user=ada"))
    assert len(first.select("#audit tbody tr")) == 50
    older = first.select_one("a[rel=next]")["href"]
    assert "user=ada" in older and "page=2" in older
    assert len(html(admin_client.get(older)).select("#audit tbody tr")) == 5
    assert len(html(admin_client.get("/audit?user=ada&page=zzz")).select("#audit tbody tr")) == 50
