"""The snapshot pages on real snapshots (jobs run inline, rsync for real): the list, a tree
paged and sorted, versions found by name, two snapshots compared, restores previewed and
carried out, downloads streamed by the worker's file server, and paths that try to leave
the snapshot refused."""

import grp
import io
import os
import pwd
import tarfile
import zipfile

import pytest

from jobs import fileserver, verify
from jobs.queue import settings
from models import AuditEntry, Profile, Restore, Run, Snapshot, db
from tests.conftest import csrf_token, html, log_in, post
from tests.helpers.settings import use_settings
from tests.helpers.trees import write


@pytest.fixture
def environ(environ, tmp_path):
    # The web reads the manifests that the (inline) jobs write: one data dir, as on a box.
    return {**environ, "CAIRN_SOURCE_ROOTS": str(tmp_path / "home"),
            "CAIRN_DATA_DIR": str(settings().data_dir)}


@pytest.fixture
def home(tmp_path):
    source = tmp_path / "home" / "ada"
    write(source / "Photos" / "beach.jpg", b"beach v1", mtime=1_600_000_000)
    write(source / "Photos" / "private.jpg", b"mine", mode=0o600, mtime=1_600_000_000)
    for i in range(250):
        write(source / "Many" / f"f{i:03}.txt", b"x" * i, mtime=1_600_000_000)
    write(source / "report.txt", b"draft", mtime=1_600_000_000)
    return source


@pytest.fixture
def snaps(app, home, tmp_path):
    """Two snapshots: the second with report.txt changed, beach.jpg gone and a new file."""
    (tmp_path / "backups").mkdir()
    from jobs import backup
    with db.connection_context():
        profile = Profile.create(name="Ada", slug="ada", sources=[str(home)],
                                 destination=str(tmp_path / "backups"))
        first = Run.get_by_id(backup.request_run(profile).id)
        write(home / "report.txt", b"final version", mtime=1_600_000_500)
        (home / "Photos" / "beach.jpg").unlink()
        write(home / "Photos" / "dunes.jpg", b"dunes")
        second = Run.get_by_id(backup.request_run(profile).id)
        assert first.state == second.state == "succeeded"
        return profile, Snapshot.get(Snapshot.name == first.snapshot), \
            Snapshot.get(Snapshot.name == second.snapshot)


def top(home) -> str:
    return "localhost" + str(home)


def test_the_list_shows_each_snapshot_with_its_figures(client, vera, snaps):
    profile, first, second = snaps
    log_in(client, vera)
    page = html(client.get(f"/profiles/{profile.id}/snapshots/"))
    rows = page.select("#snapshots tbody tr")
    assert [r["id"] for r in rows] == [f"snapshot-{second.name}", f"snapshot-{first.name}"]
    cells = [td.text.strip() for td in rows[1].select("td")]
    assert cells[1] == "253" and cells[4] == "not verified"
    assert "2 files" in rows[0].select("td")[3].text   # dunes.jpg and the new report.txt
    assert not page.select("#snapshots button")       # a viewer cannot start checks


def test_a_snapshot_from_a_partial_run_says_so(client, vera, snaps):
    profile, first, second = snaps
    with db.connection_context():
        Run.update(state="partial").where(Run.id == first.run_id).execute()
    log_in(client, vera)
    rows = html(client.get(f"/profiles/{profile.id}/snapshots/")).select("#snapshots tbody tr")
    assert not rows[0].select("[data-figure=partial]")
    marker = rows[1].select_one("[data-figure=partial]")
    assert marker.text == "from a partial run" and marker["href"] == f"/runs/{first.run_id}"
    page = html(client.get(f"/profiles/{profile.id}/snapshots/{first.name}/"))
    assert "some files could not be copied" in page.select_one(".page-head").text


def test_a_tree_pages_sorts_and_shows_modes(client, vera, snaps, home):
    profile, first, _ = snaps
    log_in(client, vera)
    base = f"/profiles/{profile.id}/snapshots/{first.name}/"
    page = html(client.get(base, query_string={"path": f"{top(home)}/Many"}))
    names = [td.text.strip() for td in page.select("#entries tbody tr td:nth-of-type(1)")]
    assert len(names) == 200 and names[0] == "f000.txt"
    assert page.select_one(".pager").text.split() == ["1–200", "of", "250", "Next", "→"]
    second_page = html(client.get(base, query_string={"path": f"{top(home)}/Many", "page": "2"}))
    assert len(second_page.select("#entries tbody tr")) == 50
    by_size = html(client.get(base, query_string={"path": f"{top(home)}/Many", "sort": "size",
                                                   "order": "desc"}))
    assert by_size.select_one("#entries tbody tr td").text.strip() == "f249.txt"
    photos = html(client.get(base, query_string={"path": f"{top(home)}/Photos"}))
    modes = {tr.select("td")[0].text.strip(): tr.select("td")[3].text
             for tr in photos.select("#entries tbody tr")}
    assert modes == {"beach.jpg": "-rw-r--r--", "private.jpg": "-rw-------"}
    owner = photos.select_one("#entries tbody tr td:nth-of-type(5) span")
    uid, gid = os.stat(home / "Photos" / "private.jpg")[4:6]
    assert owner.text == f"{pwd.getpwuid(uid).pw_name}:{grp.getgrgid(gid).gr_name}"
    assert owner["title"] == f"{uid}:{gid}"


@pytest.mark.parametrize("path", ["../..", "/etc", "localhost/..", "a//b", "localhost/./x"])
def test_paths_that_leave_the_snapshot_are_refused(client, otto, snaps, path):
    profile, first, _ = snaps
    log_in(client, otto)
    for where in ("", "download", "restore"):
        response = client.get(f"/profiles/{profile.id}/snapshots/{first.name}/{where}",
                              query_string={"path": path})
        assert response.status_code == 400, (where, path)


def test_encoded_and_unknown_paths_find_nothing(client, otto, snaps, home):
    profile, first, _ = snaps
    log_in(client, otto)
    base = f"/profiles/{profile.id}/snapshots/{first.name}/"
    assert client.get(base + "?path=localhost%2F%2e%2e").status_code == 400   # decoded to ..
    assert client.get(base + "?path=localhost%252e%252e").status_code == 404  # a literal name
    assert client.get(base, query_string={"path": f"{top(home)}/report.txt"}).status_code == 404
    assert client.get("/profiles/999/snapshots/x/").status_code == 404
    assert client.get(f"/profiles/{profile.id}/snapshots/latest/").status_code == 404


def test_a_file_is_found_with_its_versions(client, vera, snaps, home):
    profile, first, second = snaps
    log_in(client, vera)
    page = html(client.get(f"/profiles/{profile.id}/snapshots/find", query_string={"q": "REPORT"}))
    found = page.select(".found")
    assert [f.h2.text for f in found] == [f"{top(home)}/report.txt"]
    versions = found[0].select("tbody tr")
    assert [v.select("td")[1].text for v in versions] == ["13 B", "5 B"]   # newest first


def test_two_snapshots_are_compared(client, vera, snaps, home):
    profile, first, second = snaps
    log_in(client, vera)
    page = html(client.get(f"/profiles/{profile.id}/snapshots/compare",
                           query_string={"a": second.name, "b": first.name}))   # either order
    counts = {dd["data-figure"]: dd.text for dd in page.select("#compare-counts dd")}
    assert counts == {"added": "1", "removed": "1", "changed": "1"}
    assert page.select_one("#removed code").text == f"{top(home)}/Photos/beach.jpg"


def test_a_restore_is_previewed_then_carried_out_and_audited(client, otto, snaps, home):
    profile, first, _ = snaps
    log_in(client, otto)
    url = f"/profiles/{profile.id}/snapshots/{first.name}/restore"
    paths = [f"{top(home)}/Photos", f"{top(home)}/report.txt"]
    form = html(client.get(url, query_string={"path": paths}))
    assert f"cairn-restore-{first.name}" in form.select_one("#restore-form fieldset").text
    response = post(client, url, {"path": paths, "where": "original", "action": "preview"})
    assert response.status_code == 303
    preview = html(client.get(response.headers["Location"]))
    assert "Preview:" in preview.select_one(".run-message").text
    assert preview.select_one("#restore-progress .state").text == "Preview ready"
    actions = {tr.select("td")[1].text.split("/")[-1]: tr.select("td")[0].text
               for tr in preview.select("#restore-preview tbody tr")}
    assert actions == {"beach.jpg": "create", "report.txt": "exists, keep"}
    assert (home / "report.txt").read_bytes() == b"final version"
    job = Restore.get_by_id(int(response.headers["Location"].rsplit("/", 1)[1]))
    go = client.post(f"/restores/{job.id}/go", data={"overwrite": "y"},
                     headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/account/")})
    assert go.status_code == 200 and go.headers["HX-Redirect"].startswith("/restores/")
    assert (home / "report.txt").read_bytes() == b"draft"
    assert (home / "Photos" / "beach.jpg").read_bytes() == b"beach v1"
    assert (home / "Photos" / "dunes.jpg").read_bytes() == b"dunes"   # nothing deleted
    done = html(client.get(go.headers["HX-Redirect"]))
    assert done.select_one("#restore-progress")["data-state"] == "succeeded"
    actions = [a.action for a in AuditEntry.select().order_by(AuditEntry.id)]
    assert actions[-2:] == ["restore.preview", "restore.start"]
    listed = html(client.get(f"/profiles/{profile.id}/snapshots/")).select("#restores tbody tr")
    assert [row.select("td")[1].text for row in listed] == ["Restored"]   # the preview is none


def test_restoring_to_another_folder_checks_it(client, otto, snaps, home, tmp_path):
    profile, first, _ = snaps
    log_in(client, otto)
    url = f"/profiles/{profile.id}/snapshots/{first.name}/restore"
    bad = post(client, url, {"path": [f"{top(home)}/report.txt"], "where": "folder",
                             "folder": "relative/path", "action": "restore"})
    assert bad.status_code == 422 and "absolute folder" in html(bad).select_one(".field-msg").text
    good = post(client, url, {"path": [f"{top(home)}/report.txt"], "where": "folder",
                              "folder": str(tmp_path / "out"), "action": "restore"})
    assert good.status_code == 303
    assert (tmp_path / "out" / "report.txt").read_bytes() == b"draft"


def test_a_folder_restores_may_not_write_to_is_refused_with_the_reason(client, otto, snaps, home,
                                                                      tmp_path, monkeypatch):
    use_settings(monkeypatch, restore_roots=(str(tmp_path / "home"),))
    profile, first, _ = snaps
    log_in(client, otto)
    url = f"/profiles/{profile.id}/snapshots/{first.name}/restore"
    form = html(client.get(url, query_string={"path": f"{top(home)}/report.txt"}))
    assert str(tmp_path / "home") in form.select_one("#restore-form").text   # where it may go
    for action in ("preview", "restore"):
        refused = post(client, url, {"path": [f"{top(home)}/report.txt"], "where": "folder",
                                     "folder": "/etc/cron.d", "overwrite": "y", "action": action})
        assert refused.status_code == 422
        assert "neither where these files came from" in html(refused).select_one(".field-msg").text
    assert Restore.select().count() == 0


def test_a_file_and_a_folder_download_through_the_worker(client, otto, snaps, home, files):
    profile, first, _ = snaps
    log_in(client, otto)
    url = f"/profiles/{profile.id}/snapshots/{first.name}/download"
    one = client.get(url, query_string={"path": f"{top(home)}/Photos/private.jpg"})
    assert one.status_code == 200 and one.data == b"mine"
    assert one.headers["Content-Disposition"].startswith('attachment; filename="private.jpg"')
    zipped = client.get(url, query_string={"path": f"{top(home)}/Photos", "format": "zip"})
    with zipfile.ZipFile(io.BytesIO(zipped.data)) as archive:
        assert archive.read("Photos/beach.jpg") == b"beach v1"
        assert sorted(archive.namelist()) == ["Photos/", "Photos/beach.jpg", "Photos/private.jpg"]
    tarred = client.get(url, query_string={"path": f"{top(home)}/Many", "format": "tar"})
    with tarfile.open(fileobj=io.BytesIO(tarred.data)) as archive:
        assert len([m for m in archive.getmembers() if m.isfile()]) == 250
        assert archive.extractfile("Many/f007.txt").read() == b"x" * 7
    assert AuditEntry.select().where(AuditEntry.action == "snapshot.download").count() == 3


def test_a_download_without_a_worker_says_so(client, otto, snaps, home):
    profile, first, _ = snaps
    log_in(client, otto)
    response = client.get(f"/profiles/{profile.id}/snapshots/{first.name}/download",
                          query_string={"path": f"{top(home)}/report.txt"})
    assert response.status_code == 503 and b"worker" in response.data


def test_a_symlink_in_a_snapshot_cannot_serve_what_is_outside(snaps, home, files, tmp_path):
    profile, first, _ = snaps
    tree = tmp_path / "backups" / "ada" / first.name / top(home)
    os.symlink("/etc", tree / "Photos" / "etc")
    with pytest.raises(fileserver.Refused):
        fileserver.fetch(settings().data_dir, profile.id, first.name, f"{top(home)}/Photos/etc/passwd",
                         "file")
    header, chunks = fileserver.fetch(settings().data_dir, profile.id, first.name,
                                      f"{top(home)}/Photos", "tar")
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        link = archive.getmember("Photos/etc")
        assert link.issym() and link.linkname == "/etc"
        assert not any(name.startswith("Photos/etc/") for name in archive.getnames())


def test_an_operator_starts_a_verification_and_a_damaged_snapshot_turns_the_dashboard_red(
        client, otto, snaps, home, tmp_path):
    profile, first, second = snaps
    log_in(client, otto)
    response = client.post(f"/profiles/{profile.id}/snapshots/{second.name}/verify",
                           data={"v-kind": "verify", "v-sample": "100"},
                           headers={"HX-Request": "true",
                                    "X-CSRFToken": csrf_token(client, "/account/")})
    page = html(client.get(response.headers["HX-Redirect"]))
    assert page.select_one("#verification-progress")["data-state"] == "intact"
    assert not html(client.get("/")).select(f"#backup-{profile.id}.overdue")
    tree = tmp_path / "backups" / "ada" / second.name / top(home)
    with open(tree / "Photos" / "dunes.jpg", "r+b") as fh:
        fh.write(b"D")
    damaged = verify.request(Snapshot.get_by_id(second.id))
    assert damaged.state == "damaged"
    dashboard = html(client.get("/"))
    card = dashboard.select_one(f"#backup-{profile.id}")
    assert "overdue" in card["class"]
    assert card.select_one("[data-figure=verification]").text.strip().startswith(
        "Verification found damage")
    listed = html(client.get(f"/profiles/{profile.id}/snapshots/"))
    assert listed.select_one(f"#snapshot-{second.name}")["data-verify"] == "damaged"
    # Its page says what to do: dunes.jpg is only in this snapshot, so no copy to restore.
    page = html(client.get(f"/verifications/{damaged.id}"))
    assert page.select_one("#verification-progress")["data-state"] == "damaged"
    steps = page.select_one("#next-steps").text
    assert "No other snapshot holds a good copy of 1 file" in steps and "dunes.jpg" in steps
    # A file removed from the second is found intact in the first, with a link to restore it.
    (tree / "Many" / "f010.txt").unlink()
    gone = verify.request(Snapshot.get_by_id(second.id))
    page = html(client.get(f"/verifications/{gone.id}"))
    row = page.select_one("#good-copies tbody tr")
    assert "Many/f010.txt" in row.text and row.select_one("a")["title"] == first.name
    assert row.select_one("a.button")["href"].startswith(
        f"/profiles/{profile.id}/snapshots/{first.name}/restore?path=")
