"""Every page fits a phone: at 360 px nothing scrolls sideways (tables scroll inside their
cards, the menu folds into one button), and at 1280 px nothing spills out either.

The pages are those of the permission matrix, each opened as an admin with one of everything
to show, some of it with long names. Set SHOTS_DIR=/some/folder to keep a screenshot
of each page for a person to look at.
"""

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from models import Event, Profile, Run, RunMessage, Unit, db
from tests.conftest import make_user
from tests.helpers.browser import log_in
from tests.helpers.pages import MATRIX, seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOT_PAGES = {"health.healthz", "history.export_csv", "history.export_json", "__flask_sock.feed",
             "snapshots.download", "picker.folder", "picker.preview_result", "runs.items",
             "runs.log", "profiles.schedule_preview", "profiles.retention_preview",
             "auth.login", "auth.setup"}
PAGES = sorted({path for (endpoint, method), (path, least) in MATRIX.items()
                if method == "GET" and endpoint not in NOT_PAGES})
LONG = "Family photos and the scans of every school report " * 2


def richer(tmp_path, places: dict) -> None:
    """A long-named profile with a run of several parts with long folders and messages."""
    with db.connection_context():
        deep = tmp_path / "src" / "Ünïcødé — Été" / ("a very long folder name " * 4).strip()
        deep.mkdir(parents=True)
        profile = Profile.create(name=LONG.strip()[:120], slug="long", sources=[str(deep)],
                                 destination=str(tmp_path / "backups"))
        run = Run.create(profile=profile, state="partial", total_files=12_345,
                         total_bytes=9_876_543_210, files_done=12_000, bytes_done=9_000_000_000,
                         started_at=dt.datetime(2026, 12, 1, 2, 30),
                         finished_at=dt.datetime(2026, 12, 1, 3, 45), message="Partly done.")
        for seq in range(3):
            unit = Unit.create(run=run, seq=seq, source=str(deep), label=f"{deep}/part {seq}",
                               state="done", planned_files=4000, planned_bytes=3_000_000_000)
            RunMessage.create(run=run, unit=unit, level="error",
                              text=f"rsync: [sender] send_files failed to open \"{deep}/"
                                   f"{'x' * 80}.jpg\": Permission denied (13)")
        Event.publish("run.finished", run.subject, f"{LONG} finished partly: {deep}",
                      level="warning", run=run.id)
    places["run"] = run.id


@pytest.mark.parametrize("width", [360, 1280])
def test_no_page_scrolls_sideways(page: Page, live_server, ada, vera, tmp_path, width):
    places = seed(tmp_path, vera)
    richer(tmp_path, places)
    make_user("otto", "operator")
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, live_server, "ada")
    shots = os.environ.get("SHOTS_DIR")
    too_wide, bad_words, spills = {}, {}, {}
    for path in PAGES:
        url = path.format(**places)
        response = page.goto(live_server + url)
        assert response.status < 500, (url, response.status)   # 409: no manifest, still a page
        page.wait_for_load_state("networkidle")
        if width == 1280:   # the words are the same at both widths
            said = page.evaluate("document.body.innerText")
            clumsy = [m.group(0) for m in CLUMSY.finditer(said)]
            if clumsy:
                bad_words[url] = clumsy
        spilled = page.evaluate(SPILLS)
        if spilled:
            spills[url] = spilled
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > width:
            too_wide[url] = (wide, page.evaluate(CULPRITS, width))
        if shots:
            name = url.strip("/").replace("/", "_").replace("?", "_") or "dashboard"
            page.screenshot(path=str(Path(shots) / f"{width}-{name}.png"), full_page=True)
    assert not too_wide, "\n".join(f"{url}: {wide} px, {culprits}"
                                    for url, (wide, culprits) in too_wide.items())
    assert not spills, spills
    assert not bad_words, bad_words


# Words no page should show: a doubled full stop, "file(s)", a bare byte count.
CLUMSY = re.compile(r"\w[.] ?[.](?![.])|\w\(s\)|\b\d{5,} ?(?:bytes|B)\b")


# Cards whose content reaches past their own edge without scrolling inside them (a table that
# scrolls in its card is fine; one drawn over the card's border is not).
SPILLS = """() => [...document.querySelectorAll('.card')].flatMap(card => {
  const edge = card.getBoundingClientRect().right;
  return [...card.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > edge + 1 && e.getClientRects().length
                 && ![...e.children].some(c => c.getBoundingClientRect().right > edge + 1))
    .filter(e => { for (let p = e.parentElement; p && p !== card; p = p.parentElement) {
                     if (getComputedStyle(p).overflowX !== 'visible') return false; }
                   return true; })
    .slice(0, 2).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' +
                          Math.round(e.getBoundingClientRect().right) + ' > ' + Math.round(edge));
})"""


# The innermost elements that reach past the right edge, to say what to fix.
CULPRITS = """width => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1
               && ![...e.children].some(c => c.getBoundingClientRect().right > width + 1))
  .slice(0, 4)
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
            (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') +
            ' ' + Math.round(e.getBoundingClientRect().right))"""


def test_on_a_phone_the_menu_opens_without_script_and_leads_everywhere(page: Page, live_server,
                                                                       ada):
    page.set_viewport_size({"width": 360, "height": 800})
    log_in(page, live_server, "ada")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    page.get_by_text("Menu", exact=True).click()
    menu = page.get_by_role("navigation", name="Menu")
    for name in ("Dashboard", "Profiles", "Drives", "Hosts", "History", "Logs", "Imports",
                 "Library", "Health", "Alerts", "Notifications", "Users", "Audit log"):
        expect(menu.get_by_role("link", name=name, exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    if os.environ.get("SHOTS_DIR"):
        page.screenshot(path=str(Path(os.environ["SHOTS_DIR"]) / "360-menu-open.png"))
    menu.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    # The section's own pages are one tap away under the bar.
    expect(page.get_by_role("navigation", name="System").get_by_role("link", name="Users")).to_be_visible()
