"""Done means on disk: a power cut right after a run says "succeeded" loses nothing of it.

The destination is an ext4 filesystem on a loop device whose journal commits only every 300
s. Copying the loop device's backing file right after the run gives exactly what the disk
held at that moment, without the page cache: what a power cut would leave. (A device-mapper
`flakey` table would be the other way to throw later writes away; this kernel has no
device-mapper.)"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from jobs import backup
from jobs.engines import snapshots
from models import Run
from tests.helpers.trees import write
from tests.jobs.conftest import make_profile

pytestmark = [pytest.mark.usefixtures("inline"), pytest.mark.skipif(
    os.geteuid() != 0, reason="loop devices and mounts need root")]


def attach(image: Path, mount: Path, *options: str) -> str:
    loop = subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                          capture_output=True, text=True).stdout.strip()
    mount.mkdir(exist_ok=True)
    subprocess.run(["mount", *options, loop, str(mount)], check=True, capture_output=True)
    return loop


def detach(loop: str, mount: Path) -> None:
    subprocess.run(["umount", str(mount)], check=False, capture_output=True)
    subprocess.run(["losetup", "-d", loop], check=False, capture_output=True)


@pytest.fixture
def lazy_disk(tmp_path):
    """A 64 MB ext4 'disk' that writes its journal only every 5 minutes."""
    image = tmp_path / "disk.img"
    with open(image, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    mount = tmp_path / "disk"
    loop = attach(image, mount, "-o", "commit=300")
    yield image, mount
    detach(loop, mount)


def test_a_succeeded_snapshot_survives_a_power_cut_right_after(tmp_path, lazy_disk):
    image, disk = lazy_disk
    source = tmp_path / "src"
    photo = write(source / "photos" / "beach.jpg", os.urandom(3 * 1024 * 1024))
    write(source / "notes.txt", "notes")
    profile = make_profile(sources=[source], dest=disk / "backups")
    run = Run.get_by_id(backup.request_run(profile).id)
    assert run.state == "succeeded", run.message
    # The power cut: what the disk holds now, not what the page cache does.
    shutil.copyfile(image, tmp_path / "after-the-cut.img")
    after = tmp_path / "after"
    loop = attach(tmp_path / "after-the-cut.img", after)   # replays the journal, as a boot would
    try:
        root = after / "backups" / profile.slug
        kept = root / run.snapshot / snapshots.in_snapshot(str(source))
        assert os.readlink(root / "latest") == run.snapshot
        assert (kept / "photos" / "beach.jpg").read_bytes() == photo.read_bytes()
        assert (kept / "notes.txt").read_text() == "notes"
    finally:
        detach(loop, after)
