"""A run's page: figures, parts, log tail and speed graph; cancel and retry; a dry run's
itemized list; the full log download; and the same page kept current over the WebSocket.

Runs started from the page are real (the app fixture runs jobs inline, so rsync runs)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from bs4 import BeautifulSoup

from jobs.queue import settings
from models import AuditEntry, Event, Profile, Run, RunMessage, Unit, User, db, utcnow
from tests.conftest import PASSWORD, csrf_token, html, log_in, post
from tests.helpers.feed import connect, receive_until, session_cookie
from tests.helpers.trees import write
from views import runs


@pytest.fixture
def environ(environ, tmp_path):
    # Jobs run inline here and write their logs under the worker's data dir; the web reads
    # them from its own, so both are the same folder, as on an installed box.
    return {**environ, "CAIRN_SOURCE_ROOTS": str(tmp_path / "home"),
            "CAIRN_DATA_DIR": str(settings().data_dir)}


@pytest.fixture
def profile(app, tmp_path) -> Profile:
    write(tmp_path / "home" / "Photos" / "cat.jpg", "meow")
    write(tmp_path / "home" / "Photos" / "<script>alert(1)</script>.jpg", "x")
    (tmp_path / "backups").mkdir()
    with db.connection_context():
        return Profile.create(name="Photos", slug="photos", sources=[str(tmp_path / "home" / "Photos")],
                              destination=str(tmp_path / "backups"))


def start(client, profile, what="run") -> Run:
    response = post(client, f"/profiles/{profile.id}/{what}", token_from="/profiles/")
    assert response.status_code == 303
    with db.connection_context():
        return Run.select().where(Run.profile == profile.id).order_by(Run.id.desc()).get()


def htmx_post(client, path: str):
    """A POST as htmx sends it: the CSRF token in a header, taken from the page's body."""
    return client.post(path, headers={"HX-Request": "true",
                                      "X-CSRFToken": csrf_token(client, "/account/")})


def test_a_finished_run_shows_its_figures_parts_and_story(client, otto, profile):
    log_in(client, otto)
    run = start(client, profile)
    page = html(client.get(f"/runs/{run.id}"))
    assert page.select_one("#run-progress .tag").text.strip() == "succeeded"
    assert page.select_one("#run-bar")["value"] == "100.0"
    assert page.select_one("[data-figure=files]").text.strip() == "2 of 2"
    assert page.select("#run-units tbody tr .tag")[0].text == "done"
    story = [li.select_one(".what").text for li in page.select("#run-log li")]
    assert story[0] == "Backup of Photos queued." and story[-1].startswith("Backup of Photos: succeeded")
    assert not page.select("#run-progress button")  # nothing to cancel or retry
    assert page.select_one("a[download]")["href"] == f"/runs/{run.id}/log"


def test_an_operator_cancels_a_queued_run_and_the_page_says_so(client, otto, profile):
    with db.connection_context():
        run = Run.create(profile=profile, state="queued")
    log_in(client, otto)
    button = html(client.get(f"/runs/{run.id}")).select_one("#run-progress button.danger")
    assert button["hx-post"] == f"/runs/{run.id}/cancel"
    response = htmx_post(client, f"/runs/{run.id}/cancel")
    assert response.status_code == 200
    fragment = html(response)
    assert fragment.select_one("#run-live .tag").text.strip() == "cancelled"
    assert "Stopping the run" in fragment.select_one("#notice").text
    with db.connection_context():
        assert Run.get_by_id(run.id).state == "cancelled"
        assert AuditEntry.select().where(AuditEntry.action == "run.cancel").count() == 1
    again = html(htmx_post(client, f"/runs/{run.id}/cancel"))
    assert "already ended (cancelled)" in again.select_one("#notice").text


def test_retry_is_refused_with_a_reason_when_nothing_failed(client, otto, profile):
    log_in(client, otto)
    run = start(client, profile)
    response = htmx_post(client, f"/runs/{run.id}/retry")
    assert response.status_code == 409
    assert "nothing to retry" in html(response).select_one("#notice").text


def test_a_viewer_sees_no_buttons_and_the_server_refuses_anyway(client, vera, profile):
    with db.connection_context():
        run = Run.create(profile=profile, state="running")
    log_in(client, vera)
    assert not html(client.get(f"/runs/{run.id}")).select("main button")
    assert htmx_post(client, f"/runs/{run.id}/cancel").status_code == 403
    with db.connection_context():
        assert not Run.get_by_id(run.id).cancel_requested


@pytest.mark.parametrize("path", ["/runs/999999", "/runs/0", "/runs/abc",
                                  "/runs/99999999999999999999999", "/runs/999999/log"])
def test_unknown_runs_are_a_clear_404(client, vera, path):
    log_in(client, vera)
    response = client.get(path)
    assert response.status_code == 404 and "nothing at this address" in response.get_data(as_text=True)


def test_a_dry_run_shows_its_summary_and_the_itemized_list_as_text(client, otto, profile):
    log_in(client, otto)
    run = start(client, profile, "dry-run")
    page = html(client.get(f"/runs/{run.id}"))
    summary = page.select_one("#dry-run-summary")
    assert "2 new files and 0 changed files" in summary.text and "Nothing was written" in summary.text
    items = client.get(summary.select_one("#run-items")["hx-get"]).get_data(as_text=True)
    assert "<script>alert" not in items and "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in items
    assert ">f+++++++++ 4 cat.jpg" in html_text(items) and "1–4 of 4" in html_text(items)


def html_text(markup: str) -> str:
    return BeautifulSoup(markup, "html.parser").text


def test_the_itemized_list_is_paged(client, vera, profile, monkeypatch):
    monkeypatch.setattr(runs, "ITEMS_PER_PAGE", 10)
    with db.connection_context():
        run = Run.create(profile=profile, state="succeeded", dry_run=True)
        for n in range(25):
            RunMessage.create(run=run, level="item", text=f">f+++++++++ file-{n:02}")
    log_in(client, vera)
    third = html(client.get(f"/runs/{run.id}/items?page=3"))
    assert third.select_one("pre").text.split() == [">f+++++++++", "file-20", ">f+++++++++",
                                                    "file-21", ">f+++++++++", "file-22",
                                                    ">f+++++++++", "file-23", ">f+++++++++", "file-24"]
    assert "Page 3 of 3" in third.text and third.select_one("a")["hx-get"].endswith("page=2")


def test_the_full_log_downloads_with_messages_and_every_change(client, otto, profile):
    log_in(client, otto)
    run = start(client, profile)
    with db.connection_context():
        Run.get_by_id(run.id).add_message("warning", "file has vanished: \"/x\"")
    response = client.get(f"/runs/{run.id}/log")
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="cairn-run-{run.id}-photos.log"'
    text = response.get_data(as_text=True)
    assert text.startswith(f"Cairn run {run.id}: backup of Photos\nState: Succeeded.")
    assert "WARNING file has vanished" in text
    assert "Itemized changes" in text and ">f+++++++++" in text and "cat.jpg" in text


def test_a_watcher_sees_progress_without_reloading(app, live_server, otto, vera, profile):
    with db.connection_context():
        run = Run.create(profile=profile, state="running", started_at=utcnow(), total_files=10,
                         total_bytes=1000)
        Unit.create(run=run, seq=0, source="/x", label="Photos", state="running")
    sockets = {name: connect(live_server, session_cookie(app, user), query=f"s=run:{run.id}")
               for name, user in (("otto", otto), ("vera", vera))}
    for ws in sockets.values():
        assert receive_until(ws, "#run-live").select_one("#run-bar")["value"] == "0.0"
    with db.connection_context():
        Run.update(progress=0.42, files_done=4).where(Run.id == run.id).execute()
        Event.publish("run.progress", run.subject, "42%", run=run.id)
    for name, ws in sockets.items():
        fragment = receive_until(ws, "#run-bar[value='42.0']")
        assert fragment.select_one("[data-figure=files]").text.strip() == "4 of 10"
        # Rendered for each role: the operator's copy has the cancel button, the viewer's not.
        assert bool(fragment.select("button.danger")) == (name == "otto")
        ws.close()


def test_a_hundred_watchers_each_get_every_update(app, live_server, vera, profile):
    # Twenty viewers with five tabs each: one user may hold only so many sockets.
    with db.connection_context():
        run = Run.create(profile=profile, state="running", started_at=utcnow())
        viewers = [User.create_account(f"viewer{n}", PASSWORD, "viewer") for n in range(20)]
    cookies = [session_cookie(app, user) for user in viewers for _ in range(5)]
    watchers = [connect(live_server, cookie, query=f"s=run:{run.id}") for cookie in cookies]
    for ws in watchers:
        receive_until(ws, "#run-live")
    seen: list[set[str]] = [set() for _ in watchers]

    def watch(index, ws):
        deadline = time.monotonic() + 20
        while len(seen[index]) < 5 and time.monotonic() < deadline:
            try:
                fragment = receive_until(ws, "#run-bar", timeout=1)
            except AssertionError:
                continue
            seen[index].add(fragment.select_one("#run-bar")["value"])

    threads = [threading.Thread(target=watch, args=(i, ws)) for i, ws in enumerate(watchers)]
    for thread in threads:
        thread.start()
    for step in range(1, 6):
        with db.connection_context():
            Run.update(progress=step / 10).where(Run.id == run.id).execute()
            Event.publish("run.progress", run.subject, f"{step * 10}%", run=run.id)
        time.sleep(0.7)  # one broadcaster cycle apart, so no update is folded into the next
    for thread in threads:
        thread.join()
    with ThreadPoolExecutor(20) as pool:  # a client's close waits for the server's last word
        list(pool.map(lambda ws: ws.close(), watchers))
    expected = {f"{step * 10:.1f}" for step in range(1, 6)}
    assert all(expected <= values for values in seen), [len(v) for v in seen]


def test_the_speed_graph_is_drawn_from_the_runs_speed_history(client, vera, profile):
    with db.connection_context():
        run = Run.create(profile=profile, state="running", started_at=utcnow(),
                         speed={"step": 1.0, "points": [[0, 0], [60, 2_000_000], [120, 1_000_000]]})
    log_in(client, vera)
    section = html(client.get(f"/runs/{run.id}")).select_one("#run-speed")
    assert section.select_one("polyline")["points"].split() == ["0.0,120.0", "300.0,4.0", "600.0,62.0"]
    assert "peak 2.0 MB/s, now 1.0 MB/s" in section.text and "2 min" in section.text
