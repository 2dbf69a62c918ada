"""The pages under load: 100,000 runs and 1,000,000 log lines, 20 clients at once, against
`cairn web` (gunicorn), as an installed box serves them.

`make bench` (not part of `make test`). Seeds a fresh SQLite database (BENCH_RUNS, default
100000 runs over 20 profiles; BENCH_LINES, default 1000000 warning and error lines), starts
gunicorn on it, logs in, and has BENCH_CLIENTS (default 20) threads fetch each page
BENCH_REQUESTS (default 400) times in all, each on its own keep-alive connection. Prints the
50th and 95th percentile and the requests per second of every page against the 50 ms target.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import random
import signal
import subprocess
import threading
import time
from statistics import quantiles

import config
from models import Profile, Run, RunMessage, User, db, open_database
from models.migrate import migrate
from tests.conftest import PASSWORD
from tests.deploy.test_servers import CAIRN, browser_login, clean_env, free_port, get, wait_until

RUNS = int(os.environ.get("BENCH_RUNS", "100000"))
LINES = int(os.environ.get("BENCH_LINES", "1000000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))
TARGET_MS = 50
PAGES = ["/", "/profiles/", "/history", "/history?status=failed", "/history?q=photos",
         "/history?profile=3&since=2026-03-01&until=2026-03-31", "/history?sort=copied",
         "/history?kind=dry&sort=-files&page=20", "/logs", "/logs?level=error",
         "/logs?q=img0042", "/logs?profile=5&q=vanished"]
STATES = ["succeeded"] * 17 + ["partial", "failed", "cancelled"]


def seed(url: str) -> None:
    migrate(open_database(url))
    rng = random.Random(20261123)
    start = dt.datetime(2026, 1, 1)
    with db.connection_context():
        User.create_account("ada", PASSWORD, "admin")
        profiles = [Profile.create(name=f"Photos {n}", slug=f"photos-{n}", sources=[f"/home/p{n}"],
                                   destination="/var/tmp") for n in range(20)]
        batch = []
        for n in range(RUNS):
            at = start + dt.timedelta(minutes=5 * n)
            state = rng.choice(STATES)
            batch.append((profiles[n % 20].id, state, n % 50 == 0, at, at,
                          at + dt.timedelta(seconds=rng.randint(5, 3600)), rng.randint(0, 10**6),
                          rng.randint(0, 10**10), int(state == "failed"), f"Run {n}: {state}."))
        fields = [Run.profile, Run.state, Run.dry_run, Run.created_at, Run.started_at,
                  Run.finished_at, Run.files_done, Run.sent_bytes, Run.error_count, Run.message]
        with db.atomic():
            for i in range(0, len(batch), 5000):
                Run.insert_many(batch[i:i + 5000], fields=fields).execute()
        lines = ((rng.randint(1, RUNS), "warning" if i % 3 else "error",
                  f'file has vanished: "/home/p/img{i % 100000:05}.jpg"' if i % 3 else
                  f'rsync: send_files failed to open "/home/p/img{i % 100000:05}.jpg": '
                  'Permission denied (13)')
                 for i in range(LINES))
        with db.atomic():
            chunk = []
            for line in lines:
                chunk.append(line)
                if len(chunk) == 10000:
                    RunMessage.insert_many(chunk, fields=[RunMessage.run, RunMessage.level,
                                                          RunMessage.text]).execute()
                    chunk = []
            if chunk:
                RunMessage.insert_many(chunk, fields=[RunMessage.run, RunMessage.level,
                                                      RunMessage.text]).execute()
    db.close()


def load(port: int, cookie: str, path: str) -> tuple[list[float], float]:
    """Every client fetches `path` on its own connection; returns latencies (ms) and wall time."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, REQUESTS // CLIENTS)

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for _ in range(per_client):
            started = time.perf_counter()
            connection.request("GET", path, headers={"Cookie": cookie})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, (path, response.status)
            mine.append((time.perf_counter() - started) * 1000)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - began


def test_pages_answer_quickly_with_a_full_history(tmp_path):
    port = free_port()
    env = clean_env(CAIRN_DATA_DIR=str(tmp_path / "var"), CAIRN_BIND=f"127.0.0.1:{port}")
    began = time.perf_counter()
    seed(config.load(env).database_url)
    print(f"\nseeded {RUNS:,} runs and {LINES:,} log lines in {time.perf_counter() - began:.0f} s")
    server = subprocess.Popen([str(CAIRN), "web"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: get(f"{base}/login")[0] == 200)
        cookie = browser_login(base, "ada")
        print(f"{'page':58} {'p50 ms':>7} {'p95 ms':>7} {'req/s':>6}  target p95 < {TARGET_MS} ms")
        for path in PAGES:
            load(port, cookie, path)  # warm the caches
            latencies, wall = load(port, cookie, path)
            cuts = quantiles(latencies, n=100)
            verdict = "ok" if cuts[94] < TARGET_MS else "SLOW"
            print(f"{path:58} {cuts[49]:7.1f} {cuts[94]:7.1f} {len(latencies) / wall:6.0f}  {verdict}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
