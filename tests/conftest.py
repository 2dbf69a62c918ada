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
# Tests restore into their own temporary folders; the tests of the rule narrow it.
os.environ["CAIRN_RESTORE_ROOTS"] = tempfile.gettempdir()

import fcntl  # noqa: E402
import json  # noqa: E402
import pwd  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

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


SSH_TEST_USER = "cairntest"


def _ensure_ssh_test_user() -> None:
    """A local user the test sshd lets in (created once; test processes race for it)."""
    with open("/var/tmp/cairn-ssh-test-user.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(SSH_TEST_USER)
        except KeyError:
            # "*": no password, but not locked (sshd without PAM refuses locked accounts).
            subprocess.run(["useradd", "--system", "--shell", "/bin/sh", "--home-dir",
                            f"/var/tmp/{SSH_TEST_USER}", "--create-home", "-p", "*",
                            SSH_TEST_USER], check=True, capture_output=True)


class Sshd:
    """A real OpenSSH server on a loopback port, with its own config, host key and
    authorized keys, letting in the test user only."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.host_key = folder / "ssh_host_ed25519_key"
        self.new_host_key()
        (folder / "authorized_keys").mkdir()
        (folder / "sshd_config").write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"PidFile {folder / 'sshd.pid'}", f"AuthorizedKeysFile {folder}/authorized_keys/%u",
            "StrictModes no", "UsePAM no", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            "PermitRootLogin no", f"AllowUsers {SSH_TEST_USER}", "LogLevel ERROR", ""]))

    def new_host_key(self) -> None:
        """A new host key, as after a reinstall (or with someone in between)."""
        for path in (self.host_key, self.host_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)],
                       check=True)

    @property
    def fingerprint(self) -> str:
        return subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key)],
                              check=True, capture_output=True, text=True).stdout.split()[1]

    def authorize(self, public_key: str) -> None:
        path = self.folder / "authorized_keys" / SSH_TEST_USER
        path.write_text(public_key + "\n")
        path.chmod(0o644)

    def start(self) -> Sshd:
        os.makedirs("/run/sshd", exist_ok=True)   # sshd's privilege separation folder
        self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f",
                                         str(self.folder / "sshd_config")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise AssertionError(self.process.stderr.read().decode()) from None
                time.sleep(0.05)
        raise AssertionError("sshd did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sshd():
    """A running test sshd (Debian's openssh-server) on 127.0.0.1; files the test user reads
    go in `sshd.share`, a folder outside root's private temp dirs."""
    _ensure_ssh_test_user()
    folder = tempfile.mkdtemp(prefix="cairn-sshd-", dir="/var/tmp")
    os.chmod(folder, 0o755)
    server = Sshd(Path(folder)).start()
    server.share = Path(folder) / "share"
    server.share.mkdir()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
