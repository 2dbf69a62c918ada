"""The folder picker: folders under the allowed roots with sizes from the worker's scans,
opened lazily a page at a time; unscanned folders scanned on request; bad paths refused.

Scans run inline (the app fixture's Huey is immediate) with the real scanner on real trees."""

import datetime as dt

import pytest
from playhouse.test_utils import count_queries

from jobs import scans
from models import Event, ExcludePreview, Scan, db, utcnow
from models.backup import path_key
from tests.conftest import csrf_token, html, log_in
from tests.helpers.feed import connect, receive_until, session_cookie
from tests.helpers.settings import use_settings
from tests.helpers.trees import write


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    write(home / "ada" / "Photos" / "2024" / "cat.jpg", "meow")
    write(home / "ada" / "Photos" / "2025" / "dog.jpg", "woof!")
    write(home / "ada" / "notes.txt", "hi")
    (home / "bob").mkdir()
    (home / "ada" / "escape").symlink_to("/etc")
    # The worker's own settings say which folders it may scan, as the web's do.
    use_settings(monkeypatch, source_roots=(str(home),))
    return home


@pytest.fixture
def environ(environ, tmp_path):
    return {**environ, "CAIRN_SOURCE_ROOTS": str(tmp_path / "home")}


def scan_now(client, path) -> object:
    return client.post("/picker/scan", data={"path": str(path)},
                       headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/account/")})


def rows(fragment) -> dict[str, str]:
    return {row.select_one(".picker-name").text: (row.select_one(".picker-size").text
                                                 if row.select_one(".picker-size") else "")
            for row in fragment.select(".picker-row")}


def test_the_new_profile_form_offers_the_roots(client, ada, home):
    log_in(client, ada)
    panel = html(client.get("/profiles/new")).select_one("#picker")
    assert [box["data-pick"] for box in panel.select("input[data-pick]")] == [str(home)]
    assert panel.select_one(".picker-toggle")["hx-get"] == f"/picker/folder?path={home}"


def test_an_unscanned_folder_asks_the_worker_then_shows_sizes(client, ada, home):
    log_in(client, ada)
    waiting = html(client.get(f"/picker/folder?path={home / 'ada'}"))
    ask = waiting.select_one("[hx-trigger=load]")
    assert ask["hx-post"] == "/picker/scan" and "Asking the worker" in ask.text
    listing = html(scan_now(client, home / "ada"))
    assert rows(listing) == {"Photos": "9 B · 2 files"}  # the link is not a folder to offer
    assert "Scanned" in listing.select_one(".picker-meta").text
    # Opened again later, the stored scan answers, and its subfolders too.
    photos = html(client.get(f"/picker/folder?path={home / 'ada' / 'Photos'}"))
    assert rows(photos) == {"2024": "4 B · 1 file", "2025": "5 B · 1 file"}
    with db.connection_context():
        assert Scan.select().count() == 1


def test_folders_are_listed_as_people_sort_names(client, ada, home):
    for name in ("trip 10", "Trip 2", "trip 1", "Été", "apple"):
        (home / "bob" / name).mkdir()
    log_in(client, ada)
    listing = html(scan_now(client, home / "bob"))
    assert [r.select_one(".picker-name").text for r in listing.select(".picker-row")] == [
        "apple", "Été", "trip 1", "Trip 2", "trip 10"]


def test_a_folder_of_ten_thousand_subfolders_comes_a_page_at_a_time(client, ada, home):
    big = home / "big"
    for n in range(450):
        (big / f"d{n:05}").mkdir(parents=True)
    log_in(client, ada)
    first = html(scan_now(client, big))
    names = list(rows(first))
    assert len(names) == 200 and names[0] == "d00000" and names[-1] == "d00199"
    more = first.select_one(".picker-more button")
    assert more.text.strip() == "Show 200 more of 250"
    third = html(client.get(f"/picker/folder?path={big}&page=3"))
    assert list(rows(third)) == [f"d{n:05}" for n in range(400, 450)]
    assert not third.select(".picker-more")
    with count_queries() as small:
        client.get(f"/picker/folder?path={home}")
    with count_queries() as large:
        client.get(f"/picker/folder?path={big}&page=2")
    assert large.count <= small.count + 1


@pytest.mark.parametrize("path, says", [
    ("{home}/../etc", "without “..”"),
    ("{home}/ada/./Photos", "without “..”"),
    ("{home}//ada", "doubled slashes"),
    ("ada/Photos", "absolute path"),
    ("/etc", "outside the folders Cairn may back up"),
    ("{home}x", "outside the folders Cairn may back up"),
    ("", "empty"),
    ("{home}/a\x00b", "NUL"),
])
def test_bad_paths_are_refused_with_a_reason(client, ada, home, path, says):
    log_in(client, ada)
    path = path.format(home=home)
    for response in (client.get("/picker/folder", query_string={"path": path}),
                     scan_now(client, path)):
        assert response.status_code == 400 and says in response.get_data(as_text=True)
    with db.connection_context():
        assert Scan.select().count() == 0


def test_a_folder_reached_through_a_symbolic_link_is_not_scanned(client, ada, home):
    log_in(client, ada)
    answer = html(scan_now(client, home / "ada" / "escape"))
    assert "reached through a symbolic link" in answer.select_one(".error-text").text
    assert answer.select_one("button")["hx-post"] == "/picker/scan"


def test_a_second_request_while_a_scan_is_pending_queues_nothing(app, client, ada, home):
    with db.connection_context():
        pending = Scan.create(root=str(home / "bob"), state="queued")
        assert scans.request_scan(str(home / "bob")).id == pending.id
        assert Scan.select().count() == 1
    log_in(client, ada)
    assert "Scanning" in html(client.get(f"/picker/folder?path={home / 'bob'}")).text


def test_a_page_hears_when_its_folders_scan_moves_on(app, live_server, ada, home):
    ws = connect(live_server, session_cookie(app, ada), query="s=scans")
    receive_until(ws, "#scan-ping")
    with db.connection_context():
        Event.publish("scan.finished", "scans", "Scanned.", key=path_key(str(home)))
    ping = receive_until(ws, "#scan-ping[data-refresh]").select_one("#scan-ping")
    assert ping["data-refresh"] == f"[data-scan-key='{path_key(str(home))}']"
    ws.close()


def test_only_admins_may_watch_scans(app, live_server, vera):
    from tests.helpers.feed import close_code
    assert close_code(live_server, session_cookie(app, vera), query="s=scans") == 1008


def test_names_are_shown_as_text(client, ada, home):
    name = "<i>x\"q'\nline"
    (home / "ada" / name).mkdir()
    log_in(client, ada)
    response = scan_now(client, home / "ada")
    assert "<i>x" not in response.get_data(as_text=True) and name in rows(html(response))


# --- Exclude preview ---------------------------------------------------------------------------

def preview(client, sources, excludes, **more):
    return client.post("/picker/preview", data={"sources": sources, "excludes": excludes, **more},
                       headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/account/")})


def test_the_form_counts_what_its_patterns_leave_out(client, ada, home):
    log_in(client, ada)
    form = html(client.get("/profiles/new"))
    button = form.select_one("#exclude-preview button")
    assert button["hx-post"] == "/picker/preview" and button["hx-include"] == "closest form"
    answer = html(preview(client, f"{home / 'ada'}\n{home / 'bob'}", "2024/\n*.jpg\n*.none"))
    summary = answer.select_one("#exclude-preview p").text
    assert "leave out 2 files (9 B)" in " ".join(summary.split())
    assert "of 4 files (15 B)" in " ".join(summary.split())   # the link counts, as in rsync
    table = [[cell.text.strip() for cell in row.select("td")]
             for row in answer.select("#exclude-preview tbody tr")]
    assert table == [["2024/", "1", "4 B"], ["*.jpg", "1", "5 B"],
                     ["*.none", "leaves out nothing more"]]
    # Shown again on request, and a second press within the minute counts nothing again.
    with db.connection_context():
        (only,) = ExcludePreview.select()
    again = html(client.get(f"/picker/preview/{only.id}"))
    assert again.select_one("#exclude-preview").text == answer.select_one("#exclude-preview").text
    preview(client, f"{home / 'ada'}\n{home / 'bob'}", "2024/\n*.jpg\n*.none")
    with db.connection_context():
        assert ExcludePreview.select().count() == 1


@pytest.mark.parametrize("sources, excludes, says", [
    ("{home}/ada", "", "Write a pattern"),
    ("{home}/ada", "[abc", "never closes"),
    ("ada/Photos", "*.jpg", "absolute"),
    ("/etc", "*.conf", "outside the folders Cairn may back up"),
    ("{home}/ada\n{home}/ada/Photos", "*.jpg", "inside"),
    ("", "*.jpg", "Choose at least one folder"),
])
def test_a_preview_of_bad_input_says_what_is_wrong_and_counts_nothing(client, ada, home, sources,
                                                                     excludes, says):
    log_in(client, ada)
    response = preview(client, sources.format(home=home), excludes)
    assert response.status_code == 200   # swapped in beside the field, like the form's messages
    assert says in html(response).select_one("#exclude-preview .error-text").text
    with db.connection_context():
        assert ExcludePreview.select().count() == 0


def test_the_worker_refuses_to_count_through_a_symbolic_link(client, ada, home):
    log_in(client, ada)
    answer = html(preview(client, str(home / "ada" / "escape"), "*.conf"))
    assert "symbolic link" in answer.select_one("#exclude-preview .error-text").text


def test_a_count_waiting_for_a_worker_says_so_and_fetches_itself_when_pinged(client, ada, home):
    with db.connection_context():
        waiting, _ = ExcludePreview.request([str(home / "ada")], ["*.jpg"], False)
    log_in(client, ada)
    shown = html(client.get(f"/picker/preview/{waiting.id}")).select_one("#exclude-preview")
    assert "No worker is running" in shown.text
    assert shown["data-preview-id"] == str(waiting.id) and shown["hx-trigger"] == "refresh"
    assert shown.select_one("button").has_attr("disabled")
    assert client.get("/picker/preview/999999").status_code == 404


def test_a_page_hears_when_its_count_moves_on(app, live_server, ada, home):
    ws = connect(live_server, session_cookie(app, ada), query="s=scans&s=previews")
    receive_until(ws, "#preview-ping")
    with db.connection_context():
        Event.publish("preview.finished", "previews", "Counted.", preview=7)
    ping = receive_until(ws, "#preview-ping[data-refresh]").select_one("#preview-ping")
    assert ping["data-refresh"] == "[data-preview-id='7']"
    ws.close()


def test_only_admins_may_watch_counts(app, live_server, vera):
    from tests.helpers.feed import close_code
    assert close_code(live_server, session_cookie(app, vera), query="s=previews") == 1008


def test_old_previews_are_deleted(app, home):
    with db.connection_context():
        old, _ = ExcludePreview.request(["/a"], ["x"], False, now=utcnow() - dt.timedelta(days=2))
        ExcludePreview.request(["/b"], ["x"], False)
        assert [p.sources for p in ExcludePreview.select()] == [["/b"]]


def test_progress_is_reported_while_counting_and_dropped_after(app, home, monkeypatch):
    import jobs.engines.scan as engine
    monkeypatch.setattr(engine, "PROGRESS_EVERY", 1)
    monkeypatch.setattr(scans, "SCAN_PROGRESS_SECONDS", 0)
    sent = []
    real_publish = Event.publish
    monkeypatch.setattr(Event, "publish", lambda *a, **k: sent.append(a[0]) or real_publish(*a, **k))
    with db.connection_context():
        scans.request_preview([str(home / "ada")], ["*.jpg"], False)
        scans.request_scan(str(home / "ada"))
        assert "preview.progress" in sent and "scan.progress" in sent
        assert sent[-1] == "scan.finished"
        assert [e.kind for e in Event.select().where(Event.kind.endswith(".progress"))] == []
