"""A household admin's first minutes with Cairn, in a real browser."""

import re

import pytest
from playwright.sync_api import Page, expect

from models import Event, SetupToken, User, db
from tests.conftest import PASSWORD, make_user
from tests.helpers.browser import log_in, log_out

pytestmark = pytest.mark.browser


def test_setup_login_live_panel_viewer_blocked_logout(page: Page, live_server, console_errors):
    with db.connection_context():
        token = SetupToken.issue()

    # Set up: the one-time link creates the first admin and logs them in.
    page.goto(f"{live_server}/setup?token={token}")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create admin account").click()
    expect(page.get_by_text("Welcome, ada. Cairn is ready.")).to_be_visible()
    with db.connection_context():
        assert User.get().timezone != ""  # the browser's zone came along

    # The system panel changes by itself, without a reload.
    expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "on")
    panel = page.locator("#system-panel")
    first = panel.get_attribute("data-sampled-at")
    page.evaluate("window.stillTheSamePage = true")
    expect(panel).not_to_have_attribute("data-sampled-at", first, timeout=8000)
    assert page.evaluate("window.stillTheSamePage") is True
    expect(panel.locator("[data-metric=cpu]")).to_have_text(re.compile(r"^\d+%$"))

    # The admin adds a viewer.
    page.get_by_role("link", name="System").click()
    page.get_by_role("link", name="Users").click()
    form = page.locator("#add-user")
    form.get_by_label("Username").fill("vera")
    form.get_by_label("Role").select_option("viewer")
    form.get_by_label("New password").fill(PASSWORD)
    form.get_by_label("Repeat the password").fill(PASSWORD)
    form.get_by_role("button", name="Add user").click()
    expect(page.get_by_text("Added vera as viewer.")).to_be_visible()
    log_out(page)

    # The viewer sees no admin pages and is refused them by address too.
    log_in(page, live_server, "vera")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    response = page.goto(f"{live_server}/users/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.goto(live_server)
    log_out(page)
    assert page.goto(f"{live_server}/").url.startswith(f"{live_server}/login")
    assert console_errors == []


def test_activity_arrives_live_and_roles_change_in_place(page: Page, live_server, console_errors):
    make_user("ada", "admin")
    vera = make_user("vera", "viewer")
    log_in(page, live_server, "ada")
    expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "on")

    with db.connection_context():
        Event.publish("worker.online", "system", "Worker started on the test box.")
    expect(page.locator("#activity-list li").first).to_contain_text("Worker started on the test box.")
    expect(page.locator("#activity .empty")).to_be_hidden()
    # A run's queued, started and finished are one line that changes, not three lines.
    lines = page.locator("#activity-list li")
    for kind, words in (("run.queued", "Backup of Photos queued."),
                        ("run.started", "Backup of Photos started."),
                        ("run.finished", "Backup of Photos: succeeded.")):
        with db.connection_context():
            Event.publish(kind, "run:77", words, run=77)
        expect(lines.first).to_contain_text(words)
    expect(lines).to_have_count(2)
    expect(lines.nth(1)).to_contain_text("Worker started on the test box.")
    page.reload()
    expect(lines).to_have_count(2)
    expect(lines.first).to_contain_text("Backup of Photos: succeeded.")

    page.get_by_role("link", name="System").click()
    page.get_by_role("link", name="Users").click()
    page.evaluate("window.stillTheSamePage = true")
    page.locator(f"#role-{vera.id}").select_option("operator")
    expect(page.locator(f"#user-{vera.id} option[selected]")).to_have_attribute("value", "operator")
    assert page.evaluate("window.stillTheSamePage") is True
    with db.connection_context():
        assert User.get_by_id(vera.id).role == "operator"

    # The last admin cannot demote themselves: the row says why and keeps the role.
    ada_row = page.locator("#users tbody tr", has_text="ada")
    ada_row.locator("select").select_option("viewer")
    expect(ada_row.get_by_role("alert")).to_contain_text("at least one active admin")
    expect(ada_row.locator("option[selected]")).to_have_attribute("value", "admin")
    assert console_errors == []


def test_form_mistakes_show_beside_the_fields(page: Page, live_server, console_errors):
    make_user("ada", "admin")
    log_in(page, live_server, "ada")
    page.get_by_role("link", name="ada").click()
    page.get_by_label("Current password").fill("not it")
    page.get_by_label("New password").fill("short")
    page.get_by_label("Repeat the password").fill("different")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-msg")).to_contain_text("at least 10")
    expect(page.locator("#confirm-msg")).to_contain_text("differ")
    assert console_errors == []
