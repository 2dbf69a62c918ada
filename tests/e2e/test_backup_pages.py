"""Backups in a real browser against a real worker process: pick folders, preview excludes,
run, watch the run and History move without reloading, dry-run, cancel; and a viewer who can
only look."""

import os
import re

import pytest
from playwright.sync_api import Page, expect

from jobs.queue import huey, settings
from models import Profile, Run, db
from tests.conftest import make_user
from tests.helpers.browser import log_in
from tests.helpers.trees import slow_tree, write
from tests.jobs.conftest import empty_shared_store, worker_factory  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    write(home / "ada" / "Photos" / "cat.jpg", "meow")
    write(home / "ada" / "Photos" / "trip" / "beach.jpg", "sand" * 1000)
    write(home / "ada" / "Music" / "song.mp3", "la")
    (tmp_path / "backups").mkdir()
    return home


@pytest.fixture
def shared_db():
    """The shared database and queue, emptied. Unlike the jobs tests' fixture, this holds no
    connection: the app opens its own."""
    empty_shared_store()
    yield
    huey.storage.flush_all()


@pytest.fixture
def environ(tmp_path, home, shared_db):
    # The web and the worker share this process's data dir, database and queue.
    return {"CAIRN_DATA_DIR": str(settings().data_dir), "CAIRN_DATABASE_URL": settings().database_url,
            "CAIRN_SOURCE_ROOTS": str(home)}


@pytest.fixture
def app(environ):
    from app import create_app
    application = create_app(environ)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def worker(worker_factory, home):  # noqa: F811
    return worker_factory({"CAIRN_SOURCE_ROOTS": str(home)}).start()


def test_pick_folders_run_and_watch_it_finish_live(page: Page, context, app, live_server, worker,
                                                   home, tmp_path, console_errors):
    make_user("ada", "admin")
    log_in(page, live_server, "ada")
    page.get_by_role("link", name="Create your first backup").click()
    page.get_by_label("Name").fill("Family photos")

    # The picker: the root is not scanned yet; opening it has the worker scan it, live.
    picker = page.locator("#picker")
    picker.get_by_role("button", name=f"Open {home}").click()
    ada_row = picker.locator(".picker-row", has=page.locator(".picker-name", has_text=re.compile("^ada$")))
    expect(ada_row.locator(".picker-size")).to_have_text("4.0 kB · 3 files", timeout=20000)
    ada_row.get_by_role("button", name="Open ada").click()
    photos = picker.locator("input[data-pick$='/ada/Photos']")
    photos.check()
    expect(page.get_by_label("Folders to back up")).to_have_value(f"{home}/ada/Photos\n")

    # The exclude preview: the worker counts what a pattern leaves out, and it fills in live.
    page.get_by_label("Leave out").fill("trip/\n*.none")
    page.get_by_role("button", name="Count what these patterns leave out").click()
    preview = page.locator("#exclude-preview")
    expect(preview).to_contain_text("leave out 1 file (4.0 kB) of 2 files", timeout=20000)
    expect(preview.locator("tbody tr").nth(1)).to_contain_text("leaves out nothing more")
    page.get_by_label("Leave out").fill("")

    # The worker checks the folders as they are filled in, and makes a missing destination.
    checks = page.locator("#path-check")
    expect(checks.locator("li.check-ok", has_text="ada/Photos")).to_contain_text(
        "A folder the worker can read", timeout=5000)
    page.get_by_label("Destination folder").fill(str(tmp_path / "backups" / "family"))
    expect(checks.locator("li.check-bad")).to_contain_text("does not exist", timeout=5000)
    checks.get_by_role("button", name="Create this folder").click()
    expect(checks).to_contain_text(f"Made {tmp_path}/backups/family.", timeout=5000)
    expect(checks.locator("li.check-ok", has_text="Destination")).to_contain_text("free")
    assert (tmp_path / "backups" / "family").is_dir()
    page.get_by_label("Destination folder").fill(str(tmp_path / "backups"))

    # A schedule: the fields of the kind chosen appear, and it is said in words as it changes.
    at = page.get_by_label("At", exact=True)
    expect(at).to_be_hidden()
    page.get_by_label("Every week").check()
    expect(at).to_be_visible()
    expect(page.get_by_label("Cron expression")).to_be_hidden()
    at.fill("06:15")
    page.get_by_label("On", exact=True).select_option(label="Monday")
    said = page.locator("#schedule-preview")
    expect(said).to_contain_text("At 06:15, only on Monday. Next:")
    expect(said.locator("time")).to_have_count(3)
    page.get_by_label("On a cron schedule").check()
    page.get_by_label("Cron expression").fill("0 3 * *")
    expect(said).to_contain_text("needs five fields")
    page.get_by_label("Cron expression").fill("0 3 * * 1-5")
    expect(said).to_contain_text("At 03:00, Monday through Friday")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Profile Family photos saved.")).to_be_visible()
    expect(page.locator("[data-figure=schedule]")).to_contain_text("At 03:00, Monday through Friday")

    # History, open in another tab, gets the new run's row without a reload.
    history = context.new_page()
    history.goto(f"{live_server}/history")
    expect(history.locator("[data-live-status]")).to_have_attribute("data-state", "on")
    history.evaluate("window.stillTheSamePage = true")

    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#run-bar")).to_have_attribute("value", "100.0", timeout=30000)
    expect(page.locator("#run-progress .tag")).to_have_text("succeeded")
    expect(page.locator("[data-figure=files]")).to_have_text("2 of 2")
    assert page.evaluate("window.stillTheSamePage") is True

    row = history.locator("#history tbody tr").first
    expect(row).to_contain_text("Family photos", timeout=10000)
    expect(row.locator(".tag")).to_have_text("succeeded", timeout=10000)
    assert history.evaluate("window.stillTheSamePage") is True

    # A dry run after it finds nothing to copy and says so.
    page.get_by_role("link", name="Family photos").click()
    page.get_by_role("button", name="Dry run").click()
    summary = page.locator("#dry-run-summary")
    expect(summary).to_contain_text("0 new files and 0 changed files", timeout=30000)
    expect(summary).to_contain_text("Nothing was written")
    assert console_errors == []


def test_a_dry_run_lists_what_would_be_copied(page: Page, live_server, worker, home, tmp_path):
    make_user("otto", "operator")
    with db.connection_context():
        Profile.create(name="Music", slug="music", sources=[str(home / "ada" / "Music")],
                       destination=str(tmp_path / "backups"))
    log_in(page, live_server, "otto")
    page.get_by_role("link", name="Backups").click()
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_text("The dry run of Music is queued")).to_be_visible()
    page.get_by_role("link", name=re.compile("queued|scanning|running|succeeded")).click()
    summary = page.locator("#dry-run-summary")
    expect(summary).to_contain_text("1 new file and 0 changed files", timeout=30000)
    expect(summary.locator("pre")).to_contain_text(">f+++++++++ 2 song.mp3")
    assert not list((tmp_path / "backups").glob("music/2*"))


def test_cancel_a_long_run_and_see_it_cancelled(page: Page, live_server, worker, tmp_path):
    make_user("otto", "operator")
    source = slow_tree(tmp_path / "home" / "big", size=2_000_000)
    with db.connection_context():
        profile = Profile.create(name="Big", slug="big", sources=[str(source)], bwlimit_kib=200,
                                 destination=str(tmp_path / "backups"))
    log_in(page, live_server, "otto")
    page.goto(f"{live_server}/profiles/{profile.id}")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-progress .tag")).to_have_text("running", timeout=30000)
    expect(page.locator("#notice")).to_contain_text("is queued as run")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel run").click()
    # The notice says what the last action did: no "queued" left under the stopping.
    expect(page.locator("#notice")).to_contain_text("Stopping the run")
    expect(page.locator("#notice")).not_to_contain_text("queued")
    expect(page.locator("#run-progress .tag")).to_have_text("cancelled", timeout=30000)
    expect(page.locator("#run-progress")).not_to_contain_text("Cancel run")
    with db.connection_context():
        assert Run.get(Run.profile == profile.id).state == "cancelled"


def test_a_viewer_sees_no_buttons_and_the_server_refuses_anyway(page: Page, live_server, home,
                                                                 tmp_path):
    make_user("vera", "viewer")
    with db.connection_context():
        profile = Profile.create(name="Photos", slug="photos", sources=[str(home / "ada")],
                                 destination=str(tmp_path / "backups"))
        run = Run.create(profile=profile, state="running")
    log_in(page, live_server, "vera")
    page.goto(f"{live_server}/profiles/{profile.id}")
    expect(page.get_by_role("heading", name="Photos")).to_be_visible()
    assert page.locator("main button").count() == 0
    page.goto(f"{live_server}/runs/{run.id}")
    expect(page.locator("#run-progress .tag")).to_have_text("running")
    assert page.locator("main button").count() == 0
    token = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")
    for path in (f"/profiles/{profile.id}/run", f"/runs/{run.id}/cancel"):
        response = page.request.post(f"{live_server}{path}", headers={"X-CSRFToken": token})
        assert response.status == 403
    with db.connection_context():
        assert Run.select().count() == 1 and not Run.get_by_id(run.id).cancel_requested


def test_the_bar_data_and_speed_move_while_one_large_file_is_copied(page: Page, live_server,
                                                                     worker, home, tmp_path):
    # One 16 MB video at a limit of 4 MiB/s takes about four seconds to copy: rsync reports
    # what it has written of it every second, so the page moves before the file is done.
    write(home / "ada" / "Videos" / "holiday.mkv", os.urandom(16_000_000))
    make_user("otto", "operator")
    with db.connection_context():
        profile = Profile.create(name="Videos", slug="videos", sources=[str(home / "ada" / "Videos")],
                                 bwlimit_kib=4096, destination=str(tmp_path / "backups"))
    log_in(page, live_server, "otto")
    page.goto(f"{live_server}/profiles/{profile.id}")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-progress .tag")).to_have_text("running", timeout=30000)
    seen = []
    while page.locator("#run-progress .tag").text_content() == "running" and len(seen) < 400:
        seen.append((float(page.locator("#run-bar").get_attribute("value")),
                     page.locator('[data-figure="bytes"]').text_content(),
                     page.locator('[data-figure="speed"]').text_content()))
        page.wait_for_timeout(50)   # sampling what the socket pushes, a few times a second
    expect(page.locator("#run-progress .tag")).to_have_text("succeeded", timeout=30000)
    between = {bar for bar, _, _ in seen if 0 < bar < 100}
    assert len(between) >= 2, seen
    assert len({shown for _, shown, _ in seen if not shown.startswith(("0 B", "16"))}) >= 2, seen
    speeds = [parse_size(speed.removesuffix("/s")) for _, _, speed in seen if speed != "–"]
    assert speeds and max(speeds) <= 3 * 4 * 1024 * 1024, seen   # no 800 MB/s for one file


def parse_size(text: str) -> float:
    number, unit = text.split()
    scale = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KB": 1e3, "KiB": 1024, "MiB": 1024 ** 2}
    return float(number.replace(",", "")) * scale[unit]


def test_a_run_that_fails_at_once_is_not_shown_under_a_green_notice(page: Page, live_server,
                                                                    worker, home, tmp_path):
    make_user("otto", "operator")
    with db.connection_context():
        profile = Profile.create(name="Gone", slug="gone", sources=[str(home / "ada")],
                                 destination=str(tmp_path / "unplugged" / "backups"))
    log_in(page, live_server, "otto")
    page.goto(f"{live_server}/profiles/{profile.id}")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-progress .tag")).to_have_text("failed", timeout=30000)
    notice = page.locator("#notice .flash")
    expect(notice).to_have_count(1)
    assert "success" not in notice.get_attribute("class")
    expect(notice).not_to_contain_text("started")
