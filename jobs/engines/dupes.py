"""Byte-identical files in a library, found with a funnel so that most files are never read:
same size → same first 4 KiB → same first and last 64 KiB → same full content (xxh3-128).

Files that are hardlinks of each other are one file, not duplicates (as jdupes treats them
by default); symlinks, empty files and Cairn's recycle folder are left out. Hashes are kept
in a cache keyed by (device, inode, size, mtime), so a second scan reads only what changed.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field

import xxhash

from jobs.engines import hashing

HEAD = 4 * 1024
EDGE = 64 * 1024
RECYCLE_FOLDER = ".cairn-recycle"   # Cairn's own recycle folder, at any depth

Key = tuple[int, int, int, int]   # device, inode, size, mtime_ns


@dataclass
class Scan:
    sets: list[list[str]] = field(default_factory=list)   # each sorted; sets sorted by first path
    files: int = 0
    read_heads: int = 0
    read_edges: int = 0
    read_full: int = 0
    bytes_read: int = 0
    unreadable: list = field(default_factory=list)        # paths: bytes while scanning
    # What removing all but one copy of each set would free (hardlinks free nothing).
    wasted_bytes: int = 0


def walk(root: str) -> Iterator[tuple[int, bytes]]:
    """Every regular, non-empty file below `root` (symlinks not followed), as the walk finds
    it: its size, and the rest of what find wrote of it (device, inode, mtime, path), which
    `listed()` reads; most files have a size no other file has, and are never read further.

    GNU find walks and stats in C, in a process of its own: on a second core it lists while
    `find()` already reads the first bytes of same-size files, instead of a scandir and a
    stat per file in Python, which was most of a whole scan. find is part of every Debian
    (findutils is essential). Folders it cannot read are skipped, as jdupes does."""
    if not root.startswith("/"):
        root = "./" + root   # never read as one of find's options
    command = ["find", root, "(", "-type", "d", "-name", RECYCLE_FOLDER, "-prune", ")", "-o",
               "(", "-type", "f", "!", "-empty", "-printf", r"%s %D %i %T@ %p\0", ")"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as lister:
        rest = b""
        while chunk := lister.stdout.read1(1 << 20):
            records = (rest + chunk).split(b"\0")
            rest = records.pop()
            for record in records:
                size, more = record.split(b" ", 1)
                yield int(size), more


def listed(size: int, more: bytes) -> tuple[bytes, tuple[bytes, bytes, int, bytes]]:
    """A walked file's path, and its device, inode, size and mtime as find wrote them."""
    dev, ino, mtime, path = more.split(b" ", 3)
    return path, (dev, ino, size, mtime)


def cache_key(found: tuple[bytes, bytes, int, bytes]) -> Key:
    dev, ino, size, mtime = found
    return int(dev), int(ino), size, _nanoseconds(mtime)


def _nanoseconds(stamp: bytes) -> int:
    """find's %T@ ("1732845600.1234567890") as integer nanoseconds, as os.stat gives them."""
    seconds, _, fraction = stamp.partition(b".")
    return int(seconds) * 1_000_000_000 + int((fraction + b"000000000")[:9])


def find(roots: Iterable[str], cache: MutableMapping[Key, str] | None = None,
         on_progress: Callable[[Scan], None] | None = None) -> Scan:
    """The sets of byte-identical files below `roots`.

    The funnel streams: a file enters a stage when a second file with the same key arrives
    there (then the first one is read too), so each file is read exactly as in a stage-by-
    stage funnel, but the reading starts while find is still listing: this thread sorts the
    listing by size (the first stage, inline: it runs once per file, and most files stop
    there), a second one does the
    reading stages, fed by a queue; find lists in its own process. (A thread per reading
    stage was slower on two cores: more threads than cores, taking turns at the GIL.)"""
    scan = Scan()
    cache = {} if cache is None else cache
    collected = _Collect()
    full = _Stage(_full, "read_full", scan, collected.put, cache)
    edges = _Stage(_edges, "read_edges", scan, full.take)
    heads = _Stage(_head, "read_heads", scan,
                   lambda key, links: (edges if key[0] > 2 * EDGE else full).take(key, links))
    # A small file is all head: it is hashed once, whole.
    hashing = _Thread(lambda key, links: (heads if key[0] > HEAD else full).take(key, links))
    by_size: dict[int, bytes | dict] = {}
    try:
        for root in roots:
            for size, more in walk(root):
                scan.files += 1
                seen = by_size.get(size)
                if seen is None:   # most sizes: kept as find wrote them, never read again
                    by_size[size] = more
                    continue
                if type(seen) is bytes:
                    seen = by_size[size] = _by_inode({}, size, seen, hashing)
                _by_inode(seen, size, more, hashing)
        if on_progress:
            on_progress(scan)
    finally:
        hashing.finish()
    scan.bytes_read = heads.bytes + edges.bytes + full.bytes
    groups = collected.sets()
    scan.sets = sorted(sorted(os.fsdecode(path) for links in same for path, _ in links)
                       for same in groups)
    # Each member of a set is one inode (its `links` are all its names).
    scan.wasted_bytes = sum((len(same) - 1) * same[0][0][1][2] for same in groups)
    scan.unreadable = [os.fsdecode(path) for path in scan.unreadable]
    return scan


def _by_inode(inodes: dict, size: int, more: bytes, hashing: _Thread) -> dict:
    """The first stage, for a size that two files have: another name of a known inode joins
    its names; a second inode sends both on to be read, a later one itself."""
    path, found = listed(size, more)
    links = inodes.get(found[:2])
    if links is not None:
        links.append((path, found))
        return inodes
    links = inodes[found[:2]] = [(path, found)]
    if len(inodes) == 2:
        hashing.put((size,), next(iter(inodes.values())))
    if len(inodes) >= 2:
        hashing.put((size,), links)
    return inodes


class _Stage:
    """One step of the funnel: `take(key, links)` reads a file only once another with the
    same key came (and reads that first one then too); each digest read extends the key for
    the next step. `links` is every name of one inode (more may join while it travels)."""

    def __init__(self, read, count: str, scan: Scan, onward: Callable[[tuple, list], None],
                 cache: MutableMapping[Key, str] | None = None) -> None:
        self.read, self.count, self.scan, self.onward, self.cache = read, count, scan, onward, cache
        self.first: dict[tuple, list | None] = {}
        self.bytes = 0

    def take(self, key: tuple, links: list) -> None:
        if key not in self.first:
            self.first[key] = links
            return
        waiting = self.first[key]
        if waiting is not None:
            self.first[key] = None
            self._read(key, waiting)
        self._read(key, links)

    def _read(self, key: tuple, links: list) -> None:
        path, found = links[0]
        known = cache_key(found) if self.cache is not None else None
        digest = self.cache.get(known) if self.cache is not None else None
        if digest is None:
            digest, read_bytes = _safely(self.read, path)
            setattr(self.scan, self.count, getattr(self.scan, self.count) + 1)
            self.bytes += read_bytes
            if digest is None:
                self.scan.unreadable.append(path)
                return
            if self.cache is not None:
                self.cache[known] = digest
        self.onward((*key, digest), links)


class _Thread:
    """A stage's reading on a thread of its own, fed in order by a queue."""

    def __init__(self, take: Callable[[tuple, list], None]) -> None:
        self.take = take
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="cairn-dupes", daemon=True)
        self.thread.start()

    def put(self, key: tuple, links: list) -> None:
        self.queue.put((key, links))

    def _run(self) -> None:
        try:
            while (job := self.queue.get()) is not None:
                self.take(*job)
        except BaseException as error:   # handed to the scanning thread by finish()
            self.error = error
            while self.queue.get() is not None:
                pass   # let finish() find its end of the queue

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class _Collect:
    """The end of the funnel: inodes whose every digest matched."""

    def __init__(self) -> None:
        self.groups: dict[tuple, list] = defaultdict(list)

    def put(self, key: tuple, links: list) -> None:
        self.groups[key].append(links)

    def sets(self) -> list[list]:
        return [group for group in self.groups.values() if len(group) > 1]


def _safely(read, path: bytes) -> tuple[str | None, int]:
    try:
        return read(path)
    except OSError:
        return None, 0


def _head(path: bytes) -> tuple[str, int]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        return xxhash.xxh3_128_hexdigest(os.read(fd, HEAD)), HEAD
    finally:
        os.close(fd)


def _edges(path: bytes) -> tuple[str, int]:
    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        digest.update(fh.read(EDGE))
        fh.seek(-EDGE, os.SEEK_END)
        digest.update(fh.read(EDGE))
    return digest.hexdigest(), 2 * EDGE


def _full(path: bytes) -> tuple[str, int]:
    digest, read = hashing.hash_file(path)
    return digest.hex(), read
