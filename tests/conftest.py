"""Fixtures every test may use: real databases, the app, personas, a live server.

Personas (after healthchecks' tests): admin `ada`, operator `otto`, viewer `vera`.
Model and view tests run on SQLite and on the PostgreSQL server at 127.0.0.1:5432
(tests/models/conftest.py and tests/views/conftest.py widen `backend`).
"""

from __future__ import annotations

import os
import tempfile

# The Huey instance is built from the environment when `jobs` is first imported: point it at
# a throwaway folder so tests never touch ./var, and keep a developer's CAIRN_* out.
for _name in [n for n in os.environ if n.startswith("CAIRN_")]:
    del os.environ[_name]
os.environ["CAIRN_DATA_DIR"] = tempfile.mkdtemp(prefix="cairn-test-")

import json  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402

import psutil  # noqa: E402
import psycopg2  # noqa: E402
import pytest  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from bs4 import BeautifulSoup  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

import models.user  # noqa: E402
from app import create_app  # noqa: E402
from jobs.queue import huey  # noqa: E402
from models import User, db  # noqa: E402

PASSWORD = "correct horse battery staple"
PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    # The real parameters (64 MiB, 3 passes) cost ~50 ms per hash and buy nothing in a test.
    monkeypatch.setattr(models.user, "password_hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def database_url(backend, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'cairn.db'}"
        return
    name = f"cairn_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    if db.obj is not None and not db.is_closed():
        db.close()
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_admin(sql: str) -> None:
    connection = psycopg2.connect(**PG_ADMIN)
    connection.autocommit = True
    try:
        connection.cursor().execute(sql)
    finally:
        connection.close()


@pytest.fixture
def environ(tmp_path, database_url) -> dict[str, str]:
    """The settings a test's app starts with, as CAIRN_* variables."""
    return {"CAIRN_DATA_DIR": str(tmp_path / "var"), "CAIRN_DATABASE_URL": database_url}


@pytest.fixture
def app(environ):
    huey.immediate = True  # tasks run inline, on an in-memory queue
    application = create_app(environ)
    application.config["TESTING"] = True
    yield application
    huey.immediate = False
    if not db.is_closed():
        db.close()


@pytest.fixture
def client(app):
    return app.test_client()


def make_user(username: str, role: str, **kwargs) -> User:
    with db.connection_context():
        return User.create_account(username, PASSWORD, role, **kwargs)


@pytest.fixture
def ada(app) -> User:
    return make_user("ada", "admin")


@pytest.fixture
def otto(app) -> User:
    return make_user("otto", "operator")


@pytest.fixture
def vera(app) -> User:
    return make_user("vera", "viewer")


def log_in(client, user: User) -> None:
    """Sign `client` in as `user` without the login form (tests of the form use the form)."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def html(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of `client`'s session, read from a page like a browser would."""
    body = html(client.get(path)).body
    return json.loads(body["hx-headers"])["X-CSRFToken"]


def post(client, path: str, data: dict | None = None, token_from: str = "/account/", **kwargs):
    """A form POST carrying the session's CSRF token."""
    return client.post(path, data={"csrf_token": csrf_token(client, token_from), **(data or {})},
                       **kwargs)


@pytest.fixture
def live_server(app):
    """The app served over real HTTP and WebSocket on a free port, inside this process."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def exfat_drive(tmp_path):
    """A real exFAT filesystem (no hardlinks, no modes) on a loop device, mounted via FUSE.

    This machine's kernel has no vfat module; exFAT through exfat-fuse is the FAT-family
    filesystem that mounts everywhere, and it is what most USB sticks now carry."""
    image = tmp_path / "exfat.img"
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
    subprocess.run(["mkfs.exfat", "-L", "CAIRNEX", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                          capture_output=True, text=True).stdout.strip()
    mount = tmp_path / "exfat"
    mount.mkdir()
    subprocess.run(["mount.exfat-fuse", loop, str(mount)], check=True, capture_output=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)
    subprocess.run(["losetup", "-d", loop], check=True)


def _udevd_running() -> bool:
    return any(p.info["name"] == "systemd-udevd" for p in psutil.process_iter(["name"]))


@pytest.fixture(scope="session")
def udev():
    """A running systemd-udevd (Debian's udev), so that attaching a loop image emits real
    block events carrying ID_FS_UUID and ID_FS_LABEL, as plugging in a USB drive does."""
    if not _udevd_running():
        # Test processes may race to start it; the loser's "already running" is fine.
        subprocess.run(["/lib/systemd/systemd-udevd", "--daemon"], check=False, capture_output=True)
    subprocess.run(["udevadm", "settle", "--timeout=10"], check=False)
    assert _udevd_running(), "systemd-udevd (Debian package udev) is needed for drive tests"


class LoopDrive:
    """An ext4 (or other) image attached as a loop device: plug() and pull() as a USB drive."""

    def __init__(self, image, label: str, fstype: str = "ext4", size: str = "64M") -> None:
        self.image, self.label, self.device = image, label, ""
        subprocess.run(["truncate", "-s", size, str(image)], check=True)
        mkfs = {"ext4": ["mkfs.ext4", "-q", "-L", label], "exfat": ["mkfs.exfat", "-L", label]}
        subprocess.run([*mkfs[fstype], str(image)], check=True, capture_output=True)
        self.uuid = subprocess.run(["blkid", "-s", "UUID", "-o", "value", str(image)], check=True,
                                   capture_output=True, text=True).stdout.strip()

    def plug(self) -> LoopDrive:
        self.device = subprocess.run(["losetup", "--find", "--show", str(self.image)], check=True,
                                     capture_output=True, text=True).stdout.strip()
        return self

    def pull(self) -> None:
        """Take the drive away: every mount of it is cut (lazily, as a yanked stick leaves
        nothing to unmount), then the device goes."""
        for part in psutil.disk_partitions(all=True):
            if part.device == self.device:
                subprocess.run(["umount", "--lazy", part.mountpoint], check=False)
        if self.device:
            subprocess.run(["losetup", "-d", self.device], check=False, capture_output=True)
            self.device = ""


@pytest.fixture
def loop_drives(udev, tmp_path):
    """Make LoopDrive(label) images; every one is unmounted and detached afterwards."""
    made: list[LoopDrive] = []

    def make(label: str = "CAIRNTEST", fstype: str = "ext4") -> LoopDrive:
        drive = LoopDrive(tmp_path / f"{label}-{len(made)}.img", label, fstype)
        made.append(drive)
        return drive

    yield make
    for drive in made:
        drive.pull()
