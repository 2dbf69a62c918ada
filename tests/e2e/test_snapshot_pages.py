"""Getting files back in a real browser against a real worker process: browse a snapshot,
pick a file, preview the restore, carry it out from the live page, download a file through
the worker, and verify a snapshot with the result arriving live."""

import pytest
from playwright.sync_api import Page, expect

from jobs import backup
from models import Profile, Run, db
from tests.conftest import make_user
from tests.e2e.test_backup_pages import app, environ, home, shared_db, worker  # noqa: F401
from tests.helpers.browser import log_in
from tests.helpers.trees import write
from tests.jobs.conftest import wait_for_run, worker_factory  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_browse_restore_download_and_verify(page: Page, app, live_server, worker, home,  # noqa: F811
                                            tmp_path, console_errors):
    make_user("otto", "operator")
    with db.connection_context():
        profile = Profile.create(name="Ada", slug="ada", sources=[str(home / "ada")],
                                 destination=str(tmp_path / "backups"))
        run = wait_for_run(backup.request_run(profile))
        assert run.state == "succeeded", run.message
        run = Run.get_by_id(run.id)
    write(home / "ada" / "Photos" / "cat.jpg", "edited since")
    log_in(page, live_server, "otto")

    page.goto(f"{live_server}/profiles/{profile.id}/snapshots/")
    page.get_by_role("link", name=run.snapshot[:10], exact=False).first.click()
    for part in ["localhost", *str(home / "ada").strip("/").split("/"), "Photos"]:
        page.locator("#entries").get_by_role("link", name=f"{part}/", exact=True).click()
    with page.expect_download() as download:
        page.locator("#entries").get_by_role("link", name="cat.jpg").click()
    assert open(download.value.path(), "rb").read() == b"meow"

    page.get_by_label("Pick cat.jpg").check()
    page.get_by_role("button", name="Restore selected…").click()
    page.get_by_label("The original place").check()
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#restore-preview")
    expect(preview.locator("tbody tr")).to_have_text([f"exists, keep{home}/ada/Photos/cat.jpg"])
    page.get_by_label("Overwrite files that already exist").check()
    preview_url = page.url
    preview.get_by_role("button", name="Restore now").click()
    expect(page).not_to_have_url(preview_url)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Restore from")
    expect(page.locator("#restore-progress")).to_have_attribute("data-state", "succeeded",
                                                                timeout=20000)
    assert (home / "ada" / "Photos" / "cat.jpg").read_text() == "meow"

    page.goto(f"{live_server}/profiles/{profile.id}/snapshots/")
    row = page.locator(f"#snapshot-{run.snapshot}")
    row.get_by_text("Check", exact=True).click()
    row.get_by_role("button", name="Test restore every file").click()
    expect(page.locator("#verification-progress")).to_have_attribute("data-state", "intact",
                                                                      timeout=20000)
    expect(page.locator(".run-message")).to_contain_text("restored and compared")
    assert console_errors == []
