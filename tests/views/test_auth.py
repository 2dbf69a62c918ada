import datetime as dt
import time
import uuid

import pytest
import redis

from app import create_app
from models import AuditEntry, SetupToken, User, db
from tests.conftest import PASSWORD, csrf_token, html, log_in, post


def login_form(client, username: str, password: str, **extra):
    data = {"csrf_token": csrf_token(client), "username": username, "password": password, **extra}
    return client.post("/login", data=data, **{k: v for k, v in extra.items() if k == "query_string"})


def audit_actions() -> list[tuple[str, str]]:
    with db.connection_context():
        return [(e.action, e.actor_name) for e in AuditEntry.select().order_by(AuditEntry.id)]


def test_login_leads_to_the_dashboard_and_is_audited(client, ada):
    response = login_form(client, "Ada", PASSWORD, tz="Europe/Paris")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert audit_actions() == [("auth.login", "ada")]
    with db.connection_context():
        assert User.get_by_id(ada.id).timezone == "Europe/Paris"


def test_a_wrong_password_is_refused_with_a_message_and_audited(client, ada):
    response = login_form(client, "ada", "not the password")
    assert response.status_code == 401
    assert "Wrong username or password." in html(response).select_one("[role=alert]").text
    assert client.get("/").status_code == 302
    assert audit_actions() == [("auth.login_failed", "ada")]


def test_an_unknown_user_gets_the_same_message(client, ada):
    response = login_form(client, "mallory", PASSWORD)
    assert response.status_code == 401
    assert "Wrong username or password." in response.get_data(as_text=True)
    assert audit_actions() == [("auth.login_failed", "mallory")]


def test_a_disabled_user_with_the_right_password_is_told_so(client, ada, vera):
    with db.connection_context():
        vera.set_active(False)
    response = login_form(client, "vera", PASSWORD)
    assert response.status_code == 401
    assert "disabled" in response.get_data(as_text=True)


@pytest.mark.parametrize("username, password", [("", PASSWORD), ("ada", ""), ("a" * 5000, PASSWORD),
                                                ("ada", "p" * 5000)])
def test_empty_or_huge_login_fields_get_a_message_not_an_error(client, ada, username, password):
    response = login_form(client, username, password)
    assert response.status_code == 200
    assert html(response).select(".has-error .field-msg")
    assert audit_actions() == []


def from_address(client, address: str, username: str, password: str):
    return client.post("/login", data={"csrf_token": csrf_token(client), "username": username,
                                       "password": password}, environ_base={"REMOTE_ADDR": address})


def test_five_failures_for_an_account_from_one_address_then_429(client, ada):
    for _ in range(5):
        assert login_form(client, "ada", "wrong password").status_code == 401
    response = login_form(client, "ada", PASSWORD)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many attempts" in response.get_data(as_text=True)


def test_an_attacker_elsewhere_cannot_lock_the_owner_out(client, ada):
    for _ in range(12):
        assert from_address(client, "10.0.0.66", "ada", "wrong password").status_code in (401, 429)
    assert from_address(client, "10.0.0.66", "ada", "wrong password").status_code == 429
    assert from_address(client, "192.168.1.20", "ada", PASSWORD).status_code == 302


def test_guessing_many_accounts_from_one_address_is_limited_too(client, ada):
    for attempt in range(20):
        assert from_address(client, "10.0.0.7", f"user{attempt}", "wrong").status_code == 401
    assert from_address(client, "10.0.0.7", "ada", PASSWORD).status_code == 429
    assert from_address(client, "10.0.0.8", "ada", PASSWORD).status_code == 302


def test_each_further_round_of_guesses_waits_longer(client, ada, monkeypatch):
    import limits.storage.memory

    clock = [time.time()]   # flask-limiter's Retry-After is read off the real clock
    monkeypatch.setattr(limits.storage.memory, "time", type("Clock", (), {
        "time": staticmethod(lambda: clock[0])}))
    for _ in range(5):
        assert login_form(client, "ada", "wrong password").status_code == 401
    first = login_form(client, "ada", "wrong password")
    assert first.status_code == 429 and int(first.headers["Retry-After"]) <= 60
    clock[0] += 61
    for _ in range(5):
        assert login_form(client, "ada", "wrong password").status_code == 401
    second = login_form(client, "ada", "wrong password")
    assert second.status_code == 429 and int(second.headers["Retry-After"]) > 60


def test_successful_logins_do_not_count_towards_the_limit(client, ada):
    for _ in range(7):
        assert login_form(client, "ada", PASSWORD).status_code == 302
        post(client, "/logout")


@pytest.mark.parametrize("target, lands", [
    ("/account/", "/account/"),
    ("/users/?x=1", "/users/?x=1"),
    ("https://evil.example/", "/"),
    ("//evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
])
def test_login_only_redirects_to_local_paths(client, ada, target, lands):
    response = client.post("/login", data={"csrf_token": csrf_token(client), "username": "ada",
                                           "password": PASSWORD, "next": target})
    assert response.headers["Location"] == lands


def test_a_logged_out_visit_is_sent_to_login_and_back(client, ada):
    response = client.get("/users/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/users/"


def test_htmx_requests_without_a_session_are_redirected_by_header(client, ada):
    response = client.get("/users/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")


def test_logout_is_a_post_with_csrf_and_is_audited(client, ada):
    log_in(client, ada)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert client.get("/").status_code == 200
    response = post(client, "/logout")
    assert response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302
    assert audit_actions() == [("auth.logout", "ada")]


def test_the_session_cookie_is_httponly_and_samesite_lax(client, ada):
    response = login_form(client, "ada", PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_the_session_cookie_is_secure_when_configured(environ, tmp_path):
    secure = create_app({**environ, "CAIRN_COOKIE_SECURE": "true"})
    with db.connection_context():
        User.create_account("ada", PASSWORD, "admin")
    client = secure.test_client()
    response = client.post("/login", data={"csrf_token": csrf_token(client), "username": "ada",
                                           "password": PASSWORD})
    assert "Secure" in response.headers["Set-Cookie"]


def test_before_setup_login_explains_how_to_get_a_setup_link(client):
    response = client.get("/login")
    assert response.status_code == 503
    assert "cairn setup-link" in response.get_data(as_text=True)


def issue_token(now=None) -> str:
    with db.connection_context():
        return SetupToken.issue(now=now)


def setup_post(client, token: str, **fields):
    page = client.get(f"/setup?token={token}")
    data = {"csrf_token": csrf_token(client, f"/setup?token={token}") if page.status_code == 200
            else csrf_token(client), "token": token, "username": "ada", "password": PASSWORD,
            "confirm": PASSWORD, "tz": "Europe/Berlin", **fields}
    return client.post("/setup", data=data)


def test_setup_creates_the_first_admin_and_logs_them_in(client):
    token = issue_token()
    page = client.get(f"/setup?token={token}")
    assert page.status_code == 200
    assert html(page).select_one("input[name=token]")["value"] == token
    response = setup_post(client, token)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Welcome, ada" in client.get("/").get_data(as_text=True)
    with db.connection_context():
        ada = User.get()
        assert (ada.username, ada.role, ada.timezone) == ("ada", "admin", "Europe/Berlin")
    assert audit_actions() == [("auth.setup", "ada")]


def test_a_setup_link_works_once(client):
    token = issue_token()
    setup_post(client, token)
    other = client.application.test_client()
    response = other.get(f"/setup?token={token}")
    assert response.status_code == 410
    assert "already set up" in response.get_data(as_text=True)


def test_an_expired_setup_link_is_refused(client):
    token = issue_token(now=dt.datetime.utcnow() - dt.timedelta(hours=2))
    response = client.get(f"/setup?token={token}")
    assert response.status_code == 403
    assert "expired" in response.get_data(as_text=True)
    assert "cairn setup-link" in response.get_data(as_text=True)


@pytest.mark.parametrize("token", ["", "forged", "x" * 5000])
def test_a_missing_or_forged_setup_token_is_refused(client, token):
    issue_token()
    assert client.get(f"/setup?token={token}").status_code == 403
    response = client.post("/setup", data={"csrf_token": csrf_token(client), "token": token,
                                           "username": "eve", "password": PASSWORD,
                                           "confirm": PASSWORD})
    assert response.status_code == 403
    with db.connection_context():
        assert User.select().count() == 0


@pytest.mark.parametrize("fields, field, says", [
    ({"password": "short", "confirm": "short"}, "password", "at least 10"),
    ({"confirm": "something else entirely"}, "confirm", "differ"),
    ({"username": ""}, "username", "Enter a username"),
    ({"username": "bad name"}, "username", "letters, digits"),
    ({"username": "u" * 500}, "username", "characters"),
])
def test_setup_form_mistakes_show_beside_the_field_and_keep_the_link(client, fields, field, says):
    token = issue_token()
    response = setup_post(client, token, **fields)
    assert response.status_code == 200
    message = html(response).select_one(f"#{field}-msg").text
    assert says in message
    with db.connection_context():
        assert User.select().count() == 0
        assert SetupToken.problem(token) is None


def test_setup_with_a_forged_csrf_token_writes_nothing(client):
    token = issue_token()
    client.get(f"/setup?token={token}")
    response = client.post("/setup", data={"csrf_token": "forged", "token": token, "username": "ada",
                                           "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 400
    assert "security token is missing or out of date" in response.get_data(as_text=True)
    with db.connection_context():
        assert User.select().count() == 0
        assert SetupToken.problem(token) is None


def test_a_page_left_open_for_days_can_still_post(client, ada, monkeypatch):
    log_in(client, ada)
    token = csrf_token(client, "/account/")
    later = time.time() + 3 * 86400
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_with_redis_every_web_process_counts_failed_logins_together(environ, backend):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    client = create_app({**environ, "CAIRN_REDIS_URL": "redis://127.0.0.1:6379/0",
                         "CAIRN_QUEUE_NAME": queue}).test_client()
    with db.connection_context():
        User.create_account("ada", PASSWORD, "admin")
    for _ in range(5):
        assert login_form(client, "ada", "wrong password").status_code == 401
    # The counts live in Redis, where every web process (and box) reads them, under this
    # install's own prefix.
    keys = redis.Redis(host="127.0.0.1").keys(f"*cairn-{queue}*")
    assert any(b":user:127.0.0.1/ada/" in key for key in keys)
    assert any(b":addr:127.0.0.1/" in key for key in keys)
    assert login_form(client, "ada", PASSWORD).status_code == 429
