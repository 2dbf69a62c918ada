import datetime as dt

import pytest

from models import WorkerProcess, db, utcnow
from tests.conftest import html, log_in, post


def test_an_unknown_page_is_a_friendly_404(client, vera):
    log_in(client, vera)
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert html(response).select_one("h1").text == "Not found"


def test_htmx_errors_come_as_a_notice_for_the_notice_area(client, vera):
    log_in(client, vera)
    response = client.get("/users/", headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert response.headers["HX-Retarget"] == "#notice"
    assert "<html" not in response.get_data(as_text=True)
    assert "role does not allow" in response.get_data(as_text=True)


def test_a_crash_shows_a_calm_page_without_a_stack_trace(app, client, vera):
    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: handled, not re-raised
    log_in(client, vera)
    response = client.get("/boom")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "Something went wrong" in text
    assert "secret internals" not in text and "Traceback" not in text


def test_an_oversized_request_is_refused_with_413(client, ada):
    log_in(client, ada)
    response = post(client, "/users/", {"username": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "Too large" in response.get_data(as_text=True)


def test_pages_carry_security_headers(client, ada):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "HX-Request" in response.headers["Vary"]


def test_no_template_uses_inline_scripts_styles_or_handlers():
    from pathlib import Path

    for template in Path("templates").glob("**/*.html"):
        text = template.read_text()
        assert "<script>" not in text and "style=" not in text and " onclick" not in text, template


def test_healthz_is_unhealthy_without_a_worker(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["queue"] == "ok"
    assert body["worker"]["alive"] is False and body["status"] == "unhealthy"


def test_healthz_is_healthy_with_a_fresh_heartbeat(client):
    with db.connection_context():
        WorkerProcess.register("box", 42, 4, "cairn", now=utcnow() - dt.timedelta(seconds=2))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["worker"]["threads"] == 4
    assert 1 <= body["worker"]["heartbeat_age"] < 10


@pytest.mark.parametrize("backend", ["sqlite"])
def test_healthz_reports_a_broken_database(client, app, monkeypatch, backend):
    def unreachable(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(WorkerProcess, "status", unreachable)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "error"
