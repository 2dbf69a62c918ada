"""Build source trees with every awkward thing a backup meets, and describe trees to compare."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

AWKWARD_NAMES = ["with space", "-leading-dash", "new\nline", "tab\there", "ünïcødé 写真",
                 "a[1]*?", "back\\slash", "+ plus", "- minus", "#hash"]


def write(path: Path, data: bytes | str, mode: int = 0o644, mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def awkward_tree(root: Path) -> Path:
    """Modes, mtimes, symlinks, hardlinks, empty folders, unicode and hostile names, a name
    that is not UTF-8, and a path close to 4096 bytes."""
    write(root / "docs" / "report.txt", "quarterly\n", 0o640, mtime=1_600_000_000)
    write(root / "docs" / "script.sh", "#!/bin/sh\necho hi\n", 0o755, mtime=1_600_000_100)
    write(root / "docs" / "private.key", "secret\n", 0o600)
    write(root / "photos" / "2024" / "beach.jpg", os.urandom(200_000))
    write(root / "photos" / "2024" / "dunes.jpg", os.urandom(150_000))
    for name in AWKWARD_NAMES:
        write(root / "names" / name / "file", name)
        write(root / "names" / f"{name}.txt", name * 3)
    (root / "empty" / "nested-empty").mkdir(parents=True)
    os.symlink("docs/report.txt", root / "link-to-report")
    os.symlink("/nonexistent/target", root / "dangling")
    os.link(root / "docs" / "report.txt", root / "photos" / "report-hardlink.txt")
    os.link(root / "photos" / "2024" / "beach.jpg", root / "names" / "beach-again.jpg")
    bad = os.fsencode(str(root / "names")) + b"/latin1-\xe9t\xe9"
    os.makedirs(bad)
    with open(bad + b"/caf\xe9.txt", "wb") as fh:
        fh.write(b"invalid utf-8 name")
    deep = root / "deep"
    while len(os.fsencode(str(deep))) < 3800:
        deep = deep / ("d" * 200)
    write(deep / "bottom.txt", "at the bottom")
    os.utime(root / "docs", (1_600_000_200, 1_600_000_200))
    return root


def describe(root: Path) -> dict[bytes, tuple]:
    """Every entry below `root` (paths as bytes): kind, mode, size, mtime, content or target."""
    out: dict[bytes, tuple] = {}
    base = os.fsencode(str(root))
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            rel = path[len(base) + 1:]
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
            else:
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_size, st.st_mtime_ns, digest)
    return out


def link_groups(root: Path) -> set[frozenset[bytes]]:
    """Groups of paths that share an inode."""
    by_inode: dict[tuple[int, int], set[bytes]] = {}
    base = os.fsencode(str(root))
    for folder, _dirs, files in os.walk(base):
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                by_inode.setdefault((st.st_dev, st.st_ino), set()).add(path[len(base) + 1:])
    return {frozenset(paths) for paths in by_inode.values() if len(paths) > 1}


def inodes(root: Path) -> dict[bytes, int]:
    base = os.fsencode(str(root))
    out = {}
    for folder, _dirs, files in os.walk(base):
        for name in files:
            path = os.path.join(folder, name)
            out[path[len(base) + 1:]] = os.lstat(path).st_ino
    return out


def torture_tree(root: Path) -> Path:
    """awkward_tree, plus a sparse file and extended attributes (where the filesystem keeps
    them): everything a restore must give back unchanged."""
    awkward_tree(root)
    with open(root / "sparse.img", "wb") as fh:
        fh.seek(20 * 1024 * 1024)
        fh.write(b"end")
    os.utime(root / "sparse.img", (1_600_000_300, 1_600_000_300))
    try:
        os.setxattr(root / "docs" / "report.txt", "user.origin", b"scanner")
    except OSError:
        pass   # tmpfs before 6.6 keeps no user.* attributes; xattrs(root) then shows none
    return root


def xattrs(root: Path) -> dict[bytes, dict[str, bytes]]:
    """The user.* extended attributes of every file and folder below `root`."""
    out = {}
    base = os.fsencode(str(root))
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            found = {a: os.getxattr(path, a) for a in os.listxattr(path) if a.startswith("user.")}
            if found:
                out[path[len(base) + 1:]] = found
    return out


# A worker's settings that split every tree into many small parts (each file its own part).
SMALL_UNITS = {"CAIRN_MIN_UNIT_SIZE": "1"}


def slow_tree(root: Path, folders=4, size=400_000) -> Path:
    """Files of random data (rsync cannot shrink them), enough for a bandwidth limit to show."""
    for i in range(folders):
        for j in range(4):
            write(root / f"folder{i}" / f"file{j}.bin", os.urandom(size // 4))
    return root


def snapshot_tree(profile, run, source):
    """Where `source` is inside the run's snapshot."""
    from jobs.engines import snapshots

    return Path(profile.destination) / profile.slug / run.snapshot / snapshots.in_snapshot(str(source))

