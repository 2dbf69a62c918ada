"""The one file hash of Cairn, xxh3-128: manifests, verification, the import's checks and the
duplicate scan all use it. Files are opened without following links and, where allowed,
without updating their access time."""

from __future__ import annotations

import os
from collections.abc import Callable

import xxhash

ALGORITHM = "xxh3-128"
BUFFER_BYTES = 1024 * 1024


def hash_fd(fd: int, buffer: bytearray,
            on_bytes: Callable[[int], None] | None = None) -> tuple[bytes, int]:
    """xxh3-128 of an open file's content, and how many bytes were read. The one file hash of
    Cairn: manifests, verification, the import's checks and the duplicate scan all use it."""
    digest = xxhash.xxh3_128()
    view = memoryview(buffer)
    total = 0
    with open(fd, "rb", buffering=0, closefd=False) as raw:
        while n := raw.readinto(buffer):
            digest.update(view[:n])
            total += n
            if on_bytes:
                on_bytes(n)
    return digest.digest(), total


def hash_file(path: bytes | str, buffer: bytearray | None = None,
              on_bytes: Callable[[int], None] | None = None) -> tuple[bytes, int]:
    fd = _open_file(os.fsencode(path))
    try:
        return hash_fd(fd, buffer or bytearray(BUFFER_BYTES), on_bytes)
    finally:
        os.close(fd)


# O_NOATIME keeps verification from writing atimes; only the owner or CAP_FOWNER may use it.
_NOATIME = getattr(os, "O_NOATIME", 0)


def _without_atime(opener: Callable[[int], int], flags: int) -> int:
    """`opener(flags)` with O_NOATIME, or without it where it is not allowed."""
    try:
        return opener(flags | _NOATIME)
    except PermissionError:
        return opener(flags)


def _open_file(path: bytes) -> int:
    # O_NONBLOCK: should a fifo have replaced the file since it was listed, do not wait on it.
    return _without_atime(lambda flags: os.open(path, flags),
                          os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
