"""Other machines over SSH: Cairn's own key pair, targets as people type them, host keys
pinned by fingerprint, and what ssh's failures mean.

Every ssh Cairn starts uses its own key, its own known-hosts file holding only the pinned key
of that host (so `StrictHostKeyChecking=yes` refuses any other), batch mode (never a password
prompt) and a connection timeout. Arguments are lists; a user's path never meets a shell on
this side, and on the far side it is quoted for the remote shell.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

CONNECT_TIMEOUT = 10
COMMAND_TIMEOUT = 60
ENV = {"LC_ALL": "C", "PATH": "/usr/local/bin:/usr/bin:/bin"}
KEY_TYPES = "ed25519,ecdsa,rsa"
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$", re.IGNORECASE)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$", re.IGNORECASE)
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


class SshError(Exception):
    """ssh failed; `kind` says how: unreachable, unknown_host, refused_key, host_key_changed,
    no_rsync, other."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Target:
    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" + (f":{self.port}" if self.port != 22 else "")

    @property
    def known_hosts_name(self) -> str:
        """How ssh names this host in a known-hosts file."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 22 else f"[{self.host}]:{self.port}"


def parse_target(text: str) -> Target:
    """`user@host`, `user@host:port`, `user@[2001:db8::1]:port`; ValueError says what is wrong."""
    text = (text or "").strip()
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        # Whatever reaches a known-hosts line or ssh's arguments stays one plain word.
        raise ValueError("A host has no spaces, tabs, newlines or control characters.")
    user, at, rest = text.partition("@")
    if not at or not user:
        raise ValueError("Write the host as user@host or user@host:port, e.g. ada@laptop.")
    if not _USER.match(user):
        raise ValueError(f"{user!r} is not a user name ssh can log in as.")
    port = "22"
    if rest.startswith("["):
        host, close, tail = rest[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise ValueError(f"{rest!r} is not a bracketed IPv6 address with an optional :port.")
        port = tail[1:] or port
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address.") from None
    else:
        host, colon, given = rest.partition(":")
        port = given if colon else port
        valid_ipv4 = _IPV4.match(host) and all(int(p) <= 255 for p in host.split("."))
        if not (valid_ipv4 or _HOSTNAME.match(host) and not _IPV4.match(host)):
            raise ValueError(f"{host!r} is not a host name or address.")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{port!r} is not a port number (1 to 65535).")
    return Target(user, host.lower(), int(port))


def split_remote(text: str) -> tuple[Target, str] | None:
    """A folder on another machine, `user@host:/path` or `user@host:port:/path` (or
    `user@[v6]:port:/path`), as its target and absolute path; None for a local path (one that
    starts with /). ValueError says what is wrong with a remote one."""
    if text.startswith("/") or "@" not in text:
        return None
    start, first_problem = 0, None
    while (cut := text.find(":/", start)) != -1:
        try:
            return parse_target(text[:cut]), text[cut + 1:]
        except ValueError as problem:
            first_problem = first_problem or problem
            start = cut + 1
    if first_problem:
        raise ValueError(f"In {text!r}: {first_problem}")
    raise ValueError(f"{text!r} is neither an absolute path nor a folder on a host written as "
                     "user@host:/path (or user@host:port:/path).")


def remote_spec(target: Target, path: str) -> str:
    """How rsync names the folder: `user@host:path` (the port goes in the remote shell)."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{target.user}@{host}:{path}"


# --- Cairn's key ---------------------------------------------------------------------------

def key_path(ssh_dir: Path) -> Path:
    return ssh_dir / "id_ed25519"


def ensure_key(ssh_dir: Path, comment: str) -> str:
    """Cairn's public key, generating the pair (private key mode 600) on first use."""
    private = key_path(ssh_dir)
    public = private.with_suffix(".pub")
    if private.exists():
        return public.read_text().strip()
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ssh_dir, 0o700)   # made by someone else first, perhaps with the default mode
    # The web and the worker may both want it first: one makes it, the other waits.
    with open(ssh_dir / ".keygen.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if private.exists():
            return public.read_text().strip()
        tmp = ssh_dir / f".id_ed25519-{os.getpid()}"
        tmp_public = Path(f"{tmp}.pub")
        for leftover in (tmp, tmp_public):
            leftover.unlink(missing_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(tmp)])
        os.chmod(tmp, 0o600)
        os.replace(tmp_public, public)
        os.replace(tmp, private)   # last: a key without its .pub is never left behind
    return public.read_text().strip()


# --- host keys -----------------------------------------------------------------------------

@dataclass(frozen=True)
class HostKey:
    line: str           # "ssh-ed25519 AAAA..."
    fingerprint: str    # "SHA256:..."

    @property
    def kind(self) -> str:
        return self.line.split(" ", 1)[0]


def scan_host_key(target: Target) -> HostKey:
    """The host's key as it offers it now (to be confirmed by a person before it is pinned)."""
    done = _run(["ssh-keyscan", "-T", str(CONNECT_TIMEOUT), "-t", KEY_TYPES, "-p",
                 str(target.port), "--", target.host], check=False)
    lines = [line.split(" ", 1)[1] for line in done.stdout.splitlines()
             if line and not line.startswith("#") and " " in line]
    if not lines:
        said = done.stderr.strip().splitlines()
        raise SshError("unreachable", f"{target.host} port {target.port} offered no SSH host key"
                       + (f" ({said[-1]})" if said else "") + ".")
    preferred = sorted(lines, key=lambda line: (not line.startswith("ssh-ed25519"), line))[0]
    return HostKey(preferred, fingerprint(preferred))


def fingerprint(key_line: str) -> str:
    done = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", "-"], input=f"x {key_line}\n",
                          capture_output=True, text=True, env=ENV, timeout=COMMAND_TIMEOUT)
    if done.returncode != 0:
        raise SshError("other", f"Not an SSH public key: {key_line[:40]}…")
    return done.stdout.split()[1]


def write_known_hosts(path: Path, target: Target, key_line: str) -> None:
    # Not mkdir(parents=True): the parents it makes would get the default mode, and the
    # folder above is Cairn's ssh folder, private like the key in it.
    for folder in (path.parent.parent, path.parent):
        folder.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{target.known_hosts_name} {key_line}\n")
    os.replace(tmp, path)


# --- running ssh ---------------------------------------------------------------------------

def ssh_options(key: Path, known_hosts: Path, port: int) -> list[str]:
    return ["-i", str(key), "-p", str(port), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4", "-F", "/dev/null"]


def rsh(key: Path, known_hosts: Path, port: int) -> str:
    """The `-e` (remote shell) argument for rsync: one string, which rsync splits itself."""
    return shlex.join(["ssh", *ssh_options(key, known_hosts, port)])


def run_remote(target: Target, key: Path, known_hosts: Path, command: list[str],
               timeout: float = COMMAND_TIMEOUT) -> str:
    """Run `command` on the host (each word quoted for its shell); its output, or SshError."""
    args = ["ssh", *ssh_options(key, known_hosts, target.port), f"{target.user}@{target.host}",
            "--", shlex.join(command)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SshError("unreachable", f"{target} did not answer within {timeout:g} s.") from None
    if done.returncode == 255:
        raise classify(done.stderr, target)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        kind = "no_rsync" if done.returncode == 127 else "other"
        raise SshError(kind, f"On {target}, {command[0]} failed: "
                       + (said[-1] if said else f"exit code {done.returncode}"))
    return done.stdout


def classify(stderr: str, target: Target) -> SshError:
    """ssh's own failure (exit 255) as a kind and a sentence."""
    text = stderr.strip()
    last = text.splitlines()[-1] if text else "ssh failed"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        return SshError("host_key_changed", f"The host key of {target} is not the pinned one: it "
                        "was reinstalled, or someone is in between. All work with it stops "
                        "until an administrator checks and pins its new key.")
    if "Permission denied" in text:
        return SshError("refused_key", f"{target} refused Cairn's key: add Cairn's public key "
                        f"to ~{target.user}/.ssh/authorized_keys there ({last}).")
    if "Could not resolve hostname" in text or "Name or service not known" in text:
        return SshError("unknown_host", f"{target.host} is not a known host name ({last}).")
    return SshError("unreachable", f"{target} cannot be reached: {last}")


def rsync_version(target: Target, key: Path, known_hosts: Path) -> str:
    """The host's rsync version (checking ssh and rsync at once)."""
    out = run_remote(target, key, known_hosts, ["rsync", "--version"])
    match = re.search(r"rsync\s+version\s+(\S+)", out)
    if not match:
        raise SshError("no_rsync", f"{target} has no usable rsync: {out.strip()[:80]}")
    return match[1]


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=ENV,
                              timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SshError("unreachable", f"{args[0]} took longer than {COMMAND_TIMEOUT} s.") from None
    if check and done.returncode != 0:
        raise SshError("other", f"{args[0]} failed: {done.stderr.strip() or done.returncode}")
    return done
