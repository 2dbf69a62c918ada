import datetime as dt

from playhouse.test_utils import count_queries

from models import Event, Profile, Run, WorkerProcess, db, utcnow
from tests.conftest import html, log_in
from tests.helpers.feed import connect, receive_until, session_cookie


def test_the_dashboard_shows_this_boxs_load_in_readable_numbers(client, vera):
    log_in(client, vera)
    page = html(client.get("/"))
    panel = page.select_one("#system-panel")
    assert panel.select_one("[data-metric=cpu]").text.endswith("%")
    assert panel.select_one("[data-metric=memory]").text.split()[-1] in {"MB", "GB", "TB"}
    assert panel.select_one("[data-metric=disk-free]").text.split()[-1] in {"kB", "MB", "GB", "TB"}
    assert len(panel.select("meter")) == 4


def test_the_dashboard_connects_to_the_live_feed(client, vera):
    log_in(client, vera)
    socket = html(client.get("/")).select_one("[ws-connect]")
    assert socket["hx-ext"] == "ws"
    assert socket["ws-connect"] == "/ws?s=backups&s=system&s=activity&s=import-counts"


def test_the_worker_indicator_says_when_no_worker_runs(client, vera):
    log_in(client, vera)
    worker = html(client.get("/")).select_one("#worker-status")
    assert worker["data-alive"] == "no"
    assert "Not running" in worker.text and "No worker has started yet" in worker.text


def test_the_worker_indicator_shows_a_live_worker(client, vera):
    with db.connection_context():
        WorkerProcess.register("box", 42, 4, "cairn", now=utcnow() - dt.timedelta(hours=2))
        WorkerProcess.update(seen_at=utcnow()).execute()
    log_in(client, vera)
    worker = html(client.get("/")).select_one("#worker-status")
    assert worker["data-alive"] == "yes"
    assert "4 job threads" in worker.text and "up 2 h" in worker.text


def test_a_silent_worker_is_shown_as_down_with_when_it_was_last_heard(client, vera):
    with db.connection_context():
        WorkerProcess.register("box", 42, 4, "cairn", now=utcnow() - dt.timedelta(minutes=5))
    log_in(client, vera)
    worker = html(client.get("/")).select_one("#worker-status")
    assert worker["data-alive"] == "no" and "5 min ago" in worker.text


def test_recent_activity_lists_events_newest_first(client, vera):
    with db.connection_context():
        Event.publish("worker.online", "system", "Worker started on box.")
        Event.publish("worker.offline", "system", "Worker on box stopped.", level="warning")
    log_in(client, vera)
    items = html(client.get("/")).select("#activity-list li")
    assert [i.select_one(".what").text for i in items] == ["Worker on box stopped.",
                                                          "Worker started on box."]
    assert "warning" in items[0]["class"]


def test_a_snapshot_named_in_a_message_is_said_in_the_readers_time_zone(client, vera):
    with db.connection_context():
        Event.publish("verify.finished", "system",
                      "Verification of Photos 2026-12-01T023000Z: damaged. <b>1</b> file.",
                      level="error")
        vera.timezone = "Asia/Tokyo"
        vera.save()
    log_in(client, vera)
    what = html(client.get("/")).select_one("#activity-list li .what")
    assert what.text == "Verification of Photos 2026-12-01 11:30:00: damaged. <b>1</b> file."
    shown = what.select_one("time")
    assert shown["title"].startswith("2026-12-01T023000Z") and shown["datetime"] == "2026-12-01T02:30:00Z"


def profile_with_history(tmp_path, name="Photos", good_days_ago=1) -> Profile:
    (tmp_path / name).mkdir(exist_ok=True)
    with db.connection_context():
        profile = Profile.create(name=name, slug=name.lower(), sources=["/home/x"],
                                 destination=str(tmp_path / name))
        finished = utcnow() - dt.timedelta(days=good_days_ago)
        Run.create(profile=profile, state="succeeded", finished_at=finished, snapshot="s")
        Run.create(profile=profile, state="failed", finished_at=utcnow(),
                   message="Destination folder is missing.")
        return profile


def test_a_newcomer_sees_one_way_to_a_first_backup(client, ada, vera):
    log_in(client, ada)
    card = html(client.get("/")).select_one("#backups")
    assert card.select_one("a.primary")["href"] == "/profiles/new"
    log_in(client, vera)
    card = html(client.get("/")).select_one("#backups")
    assert not card.select("a.primary") and "administrator has not set up" in card.text


def test_each_backup_shows_its_last_result_snapshot_age_and_free_space(client, vera, tmp_path):
    profile = profile_with_history(tmp_path)
    log_in(client, vera)
    card = html(client.get("/")).select_one(f"#backup-{profile.id}")
    assert card.select_one(".tag").text.strip() == "failed"
    assert "Destination folder is missing." in card.text
    assert card.select_one("[data-figure=newest-good]").text.strip() == "Newest good snapshot 1 d ago"
    assert "overdue" not in card["class"]
    space = card.select_one("[data-figure=space]").text
    assert " free of " in space and str(tmp_path / "Photos") in space


def test_a_backup_without_a_recent_good_snapshot_is_shown_red(client, vera, tmp_path):
    stale = profile_with_history(tmp_path, "Old", good_days_ago=8)
    with db.connection_context():
        never = Profile.create(name="Never", slug="never", sources=["/x"], destination="/nowhere/at/all")
    log_in(client, vera)
    page = html(client.get("/"))
    assert "overdue" in page.select_one(f"#backup-{stale.id}")["class"]
    assert page.select_one(f"#backup-{stale.id} .overdue-text").text == "8 d ago"
    assert "not reachable" in page.select_one(f"#backup-{never.id} [data-figure=space]").text


def test_a_new_profile_is_not_an_alarm_until_it_misses_a_run(client, vera):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with db.connection_context():
        by_hand = Profile.create(name="By hand", slug="by-hand", sources=["/x"], destination="/d")
        nightly = Profile.create(name="Nightly", slug="nightly", sources=["/x"], destination="/d",
                                 schedule="30 2 * * *")
        missed = Profile.create(name="Missed", slug="missed", sources=["/x"], destination="/d",
                                schedule="30 2 * * *", created_at=now - dt.timedelta(days=3))
        failed = Profile.create(name="Failed", slug="failed", sources=["/x"], destination="/d")
        Run.create(profile=failed, state="failed", finished_at=now, message="Oops.")
    log_in(client, vera)
    page = html(client.get("/"))
    card = {p.name: page.select_one(f"#backup-{p.id}") for p in (by_hand, nightly, missed, failed)}
    assert "overdue" not in card["By hand"]["class"] and "overdue" not in card["Nightly"]["class"]
    assert card["By hand"].select_one("[data-figure=newest-good]").text.strip() == \
        "Not run yet: it runs when someone starts it."
    assert card["Nightly"].select_one("[data-figure=newest-good]").text.strip() == "Not run yet."
    assert card["Nightly"].select_one("[data-figure=next-run]").text.startswith("Next backup")
    for name in ("Missed", "Failed"):
        assert "overdue" in card[name]["class"]
        assert card[name].select_one(".overdue-text").text == "No good snapshot yet"


def test_a_running_backup_has_a_live_bar(app, live_server, vera, tmp_path):
    profile = profile_with_history(tmp_path)
    with db.connection_context():
        run = Run.create(profile=profile, state="running", started_at=utcnow(), total_files=200)
    ws = connect(live_server, session_cookie(app, vera), query="s=backups")
    assert receive_until(ws, f"#backup-{profile.id} progress").select_one("progress")["value"] == "0.0"
    with db.connection_context():
        Run.update(progress=0.5, files_done=100).where(Run.id == run.id).execute()
        Event.publish("run.progress", run.subject, "50%", run=run.id)
    pushed = receive_until(ws, f"#backup-{profile.id} progress[value='50.0']")
    assert "100 of 200 files" in pushed.select_one("[data-figure=running]").text
    with db.connection_context():
        run.finish("succeeded", "All copied.")
        Event.publish("run.finished", run.subject, "Backup of Photos: succeeded.", run=run.id)
    done = receive_until(ws, f"#backup-{profile.id} .tag.state-succeeded")
    assert not done.select("progress") and "All copied." in done.text
    ws.close()


def test_recent_problems_are_listed_with_a_link_to_their_run(client, vera, tmp_path):
    profile = profile_with_history(tmp_path)
    with db.connection_context():
        run = Run.select().where(Run.profile == profile).order_by(Run.id.desc()).get()
        Event.publish("run.finished", run.subject, "Backup of Photos: failed.", level="error")
        Event.publish("note", "system", "All fine.")
    log_in(client, vera)
    problems = html(client.get("/")).select("#problems li")
    assert [li.text.split(" ", 2)[-1] for li in problems] == ["Backup of Photos: failed."]
    assert problems[0].select_one("a")["href"] == f"/runs/{run.id}"


def test_the_dashboard_costs_the_same_queries_for_one_backup_or_many(client, vera, tmp_path):
    profile_with_history(tmp_path)
    log_in(client, vera)
    client.get("/")
    with count_queries() as one:
        client.get("/")
    for n in range(6):
        profile_with_history(tmp_path, f"P{n}")
    with count_queries() as seven:
        client.get("/")
    assert seven.count == one.count
