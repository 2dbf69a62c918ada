"""What `cairn run` needs beyond starting two processes: as root, the system user both run as
(the web with no rights, the worker with the installed service's capabilities), and the
wait before starting a worker again that died.

setpriv (util-linux) does the switch: it sets the user, groups, bounding set and ambient
capabilities before exec, the same rights systemd gives the two units (deploy/*.service).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

USER = "cairn"
# As deploy/cairn-worker.service's AmbientCapabilities, and for the same reasons.
WORKER_CAPABILITIES = ("dac_read_search", "dac_override", "chown", "fowner", "sys_admin")
PROBE_TIMEOUT = 60


class Refused(Exception):
    """Cairn cannot run here as asked; the message says why and what to do."""


def identities(data_dir: Path, code: Path, python: str) -> tuple[list[str], list[str]]:
    """Command prefixes for the web and the worker: nothing when not root; as root, the
    switch to `cairn` (made if missing), with the data dir handed to it."""
    if os.geteuid() != 0:
        return [], []
    user = _ensure_user()
    _hand_over(data_dir, user)
    switch = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]
    web = [*switch, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    caps = ",".join(f"+{c}" for c in WORKER_CAPABILITIES)
    worker = [*switch, f"--inh-caps={caps}", f"--ambient-caps={caps}",
              f"--bounding-set=-all,{caps}", "--"]
    _probe(web, data_dir, code, python)
    return web, worker


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    # As deploy/install.sh makes it: a system user with no login and no home of its own.
    subprocess.run(["useradd", "--system", "--home-dir", "/var/lib/cairn", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", "--comment", "Cairn backups", USER],
                   check=True, capture_output=True)
    return pwd.getpwnam(USER)


def _hand_over(data_dir: Path, user: pwd.struct_passwd) -> None:
    """The data dir and all in it belong to `cairn` (a root-run command may have made files
    there since); links in it are changed themselves, never followed."""
    subprocess.run(["chown", "-R", "-h", f"{user.pw_uid}:{user.pw_gid}", "--", str(data_dir)],
                   check=True, capture_output=True)
    os.chmod(data_dir, 0o700)


def _probe(web: list[str], data_dir: Path, code: Path, python: str) -> None:
    """Refuse, with what to do, rather than serve the web as root when `cairn` cannot run it
    from here (a checkout or a Python inside a private home folder such as /root)."""
    check = ("import os, sys, flask, gunicorn; open(os.path.join(sys.argv[1], 'app.py')).close();"
             " os.listdir(sys.argv[2])")
    done = subprocess.run([*web, python, "-c", check, str(code), str(data_dir)], cwd="/",
                          capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise Refused(
            f"As root, Cairn serves the web as the unprivileged user {USER}, which cannot run "
            f"it from here: {said}. Put the checkout, its .venv and the data dir where other "
            f"users can read them (for example git clone ... /srv/cairn, not under /root), or "
            "install Cairn as services with sudo deploy/install.sh.")


@dataclass
class Backoff:
    """1 s, 2 s, 4 s ... 60 s while a process keeps dying within a minute of starting; back
    to 1 s once it ran longer."""

    first: float = 1.0
    most: float = 60.0
    steady_after: float = 60.0
    delay: float = 0.0
    since: float | None = field(default=None)

    def next(self, now: float) -> float:
        if self.since is not None and now - self.since >= self.steady_after:
            self.delay = 0.0
        self.delay = min(self.most, self.delay * 2 if self.delay else self.first)
        return self.delay

    def started(self, now: float) -> None:
        self.since = now
