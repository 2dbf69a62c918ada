import pytest

from models import AuditEntry, User, db
from tests.conftest import PASSWORD, csrf_token, html, log_in, post


@pytest.fixture
def admin_client(client, ada):
    log_in(client, ada)
    return client


def users() -> dict[str, tuple[str, bool]]:
    with db.connection_context():
        return {u.username: (u.role, u.active) for u in User.select()}


def last_audit() -> tuple[str, str, str, str]:
    with db.connection_context():
        entry = AuditEntry.select().order_by(AuditEntry.id.desc()).get()
        return entry.action, entry.actor_name, entry.target, entry.detail


def add_user(client, **fields):
    data = {"username": "otto", "role": "operator", "password": PASSWORD, "confirm": PASSWORD,
            **fields}
    return post(client, "/users/", data)


def test_the_admin_sees_every_user_with_role_and_status(admin_client, vera):
    page = html(admin_client.get("/users/"))
    rows = {row.select_one("td a").text: row for row in page.select("#users tbody tr")}
    assert set(rows) == {"ada", "vera"}
    assert rows["vera"].select_one("option[selected]")["value"] == "viewer"


def test_an_admin_adds_a_user_who_can_then_log_in(admin_client, app):
    response = add_user(admin_client)
    assert response.status_code == 302
    assert users()["otto"] == ("operator", True)
    assert last_audit() == ("user.create", "ada", "otto", "role operator")
    other = app.test_client()
    response = other.post("/login", data={"csrf_token": csrf_token(other), "username": "otto",
                                          "password": PASSWORD})
    assert response.status_code == 302


@pytest.mark.parametrize("fields, field, says", [
    ({"username": ""}, "username", "Enter a username"),
    ({"username": "x" * 1000}, "username", "characters"),
    ({"username": "ADA"}, "username", "already a user called ada"),
    ({"password": "tiny", "confirm": "tiny"}, "password", "at least 10"),
    ({"password": "otto-otto-otto"[:4] * 3, "confirm": "otto" * 3}, "password", None),
    ({"confirm": "different password"}, "confirm", "differ"),
    ({"role": "root"}, "role", "Not a valid choice"),
])
def test_bad_new_users_get_messages_beside_the_fields(admin_client, fields, field, says):
    response = add_user(admin_client, **fields)
    if says is None:  # a fine password after all: the control case
        assert response.status_code == 302
        return
    assert response.status_code == 422
    assert says in html(response).select_one(f"#add-user #{field}-msg").text
    assert set(users()) == {"ada"}


def test_the_role_changes_in_place_over_htmx(admin_client, vera):
    response = admin_client.post(f"/users/{vera.id}/role", data={"role": "operator"},
                                 headers={"HX-Request": "true",
                                          "X-CSRFToken": csrf_token(admin_client, "/users/")})
    assert response.status_code == 200
    row = html(response).select_one(f"tr#user-{vera.id}")
    assert row.select_one("option[selected]")["value"] == "operator"
    assert users()["vera"] == ("operator", True)
    assert last_audit() == ("user.role", "ada", "vera", "viewer → operator")


def test_an_htmx_post_without_the_csrf_header_is_refused(admin_client, vera):
    response = admin_client.post(f"/users/{vera.id}/role", data={"role": "admin"},
                                 headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#notice"
    assert "security token" in response.get_data(as_text=True)
    assert users()["vera"] == ("viewer", True)


def test_the_last_admin_cannot_demote_themselves(admin_client, ada):
    response = admin_client.post(f"/users/{ada.id}/role", data={"role": "viewer"},
                                 headers={"HX-Request": "true",
                                          "X-CSRFToken": csrf_token(admin_client, "/users/")})
    assert response.status_code == 409
    row = html(response).select_one(f"tr#user-{ada.id}")
    assert "at least one active admin" in row.select_one("[role=alert]").text
    assert row.select_one("option[selected]")["value"] == "admin"
    assert users()["ada"] == ("admin", True)


def test_the_last_admin_cannot_disable_themselves(admin_client, ada):
    response = post(admin_client, f"/users/{ada.id}/active", {})
    assert response.status_code == 302
    assert "at least one active admin" in admin_client.get(response.headers["Location"]).get_data(
        as_text=True)
    assert users()["ada"] == ("admin", True)


def test_disabling_a_user_signs_them_out_at_once(admin_client, app, vera):
    vera_client = app.test_client()
    log_in(vera_client, vera)
    assert vera_client.get("/").status_code == 200
    response = post(admin_client, f"/users/{vera.id}/active", {})
    assert response.status_code == 302
    assert users()["vera"] == ("viewer", False)
    assert last_audit()[:3] == ("user.disable", "ada", "vera")
    assert vera_client.get("/").status_code == 302
    post(admin_client, f"/users/{vera.id}/active", {"active": "y"})
    assert users()["vera"] == ("viewer", True)
    assert last_audit()[:3] == ("user.enable", "ada", "vera")


def test_a_password_reset_ends_the_users_sessions(admin_client, app, vera):
    vera_client = app.test_client()
    log_in(vera_client, vera)
    response = post(admin_client, f"/users/{vera.id}/password",
                    {"password": "a brand new secret", "confirm": "a brand new secret"})
    assert response.status_code == 302
    assert vera_client.get("/").status_code == 302
    assert last_audit()[:3] == ("user.password_reset", "ada", "vera")
    with db.connection_context():
        assert User.authenticate("vera", "a brand new secret") is not None


def test_resetting_your_own_password_keeps_you_logged_in(admin_client, ada):
    post(admin_client, f"/users/{ada.id}/password",
         {"password": "a brand new secret", "confirm": "a brand new secret"})
    assert admin_client.get("/users/").status_code == 200


def test_a_weak_reset_password_is_refused_beside_the_field(admin_client, vera):
    response = post(admin_client, f"/users/{vera.id}/password", {"password": "vera", "confirm": "vera"})
    assert response.status_code == 422
    assert "at least 10" in html(response).select_one("#password-msg").text
    with db.connection_context():
        assert User.authenticate("vera", PASSWORD) is not None


@pytest.mark.parametrize("path", ["/users/999", "/users/abc", "/users/1e3", "/users/-1",
                                  "/users/99999999999999999999999"])
def test_unknown_or_malformed_user_ids_are_404(admin_client, path):
    assert admin_client.get(path).status_code == 404


def test_posting_to_an_unknown_user_is_404(admin_client):
    assert post(admin_client, "/users/999/role", {"role": "admin"}).status_code == 404


def test_the_user_page_shows_recent_actions(admin_client, vera):
    add_user(admin_client)
    page = html(admin_client.get(f"/users/{vera.id}"))
    assert page.select_one("h1").text == "vera"
    ada_page = html(admin_client.get("/users/1"))
    assert "User added" in ada_page.text
