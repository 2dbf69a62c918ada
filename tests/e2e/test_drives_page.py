"""The Drives page in a real browser, with a real worker and real udev: a drive plugged in
appears without a reload, is adopted and ejected with a click, and leaves when pulled."""

import pytest
from playwright.sync_api import Page, expect

from jobs.queue import settings
from tests.conftest import make_user
from tests.e2e.test_backup_pages import app, shared_db  # noqa: F401 (fixtures; app takes environ)
from tests.helpers.browser import log_in
from tests.jobs.conftest import worker_factory  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def media(tmp_path):
    return tmp_path / "media"


@pytest.fixture
def environ(media, shared_db):  # noqa: F811
    return {"CAIRN_DATA_DIR": str(settings().data_dir), "CAIRN_DATABASE_URL": settings().database_url,
            "CAIRN_DRIVE_ROOT": str(media)}


def test_plug_adopt_eject_and_pull_a_drive_without_reloading(page: Page, live_server, media,
                                                            worker_factory, loop_drives,  # noqa: F811
                                                            console_errors):
    worker_factory({"CAIRN_DRIVE_ROOT": str(media)}).start()
    make_user("ada", "admin")
    log_in(page, live_server, "ada")
    page.goto(f"{live_server}/drives/")
    expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "on")
    page.evaluate("window.stillTheSamePage = true")

    stick = loop_drives("HOLIDAY").plug()
    row = page.locator(".drive", has_text="HOLIDAY")
    expect(row.locator("[data-figure=state]")).to_have_text("Connected", timeout=5000)
    row.get_by_role("button", name="Adopt as a backup drive").click()
    expect(page.locator("#notice")).to_contain_text("Adopting HOLIDAY")
    expect(row.locator("[data-figure=state]")).to_have_text("Mounted", timeout=20000)
    expect(row.locator("[data-figure=space]")).to_contain_text(f"{media / stick.uuid}")
    expect(row.locator(".tag", has_text="adopted")).to_be_visible()

    row.get_by_role("button", name="Eject").click()
    expect(row.locator("[data-figure=state]")).to_have_text("Safe to unplug", timeout=20000)
    stick.pull()
    expect(row.locator("[data-figure=state]")).to_have_text("Not connected", timeout=10000)
    assert page.evaluate("window.stillTheSamePage") is True
    assert console_errors == []
