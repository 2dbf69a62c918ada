"""Hosts and Health pages: add a host, compare and pin its key, test it, all against a real
sshd (jobs run inline); breakers listed with a reset for operators."""

import pytest

from jobs import hosts as host_jobs
from models import AuditEntry, Breaker, Event, Host, Profile, db, utcnow
from tests.conftest import SSH_TEST_USER, html, log_in, post


def entry(client, host_id):
    return html(client.get("/hosts/")).select_one(f"#host-{host_id}")


def only_host() -> Host:
    with db.connection_context():
        return Host.get()


def test_an_admin_adds_a_host_pins_its_key_and_an_operator_tests_it(client, ada, otto, sshd):
    log_in(client, ada)
    response = post(client, "/hosts/", {"target": f"{SSH_TEST_USER}@127.0.0.1:{sshd.port}"})
    assert response.status_code == 303
    host = only_host()
    shown = entry(client, host.id)
    assert shown.select_one("[data-figure=state]").text == "key not pinned"
    offered = shown.select_one("[data-figure=offered]").text
    assert sshd.fingerprint in offered and "ssh_host_ed25519_key.pub" in offered
    assert post(client, f"/hosts/{host.id}/pin").status_code == 303
    shown = entry(client, host.id)
    assert sshd.fingerprint in shown.select_one("[data-figure=key]").text
    assert not shown.select("[data-figure=offered]")

    sshd.authorize(host_jobs.public_key())
    log_in(client, otto)
    assert post(client, f"/hosts/{host.id}/pin").status_code == 403   # admins pin
    assert post(client, f"/hosts/{host.id}/test").status_code == 303
    shown = entry(client, host.id)
    assert shown.select_one("[data-figure=state]").text == "working"
    assert "ssh works and rsync 3." in shown.select_one("[data-figure=check]").text
    with db.connection_context():
        actions = [a.action for a in AuditEntry.select().order_by(AuditEntry.id)]
    assert actions[-2:] == ["host.add", "host.pin"]


@pytest.mark.parametrize("target, says", [
    ("laptop", "user@host"), ("ada@lap top", "no spaces"), ("ada@laptop:0", "not a port"),
    ("ada@--oProxyCommand=sh", "not a host name"),
])
def test_bad_hosts_are_refused_beside_the_field(client, ada, target, says):
    log_in(client, ada)
    response = post(client, "/hosts/", {"target": target})
    assert response.status_code == 422
    assert says in html(response).select_one("#target-msg").text
    with db.connection_context():
        assert not Host.select().exists()


def test_a_host_added_twice_is_refused_and_an_unreachable_one_says_so(client, ada):
    log_in(client, ada)
    post(client, "/hosts/", {"target": "ada@127.0.0.1:1"})
    again = post(client, "/hosts/", {"target": "ada@127.0.0.1:1"})
    assert again.status_code == 422 and "already added" in html(again).select_one("#target-msg").text
    shown = entry(client, only_host().id)
    assert "offered no SSH host key" in shown.select_one("[data-figure=check]").text


def test_everyone_sees_cairns_key_and_viewers_get_no_buttons(client, vera, sshd):
    with db.connection_context():
        Host.create(user="ada", hostname="laptop", port=22)
    log_in(client, vera)
    page = html(client.get("/hosts/"))
    assert page.select_one("#public-key").text.startswith("ssh-ed25519 ")
    assert not page.select("#hosts button") and not page.select("form[action='/hosts/']")


def test_the_health_page_lists_breakers_and_operators_reset_them(client, otto, vera):
    with db.connection_context():
        paused = Breaker.create(name="host:1", label="ada@laptop", state="open", failures=3,
                                next_try=utcnow(), last_error="ada@laptop cannot be reached",
                                last_error_at=utcnow())
        Breaker.create(name="host:2", label="bob@server", state="closed")
    log_in(client, vera)
    page = html(client.get("/health/"))
    row = page.select_one(f"#breaker-{paused.id}")
    assert row.select_one("[data-figure=state]").text == "Paused"
    assert "cannot be reached" in row.text and not page.select("#breakers button")
    log_in(client, otto)
    assert html(client.get("/health/")).select_one(f"#breaker-{paused.id} button").text == \
        "Try again now"
    assert post(client, f"/health/breakers/{paused.id}/reset").status_code == 303
    with db.connection_context():
        reset = Breaker.get_by_id(paused.id)
        assert (reset.state, reset.failures) == ("closed", 0)
        assert Event.select().where(Event.kind == "breaker.reset").exists()
    assert "Nothing outside this box" not in client.get("/health/").get_data(as_text=True)


def test_a_host_in_use_by_a_profile_is_not_removed(client, ada):
    with db.connection_context():
        host = Host.create(user="ada", hostname="nas", port=22, key_line="ssh-ed25519 AAAA")
        Profile.create(name="Offsite", slug="offsite", sources=["/home/a"],
                       destination="ada@nas:/srv/backups")
    log_in(client, ada)
    refused = post(client, f"/hosts/{host.id}/delete", follow_redirects=True)
    assert "ada@nas is used by Offsite" in refused.get_data(as_text=True)
    with db.connection_context():
        Profile.delete().execute()
    assert post(client, f"/hosts/{host.id}/delete").status_code == 303
    with db.connection_context():
        assert not Host.select().exists()


def test_an_admin_names_the_folders_restores_may_write_to_on_a_host(client, ada):
    with db.connection_context():
        host = Host.create(user="ada", hostname="nas.lan", port=22)
        Profile.create(name="NAS", slug="nas", sources=["ada@nas.lan:/srv/music"], destination="/b")
    log_in(client, ada)
    said = entry(client, host.id).select_one("[data-figure=restore-roots]").text
    assert "/srv/music" in said and "original place" in said
    assert post(client, f"/hosts/{host.id}/restore-folders",
                {"folders": "/srv/restored:/home/ada"}).status_code == 303
    said = entry(client, host.id).select_one("[data-figure=restore-roots]").text
    assert all(f in said for f in ("/srv/restored", "/home/ada", "/srv/music"))
    for bad in ("relative/x", "/srv/../etc", "/srv/x\n/y\tz", "/srv/\x00"):
        post(client, f"/hosts/{host.id}/restore-folders", {"folders": bad})
        assert only_host().restore_roots == ["/srv/restored", "/home/ada"]
    assert AuditEntry.select().where(AuditEntry.action == "host.restore_folders").count() == 1
