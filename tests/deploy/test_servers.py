"""The real servers as deployed: gunicorn serving the WebSocket, and `make run` end to end."""

import http.cookiejar
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
from bs4 import BeautifulSoup
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import config
from models import User, db, open_database
from models.migrate import migrate
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CAIRN = Path(sys.executable).parent / "cairn"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**settings) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}, **settings}


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def get(url: str, opener=None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def browser_login(base: str, username: str) -> str:
    """Log in through the form like a browser; returns the Cookie header it would send."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    _, page = get(f"{base}/login", opener)
    token = json.loads(BeautifulSoup(page, "html.parser").body["hx-headers"])["X-CSRFToken"]
    form = urllib.parse.urlencode({"csrf_token": token, "username": username,
                                   "password": PASSWORD}).encode()
    opener.open(f"{base}/login", data=form, timeout=10)
    return "; ".join(f"{c.name}={c.value}" for c in jar)


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    env = clean_env(CAIRN_DATA_DIR=str(tmp_path / "var"), CAIRN_BIND=f"127.0.0.1:{port}")
    migrate(open_database(config.load(env).database_url))
    with db.connection_context():
        User.create_account("ada", PASSWORD, "admin")
    server = subprocess.Popen([str(CAIRN), "web"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: get(f"{base}/login")[0] == 200)
    yield base
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def close_code(url: str, **kwargs) -> int:
    ws = connect(url, proxy=None, legacy=True, **kwargs)
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    return closed.value.rcvd.code


def test_gunicorn_serves_the_live_feed_to_a_logged_in_browser(gunicorn):
    cookie = browser_login(gunicorn, "ada")
    url = gunicorn.replace("http", "ws") + "/ws?s=system"
    ws = connect(url, origin=gunicorn, additional_headers={"Cookie": cookie}, proxy=None, legacy=True)
    fragment = BeautifulSoup(ws.recv(timeout=10), "html.parser")
    assert fragment.select_one("#system-panel[hx-swap-oob]")
    assert fragment.select_one("#worker-status")
    ws.close()


def test_gunicorn_closes_sockets_without_a_session_or_from_elsewhere_with_1008(gunicorn):
    url = gunicorn.replace("http", "ws") + "/ws?s=system"
    assert close_code(url, origin=gunicorn) == 1008
    cookie = browser_login(gunicorn, "ada")
    assert close_code(url, origin="http://evil.example", additional_headers={"Cookie": cookie}) == 1008


@pytest.fixture
def shared_data_dir():
    """A data dir whose parents every user may pass: as root, `make run` hands it to the
    unprivileged `cairn` (pytest's own temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="cairn-run-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


def processes(make: subprocess.Popen) -> dict[str, psutil.Process]:
    found = {}
    for child in psutil.Process(make.pid).children(recursive=True):
        try:
            line = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        for name in ("gunicorn", "huey_consumer"):
            if len(line) > 1 and Path(line[1]).name == name:
                found.setdefault(name, child)
    return found


def capabilities(process: psutil.Process, kind: str) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith(f"Cap{kind}:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no Cap{kind}")


def test_make_run_starts_both_prints_a_setup_link_and_stops_on_ctrl_c(shared_data_dir):
    port = free_port()
    env = clean_env(CAIRN_DATA_DIR=str(shared_data_dir), CAIRN_BIND=f"127.0.0.1:{port}")
    make = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines = []
    link = None
    deadline = time.monotonic() + 180
    while link is None and time.monotonic() < deadline:
        line = make.stdout.readline()
        assert line, "make run ended early:\n" + "".join(lines)
        lines.append(line)
        if re.fullmatch(rf"http://127\.0\.0\.1:{port}/setup\?token=\S+\n", line):
            link = line.strip()
    assert f"Cairn is running at http://127.0.0.1:{port}\n" in lines
    children = psutil.Process(make.pid).children(recursive=True)
    found = processes(make)
    assert set(found) == {"gunicorn", "huey_consumer"}
    if os.geteuid() == 0:
        # Root's make run: neither is root; the web holds no capability, the worker exactly
        # the installed service's.
        cairn = pwd.getpwnam("cairn").pw_uid
        assert {p.uids().effective for p in found.values()} == {cairn}
        assert capabilities(found["gunicorn"], "Eff") == capabilities(found["gunicorn"], "Bnd") == 0
        assert capabilities(found["huey_consumer"], "Amb") == WORKER_CAPS
        assert os.stat(shared_data_dir / "cairn.db").st_uid == cairn

    status, page = get(link)
    assert status == 200 and "Create admin account" in page
    wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200)
    assert (shared_data_dir / "cairn.db").exists() and (shared_data_dir / "queue.db").exists()

    os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal does (to make too)
    rest = make.communicate(timeout=60)[0]
    assert "Cairn stopped." in rest
    # The terminal stays readable: no request log, no huey bookkeeping at the default level.
    said = "".join(lines) + rest
    assert '"GET /' not in said and "commands are available" not in said, said
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


# cap_chown 0, cap_dac_override 1, cap_dac_read_search 2, cap_fowner 3, cap_sys_admin 21
WORKER_CAPS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 21)


def test_a_worker_that_dies_under_make_run_is_started_again_and_the_web_stays(shared_data_dir):
    port = free_port()
    env = clean_env(CAIRN_DATA_DIR=str(shared_data_dir), CAIRN_BIND=f"127.0.0.1:{port}")
    make = subprocess.Popen([str(CAIRN), "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=90)
        first = processes(make)
        first["huey_consumer"].kill()   # as the OOM killer would
        said = []
        while not any("The worker is running again." in line for line in said):
            line = make.stdout.readline()
            assert line, "cairn run ended:\n" + "".join(said)
            said.append(line)
        assert any(re.search(r"The worker stopped \(exit -9\); the web stays up\. Starting "
                             r"the worker again in 1 s\.", line) for line in said), said
        assert get(f"http://127.0.0.1:{port}/login")[0] in (200, 503)
        assert first["gunicorn"].is_running()
        again = processes(make)
        assert again["huey_consumer"].pid != first["huey_consumer"].pid
        wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=60)
    finally:
        os.killpg(make.pid, signal.SIGINT)
        rest = make.communicate(timeout=60)[0]
    assert "Cairn stopped." in rest and make.returncode == 0
