"""Backing up a folder of another machine over SSH, against a real sshd on loopback: a pull
into snapshots like any local folder, and a run deferred while its host cannot be reached."""

import datetime as dt
import os
import pwd

import pytest

from jobs import backup, hosts
from jobs.engines import snapshots
from models import Breaker, Host, Run, utcnow
from tests.conftest import SSH_TEST_USER
from tests.helpers.trees import describe, inodes, write
from tests.jobs.conftest import make_profile

pytestmark = pytest.mark.usefixtures("inline")


@pytest.fixture
def laptop(sshd):
    """A pinned host that holds Cairn's key, with a folder of files in its share."""
    host = Host.create(user=SSH_TEST_USER, hostname="127.0.0.1", port=sshd.port)
    hosts.fetch_host_key(host.id)
    hosts.pin(Host.get_by_id(host.id))
    sshd.authorize(hosts.public_key())
    data = sshd.share / "Documents"
    write(data / "letters" / "to granny.txt", "dear granny", mtime=1_600_000_000)
    write(data / "letters" / "draft.tmp", "scratch")
    write(data / "taxes" / "2026.pdf", os.urandom(50_000), mode=0o600)
    os.symlink("letters/to granny.txt", data / "latest-letter")
    for folder in (data, data / "letters", data / "taxes"):
        os.chmod(folder, 0o755)
    os.chmod(data / "taxes" / "2026.pdf", 0o644)
    return Host.get_by_id(host.id), data


def source_of(host: Host, data) -> str:
    return f"{SSH_TEST_USER}@127.0.0.1:{host.port}:{data}"


def test_a_hosts_folder_is_backed_up_into_snapshots_like_a_local_one(laptop, tmp_path):
    host, data = laptop
    profile = make_profile(sources=[source_of(host, data)], dest=tmp_path / "backups",
                           excludes=["*.tmp"])
    first = Run.get_by_id(backup.request_run(profile).id)
    assert first.state == "succeeded", first.message
    tree = tmp_path / "backups" / profile.slug / first.snapshot / \
        snapshots.in_snapshot(str(data), host="127.0.0.1")
    expected = {k: v for k, v in describe(data).items() if not k.endswith(b".tmp")}
    assert describe(tree) == expected
    assert first.total_files == first.files_done == 3   # the scan saw what rsync copied
    second = Run.get_by_id(backup.request_run(profile).id)
    assert second.state == "succeeded" and second.new_files == second.changed_files == 0
    again = tmp_path / "backups" / profile.slug / second.snapshot / \
        snapshots.in_snapshot(str(data), host="127.0.0.1")
    assert inodes(again) == inodes(tree)


def test_a_run_waits_while_its_host_is_down_and_starts_at_the_next_try(laptop, sshd, tmp_path):
    host, data = laptop
    profile = make_profile(sources=[source_of(host, data)], dest=tmp_path / "backups")
    sshd.stop()
    run = Run.get_by_id(backup.request_run(profile).id)
    assert run.state == "interrupted"
    assert "cannot be reached" in run.message and "starts again at" in run.message
    breaker = Breaker.get(Breaker.name == host.breaker_name)
    assert breaker.state == "open"
    # A second run while the breaker is open does not even try to connect.
    again = Run.get_by_id(backup.request_run(profile).id)
    assert again.state == "interrupted" and "paused after 1 failure" in again.message
    sshd.start()
    Breaker.update(next_try=utcnow() - dt.timedelta(seconds=1)).execute()   # the minute passed
    backup.retry_deferred(again.id)
    done = Run.get_by_id(again.id)
    assert done.state == "succeeded", done.message
    assert Breaker.get_by_id(breaker.id).state == "closed"


def test_a_source_on_an_unknown_host_or_a_missing_folder_fails_with_the_reason(laptop, tmp_path):
    host, data = laptop
    stranger = make_profile(name="Stranger", sources=["bob@elsewhere.invalid:/srv"],
                            dest=tmp_path / "b1")
    run = Run.get_by_id(backup.request_run(stranger).id)
    assert run.state == "failed" and "bob@elsewhere.invalid is not an added host" in run.message
    missing = make_profile(name="Missing", sources=[source_of(host, data.parent / "nothing")],
                           dest=tmp_path / "b2")
    run = Run.get_by_id(backup.request_run(missing).id)
    assert run.state == "failed" and "Cannot list" in run.message
    assert "No such file or directory" in run.message


def test_this_boxs_folders_are_pushed_into_snapshots_on_a_host(laptop, sshd, tmp_path):
    host, _ = laptop
    offsite = sshd.share / "offsite"
    offsite.mkdir()
    os.chown(offsite, pwd.getpwnam(SSH_TEST_USER).pw_uid, -1)
    source = tmp_path / "Photos"
    write(source / "cat.jpg", os.urandom(20_000), mtime=1_600_000_000)
    write(source / "trip" / "beach.jpg", os.urandom(30_000))
    destination = f"{SSH_TEST_USER}@127.0.0.1:{host.port}:{offsite}"
    profile = make_profile(sources=[source], dest=destination, create_dest=False)
    first = Run.get_by_id(backup.request_run(profile).id)
    assert first.state == "succeeded", first.message
    root = offsite / profile.slug
    tree = root / first.snapshot / snapshots.in_snapshot(str(source))
    assert describe(tree) == describe(source)
    assert os.readlink(root / "latest") == first.snapshot
    write(source / "new.txt", "new")
    second = Run.get_by_id(backup.request_run(profile).id)
    assert second.state == "succeeded" and (second.new_files, second.changed_files) == (1, 0)
    assert second.link_from == first.snapshot
    again = root / second.snapshot / snapshots.in_snapshot(str(source))
    assert os.stat(again / "cat.jpg").st_ino == os.stat(tree / "cat.jpg").st_ino   # --link-dest
    assert sorted(p.name for p in root.iterdir()) == sorted([first.snapshot, second.snapshot, "latest"])
    dry = Run.get_by_id(backup.request_run(profile, dry_run=True).id)
    assert dry.state == "succeeded" and "0 new and 0 changed" in dry.message


def test_a_push_to_a_folder_the_host_user_cannot_write_fails_and_keeps_nothing(laptop, sshd,
                                                                               tmp_path):
    host, _ = laptop
    locked = sshd.share / "locked"
    locked.mkdir(mode=0o755)   # root's: the host user may not write here
    source = write(tmp_path / "src" / "a.txt", "a").parent
    profile = make_profile(sources=[source], create_dest=False,
                           dest=f"{SSH_TEST_USER}@127.0.0.1:{host.port}:{locked}")
    run = Run.get_by_id(backup.request_run(profile).id)
    assert run.state == "failed" and "Permission denied" in run.message
    assert list(locked.iterdir()) == []


def test_a_pulled_folder_is_restored_to_its_host_through_the_same_host_entry(laptop, sshd,
                                                                             tmp_path):
    from jobs import restores
    from jobs.engines import restore as restore_engine
    from models import Host, Restore, Snapshot
    host, data = laptop
    profile = make_profile(sources=[source_of(host, data)], dest=tmp_path / "backups")
    run = Run.get_by_id(backup.request_run(profile).id)
    assert run.state == "succeeded", run.message
    snapshot = Snapshot.get(Snapshot.name == run.snapshot)
    inside = snapshots.in_snapshot(str(data), host="127.0.0.1") + "/letters"
    uid = pwd.getpwnam(SSH_TEST_USER).pw_uid
    for path in [data, *data.rglob("*")]:   # the folder is the host user's own, as in life
        os.chown(path, uid, -1, follow_symlinks=False)
    os.remove(data / "letters" / "to granny.txt")
    done = Restore.get_by_id(restores.request(snapshot, [inside], target=None, host=host).id)
    assert done.state == "succeeded", (done.message, done.errors)
    assert (data / "letters" / "to granny.txt").read_text() == "dear granny"
    assert os.stat(data / "letters" / "to granny.txt").st_uid == uid
    elsewhere = sshd.share / "restored"
    elsewhere.mkdir()
    os.chown(elsewhere, uid, -1)
    with pytest.raises(restore_engine.RestoreError, match="neither where these files came from"):
        restores.request(snapshot, [inside], target=str(elsewhere), host=host)
    Host.update(restore_roots=[str(elsewhere)]).where(Host.id == host.id).execute()
    host = Host.get_by_id(host.id)
    done = Restore.get_by_id(restores.request(snapshot, [inside], target=str(elsewhere),
                                              host=host).id)
    assert done.state == "succeeded", done.message
    assert (elsewhere / "letters" / "to granny.txt").read_text() == "dear granny"
