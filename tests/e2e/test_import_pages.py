"""The Imports page in a real browser with a real worker: a refused file appears in *Needs
attention* without a reload, with its reasons; *Import anyway* takes it into the library, and
the page shows it imported, still without a reload."""

import pytest
from playwright.sync_api import Page, expect

from jobs import library as lib
from jobs.queue import settings
from models import Library
from tests.conftest import make_user
from tests.e2e.test_backup_pages import app, shared_db  # noqa: F401 (fixtures; app takes environ)
from tests.helpers.browser import log_in
from tests.helpers.trees import write
from tests.jobs.conftest import worker_factory  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def environ(shared_db):  # noqa: F811
    return {"CAIRN_DATA_DIR": str(settings().data_dir), "CAIRN_DATABASE_URL": settings().database_url}


def test_a_refused_file_shows_up_live_and_is_imported_anyway(page: Page, live_server, tmp_path,
                                                            worker_factory,  # noqa: F811
                                                            console_errors):
    inbox, library = tmp_path / "downloads", tmp_path / "movies"
    inbox.mkdir()
    library.mkdir()
    lib.set_root(str(library))
    lib.add_inbox(str(inbox))
    Library.update(stable_seconds=1).execute()
    worker_factory().start()
    make_user("otto", "operator")
    log_in(page, live_server, "otto")
    page.goto(f"{live_server}/imports/")
    expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "on")
    page.evaluate("window.stillTheSamePage = true")

    write(inbox / "Alien.1979.DVDRip.sample.avi", b"a" * 5000)
    entry = page.locator("#attention li", has_text="Alien.1979.DVDRip.sample.avi")
    expect(entry.locator("[data-figure=reasons]")).to_have_text("A sample, not the movie.",
                                                                  timeout=20000)
    page.once("dialog", lambda dialog: dialog.accept())
    entry.get_by_role("button", name="Import anyway").click()
    expect(page.locator("#notice")).to_contain_text("Importing Alien.1979.DVDRip.sample.avi anyway")
    expect(page.locator("#recent")).to_contain_text("Alien (1979)/Alien (1979) [DVD].avi",
                                                    timeout=20000)
    expect(page.locator("#attention")).to_contain_text("Nothing needs you.")
    assert (library / "Alien (1979)" / "Alien (1979) [DVD].avi").exists()
    assert page.evaluate("window.stillTheSamePage") is True
    assert console_errors == []
