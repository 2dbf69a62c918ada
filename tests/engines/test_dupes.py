"""Duplicate files found by the funnel on real trees: identical content however named,
hardlinks and symlinks not counted, files that differ only in the middle told apart, the
cache sparing a second read."""

import os

from jobs.engines import dupes
from tests.helpers.trees import write


def test_identical_files_are_found_and_everything_else_is_not(tmp_path):
    lib = tmp_path / "library"
    movie = os.urandom(300_000)
    write(lib / "Heat (1995)" / "Heat.mkv", movie)
    write(lib / "Heat copy" / "Heat (1).mkv", movie)
    write(lib / "Other" / "Heat again.mkv", movie)
    middle = bytearray(movie)
    middle[150_000] ^= 1   # same size, same first and last 64 KiB, one byte apart
    write(lib / "Near" / "Heat near.mkv", bytes(middle))
    write(lib / "Small" / "a.txt", "same small")
    write(lib / "Small" / "b.txt", "same small")
    os.link(lib / "Small" / "a.txt", lib / "Small" / "a-link.txt")   # one file, two names
    os.symlink(lib / "Heat (1995)" / "Heat.mkv", lib / "link.mkv")
    write(lib / "empty1", b"")
    write(lib / "empty2", b"")
    write(lib / ".cairn-recycle" / "2026-11-29" / "Heat.mkv", movie)
    scan = dupes.find([str(lib)])
    assert scan.sets == [
        sorted(str(p) for p in (lib / "Heat (1995)/Heat.mkv", lib / "Heat copy/Heat (1).mkv",
                                 lib / "Other/Heat again.mkv")),
        sorted(str(p) for p in (lib / "Small/a.txt", lib / "Small/a-link.txt", lib / "Small/b.txt")),
    ]
    assert scan.read_edges == 4 and scan.wasted_bytes == 600_000 + 10


def test_files_of_different_sizes_are_never_read(tmp_path):
    for i in range(50):
        write(tmp_path / f"f{i}", os.urandom(1000 + i))
    scan = dupes.find([str(tmp_path)])
    assert scan.sets == [] and scan.bytes_read == 0 and scan.files == 50


def test_a_second_scan_reads_only_what_changed(tmp_path):
    data = os.urandom(200_000)
    for name in ("a", "b", "c"):
        write(tmp_path / name, data)
    cache = {}
    first = dupes.find([str(tmp_path)], cache)
    assert first.read_full == 3
    write(tmp_path / "c", data)   # rewritten: a new mtime (and inode), read again
    second = dupes.find([str(tmp_path)], cache)
    assert second.read_full == 1 and second.sets == first.sets


def test_the_walk_reads_any_name_and_the_same_keys_as_stat(tmp_path):
    odd = [b"new\nline.mkv", b"sp ace  .mkv", b"caf\xe9-latin1.mkv", "日本語.mkv".encode(), b"-n"]
    for name in odd:
        with open(os.path.join(os.fsencode(tmp_path), name), "wb") as out:
            out.write(b"same content")
    (tmp_path / "unreadable").mkdir(mode=0)
    found = dict(dupes.listed(size, more) for size, more in dupes.walk(str(tmp_path)))
    assert sorted(found) == sorted(os.path.join(os.fsencode(tmp_path), n) for n in odd)
    for path, listed in found.items():
        st = os.stat(path)
        assert dupes.cache_key(listed) == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    assert len(dupes.find([str(tmp_path)]).sets[0]) == len(odd)
