"""The pages under load: 100,000 runs and 1,000,000 log lines, 20 clients at once, against
`cairn web` (gunicorn), as an installed box serves them.

`make bench` (not part of `make test`). Seeds a fresh SQLite database (BENCH_RUNS, default
100000 runs over 20 profiles; BENCH_LINES, default 1000000 warning and error lines), starts
gunicorn on it, logs in, and has wrk (Debian's, installed by `make bench`) keep BENCH_CLIENTS
(default 20) keep-alive connections busy on each page for BENCH_SECONDS (default 10). Prints
the 50th and 95th percentile and the requests per second of every page against the 50 ms
target. wrk is a small C program: unlike a Python load script it leaves the server nearly all
of the two cores.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import config
from models import Profile, Run, RunMessage, User, db, open_database
from models.migrate import migrate
from tests.conftest import PASSWORD
from tests.deploy.test_servers import CAIRN, browser_login, clean_env, free_port, get, wait_until

RUNS = int(os.environ.get("BENCH_RUNS", "100000"))
LINES = int(os.environ.get("BENCH_LINES", "1000000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
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


# wrk's own summary has no 95th percentile; its Lua hook reads any from the full histogram.
WRK_REPORT = """
done = function(summary, latency, requests)
  if summary.errors.status > 0 or summary.errors.connect > 0 or summary.errors.timeout > 0 then
    io.write(string.format("errors %d\\n", summary.errors.status + summary.errors.connect
                                              + summary.errors.timeout))
  end
  io.write(string.format("result %d %.3f %.3f %.3f\\n", summary.requests, summary.duration / 1e6,
                         latency:percentile(50) / 1000, latency:percentile(95) / 1000))
end
"""


def load(port: int, cookie: str, path: str, script: Path) -> tuple[float, float, float]:
    """BENCH_CLIENTS connections fetch `path` for BENCH_SECONDS; returns p50 ms, p95 ms, req/s."""
    threads = min(2, CLIENTS)
    out = subprocess.run(["wrk", "--threads", str(threads), "--connections", str(CLIENTS),
                          "--duration", f"{SECONDS}s", "--timeout", "10s", "--script", str(script),
                          "--header", f"Cookie: {cookie}", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    assert "errors" not in out, out
    requests, seconds, p50, p95 = next(line.split()[1:] for line in out.splitlines()
                                      if line.startswith("result "))
    return float(p50), float(p95), int(requests) / float(seconds)


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
        script = tmp_path / "report.lua"
        script.write_text(WRK_REPORT)
        signed_in = urllib.request.Request(f"{base}/", headers={"Cookie": cookie})
        with urllib.request.urlopen(signed_in, timeout=30) as response:   # a session, not /login
            assert response.url == f"{base}/"
        print(f"{'page':58} {'p50 ms':>7} {'p95 ms':>7} {'req/s':>6}  target p95 < {TARGET_MS} ms")
        for path in PAGES:
            urllib.request.urlopen(urllib.request.Request(base + path, headers={"Cookie": cookie}),
                                   timeout=30).read()   # warm the caches
            p50, p95, rate = load(port, cookie, path, script)
            verdict = "ok" if p95 < TARGET_MS else "SLOW"
            print(f"{path:58} {p50:7.1f} {p95:7.1f} {rate:6.0f}  {verdict}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
