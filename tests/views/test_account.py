import pytest

from models import AuditEntry, User, db
from tests.conftest import PASSWORD, html, log_in, post

NEW = "a new and long password"


@pytest.fixture
def vera_client(client, vera):
    log_in(client, vera)
    return client


def change(client, current=PASSWORD, password=NEW, confirm=NEW):
    return post(client, "/account/", {"current": current, "password": password, "confirm": confirm})


def test_a_viewer_changes_their_own_password_and_stays_logged_in(vera_client, app, vera):
    elsewhere = app.test_client()
    log_in(elsewhere, vera)
    response = change(vera_client)
    assert response.status_code == 302
    assert "Password changed" in vera_client.get("/account/").get_data(as_text=True)
    assert elsewhere.get("/").status_code == 302  # every other session ended
    with db.connection_context():
        assert User.authenticate("vera", NEW) is not None
        assert AuditEntry.get().action == "account.password"


@pytest.mark.parametrize("fields, field, says", [
    ({"current": "not my password"}, "current", "not your current password"),
    ({"current": ""}, "current", "Enter your current password"),
    ({"password": "short", "confirm": "short"}, "password", "at least 10"),
    ({"password": "vera", "confirm": "vera"}, "password", "at least 10"),
    ({"password": "Vera" * 3, "confirm": "Vera" * 3}, "password", None),
    ({"confirm": "something else"}, "confirm", "differ"),
    ({"password": "p" * 300, "confirm": "p" * 300}, "password", "at most 256"),
])
def test_mistakes_are_shown_beside_the_field_and_nothing_changes(vera_client, fields, field, says):
    response = change(vera_client, **fields)
    if says is None:
        assert response.status_code == 302
        return
    assert response.status_code == 422
    assert says in html(response).select_one(f"#{field}-msg").text
    with db.connection_context():
        assert User.authenticate("vera", PASSWORD) is not None


def test_the_password_cannot_be_the_username(vera_client):
    response = change(vera_client, password="vera" + " " * 8, confirm="vera" + " " * 8)
    assert response.status_code == 422
    assert "cannot be the username" in html(response).select_one("#password-msg").text


def test_the_account_page_shows_role_and_time_zone(vera_client):
    page = html(vera_client.get("/account/"))
    assert page.select_one("h1").text == "vera"
    assert "UTC" in page.select_one(".facts").text
