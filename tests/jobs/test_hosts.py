"""Hosts over SSH against a real sshd on loopback: the key pair, a host key fetched and
pinned, the connection tested through the host's breaker, refusals said plainly."""

import datetime as dt
import os
import stat

import pytest

from jobs import breakers, hosts
from jobs.engines import ssh
from models import Breaker, Event, Host, utcnow
from tests.conftest import SSH_TEST_USER

pytestmark = pytest.mark.usefixtures("inline")


def add_host(sshd) -> Host:
    return Host.create(user=SSH_TEST_USER, hostname="127.0.0.1", port=sshd.port)


def pinned(sshd, authorize=True) -> Host:
    host = add_host(sshd)
    hosts.fetch_host_key(host.id)
    hosts.pin(Host.get_by_id(host.id))
    if authorize:
        sshd.authorize(hosts.public_key())
    return Host.get_by_id(host.id)


def test_cairn_has_one_key_pair_kept_private():
    first = hosts.public_key()
    assert first.startswith("ssh-ed25519 ") and "cairn@" in first
    assert hosts.public_key() == first
    private = ssh.key_path(hosts.ssh_dir())
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(hosts.ssh_dir()).st_mode) == 0o700


def test_a_host_key_is_offered_pinned_and_the_connection_tested(sshd):
    host = add_host(sshd)
    hosts.fetch_host_key(host.id)
    host = Host.get_by_id(host.id)
    assert host.offered_fingerprint == sshd.fingerprint and not host.pinned
    hosts.pin(host)
    sshd.authorize(hosts.public_key())
    hosts.test_host(host.id)
    host = Host.get_by_id(host.id)
    assert host.fingerprint == sshd.fingerprint and host.offered_key == ""
    assert host.check_ok, host.check_message
    assert host.rsync_version.startswith("3.")
    assert Breaker.get(Breaker.name == host.breaker_name).state == "closed"
    # Fetching again while the key is the same offers nothing new.
    hosts.fetch_host_key(host.id)
    assert Host.get_by_id(host.id).offered_key == ""


def test_a_refused_key_says_where_to_put_cairns_key(sshd):
    host = pinned(sshd, authorize=False)
    hosts.test_host(host.id)
    host = Host.get_by_id(host.id)
    assert host.check_ok is False
    assert "refused Cairn's key" in host.check_message
    assert f"~{SSH_TEST_USER}/.ssh/authorized_keys" in host.check_message


def test_a_changed_host_key_stops_all_work_with_the_host(sshd):
    host = pinned(sshd)
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    hosts.test_host(host.id)
    host = Host.get_by_id(host.id)
    assert host.check_ok is False and "not the pinned one" in host.blocked
    assert Event.select().where(Event.kind == "host.blocked").exists()
    # Blocked: refused without connecting, even once the breaker would let a call through.
    Breaker.update(state="closed").execute()
    with pytest.raises(ssh.SshError, match="not the pinned one"):
        hosts.check(host)
    # An admin fetches the new key, compares and pins it: work resumes.
    hosts.fetch_host_key(host.id)
    host = Host.get_by_id(host.id)
    assert host.offered_fingerprint == sshd.fingerprint
    hosts.pin(host)
    hosts.test_host(host.id)
    host = Host.get_by_id(host.id)
    assert host.check_ok and not host.blocked


def test_a_stopped_sshd_opens_the_breaker_and_a_restarted_one_closes_it_at_the_next_try(sshd):
    host = pinned(sshd)
    sshd.stop()
    hosts.test_host(host.id)
    breaker = Breaker.get(Breaker.name == host.breaker_name)
    assert (breaker.state, breaker.failures) == ("open", 1)
    assert "cannot be reached" in breaker.last_error
    assert dt.timedelta(seconds=50) < breaker.next_try - utcnow() <= dt.timedelta(minutes=1)
    # While open, nothing is tried: the answer is immediate, and says until when.
    with pytest.raises(breakers.Paused, match="paused after 1 failure"):
        hosts.check(Host.get_by_id(host.id))
    sshd.start()
    Breaker.update(next_try=utcnow() - dt.timedelta(seconds=1)).execute()   # the minute passed
    hosts.test_host(host.id)
    assert Host.get_by_id(host.id).check_ok
    breaker = Breaker.get_by_id(breaker.id)
    assert (breaker.state, breaker.failures, breaker.next_try) == ("closed", 0, None)
    kinds = [e.kind for e in Event.select().where(Event.subject == f"breaker:{breaker.id}")]
    assert kinds == ["breaker.opened", "breaker.closed"]


@pytest.mark.parametrize("text, says", [
    ("laptop", "user@host"), ("@laptop", "user@host"), ("ada@", "not a host name"),
    ("ad a@laptop", "no spaces"), ("ada@lap top", "no spaces"),
    ("ada@laptop:0", "not a port"), ("ada@laptop:70000", "not a port"),
    ("ada@laptop:ssh", "not a port"), ("ada@-oProxyCommand=x", "not a host name"),
    ("ada@999.1.1.1", "not a host name"), ("ada@[::1", "bracketed IPv6"),
    # A bracketed host was taken as it came: a known_hosts line could be injected.
    ("ada@[::1 -oProxyCommand=x]", "no spaces"), ("ada@[::1\nevil.example ssh-ed25519 AAAA]",
                                                  "no spaces"),
    ("ada@[-oProxyCommand=x:]", "not an IPv6 address"), ("ada@[fd00::1;id]", "not an IPv6"),
    ("ada@[fd00::g]:22", "not an IPv6"), ("ada@lap\x00top", "control characters"),
])
def test_bad_targets_are_refused_with_a_reason(text, says):
    with pytest.raises(ValueError, match=says):
        ssh.parse_target(text)


def test_targets_are_read_as_people_write_them():
    assert ssh.parse_target("ada@Laptop.local") == ssh.Target("ada", "laptop.local", 22)
    assert ssh.parse_target(" ada@192.168.1.20:2222 ") == ssh.Target("ada", "192.168.1.20", 2222)
    six = ssh.parse_target("ada@[fd00::1]:2200")
    assert six == ssh.Target("ada", "fd00::1", 2200) and str(six) == "ada@[fd00::1]:2200"
    assert six.known_hosts_name == "[fd00::1]:2200"
