"""The profile form's folders checked by the worker (over its socket, as `cairn worker`
serves it) while the form is filled in: real folders, files, links and a missing destination
made on request, never through a link."""

import os

import pytest

from jobs.queue import settings
from models import AuditEntry
from tests.conftest import csrf_token, html, log_in, post
from tests.helpers.trees import write


@pytest.fixture
def environ(environ, tmp_path):
    return {**environ, "CAIRN_SOURCE_ROOTS": str(tmp_path / "home"),
            "CAIRN_DATA_DIR": str(settings().data_dir)}


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    write(home / "ada" / "Photos" / "cat.jpg", "meow")
    write(home / "ada" / "notes.txt", "hi")
    (home / "ada" / "link").symlink_to(home / "ada" / "Photos")
    (tmp_path / "backups").mkdir()
    return home


def ask(client, sources, destination, url="/picker/paths", mode="snapshot"):
    return client.post(url, data={"sources": "\n".join(map(str, sources)),
                                  "destination": str(destination), "mode": mode},
                       headers={"HX-Request": "true",
                                "X-CSRFToken": csrf_token(client, "/account/")})


def verdicts(response) -> list[tuple[str, str, str]]:
    assert response.status_code == 200, response.text
    return [(li["class"][0], li.code.text, li.text) for li in html(response).select(".path-checks li")]


def test_each_source_and_the_destination_get_the_workers_verdict(client, ada, home, tmp_path, files):
    log_in(client, ada)
    ada_home = home / "ada"
    lines = verdicts(ask(client, [ada_home / "Photos", ada_home / "Gone", ada_home / "notes.txt",
                                  ada_home / "link", tmp_path / "elsewhere"], tmp_path / "backups"))
    by_path = {path: (kind, text) for kind, path, text in lines}
    assert by_path[str(ada_home / "Photos")][0] == "check-ok"
    assert by_path[str(ada_home / "Gone")] == ("check-bad", by_path[str(ada_home / "Gone")][1])
    assert "does not exist" in by_path[str(ada_home / "Gone")][1]
    assert "is not a folder" in by_path[str(ada_home / "notes.txt")][1]
    assert "symbolic link" in by_path[str(ada_home / "link")][1]
    assert "outside the folders Cairn may back up" in by_path[str(tmp_path / "elsewhere")][1]
    kind, _, text = lines[-1]
    assert kind == "check-ok" and "can write to" in text and "free" in text
    # The probe the worker wrote to prove it can write is gone again.
    assert os.listdir(tmp_path / "backups") == []


def test_a_destination_inside_a_source_or_read_only_is_a_problem(client, ada, home, tmp_path,
                                                                  files):
    log_in(client, ada)
    (home / "ada" / "Photos" / "bak").mkdir()
    *_, (kind, _, text) = verdicts(ask(client, [home / "ada"], home / "ada" / "Photos" / "bak"))
    assert kind == "check-bad" and "inside source" in text


def test_a_missing_destination_is_made_on_request_and_audited(client, ada, home, tmp_path, files):
    log_in(client, ada)
    wanted = tmp_path / "backups" / "family" / "photos"
    *_, (kind, _, text) = verdicts(ask(client, [home / "ada" / "Photos"], wanted))
    assert kind == "check-bad" and "does not exist" in text
    page = html(ask(client, [home / "ada" / "Photos"], wanted))
    assert page.select_one("button[hx-post='/picker/paths/destination']") is not None
    response = ask(client, [home / "ada" / "Photos"], wanted, url="/picker/paths/destination")
    assert wanted.is_dir()
    assert f"Made {wanted}." in response.text
    *_, (kind, _, text) = verdicts(response)
    assert kind == "check-ok"
    entry = AuditEntry.select().where(AuditEntry.action == "destination.create").get()
    assert entry.target == str(wanted) and entry.actor_name == "ada"


def test_nothing_is_made_through_a_planted_link(client, ada, home, tmp_path, files):
    log_in(client, ada)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "backups" / "trap").symlink_to(elsewhere)
    response = ask(client, [home / "ada" / "Photos"], tmp_path / "backups" / "trap" / "new",
                   url="/picker/paths/destination")
    assert "is a symbolic link" in response.text
    assert os.listdir(elsewhere) == []
    assert not AuditEntry.select().where(AuditEntry.action == "destination.create").exists()


def test_an_existing_destination_is_not_made_again(client, ada, home, tmp_path, files):
    log_in(client, ada)
    response = ask(client, [], tmp_path / "backups", url="/picker/paths/destination")
    assert "already exists" in response.text


def test_without_a_worker_the_form_says_when_the_folders_are_checked(client, ada, home, tmp_path):
    log_in(client, ada)
    response = ask(client, [home / "ada" / "Photos"], tmp_path / "backups")
    assert "No worker is running" in response.text
    assert "each run checks them when it starts" in response.text
    assert html(response).select(".path-checks li") == []


def test_only_admins_may_ask(client, otto, home, tmp_path, files):
    log_in(client, otto)
    assert ask(client, [home / "ada"], tmp_path / "backups").status_code == 403
    response = ask(client, [home / "ada"], tmp_path / "new", url="/picker/paths/destination")
    assert response.status_code == 403
    assert not (tmp_path / "new").exists()


def test_the_form_asks_as_it_is_filled_in(client, ada, home):
    log_in(client, ada)
    check = html(client.get("/profiles/new")).select_one("#path-check")
    assert check["hx-post"] == "/picker/paths"
    assert "input changed delay:800ms from:#destination" in check["hx-trigger"]
    assert not check["hx-trigger"].startswith("load")
    make_profile = post(client, "/profiles/", {"name": "Photos", "sources": str(home / "ada"),
                        "destination": str(home.parent / "backups"), "mode": "snapshot",
                        "max_parallel": "2", "retries": "2"})
    assert make_profile.status_code in (302, 303)
    editing = html(client.get(make_profile.headers["Location"] + "/edit"))
    assert editing.select_one("#path-check")["hx-trigger"].startswith("load, ")


def test_saving_a_profile_whose_folders_the_worker_cannot_use_says_so(client, ada, home, tmp_path,
                                                                        files):
    log_in(client, ada)
    response = post(client, "/profiles/", {
        "name": "Photos", "sources": str(home / "ada" / "Gone"),
        "destination": str(tmp_path / "backups"), "mode": "snapshot", "max_parallel": "2",
        "retries": "2"}, follow_redirects=True)
    assert response.status_code == 200
    notices = [n.text for n in html(response).select("#notice .flash")]
    assert any("saved" in n for n in notices), notices
    assert any("the first run would fail" in n and "does not exist" in n for n in notices), notices
