"""Hosts: fetch a host's key for an admin to confirm, and test the connection (ssh and the
remote rsync) through the host's circuit breaker.

Cairn's key pair and the per-host known-hosts files live in `<data dir>/ssh/`. A host whose
key no longer matches the pinned one is blocked: every run with it refuses until an admin
fetches and pins the new key.
"""

from __future__ import annotations

import posixpath
import socket
from pathlib import Path

from jobs import breakers
from jobs.engines import ssh
from jobs.engines.remote import RemoteRoot
from jobs.engines.snapshots import CheckError
from jobs.queue import huey, settings, with_db
from models import Event, Host, Profile, utcnow


def ssh_dir() -> Path:
    return settings().data_dir / "ssh"


def public_key() -> str:
    return ssh.ensure_key(ssh_dir(), f"cairn@{socket.gethostname()}")


def known_hosts(host: Host) -> Path:
    return ssh_dir() / "known_hosts.d" / f"host-{host.id}"


def target_of(host: Host) -> ssh.Target:
    return ssh.Target(host.user, host.hostname, host.port)


def host_for(target: ssh.Target) -> Host | None:
    return Host.get_or_none((Host.user == target.user) & (Host.hostname == target.host)
                            & (Host.port == target.port))


def remote_source(source: str) -> tuple[ssh.Target, str] | None:
    """(host, path) of a profile's source on another machine; None for a local folder."""
    return ssh.split_remote(source)


def rsh(host: Host) -> str:
    """rsync's remote shell for this host: Cairn's key, the pinned host key only."""
    return ssh.rsh(ssh.key_path(ssh_dir()), known_hosts(host), host.port)


def rsync_source(source: str) -> str:
    target, path = ssh.split_remote(source)
    return ssh.remote_spec(target, path)


def destination_root(profile: Profile) -> RemoteRoot | None:
    """The profile's folder of snapshots on a host, if its destination is on one."""
    remote = remote_source(profile.destination)
    if not remote:
        return None
    host = host_for(remote[0])
    if host is None:
        raise CheckError(f"{remote[0]} is not an added host: add it on the Hosts page, pin its "
                         "key, and give it Cairn's key.")
    return RemoteRoot(remote[0], posixpath.join(remote[1], profile.slug),
                      ssh.key_path(ssh_dir()), known_hosts(host))


def pin(host: Host) -> None:
    """The admin confirmed the offered key: it becomes the only key accepted from the host."""
    ssh.write_known_hosts(known_hosts(host), target_of(host), host.offered_key)
    Host.update(key_line=host.offered_key, fingerprint=host.offered_fingerprint,
                pinned_at=utcnow(), offered_key="", offered_fingerprint="", blocked="").where(
        Host.id == host.id).execute()


@huey.task()
@with_db
def fetch_host_key(host_id: int) -> None:
    host = Host.get_or_none(Host.id == host_id)
    if host is None:
        return
    try:
        key = ssh.scan_host_key(target_of(host))
    except ssh.SshError as error:
        host.check_failed(str(error))
        Event.publish("host.key_failed", host.subject, f"{host.target}: {error}", level="error",
                      host=host.id)
        return
    same = key.line == host.key_line
    Host.update(busy="", offered_key="" if same else key.line,
                offered_fingerprint="" if same else key.fingerprint).where(
        Host.id == host.id).execute()
    if same:
        Event.publish("host.key_same", host.subject,
                      f"{host.target} still offers the pinned key {key.fingerprint}.", host=host.id)
    else:
        Event.publish("host.key_offered", host.subject,
                      f"{host.target} offers the host key {key.fingerprint}: an admin compares "
                      "it with the host's own and pins it.", host=host.id)


def check(host: Host) -> str:
    """The host's rsync version over ssh, through its breaker; SshError or Paused if not."""
    if host.blocked:
        raise ssh.SshError("host_key_changed", host.blocked)
    if not host.pinned:
        raise ssh.SshError("other", f"{host.target} has no pinned host key yet: fetch it and "
                           "confirm its fingerprint first.")
    breakers.check(host.breaker_name, host.target)
    public_key()
    try:
        version = ssh.rsync_version(target_of(host), ssh.key_path(ssh_dir()), known_hosts(host))
    except ssh.SshError as error:
        failed(host, error)
        raise
    breakers.succeeded(host.breaker_name)
    return version


def failed(host: Host, error: ssh.SshError) -> None:
    """Record a failure with the host: its breaker opens; a changed key blocks it."""
    if error.kind == "host_key_changed" and not host.blocked:
        Host.update(blocked=str(error)).where(Host.id == host.id).execute()
        Event.publish("host.blocked", host.subject, f"{host.target}: {error}", level="error",
                      host=host.id)
    breakers.failed(host.breaker_name, str(error), host.target)


@huey.task()
@with_db
def test_host(host_id: int) -> None:
    host = Host.get_or_none(Host.id == host_id)
    if host is None:
        return
    try:
        version = check(host)
    except (ssh.SshError, breakers.Paused) as error:
        host.check_failed(str(error))
        Event.publish("host.test_failed", host.subject, f"{host.target}: {error}",
                      level="warning", host=host.id)
        return
    Host.update(busy="", check_ok=True, rsync_version=version, checked_at=utcnow(),
                check_message=f"ssh works and rsync {version} answers.").where(
        Host.id == host.id).execute()
    Event.publish("host.test_ok", host.subject, f"{host.target}: ssh works, rsync {version}.",
                  host=host.id)
