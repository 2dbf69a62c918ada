"""Every page and action of the app with the least role it needs (the permission matrix),
and one of everything the pages name, for the tests that visit them all: permissions, the
garbage sweep and the layout test."""

import datetime as dt

from models import (
    Alert,
    Breaker,
    Drive,
    DupeScan,
    DuplicateSet,
    Host,
    ImportItem,
    Inbox,
    Movie,
    MovieFile,
    NotificationTarget,
    Profile,
    QualityProfile,
    Restore,
    Run,
    Snapshot,
    Verification,
    db,
)

PUBLIC, VIEWER, OPERATOR, ADMIN = None, "viewer", "operator", "admin"
RANK = {None: -1, "viewer": 0, "operator": 1, "admin": 2}

# (endpoint, method) -> (path, least role). {user} is vera's id, {profile} a backup profile's,
# {run} a finished run's, {drive} a connected drive's, {snap} a snapshot's name (with a
# {verification} and a {restore} of it).
MATRIX = {
    ("auth.login", "GET"): ("/login", PUBLIC),
    ("auth.login", "POST"): ("/login", PUBLIC),
    ("auth.logout", "POST"): ("/logout", PUBLIC),
    ("auth.setup", "GET"): ("/setup", PUBLIC),
    ("auth.setup", "POST"): ("/setup", PUBLIC),
    ("health.healthz", "GET"): ("/healthz", PUBLIC),
    ("dashboard.index", "GET"): ("/", VIEWER),
    ("account.index", "GET"): ("/account/", VIEWER),
    ("account.index", "POST"): ("/account/", VIEWER),
    ("users.index", "GET"): ("/users/", ADMIN),
    ("users.create", "POST"): ("/users/", ADMIN),
    ("users.detail", "GET"): ("/users/{user}", ADMIN),
    ("users.change_role", "POST"): ("/users/{user}/role", ADMIN),
    ("users.set_active", "POST"): ("/users/{user}/active", ADMIN),
    ("users.reset_password", "POST"): ("/users/{user}/password", ADMIN),
    ("audit.index", "GET"): ("/audit", ADMIN),
    ("profiles.index", "GET"): ("/profiles/", VIEWER),
    ("profiles.new", "GET"): ("/profiles/new", ADMIN),
    ("profiles.create", "POST"): ("/profiles/", ADMIN),
    ("profiles.detail", "GET"): ("/profiles/{profile}", VIEWER),
    ("profiles.edit", "GET"): ("/profiles/{profile}/edit", ADMIN),
    ("profiles.update", "POST"): ("/profiles/{profile}/edit", ADMIN),
    ("profiles.confirm_delete", "GET"): ("/profiles/{profile}/delete", ADMIN),
    ("profiles.delete", "POST"): ("/profiles/{profile}/delete", ADMIN),
    ("profiles.run", "POST"): ("/profiles/{profile}/run", OPERATOR),
    ("profiles.dry_run", "POST"): ("/profiles/{profile}/dry-run", OPERATOR),
    ("profiles.schedule_preview", "GET"): ("/profiles/schedule", ADMIN),
    ("profiles.retention_preview", "GET"): ("/profiles/{profile}/retention", ADMIN),
    ("profiles.prune", "POST"): ("/profiles/{profile}/prune", ADMIN),
    ("drives.index", "GET"): ("/drives/", VIEWER),
    ("drives.adopt", "POST"): ("/drives/{drive}/adopt", ADMIN),
    ("drives.eject", "POST"): ("/drives/{drive}/eject", OPERATOR),
    ("hosts.index", "GET"): ("/hosts/", VIEWER),
    ("hosts.add", "POST"): ("/hosts/", ADMIN),
    ("hosts.fetch_key", "POST"): ("/hosts/{host}/fetch-key", ADMIN),
    ("hosts.pin", "POST"): ("/hosts/{host}/pin", ADMIN),
    ("hosts.reject", "POST"): ("/hosts/{host}/reject", ADMIN),
    ("hosts.test", "POST"): ("/hosts/{host}/test", OPERATOR),
    ("hosts.delete", "POST"): ("/hosts/{host}/delete", ADMIN),
    ("hosts.restore_folders", "POST"): ("/hosts/{host}/restore-folders", ADMIN),
    ("hosts.health", "GET"): ("/health/", VIEWER),
    ("hosts.reset", "POST"): ("/health/breakers/{breaker}/reset", OPERATOR),
    ("runs.detail", "GET"): ("/runs/{run}", VIEWER),
    ("runs.items", "GET"): ("/runs/{run}/items", VIEWER),
    ("runs.log", "GET"): ("/runs/{run}/log", VIEWER),
    ("runs.cancel", "POST"): ("/runs/{run}/cancel", OPERATOR),
    ("runs.retry", "POST"): ("/runs/{run}/retry", OPERATOR),
    ("history.index", "GET"): ("/history", VIEWER),
    ("history.export_csv", "GET"): ("/history.csv", VIEWER),
    ("history.export_json", "GET"): ("/history.json", VIEWER),
    ("logs.index", "GET"): ("/logs", VIEWER),
    ("picker.folder", "GET"): ("/picker/folder?path={src}", ADMIN),
    ("picker.scan", "POST"): ("/picker/scan", ADMIN),
    ("picker.preview", "POST"): ("/picker/preview", ADMIN),
    ("picker.preview_result", "GET"): ("/picker/preview/1", ADMIN),
    ("picker.check_paths", "POST"): ("/picker/paths", ADMIN),
    ("picker.make_destination", "POST"): ("/picker/paths/destination", ADMIN),
    ("snapshots.index", "GET"): ("/profiles/{profile}/snapshots/", VIEWER),
    ("snapshots.browse", "GET"): ("/profiles/{profile}/snapshots/{snap}/", VIEWER),
    ("snapshots.find", "GET"): ("/profiles/{profile}/snapshots/find?q=a", VIEWER),
    ("snapshots.compare", "GET"): ("/profiles/{profile}/snapshots/compare?a={snap}&b={snap}", VIEWER),
    ("snapshots.start_verify", "POST"): ("/profiles/{profile}/snapshots/{snap}/verify", OPERATOR),
    ("snapshots.verification", "GET"): ("/verifications/{verification}", VIEWER),
    ("snapshots.cancel_verification", "POST"): ("/verifications/{verification}/cancel", OPERATOR),
    ("snapshots.restore", "GET"): ("/profiles/{profile}/snapshots/{snap}/restore", OPERATOR),
    ("snapshots.restore", "POST"): ("/profiles/{profile}/snapshots/{snap}/restore", OPERATOR),
    ("snapshots.restore_page", "GET"): ("/restores/{restore}", VIEWER),
    ("snapshots.restore_go", "POST"): ("/restores/{restore}/go", OPERATOR),
    ("snapshots.restore_cancel", "POST"): ("/restores/{restore}/cancel", OPERATOR),
    ("snapshots.download", "GET"): ("/profiles/{profile}/snapshots/{snap}/download?path=x", OPERATOR),
    ("imports.index", "GET"): ("/imports/", VIEWER),
    ("imports.detail", "GET"): ("/imports/{item}", VIEWER),
    ("imports.history", "GET"): ("/imports/history", VIEWER),
    ("imports.scan", "POST"): ("/imports/scan", OPERATOR),
    ("imports.retry", "POST"): ("/imports/{item}/retry", OPERATOR),
    ("imports.anyway", "POST"): ("/imports/{item}/anyway", OPERATOR),
    ("imports.identify", "POST"): ("/imports/{item}/identify", OPERATOR),
    ("library.index", "GET"): ("/library/", VIEWER),
    ("library.movie", "GET"): ("/library/movies/{movie}", VIEWER),
    ("library.duplicates", "GET"): ("/library/duplicates", VIEWER),
    ("library.scan_duplicates", "POST"): ("/library/duplicates/scan", OPERATOR),
    ("library.resolve_set", "POST"): ("/library/duplicates/sets/{set}", OPERATOR),
    ("library.keep_version", "POST"): ("/library/movies/{movie}/keep/{mfile}", OPERATOR),
    ("settings.index", "GET"): ("/settings/", ADMIN),
    ("settings.update", "POST"): ("/settings/", ADMIN),
    ("library.settings", "GET"): ("/library/settings", ADMIN),
    ("library.save_settings", "POST"): ("/library/settings", ADMIN),
    ("library.add_inbox", "POST"): ("/library/inboxes", ADMIN),
    ("library.remove_inbox", "POST"): ("/library/inboxes/{inbox}/delete", ADMIN),
    ("library.profiles", "GET"): ("/library/profiles", VIEWER),
    ("library.edit_profile", "GET"): ("/library/profiles/{qprofile}", ADMIN),
    ("library.create_profile", "POST"): ("/library/profiles", ADMIN),
    ("library.update_profile", "POST"): ("/library/profiles/{qprofile}", ADMIN),
    ("library.delete_profile", "POST"): ("/library/profiles/{qprofile}/delete", ADMIN),
    ("notifications.index", "GET"): ("/notifications/", ADMIN),
    ("notifications.create", "POST"): ("/notifications/", ADMIN),
    ("notifications.edit", "GET"): ("/notifications/{target}", ADMIN),
    ("notifications.update", "POST"): ("/notifications/{target}", ADMIN),
    ("notifications.test", "POST"): ("/notifications/{target}/test", ADMIN),
    ("notifications.delete", "POST"): ("/notifications/{target}/delete", ADMIN),
    ("notifications.alerts", "GET"): ("/alerts/", VIEWER),
    ("notifications.acknowledge", "POST"): ("/alerts/{alert}/ack", OPERATOR),
    ("notifications.acknowledge_all", "POST"): ("/alerts/ack-all", OPERATOR),
    # The WebSocket: any logged-in user; refusals are tested in test_feed.py.
    ("__flask_sock.feed", "GET"): ("/ws", VIEWER),
}


def seed(tmp_path, vera) -> dict:
    """One of everything the routes name, and the values of the paths' placeholders."""
    with db.connection_context():
        (tmp_path / "src").mkdir()
        profile = Profile.create(name="Home", slug="home", sources=[str(tmp_path / "src")],
                                 destination=str(tmp_path / "backups"), schedule="30 2 * * *")
        (tmp_path / "backups").mkdir()
        run = Run.create(profile=profile, state="succeeded")
        drive = Drive.create(uuid="1234-ABCD", label="STICK", fstype="ext4")
        host = Host.create(user="ada", hostname="cairn-test.invalid", port=22)
        breaker = Breaker.create(name="host:x", label="ada@cairn-test.invalid", state="open")
        snap = Snapshot.create(profile=profile, name="2026-11-20T023000Z",
                               taken_at=dt.datetime(2026, 11, 20, 2, 30))
        check = Verification.create(profile=profile, snapshot=snap, state="intact")
        restore = Restore.create(profile=profile, snapshot=snap, paths=["localhost/x"],
                                 target=str(tmp_path / "out"), state="succeeded")
        item = ImportItem.create(path=str(tmp_path / "in" / "x.mkv"), name="x.mkv", state="blocked",
                                 reasons=["A sample, not the movie."], overridable=True)
        movie = Movie.create(key="x|", title="X")
        mfile = MovieFile.create(movie=movie, path="X/x.mkv", size=1, quality="DVD")
        dupe_set = DuplicateSet.create(scan=DupeScan.create(state="done"), size=1,
                                       paths=["a.mkv", "b.mkv"])
        qprofile = QualityProfile.create(name="Spare", allowed=["DVD"], cutoff="DVD")
        (tmp_path / "in").mkdir()
        inbox = Inbox.create(path=str(tmp_path / "in"))
        target = NotificationTarget.create(name="Hook", url="json://127.0.0.1:9/hook",
                                           events=["backup.failed"])
        alert = Alert.create(key="backup.failed", title="t", message="m", subject="run:1")
    return dict(user=vera.id, profile=profile.id, run=run.id, src=tmp_path / "src",
                drive=drive.id, host=host.id, breaker=breaker.id, snap=snap.name,
                verification=check.id, restore=restore.id, item=item.id, movie=movie.id,
                mfile=mfile.id, set=dupe_set.id, qprofile=qprofile.id, inbox=inbox.id,
                target=target.id, alert=alert.id)
