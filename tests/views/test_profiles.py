"""Backup profiles in the browser's terms: forms, their messages, roles, and real runs
(the app fixture runs jobs inline, so "Run now" runs the real rsync); drives, hosts and
retention on the form. Schedules are in test_profile_schedules.py."""


import pytest
from playhouse.test_utils import count_queries

from models import AuditEntry, Drive, Host, Profile, Run, db, utcnow
from tests.conftest import html, log_in, post
from tests.helpers.profiles import form, make, messages, profile_home, profiles
from tests.helpers.trees import write


@pytest.fixture
def environ(environ, tmp_path):
    return {**environ, "CAIRN_SOURCE_ROOTS": str(tmp_path / "home")}


@pytest.fixture
def home(tmp_path):
    return profile_home(tmp_path)


def test_a_newcomer_is_shown_one_way_to_a_first_backup(client, ada, vera):
    log_in(client, ada)
    page = html(client.get("/profiles/"))
    assert page.select_one("a.primary")["href"] == "/profiles/new"
    assert "Create your first backup" in page.text
    log_in(client, vera)
    page = html(client.get("/profiles/"))
    assert not page.select("a[href='/profiles/new']") and "not set up any backup" in page.text


def test_an_admin_creates_a_profile_and_lands_on_its_page(client, ada, home):
    log_in(client, ada)
    response = post(client, "/profiles/", form(home, bandwidth="10M"))
    assert response.status_code == 302, messages(response)
    [profile] = profiles()
    assert (profile.name, profile.sources, profile.excludes, profile.bwlimit_kib) == \
        ("Photos", [str(home / "Photos")], ["*.tmp"], 10240)
    page = html(client.get(response.headers["Location"]))
    assert str(profile.root()) in page.text and "10M" in page.text
    with db.connection_context():
        entry = AuditEntry.select().order_by(AuditEntry.id.desc()).get()
    assert (entry.action, entry.target) == ("profile.create", "Photos")


@pytest.mark.parametrize("fields, field, says", [
    ({"name": " "}, "name", "Give the profile a name"),
    ({"sources": "Photos"}, "sources", "absolute path"),
    ({"sources": ""}, "sources", "at least one folder"),
    ({"sources": "/etc"}, "sources", "outside the folders Cairn may back up"),
    ({"sources": "{home}/../../../etc"}, "sources", "outside the folders Cairn may back up"),
    ({"destination": "{home}/Photos/backups"}, "destination", "inside source"),
    ({"destination": "/"}, "destination", "not the root"),
    ({"excludes": "[abc"}, "excludes", ""),
    ({"bandwidth": "fast"}, "bandwidth", "not a rate"),
    ({"max_parallel": "0"}, "max_parallel", "between 1 and 64"),
    ({"max_parallel": "many"}, "max_parallel", ""),
    ({"retries": "11"}, "retries", "between 0 and 10"),
    ({"mode": "copy"}, "mode", ""),
])
def test_bad_fields_are_refused_beside_the_field_and_nothing_is_saved(client, ada, home, fields,
                                                                      field, says):
    log_in(client, ada)
    fields = {k: v.replace("{home}", str(home)) for k, v in fields.items()}
    response = post(client, "/profiles/", form(home, **fields))
    assert response.status_code == 422
    shown = messages(response)
    assert field in shown and says in shown[field]
    assert profiles() == []


def test_a_second_profile_of_the_same_name_is_refused(client, ada, home):
    make(home)
    log_in(client, ada)
    response = post(client, "/profiles/", form(home))
    assert response.status_code == 422
    assert "already exists" in messages(response)["name"]
    assert len(profiles()) == 1


def test_editing_shows_the_saved_values_and_records_what_changed(client, ada, home):
    profile = make(home, bwlimit_kib=1536, excludes=["*.tmp"])
    log_in(client, ada)
    page = html(client.get(f"/profiles/{profile.id}/edit"))
    assert page.select_one("#bandwidth")["value"] == "1.5M"
    assert page.select_one("#excludes").text.strip() == "*.tmp"
    response = post(client, f"/profiles/{profile.id}/edit",
                    form(home, excludes="*.tmp\n.cache/\n", bandwidth=""))
    assert response.status_code == 302
    [saved] = profiles()
    assert saved.excludes == ["*.tmp", ".cache/"] and saved.bwlimit_kib is None
    with db.connection_context():
        entry = AuditEntry.select().order_by(AuditEntry.id.desc()).get()
    assert (entry.action, entry.detail) == ("profile.update", "bwlimit_kib, excludes")
    # Its own name is not "taken".
    assert post(client, f"/profiles/{profile.id}/edit", form(home)).status_code == 302


def test_run_now_backs_up_and_the_page_shows_the_run(client, otto, home):
    profile = make(home)
    log_in(client, otto)
    response = post(client, f"/profiles/{profile.id}/run", token_from="/profiles/")
    assert response.status_code == 303
    with db.connection_context():
        run = Run.get(Run.profile == profile.id)
    assert run.state == "succeeded" and run.requested_by == "otto"
    assert (profile.root() / run.snapshot / "localhost" / str(home / "Photos").lstrip("/")
            / "cat.jpg").read_text() == "meow"
    assert response.headers["Location"] == f"/runs/{run.id}"
    page = html(client.get(f"/profiles/{profile.id}"))
    assert page.select_one(f"#run-{run.id} .tag").text.strip() == "succeeded"
    assert page.select_one(f"#run-{run.id} a")["href"] == f"/runs/{run.id}"


def test_a_dry_run_writes_no_snapshot(client, otto, home):
    profile = make(home)
    log_in(client, otto)
    post(client, f"/profiles/{profile.id}/dry-run", token_from="/profiles/")
    with db.connection_context():
        run = Run.get(Run.profile == profile.id)
    assert run.dry_run and run.state == "succeeded" and run.new_files == 1
    assert not any(p.name[0].isdigit() for p in profile.root().iterdir()) \
        if profile.root().exists() else True


def test_a_second_run_while_one_is_active_is_refused_with_a_message(client, otto, home):
    profile = make(home)
    with db.connection_context():
        busy = Run.create(profile=profile, state="running")
    log_in(client, otto)
    response = post(client, f"/profiles/{profile.id}/run", token_from="/profiles/",
                    follow_redirects=True)
    assert f"already running (run {busy.id})" in response.get_data(as_text=True)
    with db.connection_context():
        assert Run.select().where(Run.profile == profile.id).count() == 1


def test_deleting_keeps_the_snapshots_and_is_refused_while_running(client, ada, home):
    profile = make(home)
    snapshot = profile.root() / "2026-11-23T010000Z"
    snapshot.mkdir(parents=True)
    with db.connection_context():
        busy = Run.create(profile=profile, state="scanning")
    log_in(client, ada)
    page = html(client.get(f"/profiles/{profile.id}/delete"))
    assert "No snapshot is deleted" in page.text and str(profile.root()) in page.text
    assert page.select_one("button.danger").has_attr("disabled")
    assert post(client, f"/profiles/{profile.id}/delete").status_code == 409
    assert len(profiles()) == 1
    with db.connection_context():
        Run.update(state="cancelled").where(Run.id == busy.id).execute()
    response = post(client, f"/profiles/{profile.id}/delete")
    assert response.status_code == 302 and profiles() == []
    assert snapshot.is_dir()
    assert client.get(f"/profiles/{profile.id}").status_code == 404


def test_a_viewer_sees_no_buttons_that_change_anything(client, vera, home):
    profile = make(home)
    log_in(client, vera)
    for path in ("/profiles/", f"/profiles/{profile.id}"):
        page = html(client.get(path))
        assert not page.select("form[action*='/run'], form[action*='/dry-run']")
        assert not page.select("a[href*='/edit'], a[href*='/delete'], a[href='/profiles/new']")
    assert post(client, f"/profiles/{profile.id}/run", token_from="/profiles/").status_code == 403


def test_names_and_paths_are_shown_as_text(client, ada, home):
    hostile = "<script>alert('x')</script>\"quoted\""
    folder = home / "Photos" / "a\"b<i>"
    folder.mkdir()
    profile = make(home, name=hostile, sources=[str(folder)], excludes=["<b>*.tmp"])
    log_in(client, ada)
    for path in ("/profiles/", f"/profiles/{profile.id}", f"/profiles/{profile.id}/edit"):
        body = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in body and "<i>" not in body and "<b>*" not in body
        assert hostile in html(client.get(path)).text


def test_the_list_costs_the_same_queries_for_one_profile_or_many(client, vera, home):
    make(home)
    log_in(client, vera)
    client.get("/profiles/")
    with count_queries() as one:
        client.get("/profiles/")
    for n in range(2, 8):
        profile = make(home, name=f"P{n}", slug=f"p{n}")
        with db.connection_context():
            Run.create(profile=profile, state="succeeded")
            Run.create(profile=profile, state="failed")
    with count_queries() as many:
        assert client.get("/profiles/").status_code == 200
    assert many.count == one.count


# --- drives -------------------------------------------------------------------------------------

def test_a_profile_on_an_adopted_drive_can_run_when_it_is_plugged_in(client, ada, home):
    with db.connection_context():
        stick = Drive.create(uuid="1234-ABCD", label="FAMILY", fstype="ext4", adopted_at=utcnow(),
                             token="t", connected=False)
    log_in(client, ada)
    page = html(client.get("/profiles/new"))
    choice = page.select_one(".drive-choices button[data-fill=destination]")
    assert choice.text == "FAMILY (not connected)"
    assert choice["data-value"] == f"{stick.root('/media/cairn')}/backups"
    off_drive = post(client, "/profiles/", form(home, run_on_connect="y"))
    assert off_drive.status_code == 422
    assert "Only a destination on an adopted drive" in messages(off_drive)["run_on_connect"]
    on_drive = post(client, "/profiles/", form(home, run_on_connect="y",
                                               destination="/media/cairn/1234-ABCD/backups"))
    assert on_drive.status_code == 302, messages(on_drive)
    [profile] = profiles()
    assert profile.run_on_connect
    edit = html(client.get(f"/profiles/{profile.id}/edit"))
    assert edit.select_one("#run_on_connect").has_attr("checked")


# --- hosts ----------------------------------------------------------------------------------------

def test_a_folder_on_another_machine_needs_an_added_host_with_a_pinned_key(client, ada, home):
    log_in(client, ada)
    remote = "ada@laptop:/home/ada/Photos"
    unknown = post(client, "/profiles/", form(home, sources=remote))
    assert unknown.status_code == 422
    assert "ada@laptop is not an added host" in messages(unknown)["sources"]
    with db.connection_context():
        host = Host.create(user="ada", hostname="laptop", port=22)
    unpinned = post(client, "/profiles/", form(home, sources=remote))
    assert "no pinned host key yet" in messages(unpinned)["sources"]
    with db.connection_context():
        Host.update(key_line="ssh-ed25519 AAAA", fingerprint="SHA256:x").where(
            Host.id == host.id).execute()
    saved = post(client, "/profiles/", form(home, sources=f"{remote}/../Photos\n{home}/Photos"))
    assert saved.status_code == 302, messages(saved)
    assert profiles()[0].sources == [remote, f"{home}/Photos"]
    bad = post(client, "/profiles/", form(home, name="Other", sources="ada@lap top:/x"))
    assert "A host has no spaces" in messages(bad)["sources"]


def test_snapshots_can_go_to_a_folder_on_a_pinned_host(client, ada, home):
    log_in(client, ada)
    unknown = post(client, "/profiles/", form(home, destination="ada@nas:/srv/backups"))
    assert "ada@nas is not an added host" in messages(unknown)["destination"]
    with db.connection_context():
        Host.create(user="ada", hostname="nas", port=2222, key_line="ssh-ed25519 AAAA")
    saved = post(client, "/profiles/", form(home, destination="ada@nas:2222:/srv//backups/"))
    assert saved.status_code == 302, messages(saved)
    assert profiles()[0].destination == "ada@nas:2222:/srv/backups"
    both = post(client, "/profiles/", form(home, name="Both", sources="ada@nas:2222:/home",
                                           destination="ada@nas:2222:/srv/b"))
    assert "cannot be backed up to a host" in messages(both)["destination"]


# --- retention ------------------------------------------------------------------------------------

def test_an_admin_sets_retention_and_the_profile_page_says_what_each_snapshot_is_kept_for(
        client, ada, home):
    log_in(client, ada)
    bad = post(client, "/profiles/", form(home, keep_daily="-3"))
    assert bad.status_code == 422 and "a whole number from 0" in messages(bad)["keep_last"]
    saved = post(client, "/profiles/", form(home, keep_last="1", keep_weekly="2",
                                            keep_min_free="12.5"))
    assert saved.status_code == 302, messages(saved)
    [profile] = profiles()
    assert (profile.keep_last, profile.keep_weekly, profile.keep_min_free) == (1, 2, 12.5)
    with db.connection_context():
        for name in ("2026-11-02T030000Z", "2026-11-03T030000Z", "2026-11-20T030000Z"):
            Run.create(profile=profile, state="succeeded", snapshot=name, finished_at=utcnow())
    page = html(client.get(f"/profiles/{profile.id}"))
    assert page.select_one("[data-figure=policy]").text == \
        "Keep the last 1, 2 weekly; delete the oldest while less than 12.5% is free."
    rows = {tr["id"]: tr.select("td")[1].text for tr in page.select("#retention tbody tr")}
    assert rows["snapshot-2026-11-20T030000Z"].startswith("kept: newest")
    assert rows["snapshot-2026-11-03T030000Z"] == "kept: newest of week 2026-W45 (weekly 2)"
    assert "no rule keeps it" in rows["snapshot-2026-11-02T030000Z"]
    edit = html(client.get(f"/profiles/{profile.id}/edit"))
    assert edit.select_one("#keep_weekly")["value"] == "2"


def test_the_form_previews_a_policy_as_it_is_typed_and_an_admin_applies_it_now(
        client, ada, otto, home):
    names = ["2026-11-02T030000Z", "2026-11-03T030000Z", "2026-11-20T030000Z"]
    profile = make(home)
    backups = home.parent.parent / "backups" / profile.slug
    with db.connection_context():
        for name in names:
            Run.create(profile=profile, state="succeeded", snapshot=name, finished_at=utcnow())
            write(backups / name / "localhost" / "f", name)
    log_in(client, ada)
    edit = html(client.get(f"/profiles/{profile.id}/edit"))
    assert edit.select_one(f"fieldset[hx-get='/profiles/{profile.id}/retention']")
    preview = html(client.get(f"/profiles/{profile.id}/retention",
                              query_string={"keep_last": "2"}))
    assert "Keep the last 2. (as typed, not saved yet)" in preview.select_one("[data-figure=policy]").text
    rows = {tr["id"]: tr.text for tr in preview.select("tbody tr")}
    assert "no rule keeps it" in rows["snapshot-2026-11-02T030000Z"]
    wrong = html(client.get(f"/profiles/{profile.id}/retention", query_string={"keep_last": "x"}))
    assert "whole number" in wrong.select_one(".error-text").text
    # The form as it first comes, every box at its default: "keep this much free" empty is off.
    defaults = {"keep_last": "2", "keep_daily": "0", "keep_weekly": "0", "keep_monthly": "0",
                "keep_yearly": "0", "keep_min_free": ""}
    as_given = html(client.get(f"/profiles/{profile.id}/retention", query_string=defaults))
    assert not as_given.select("p.error-text")    # no problem with the form as it came
    assert "Keep the last 2." in as_given.select_one("[data-figure=policy]").text
    with db.connection_context():
        Profile.update(keep_last=2).where(Profile.id == profile.id).execute()
    log_in(client, otto)
    assert post(client, f"/profiles/{profile.id}/prune").status_code == 403
    log_in(client, ada)
    page = html(client.get(f"/profiles/{profile.id}"))
    assert page.select_one("#retention form button").text == "Apply retention now"
    assert post(client, f"/profiles/{profile.id}/prune").status_code == 303
    assert sorted(p.name for p in backups.iterdir()) == names[1:]
    with db.connection_context():
        assert AuditEntry.select().where(AuditEntry.action == "retention.prune").exists()


def test_a_verification_schedule_is_saved_and_shown(client, ada, home):
    log_in(client, ada)
    response = post(client, "/profiles/", form(home, schedule_tz="UTC", verify_schedule="@weekly",
                                               verify_percent="10"))
    assert response.status_code == 302, messages(response)
    [profile] = profiles()
    assert (profile.verify_schedule, profile.verify_percent) == ("0 0 * * 0", 10.0)
    assert profile.verify_looked_at is not None
    shown = html(client.get(response.headers["Location"])).select_one("[data-figure=verify-schedule]")
    assert shown.text.strip() == "At 00:00, only on Sunday, 10% of the files"
    edit = html(client.get(f"/profiles/{profile.id}/edit"))
    assert edit.select_one("#verify_schedule")["value"] == "0 0 * * 0"


@pytest.mark.parametrize("fields, field", [
    ({"verify_schedule": "every sunday"}, "verify_schedule"),
    ({"verify_schedule": "@weekly", "verify_percent": "0"}, "verify_percent"),
    ({"verify_schedule": "@weekly", "verify_percent": "250"}, "verify_percent"),
])
def test_a_bad_verification_schedule_is_refused_beside_its_field(client, ada, home, fields, field):
    log_in(client, ada)
    response = post(client, "/profiles/", form(home, schedule_tz="UTC", **fields))
    assert response.status_code == 422 and field in messages(response)
    assert profiles() == []


def test_every_bad_line_of_a_field_is_named_and_only_that_field_is_red(client, ada, home):
    log_in(client, ada)
    sources = "relative/photos\n/home/a\tb\n" + str(home / "Photos") + "\nalso relative"
    response = post(client, "/profiles/", form(home, sources=sources, excludes="[oops\n*.tmp\n[bad"))
    page = html(response)
    lines = [e.text for e in page.select("#sources-msg .one-error")]
    assert len(lines) == 3 and "relative/photos" in lines[0] and "also relative" in lines[2]
    assert len(page.select("#excludes-msg .one-error")) == 2
    assert {tag.select_one("[id]")["id"] for tag in page.select(".field.has-error")} == \
        {"sources", "excludes"}
    assert profiles() == []
