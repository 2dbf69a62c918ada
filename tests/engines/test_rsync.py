"""One unit's rsync: a faithful copy, counts from its itemized lines, stats, stop, bad outcomes."""

import gzip
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import xxhash

from jobs.engines import rsync
from jobs.engines.rsync import BandwidthError, Transfer, format_bandwidth, parse_bandwidth
from tests.helpers.trees import awkward_tree, describe, inodes, link_groups, write


def copy(source, dest, **options):
    return rsync.run(Transfer(source=str(source), dest=str(dest), **options))


def test_a_round_trip_keeps_modes_times_links_hardlinks_empty_folders_and_names(tmp_path):
    source = awkward_tree(tmp_path / "src")
    result = copy(source, tmp_path / "dst")
    assert result.outcome == "done", result.errors
    assert describe(tmp_path / "dst") == describe(source)
    assert link_groups(tmp_path / "dst") == link_groups(source)


def test_a_sparse_file_stays_sparse_in_the_copy(tmp_path):
    image = tmp_path / "src" / "disk.img"
    image.parent.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(256 * 1024 * 1024)          # 256 MiB, nearly all of it a hole
        fh.seek(100 * 1024 * 1024)
        fh.write(os.urandom(1024 * 1024))
    assert os.stat(image).st_blocks * 512 < 4 * 1024 * 1024, "tmp_path keeps holes"
    assert copy(tmp_path / "src", tmp_path / "dst").outcome == "done"
    copied = os.stat(tmp_path / "dst" / "disk.img")
    assert copied.st_size == 256 * 1024 * 1024 and copied.st_blocks * 512 < 4 * 1024 * 1024


def test_counts_come_from_the_itemized_lines_and_match_the_stats(tmp_path):
    source = awkward_tree(tmp_path / "src")
    result = copy(source, tmp_path / "dst")
    files = sum(1 for v in describe(source).values() if v[0] != "dir")
    assert result.counts.files == files
    assert result.stats["total_size"] == result.counts.bytes
    assert result.counts.new_files == result.stats["transferred_files"]
    assert result.counts.sent_bytes == result.stats["transferred_size"]


def test_an_unchanged_second_snapshot_links_every_file_to_the_first(tmp_path):
    source = awkward_tree(tmp_path / "src")
    copy(source, tmp_path / "one")
    result = copy(source, tmp_path / "two", link_dest=str(tmp_path / "one"))
    assert result.counts.new_files == 0 and result.counts.sent_bytes == 0
    files = sum(1 for v in describe(source).values() if v[0] == "file")
    assert result.counts.files >= files
    assert inodes(tmp_path / "two") == inodes(tmp_path / "one")
    assert describe(tmp_path / "two") == describe(source)


def test_a_changed_file_is_copied_and_counted_as_changed(tmp_path):
    write(tmp_path / "src" / "a.txt", "one")
    write(tmp_path / "src" / "b.txt", "same")
    copy(tmp_path / "src", tmp_path / "one")
    write(tmp_path / "src" / "a.txt", "two!", mtime=2_000_000_000)
    write(tmp_path / "src" / "c.txt", "new")
    result = copy(tmp_path / "src", tmp_path / "two", link_dest=str(tmp_path / "one"))
    assert (result.counts.new_files, result.counts.changed_files) == (1, 1)
    assert result.counts.files == 3


def test_changed_lines_go_to_the_compressed_log_and_dry_runs_keep_them(tmp_path):
    write(tmp_path / "src" / "a.txt", "one")
    log = tmp_path / "unit.log.gz"
    result = rsync.run(Transfer(source=str(tmp_path / "src"), dest=str(tmp_path / "dst"),
                                dry_run=True), log_path=str(log))
    assert not (tmp_path / "dst").exists()
    assert any(item.endswith(" a.txt") and item.startswith(">f+++++++++") for item in result.items)
    assert b"a.txt" in gzip.decompress(log.read_bytes())


def test_an_unreadable_file_is_partial_and_named(tmp_path):
    write(tmp_path / "src" / "ok.txt", "fine")
    write(tmp_path / "src" / "locked.txt", "secret", mode=0)
    # Root reads everything; drop the capabilities that let it, as the real worker has none
    # beyond reading... so rsync meets a file it truly cannot open.
    command = Transfer(source=str(tmp_path / "src"), dest=str(tmp_path / "dst")).command()
    done = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--",
                           *command], capture_output=True, text=True)
    assert done.returncode == rsync.EXIT_PARTIAL
    messages = rsync._Messages()
    for line in done.stderr.encode().splitlines(keepends=True):
        messages.feed(line)
    assert messages.error_count == 1 and "locked.txt" in messages.errors[0]
    assert (tmp_path / "dst" / "ok.txt").exists()


def test_a_file_deleted_during_the_copy_is_a_warning(tmp_path):
    write(tmp_path / "src" / "a-big.bin", os.urandom(600_000))
    write(tmp_path / "src" / "z-doomed.txt", "bye")
    timer = threading.Timer(0.7, lambda: os.unlink(tmp_path / "src" / "z-doomed.txt"))
    timer.start()
    result = copy(tmp_path / "src", tmp_path / "dst", bwlimit_kib=300)
    timer.join()
    assert result.exit_code == rsync.EXIT_VANISHED
    assert result.outcome == "warning"
    assert "z-doomed.txt" in result.warnings[0]


def test_stop_ends_rsync_and_its_helpers(tmp_path):
    write(tmp_path / "src" / "big.bin", os.urandom(3_000_000))
    pids = []
    started = time.monotonic()
    result = rsync.run(Transfer(source=str(tmp_path / "src"), dest=str(tmp_path / "dst"),
                                bwlimit_kib=100),
                       should_stop=lambda: time.monotonic() - started > 1, on_start=pids.append)
    assert result.stopped and result.outcome == "cancelled"
    assert time.monotonic() - started < 8
    assert subprocess.run(["pgrep", "-g", str(pids[0])], capture_output=True).stdout == b""


def test_a_full_destination_is_fatal_not_retried(tmp_path):
    dest = tmp_path / "small"
    dest.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(dest)], check=True)
    try:
        write(tmp_path / "src" / "big.bin", os.urandom(1_000_000))
        result = copy(tmp_path / "src", dest / "snap")
    finally:
        subprocess.run(["umount", str(dest)], check=True)
    assert result.disk_full and result.outcome == "fatal"


def test_arguments_are_a_list_and_paths_cannot_be_options(tmp_path):
    command = Transfer(source="/home/-rf x", dest="/backup/--delete", excludes=("--x",)).command()
    assert command[-3:] == ["--", "/home/-rf x/", "/backup/--delete/"]
    assert "--exclude=--x" in command and "--protect-args" in command
    assert "--numeric-ids" in command and "--hard-links" in command


def test_mirror_mode_uses_flags_a_fat_drive_can_keep():
    command = Transfer(source="/a", dest="/b", mirror=True, link_dest="/c").command()
    assert "--modify-window=2" in command
    assert not {"--perms", "--owner", "--hard-links", "--links"} & set(command)
    assert not any(arg.startswith("--link-dest") for arg in command)


@pytest.mark.parametrize("text, kib", [("10M", 10240), ("1.5G", 1572864), ("500K", 500),
                                       ("800", 800), ("10mb", 10240), ("2 MiB/s", 2048), ("", None)])
def test_bandwidth_limits_parse(text, kib):
    assert parse_bandwidth(text) == kib


@pytest.mark.parametrize("text", ["fast", "10X", "-5M", "0", "0.5", "1e3M", "200000G"])
def test_bad_bandwidth_limits_are_refused(text):
    with pytest.raises(BandwidthError):
        parse_bandwidth(text)


def test_bandwidth_limits_print_back():
    assert [format_bandwidth(k) for k in (10240, 1572864, 500, None)] == ["10M", "1.5G", "500K", ""]


# The installed worker's rights (deploy/cairn-worker.service), as user nobody.
WORKER_CAPS = "+chown,+fowner,+dac_read_search,+dac_override"
AS_WORKER = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             f"--inh-caps={WORKER_CAPS}", f"--ambient-caps={WORKER_CAPS}", "--"]


@pytest.mark.parametrize("super_user, owner", [(True, 1234), (False, 65534)])
def test_an_unprivileged_worker_keeps_owners_only_with_super(tmp_path, super_user, owner):
    # The installed worker is not root: it runs as `cairn` with CAP_CHOWN and CAP_FOWNER,
    # and rsync believes it may set owners only when told --super.
    source = write(tmp_path / "src" / "ada.txt", "mine", mode=0o600).parent
    os.chown(source / "ada.txt", 1234, 1234)
    dest = tmp_path / "dst"
    dest.mkdir()
    os.chown(dest, 65534, 65534)
    command = Transfer(source=str(source), dest=str(dest / "snap"), super_user=super_user).command()
    done = subprocess.run([*AS_WORKER, *command], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    st = os.stat(dest / "snap" / "ada.txt")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (owner, owner, 0o600)


def test_the_worker_knows_when_it_needs_super(tmp_path):
    check = [sys.executable, "-c", "from jobs.engines.snapshots import keeps_owners_without_root as k;"
             " print(k())"]
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 65534, 65534)
    env = {"PATH": os.environ["PATH"], "CAIRN_DATA_DIR": str(data)}
    as_worker = subprocess.run([*AS_WORKER, *check], capture_output=True, text=True, env=env,
                               cwd=Path(__file__).resolve().parents[2])
    assert as_worker.stdout.strip() == "True", as_worker.stderr
    as_root = subprocess.run(check, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    assert as_root.stdout.strip() == "False"


def test_with_checksums_copied_files_get_rsyncs_hash_and_the_log_keeps_its_format(tmp_path):
    source = awkward_tree(tmp_path / "src")
    plain, summed = tmp_path / "plain", tmp_path / "summed"
    first = rsync.run(Transfer(source=str(source), dest=str(plain)), log_path=str(tmp_path / "p.gz"))
    second = rsync.run(Transfer(source=str(source), dest=str(summed), checksums=True),
                       log_path=str(tmp_path / "s.gz"), sums_path=str(tmp_path / "s.sums"))
    assert second.counts == first.counts
    assert describe(summed) == describe(plain)

    def log(name):   # the lines, without the folders' sizes (which may differ)
        return sorted(line.split(b" ", 2)[::2] for line in gzip.open(tmp_path / name).read().splitlines())

    assert log("s.gz") == log("p.gz")
    sums = list(rsync.read_sums(tmp_path / "s.sums"))
    assert len(sums) == first.counts.new_files   # every file copied (not those linked by -H)
    for name, size, digest in sums:
        data = (source / os.fsdecode(name)).read_bytes()
        assert (size, digest) == (len(data), xxhash.xxh3_128(data).digest())


def test_a_sums_line_cut_by_a_killed_worker_is_dropped_before_the_next_lines(tmp_path):
    path = tmp_path / "unit.sums"
    whole = b"0" * 32 + b" 5 photos/image.jpg\n"
    path.write_bytes(whole + b"1" * 32 + b" 100000 photos/im")   # cut mid-name
    source = tmp_path / "src"
    write(source / "new.txt", "fresh")
    rsync.run(Transfer(source=str(source), dest=str(tmp_path / "dst"), checksums=True),
              sums_path=str(path))
    assert path.read_bytes().startswith(whole + xxhash.xxh3_128(b"fresh").hexdigest().encode())
    assert [name for name, _, _ in rsync.read_sums(path)] == [b"photos/image.jpg", b"new.txt"]
    path.write_bytes(whole + b"2" * 32 + b" 100000 photos/im")
    assert [name for name, _, _ in rsync.read_sums(path)] == [b"photos/image.jpg"]


def test_checksums_are_offered_by_this_boxs_rsync():
    assert rsync.reports_checksums()


@pytest.mark.parametrize("checksums", [False, True], ids=["name before data", "name after data"])
def test_the_data_done_moves_while_a_large_file_is_copied(tmp_path, checksums):
    # A bandwidth limit makes the 6 MB file take about three seconds: rsync reports what it
    # has written of it about once a second, so the figures move before the file is done.
    write(tmp_path / "src" / "small.txt", "x" * 100)
    write(tmp_path / "src" / "video.mkv", os.urandom(6_000_000))
    seen = []
    result = rsync.run(Transfer(source=str(tmp_path / "src"), dest=str(tmp_path / "dst"),
                                bwlimit_kib=2000, checksums=checksums),
                       on_progress=lambda counts: seen.append((counts.done_bytes, counts.written)))
    assert result.outcome == "done", result.errors
    during = {done for done, _ in seen if 100 < done < 6_000_100}
    assert len(during) >= 2, seen
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert result.counts.done_bytes == result.counts.written == 6_000_100


def test_unchanged_and_linked_files_are_done_but_not_written(tmp_path):
    write(tmp_path / "src" / "old.bin", os.urandom(300_000))
    assert copy(tmp_path / "src", tmp_path / "first").outcome == "done"
    write(tmp_path / "src" / "new.bin", os.urandom(200_000))
    result = copy(tmp_path / "src", tmp_path / "second", link_dest=str(tmp_path / "first"))
    assert result.counts.done_bytes == 500_000 and result.counts.written == 200_000


def test_a_dry_run_writes_nothing_and_counts_what_it_saw(tmp_path):
    write(tmp_path / "src" / "a.bin", os.urandom(100_000))
    result = copy(tmp_path / "src", tmp_path / "dst", dry_run=True)
    assert result.counts.written == 0 and result.counts.done_bytes == 100_000


def test_progress_lines_do_not_crowd_out_the_summary(tmp_path):
    for n in range(300):   # more files than the reader keeps other lines for
        write(tmp_path / "src" / f"f{n}.txt", str(n))
    result = copy(tmp_path / "src", tmp_path / "dst")
    assert result.stats["files"] == 301 and result.stats["transferred_files"] == 300


@pytest.mark.parametrize(("line", "written"), [
    (b"\r      1,114,115  37%    1.00MB/s    0:00:01  ", 1114115),
    (b"\r  3   0%    0.00kB/s    0:00:00  \r  2,162,691  72% 1013.44kB/s    0:00:00  ", 2162691),
    (b"\r      3,000,003  99%    1.00MB/s    0:00:02 (xfr#2, to-chk=2/5)", 3000003),
    (b"\r      1,114", None),          # cut short by a read: not taken
    (b"sending incremental file list", None),
])
def test_the_written_figure_is_read_from_the_newest_progress_line(line, written):
    assert rsync.written_in(line) == written


def test_a_dry_runs_list_shows_names_as_names(tmp_path):
    source = tmp_path / "src"
    write(source / "Ünïcødé — Été" / "写真 1.jpg", "a")
    (source / "Ünïcødé — Été").joinpath("line\nbreak.txt").write_text("b")
    with open(os.fsencode(str(source)) + b"/caf\xe9.txt", "wb") as fh:   # Latin-1, no UTF-8
        fh.write(b"c")
    result = copy(source, tmp_path / "dst", dry_run=True)
    names = {item.split(" ", 2)[2] for item in result.items}
    assert {"Ünïcødé — Été/写真 1.jpg", "Ünïcødé — Été/line\\x0abreak.txt",
            "caf\\xe9.txt"} <= names
