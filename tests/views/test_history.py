"""History: every run, filtered, sorted, paged, with totals; CSV and JSON of the same rows;
Logs: warnings and errors across runs, searchable."""

import csv
import datetime as dt
import io

import pytest
from playhouse.test_utils import count_queries

from models import Event, Profile, Run, RunMessage, User, db
from tests.conftest import html, log_in
from tests.helpers.feed import connect, receive_until, session_cookie
from views import history, logs

T0 = dt.datetime(2026, 11, 1, 12, 0)


@pytest.fixture
def runs(app):
    """Photos ran daily for 10 days (the 4th failed, the 7th was a dry run); Music twice."""
    with db.connection_context():
        photos = Profile.create(name="Photos", slug="photos", sources=["/p"], destination="/d")
        music = Profile.create(name="Music =cmd", slug="music", sources=["/m"], destination="/d")
        made = []
        for day in range(10):
            at = T0 + dt.timedelta(days=day)
            state = "failed" if day == 3 else "succeeded"
            made.append(Run.create(profile=photos, state=state, dry_run=day == 6, created_at=at,
                                   started_at=at, finished_at=at + dt.timedelta(minutes=3),
                                   files_done=100 + day, sent_bytes=1000 * day,
                                   error_count=int(day == 3), requested_by="otto",
                                   message="Destination full." if day == 3 else "Done."))
        for day in (2, 5):
            at = T0 + dt.timedelta(days=day, hours=1)
            made.append(Run.create(profile=music, state="partial", created_at=at, started_at=at,
                                   files_done=7, sent_bytes=5, warning_count=2,
                                   message="2 files vanished."))
        return {"photos": photos, "music": music, "runs": made}


def ids(page) -> list[int]:
    return [int(tr["id"].removeprefix("history-run-")) for tr in page.select("#history tbody tr")]


def test_all_runs_newest_first_with_totals(client, vera, runs):
    log_in(client, vera)
    page = html(client.get("/history"))
    assert ids(page) == sorted((r.id for r in runs["runs"]), key=lambda i: -i)
    totals = page.select_one("#history-totals").text.split()
    assert totals[:2] == ["12", "runs"] and "1,059 files seen" in " ".join(totals)
    # 39 kB copied by the backups and 10 B by Music: the dry run's 6 kB were never copied.
    assert "39.0 kB copied" in " ".join(totals)
    dry = page.select_one(f"#history-run-{runs['runs'][6].id}")
    assert "would be 6.0 kB" in dry.text


@pytest.mark.parametrize("query, expected", [
    ("profile={music}", lambda r: r.profile.name.startswith("Music")),
    ("status=failed", lambda r: r.state == "failed"),
    ("status=partial&profile={music}", lambda r: r.state == "partial"),
    ("kind=dry", lambda r: r.dry_run),
    ("kind=backup&profile={photos}", lambda r: not r.dry_run and r.profile.name == "Photos"),
    ("since=2026-11-03&until=2026-11-04", lambda r: dt.date(2026, 11, 3) <= r.created_at.date()
     <= dt.date(2026, 11, 4)),
    ("q=destination", lambda r: r.message == "Destination full."),
    ("q=MUSIC", lambda r: r.profile.name.startswith("Music")),
    ("q=otto&status=succeeded", lambda r: r.requested_by == "otto" and r.state == "succeeded"),
])
def test_filters_narrow_the_rows_and_the_totals(client, vera, runs, query, expected):
    log_in(client, vera)
    query = query.format(music=runs["music"].id, photos=runs["photos"].id)
    page = html(client.get(f"/history?{query}"))
    with db.connection_context():
        want = [r.id for r in Run.select().order_by(Run.id.desc()) if expected(r)]
    assert want and ids(page) == want
    assert page.select_one("#history-totals strong").text.split()[0] == str(len(want))


def test_days_are_the_viewers_own(client, vera, runs):
    with db.connection_context():
        User.update(timezone="Pacific/Auckland").where(User.id == vera.id).execute()
    log_in(client, vera)
    # 12:00 UTC on 1 Nov is 01:00 on 2 Nov in Auckland (UTC+13).
    page = html(client.get("/history?since=2026-11-02&until=2026-11-02&profile="
                           f"{runs['photos'].id}"))
    assert ids(page) == [runs["runs"][0].id]


# Ties go by id in the sort's own direction (one index serves the whole order).
@pytest.mark.parametrize("sort, key", [
    ("files", lambda r: (r.files_done, r.id)),
    ("-files", lambda r: (-r.files_done, -r.id)),
    ("profile", lambda r: (r.profile.name, r.id)),
    ("-copied", lambda r: (-r.sent_bytes, -r.id)),
])
def test_columns_sort_and_a_second_click_flips_the_order(client, vera, runs, sort, key):
    log_in(client, vera)
    page = html(client.get(f"/history?sort={sort}&kind="))
    with db.connection_context():
        every = list(Run.select(Run, Profile).join(Profile))
    assert ids(page) == [r.id for r in sorted(every, key=key)]
    column = sort.lstrip("-")
    header = page.select_one("th[aria-sort!=none] a[href*='sort=']")
    flipped = column if sort.startswith("-") else f"-{column}"
    assert header["href"] == f"/history?sort={flipped}&kind="


def test_bad_filters_get_a_message_beside_the_field_not_a_500(client, vera, runs):
    log_in(client, vera)
    for query, field in [("since=yesterday", "since"), ("since=2026-11-05&until=2026-11-01", "until"),
                         ("q=" + "x" * 300, "q"), ("status=exploded", "status")]:
        response = client.get(f"/history?{query}")
        assert response.status_code == 400, query
        assert html(response).select_one(f"#{field}-msg").text.strip(), query
        assert client.get(f"/history.csv?{query}").json["fields"][field]
    assert client.get("/history?sort=evil;drop&profile=abc&page=-3").status_code == 200


def test_pages_hold_fifty_and_the_links_keep_the_filter(client, vera, runs, monkeypatch):
    monkeypatch.setattr(history, "PAGE_SIZE", 5)
    log_in(client, vera)
    page = html(client.get(f"/history?profile={runs['photos'].id}"))
    assert len(ids(page)) == 5 and "Page 1 of 2" in page.text
    second = html(client.get(page.select_one("a[rel=next]")["href"]))
    assert len(ids(second)) == 5 and f"profile={runs['photos'].id}" in page.select_one("a[rel=next]")["href"]


def test_exports_hold_the_filtered_rows_of_every_page(client, vera, runs, monkeypatch):
    monkeypatch.setattr(history, "PAGE_SIZE", 2)
    log_in(client, vera)
    query = f"profile={runs['photos'].id}&kind=backup"
    page = html(client.get(f"/history?{query}"))
    links = [a["href"] for a in page.select(".exports a")]
    assert links == [f"/history.csv?{query}", f"/history.json?{query}"]
    rows = list(csv.DictReader(io.StringIO(client.get(links[0]).get_data(as_text=True))))
    data = client.get(links[1]).get_json()
    with db.connection_context():
        want = [r.id for r in Run.select().where((Run.profile == runs["photos"].id)
                                                 & (Run.dry_run == False))  # noqa: E712
                .order_by(Run.id.desc())]
    assert [int(r["id"]) for r in rows] == [d["id"] for d in data] == want
    failed = next(d for d in data if d["state"] == "failed")
    assert failed["seconds"] == 180.0 and failed["errors"] == 1
    assert failed["started_at"] == "2026-11-04T12:00:00Z"


def test_a_csv_cell_never_becomes_a_spreadsheet_formula(client, vera, runs):
    log_in(client, vera)
    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/history.csv?profile={runs['music'].id}").get_data(as_text=True))))
    assert {r["profile"] for r in rows} == {"Music =cmd"}  # only a leading = is a formula
    with db.connection_context():
        Profile.update(name="=HYPERLINK(\"x\")").where(Profile.id == runs["music"].id).execute()
    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/history.csv?profile={runs['music'].id}").get_data(as_text=True))))
    assert {r["profile"] for r in rows} == {"'=HYPERLINK(\"x\")"}
    data = client.get(f"/history.json?profile={runs['music'].id}").get_json()
    assert {d["profile"] for d in data} == {"=HYPERLINK(\"x\")"}  # JSON keeps the value as is


def test_the_page_costs_the_same_queries_for_few_runs_or_many(client, vera, runs):
    log_in(client, vera)
    client.get("/history")
    with count_queries() as few:
        client.get("/history")
    with db.connection_context():
        for _ in range(60):
            Run.create(profile=runs["music"], state="succeeded")
    with count_queries() as many:
        client.get("/history?status=succeeded&q=a")
    assert many.count == few.count


def test_an_open_history_page_hears_when_a_run_changes(app, live_server, vera, runs):
    ws = connect(live_server, session_cookie(app, vera), query="s=runs")
    receive_until(ws, "#runs-changed")
    with db.connection_context():
        Event.publish("run.progress", f"run:{runs['runs'][0].id}", "50%")
    receive_until(ws, "#runs-changed")
    ws.close()


# --- Logs ------------------------------------------------------------------------------------

@pytest.fixture
def problems(runs):
    with db.connection_context():
        failed = runs["runs"][3]
        for n in range(30):
            failed.add_message("error", f'rsync: [sender] send_files failed to open "/p/img{n:02}.jpg"')
        runs["runs"][10].add_message("warning", 'file has vanished: "/m/<b>song</b>.mp3"')
        runs["runs"][10].add_message("item", ">f+++++++++ 5 not-a-problem")
        runs["runs"][10].add_message("info", "Restored 3 hardlinks.")
    return runs


def texts(page) -> list[str]:
    return [td.text for td in page.select("#log-lines .log-text")]


def test_logs_list_warnings_and_errors_newest_first(client, vera, problems):
    log_in(client, vera)
    page = html(client.get("/logs"))
    shown = texts(page)
    assert shown[0] == 'file has vanished: "/m/<b>song</b>.mp3"'  # as text, not markup
    assert len(shown) == 31 and "not-a-problem" not in page.text and "Restored" not in page.text
    assert "31 matching lines" in page.text
    assert page.select_one("#log-lines a")["href"] == f"/runs/{problems['runs'][10].id}"


@pytest.mark.parametrize("query, count", [("level=warning", 1), ("level=error", 30),
                                          ("q=IMG07", 1), ("q=vanished", 1), ("q=nothing", 0),
                                          ("profile={music}", 1), ("profile={photos}&q=img", 30),
                                          # the trigram index, and LIKE below three characters
                                          ("q=img0", 10), ("q=g0", 10), ("q=%22%2Fp%2Fimg1", 10),
                                          ("q=%3Cb%3Eso", 1), ("q=%25", 0), ("q=e_", 0), ("q=d_f", 30)])
def test_logs_are_searchable(client, vera, problems, query, count):
    log_in(client, vera)
    query = query.format(music=problems["music"].id, photos=problems["photos"].id)
    assert len(texts(html(client.get(f"/logs?{query}")))) == count


@pytest.mark.parametrize("query", ["level=error", "q=send_files"])
def test_logs_page_back_by_line_and_never_count_past_a_cap(client, vera, problems, monkeypatch,
                                                           query):
    monkeypatch.setattr(logs, "PAGE_SIZE", 10)
    monkeypatch.setattr(logs, "COUNT_CAP", 20)
    log_in(client, vera)
    seen, path = [], f"/logs?{query}"
    for _ in range(3):
        page = html(client.get(path))
        assert "more than 20 matching lines" in page.text
        seen += texts(page)
        older = page.select_one("a[rel=next]")
        if older is None:
            break
        path = older["href"]
        assert query in path
    assert len(seen) == 30 and len(set(seen)) == 30
    assert seen == sorted(seen, reverse=True)


def test_the_text_index_follows_changed_and_deleted_lines(client, vera, problems):
    log_in(client, vera)
    with db.connection_context():
        line = RunMessage.get(RunMessage.text.contains("vanished"))
        RunMessage.update(text="file has gone away").where(RunMessage.id == line.id).execute()
    assert texts(html(client.get("/logs?q=vanished"))) == []
    assert texts(html(client.get("/logs?q=gone+away"))) == ["file has gone away"]
    with db.connection_context():
        problems["runs"][3].delete_instance()   # its lines go with it
    assert texts(html(client.get("/logs?q=send_files"))) == []
    assert texts(html(client.get("/logs?q=gone+away"))) == ["file has gone away"]


def test_the_logs_query_count_does_not_grow_with_the_lines(client, vera, problems):
    log_in(client, vera)
    with count_queries() as before:
        client.get("/logs")
    with db.connection_context():
        RunMessage.insert_many([{"run": problems["runs"][0].id, "level": "error", "text": f"e{n}"}
                                for n in range(200)]).execute()
    with count_queries() as after:
        client.get("/logs?q=e1")
    assert after.count == before.count
