"""The Imports and Library pages on a real inbox and library (jobs run inline): the queue and
the needs-attention list with every reason, identify / retry / import anyway by operators,
each file's story, the history, the library with its versions, the duplicates report with
its resolutions, the settings and quality profiles with their checks."""

import datetime as dt

import pytest

from jobs import imports
from jobs import library as lib
from jobs.queue import settings
from models import AuditEntry, DuplicateSet, ImportItem, Inbox, Library, QualityProfile, db
from tests.conftest import html, log_in, post
from tests.helpers.trees import write

MB = 1024 * 1024
LATER = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=5)


@pytest.fixture
def environ(environ):
    # The pages and the (inline) jobs check folders against one data dir, as on a box.
    return {**environ, "CAIRN_DATA_DIR": str(settings().data_dir)}


@pytest.fixture
def folders(app, tmp_path):
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    inbox.mkdir()
    library.mkdir()
    with db.connection_context():
        lib.set_root(str(library))
        lib.add_inbox(str(inbox))
    return inbox, library


def sweep(hurry=True):
    with db.connection_context():
        imports.sweep(hurry=hurry, now=LATER)


def item_named(name: str) -> ImportItem:
    with db.connection_context():
        return ImportItem.get(ImportItem.name == name)


def dropped(inbox, name: str, data: bytes) -> ImportItem:
    """A file written into the inbox and swept: its queue item."""
    write(inbox / name, data)
    sweep()
    return item_named(name)


def test_the_queue_shows_waiting_files_and_the_attention_list_every_reason(client, vera, folders):
    inbox, _ = folders
    write(inbox / "Heat.1995.1080p.BluRay.mkv.part", b"x" * 100)
    write(inbox / "Alien.1979.DVDRip.sample.avi", b"a" * 1000)
    write(inbox / "Heat.1995.1080p.BluRay.mkv", b"h" * MB)
    sweep()
    log_in(client, vera)
    page = html(client.get("/imports/"))
    waiting = page.select_one("#queue").text
    assert "Heat.1995.1080p.BluRay.mkv.part" in waiting and "Still downloading (.part)." in waiting
    blocked = page.select_one(f"#attention-{item_named('Alien.1979.DVDRip.sample.avi').id}")
    assert [li.text for li in blocked.select("[data-figure=reasons] li")] == [
        "A sample, not the movie."]
    assert not blocked.select("button"), "viewers see, but do not act"
    assert "Heat (1995)/Heat (1995) [Bluray-1080p].mkv" in page.select_one("#recent").text
    assert page.select_one("#attention [data-figure=attention-count]").text == "1"
    with db.connection_context():
        Inbox.update(problem="Cairn may not read 1 folder in the inbox: locked.").execute()
    shown = html(client.get("/imports/")).select_one("[data-figure=inbox-problem]")
    assert shown.text == "Cairn may not read 1 folder in the inbox: locked."


def test_an_operator_imports_a_refused_file_anyway_and_it_is_audited(client, otto, folders):
    inbox, library = folders
    item = dropped(inbox, "Alien.1979.DVDRip.sample.avi", b"a" * 1000)
    log_in(client, otto)
    shown = html(client.get("/imports/")).select_one(f"#attention-{item.id}")
    assert shown.select_one("button.primary").text == "Import anyway"
    response = post(client, f"/imports/{item.id}/anyway", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Importing Alien.1979.DVDRip.sample.avi anyway" in response.text
    assert item_named(item.name).state == "imported"
    assert (library / "Alien (1979)" / "Alien (1979) [DVD].avi").exists()
    with db.connection_context():
        assert AuditEntry.select().where(AuditEntry.action == "import.anyway").count() == 1
    again = post(client, f"/imports/{item.id}/anyway")
    assert again.status_code == 303   # refused (already imported), said as a flash
    assert "cannot be imported anyway" in client.get("/imports/").text


def test_facts_cannot_be_waved_away(client, otto, folders):
    inbox, _ = folders
    item = dropped(inbox, "Heat.1995.1080p.BluRay.mkv.exe", b"x" * 1000)
    log_in(client, otto)
    assert not html(client.get("/imports/")).select(f"#attention-{item.id} button.primary")
    response = post(client, f"/imports/{item.id}/anyway", headers={"HX-Request": "true"})
    assert response.status_code == 409 and "Dangerous file type .exe" in response.text
    assert item_named(item.name).state == "blocked"


def test_an_operator_names_a_file_by_hand(client, otto, folders):
    inbox, library = folders
    item = dropped(inbox, "1080p.BluRay.x264.mkv", b"m" * 1000)
    log_in(client, otto)
    for year, says in [("95", "The year is a number from 1870 to 2100"), ("1995x", "The year")]:
        refused = post(client, f"/imports/{item.id}/identify", {"title": "Heat", "year": year},
                       headers={"HX-Request": "true"})
        assert refused.status_code == 422 and says in refused.text
    refused = post(client, f"/imports/{item.id}/identify", {"title": "  "}, headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "Write the movie's title." in html(refused).text
    done = post(client, f"/imports/{item.id}/identify", {"title": "Heat", "year": "1995"},
                headers={"HX-Request": "true"})
    assert done.status_code == 200
    assert (library / "Heat (1995)" / "Heat (1995) [Bluray-1080p].mkv").exists()
    story = html(client.get(f"/imports/{item.id}"))
    assert story.select_one("[data-figure=identity]").text.startswith("Heat (1995)")
    assert "Identified by hand as Heat (1995)" in story.select_one("#timeline").text


def test_the_history_filters_by_outcome_and_name(client, vera, folders):
    inbox, _ = folders
    write(inbox / "Heat.1995.1080p.BluRay.mkv", b"h" * 1000)
    write(inbox / "Alien.1979.DVDRip.sample.avi", b"a" * 1000)
    sweep()
    log_in(client, vera)
    everything = html(client.get("/imports/history")).select("#import-history tbody tr")
    assert len(everything) == 2
    blocked = html(client.get("/imports/history?state=blocked")).select("#import-history tbody tr")
    assert [row["data-state"] for row in blocked] == ["blocked"]
    named = html(client.get("/imports/history?q=Heat")).select("#import-history tbody tr")
    assert "Heat (1995)/Heat (1995) [Bluray-1080p].mkv" in named[0].text and len(named) == 1


def test_the_library_lists_movies_with_their_best_file_and_versions(client, vera, folders):
    inbox, library = folders
    write(library / "Heat (1995)/Heat.1995.720p.HDTV.mkv", b"old" * 100)
    write(inbox / "Heat.1995.1080p.BluRay.mkv", b"h" * 1000)
    with db.connection_context():
        lib.scan_library()
        Library.update(profile=QualityProfile.create(
            name="No upgrades", allowed=["HDTV-720p", "Bluray-1080p"], cutoff="Bluray-1080p",
            upgrades=False)).execute()
    sweep()
    assert item_named("Heat.1995.1080p.BluRay.mkv").reasons == [
        "Upgrades are off in the quality profile 'No upgrades' (the library has HDTV-720p)."]
    log_in(client, vera)
    page = html(client.get("/library/"))
    assert page.select_one("[data-figure=totals]").text == "1 movie, 1 file, 300 B"
    with db.connection_context():
        imports.import_anyway(ImportItem.get())
    row = html(client.get("/library/")).select_one("#movies tbody tr")
    assert row.select_one("[data-figure=quality]").text == "Bluray-1080p"
    assert row.select_one("[data-figure=versions]").text == "2"


def test_duplicates_are_found_and_an_operator_hardlinks_them(client, otto, folders):
    _, library = folders
    write(library / "Heat (1995)/Heat (1995) [Bluray-1080p].mkv", b"heat" * 1000)
    write(library / "old/heat.mkv", b"heat" * 1000)
    log_in(client, otto)
    assert post(client, "/library/duplicates/scan", headers={"HX-Request": "true"}).status_code == 200
    page = html(client.get("/library/duplicates"))
    assert "1 set of identical files" in page.select_one("[data-figure=scan]").text
    with db.connection_context():
        found = DuplicateSet.get()
    refused = post(client, f"/library/duplicates/sets/{found.id}", {"keep": "/etc/passwd", "how": "hardlink"},
                   headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "Keep one of the set's own files" in html(refused).text
    done = post(client, f"/library/duplicates/sets/{found.id}",
                {"keep": "Heat (1995)/Heat (1995) [Bluray-1080p].mkv", "how": "hardlink"},
                headers={"HX-Request": "true"})
    assert done.status_code == 200
    assert (library / "old/heat.mkv").stat().st_ino == \
        (library / "Heat (1995)/Heat (1995) [Bluray-1080p].mkv").stat().st_ino
    shown = html(client.get("/library/duplicates")).select_one(f"#set-{found.id}")
    assert shown.select_one("[data-figure=resolution]").text.startswith("1 file hardlinked")


def test_an_admin_sets_the_library_and_bad_settings_are_refused_beside_their_field(client, ada, tmp_path):
    (tmp_path / "movies").mkdir()
    log_in(client, ada)
    page = html(client.get("/library/settings"))
    assert page.select_one("#template")["value"] == "{Title} ({Year})/{Title} ({Year}) [{Quality}].{ext}"
    assert page.select_one("[data-figure=example]").text == \
        "For example: The Thing (1982)/The Thing (1982) [Bluray-1080p].mkv"
    form = {"root": str(tmp_path / "movies"), "template": "{Title}/{Title} {Edition}.{ext}",
            "mode": "move", "profile": page.select_one("#profile option")["value"],
            "stable_seconds": "30", "recycle_days": "7", "free_margin_mb": "500", "retries": "2"}
    for field, value, says in [("root", "/etc", "system folder"),
                               ("template", "{Title}.{Oops}.{ext}", "Unknown token"),
                               ("template", "../{Title}.{ext}", "no leading /"),
                               ("stable_seconds", "0", "From 1 second"),
                               ("mode", "delete", "Not a valid choice")]:
        refused = post(client, "/library/settings", {**form, field: value})
        assert refused.status_code == 422
        assert says in html(refused).select_one(f"#{field}-msg").text
    assert post(client, "/library/settings", form).status_code == 303
    with db.connection_context():
        library = Library.current()
        assert (library.root, library.mode, library.stable_seconds, library.template) == \
            (str(tmp_path / "movies"), "move", 30, "{Title}/{Title} {Edition}.{ext}")
    refused = post(client, "/library/inboxes", {"path": str(tmp_path / "movies")})
    assert refused.status_code == 422 and "overlaps the library" in html(refused).select_one("#path-msg").text
    (tmp_path / "downloads").mkdir()
    assert post(client, "/library/inboxes", {"path": str(tmp_path / "downloads")}).status_code == 303
    with db.connection_context():
        assert [b.path for b in Inbox.select()] == [str(tmp_path / "downloads")]


def test_an_admin_edits_quality_profiles(client, ada, vera):
    log_in(client, ada)
    client.get("/library/profiles")
    refused = post(client, "/library/profiles",
                   {"name": "HD", "allowed": ["WEB 720p"], "cutoff": "Bluray-1080p"})
    assert refused.status_code == 422
    assert "The cutoff must be one of the allowed qualities." in html(refused).select_one("#allowed-msg").text
    done = post(client, "/library/profiles", {"name": "HD", "allowed": ["Bluray-1080p", "WEB 720p"],
                                              "cutoff": "Bluray-1080p", "upgrades": "y"})
    assert done.status_code == 303
    with db.connection_context():
        profile = QualityProfile.get(QualityProfile.name == "HD")
        assert profile.allowed == ["WEB 720p", "Bluray-1080p"] and not profile.prefer_proper
        default = QualityProfile.get(QualityProfile.name == "Any")
    clash = post(client, f"/library/profiles/{profile.id}",
                 {"name": "Any", "allowed": ["DVD"], "cutoff": "DVD"})
    assert clash.status_code == 422 and "exists already" in html(clash).select_one("#name-msg").text
    post(client, f"/library/profiles/{default.id}/delete")
    assert "is the library's profile" in html(client.get("/library/profiles")).text
    log_in(client, vera)
    listed = html(client.get("/library/profiles"))
    assert "2 qualities allowed, from WEB 720p to Bluray-1080p; upgrades until Bluray-1080p." in \
        listed.select_one(f"#profile-{profile.id} [data-figure=rules]").text
    assert not listed.select("main form")


def test_a_plain_form_goes_back_to_its_page_on_this_site_only(client, otto, folders):
    inbox, _ = folders
    item = dropped(inbox, "Alien.1979.DVDRip.sample.avi", b"a" * 1000)
    log_in(client, otto)
    here = post(client, f"/imports/{item.id}/retry", headers={"Referer": f"http://localhost/imports/{item.id}"})
    assert here.status_code == 303 and here.headers["Location"] == f"/imports/{item.id}"
    away = post(client, "/imports/scan", headers={"Referer": "http://evil.example/imports/1"})
    assert away.headers["Location"] == "/imports/"


def test_the_dashboard_says_what_the_import_needs(client, vera, folders):
    inbox, _ = folders
    log_in(client, vera)
    card = html(client.get("/")).select_one("#import-counts")
    assert card.select_one("[data-figure=import-attention]").text.strip() == "Nothing needs you"
    write(inbox / "Alien.1979.DVDRip.sample.avi", b"a" * 1000)
    write(inbox / "Heat.1995.1080p.BluRay.mkv", b"h" * 1000)
    write(inbox / "Up.2009.1080p.BluRay.mkv.part", b"u" * 1000)
    sweep()
    card = html(client.get("/")).select_one("#import-counts")
    assert card.select_one("[data-figure=import-attention] a").text == "1 file needs attention"
    assert card.select_one("[data-figure=import-queue]").text == \
        "1 file waiting, 0 files being imported; 1 file imported so far."
