import datetime as dt

from models import Event, WorkerProcess, db, utcnow
from tests.conftest import html, log_in


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
    assert socket["ws-connect"] == "/ws?s=system&s=activity"


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
