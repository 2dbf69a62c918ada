"""The Settings page: a household's settings kept in the database and used at once by the web
and the worker, audited, the environment winning where it sets one, secrets never sent back,
and the installer's settings shown read only."""

import dataclasses

import pytest

from jobs import metadata, scans
from models import AuditEntry, StoredSetting, db
from models.setting import live
from tests.conftest import html, log_in, post


@pytest.fixture
def environ(environ, tmp_path):
    # Set by whoever installed this box: the page must not override these.
    return {**environ, "CAIRN_DRIVE_AWAY_DAYS": "30",
            "CAIRN_DATABASE_URL": environ.get("CAIRN_DATABASE_URL", "")
            or f"sqlite:///{tmp_path / 'cairn.db'}"}


def save(client, **values):
    return post(client, "/settings/", values, token_from="/settings/")


def field(page, name):
    return page.select_one(f"#{name.removeprefix('CAIRN_').lower()}")


def test_an_admin_changes_a_setting_and_it_applies_at_once_and_is_audited(client, ada, tmp_path):
    log_in(client, ada)
    (tmp_path / "photos").mkdir()
    response = save(client, CAIRN_SOURCE_ROOTS=f"/home:{tmp_path / 'photos'}",
                    CAIRN_EVENT_RETENTION_DAYS="30")
    assert response.status_code == 302
    page = html(client.get("/settings/"))
    assert "Applied now" in page.select_one("#notice").text
    assert field(page, "CAIRN_SOURCE_ROOTS")["value"] == f"/home:{tmp_path / 'photos'}"
    # The web's picker and the worker's scanner both use it, without a restart.
    assert client.get(f"/picker/folder?path={tmp_path / 'photos'}").status_code == 200
    with db.connection_context():
        assert str(tmp_path / "photos") in live(scans.settings()).source_roots
        assert live(scans.settings()).event_retention_days == 30
        entries = {e.target: e.detail for e in AuditEntry.select()
                   .where(AuditEntry.action == "settings.update")}
    assert entries == {"CAIRN_SOURCE_ROOTS": f"/home → /home:{tmp_path / 'photos'}",
                       "CAIRN_EVENT_RETENTION_DAYS": "90 → 30"}


def test_bad_values_are_each_explained_and_nothing_is_saved(client, ada):
    log_in(client, ada)
    response = save(client, CAIRN_SOURCE_ROOTS="home", CAIRN_THROTTLE_MEMORY="200",
                    CAIRN_CATCH_UP_HOURS="soon", CAIRN_EVENT_RETENTION_DAYS="30")
    assert response.status_code == 422
    page = html(response)
    errors = {p["id"]: p.text for p in page.select(".has-error .field-msg")}
    assert set(errors) == {"source_roots-msg", "throttle_memory-msg", "catch_up_hours-msg"}
    assert "absolute folders" in errors["source_roots-msg"]
    assert field(page, "CAIRN_SOURCE_ROOTS")["value"] == "home"   # what was typed, to mend
    with db.connection_context():
        assert StoredSetting.stored() == {}


def test_the_environment_wins_and_the_page_says_so(client, ada):
    log_in(client, ada)
    page = html(client.get("/settings/"))
    away = field(page, "CAIRN_DRIVE_AWAY_DAYS")
    assert away.has_attr("disabled") and away["value"] == "30"
    assert "in the environment, which wins" in page.select_one("#drive_away_days-msg").text
    save(client, CAIRN_DRIVE_AWAY_DAYS="3")
    with db.connection_context():
        assert "CAIRN_DRIVE_AWAY_DAYS" not in StoredSetting.stored()
        StoredSetting.put("CAIRN_DRIVE_AWAY_DAYS", "3")   # stored before the environment set it
        assert live(client.application.config["CAIRN"]).drive_away_days == 30


def test_the_tmdb_key_is_never_sent_back(client, ada):
    log_in(client, ada)
    save(client, CAIRN_TMDB_API_KEY="abc123secretkey")
    page = client.get("/settings/").get_data(as_text=True)
    assert "abc123secretkey" not in page
    assert "a key is set" in page
    with db.connection_context():
        assert live(metadata.settings()).tmdb_api_key == "abc123secretkey"
        assert metadata.enabled()
    save(client, CAIRN_TMDB_API_KEY="")   # empty keeps it
    with db.connection_context():
        assert live(metadata.settings()).tmdb_api_key == "abc123secretkey"
    save(client, CAIRN_TMDB_API_KEY="", remove_key="1")
    with db.connection_context():
        assert not metadata.enabled()
        details = [e.detail for e in AuditEntry.select().order_by(AuditEntry.id)]
    assert details == ["key set", "key removed"]
    assert not any("abc123" in d for d in details)


def test_the_installers_settings_are_shown_read_only_without_passwords(client, ada, app):
    app.config["CAIRN"] = dataclasses.replace(
        app.config["CAIRN"], redis_url="redis://:hunter2@127.0.0.1:6379/0")
    log_in(client, ada)
    page = html(client.get("/settings/"))
    rows = {tr.td.text: tr.select("td")[1].text for tr in page.select("#installer-settings tbody tr")}
    assert rows["CAIRN_REDIS_URL"] == "redis://:•••@127.0.0.1:6379/0"
    assert "CAIRN_DATA_DIR" in rows and "CAIRN_SOURCE_ROOTS" not in rows
    assert "hunter2" not in str(page)
    assert page.select("#installer-settings input") == []


def test_only_admins_see_settings(client, otto):
    log_in(client, otto)
    assert client.get("/settings/").status_code == 403
    assert save(client, CAIRN_EVENT_RETENTION_DAYS="1").status_code == 403
