"""Giving files back: where a snapshot path came from, where it goes, and the rsync that
copies it there (never with --delete: a restore adds and, when told to, replaces; it never
removes anything at the target).

Paths inside a snapshot start with the machine they came from: `localhost/home/ada/Photos`
was /home/ada/Photos on this box, `nas.lan/srv/music` was /srv/music on the host nas.lan.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobs.engines import manifest, rsync
from jobs.engines.snapshots import LOCAL_HOST, PARTIAL_SUFFIX, SNAPSHOT_NAME

RESTORED_PREFIX = "cairn-restore-"
MAX_TARGET_BYTES = 3000


class RestoreError(ValueError):
    """A restore that cannot be done as asked, with a message for people."""


def original(path: str) -> tuple[str, str]:
    """(machine, absolute path) a snapshot path was backed up from."""
    machine, _, rest = manifest.clean_path(path).partition("/")
    return machine, "/" + rest


def snapshot_path(source_path: str, machine: str = LOCAL_HOST) -> str:
    """The place in a snapshot of a path as it was on its machine: /home/ada → localhost/home/ada."""
    if not source_path.startswith("/"):
        raise RestoreError(f"{source_path!r}: give the absolute path it had on the source.")
    return manifest.clean_path(machine + "/" + source_path.strip("/"))


def beside_original(paths: list[str], snapshot: str) -> str:
    """The default target: a new folder next to the first item, named after the snapshot."""
    _machine, where = original(paths[0])
    parent = os.path.dirname(where.rstrip("/")) or "/"
    return os.path.join(parent, RESTORED_PREFIX + snapshot)


def check_target(target: str) -> str:
    """An absolute, plain folder path to restore into; never inside a snapshot folder."""
    if not target.startswith("/") or "\x00" in target:
        raise RestoreError("Restore to an absolute folder path, such as /home/ada/restored.")
    if any(ch.isspace() and ch != " " or ord(ch) < 32 for ch in target):
        raise RestoreError("A restore target cannot contain tabs, newlines or control characters.")
    norm = os.path.normpath(target)
    if any(part == ".." for part in target.split("/")):
        raise RestoreError("A restore target cannot contain '..'.")
    if len(os.fsencode(norm)) > MAX_TARGET_BYTES or \
            any(len(os.fsencode(part)) > 255 for part in norm.split("/")):
        raise RestoreError(f"A restore target is at most {MAX_TARGET_BYTES} bytes long, and "
                           "each folder name in it at most 255.")
    for part in norm.split("/"):
        if SNAPSHOT_NAME.match(part.removesuffix(PARTIAL_SUFFIX)):
            raise RestoreError("Restoring into a snapshot would change it; choose another folder.")
    return norm


MAX_ROOTS = 20


def parse_roots(text: str) -> tuple[str, ...]:
    """Folders given one per line (or separated by ':'), each checked like a target."""
    folders = []
    for part in (p.strip() for line in text.splitlines() for p in line.split(":")):
        if part and check_target(part) not in folders:
            folders.append(check_target(part))
    if len(folders) > MAX_ROOTS:
        raise RestoreError(f"Name at most {MAX_ROOTS} folders.")
    return tuple(folders)


def shown(path: str) -> str:
    """A path for people and logs: bytes that are not UTF-8 as \\x escapes (a name is bytes;
    the text keeps them as surrogates, which no terminal or database takes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@dataclass(frozen=True)
class Group:
    """Items that go into one folder: the folder, and their paths inside the snapshot."""

    dest: str
    paths: tuple[str, ...]


def plan(paths: list[str], target: str | None) -> list[Group]:
    """Where each item goes: all into `target`, or (None) each back to its own folder."""
    if target is not None:
        return [Group(target, tuple(paths))]
    groups: dict[str, list[str]] = {}
    for path in paths:
        _machine, where = original(path)
        if where == "/":
            raise RestoreError("A whole machine cannot go back to its original place at once; "
                               "pick its folders, or restore it to another folder.")
        groups.setdefault(os.path.dirname(where), []).append(path)
    return [Group(dest, tuple(items)) for dest, items in groups.items()]


def as_before(group: Group, machine: str, roots: tuple[str, ...], refused: tuple[str, ...] = (),
              fresh: bool = False) -> bool:
    """Whether `group` may be written on `machine` (localhost or a host's name), and how:
    True when each item goes back to the very place it came from (owners, modes, devices,
    ACLs and extended attributes come back as they were), False into a folder under `roots`
    (files then belong to that folder's owner, without set-user/group-ID bits or devices).
    Anything else, or a folder in `refused` (Cairn's own data), is a RestoreError."""
    dest = os.path.normpath(group.dest)
    for folder in refused:
        if within(dest, folder) or within(folder, dest):
            raise RestoreError(f"{shown(dest)} holds Cairn's own data; restore somewhere else.")
    back = not fresh and all(original(p)[0] == machine and
                             os.path.dirname(original(p)[1]) == dest for p in group.paths)
    if back:
        return True
    if any(within(dest, root) for root in roots):
        return False
    where = ", ".join(roots) if roots else "none are set"
    raise RestoreError(f"{shown(dest)} is neither where these files came from nor under the "
                       f"folders restores may write to ({where}). Restore them to their "
                       "original place or into a folder there.")


@dataclass(frozen=True)
class Transfer:
    """One rsync: items of a snapshot into a folder (on this box, or on a host via `rsh`).

    On this box the worker runs rsync inside a folder it opened itself (`cwd_fd`, with
    `dest` "."), so no link on the way to the target can lead it elsewhere."""

    sources: tuple[str, ...]           # items of a snapshot (/proc/self/fd/N/name)
    dest: str                          # a folder, "." inside cwd_fd, or user@host:/folder
    overwrite: bool = False
    dry_run: bool = False
    as_before: bool = True             # the original place: owners, modes and devices too
    owner: tuple[int, int] | None = None   # elsewhere on this box: every file's owner
    acls: bool = False
    xattrs: bool = False
    super_user: bool = False
    rsh: str | None = None
    compare_dest: str | None = None    # files identical there are not copied again
    cwd_fd: int | None = None
    fds: tuple[int, ...] = ()          # descriptors rsync needs (sources, cwd_fd)
    aliases: tuple[tuple[str, str], ...] = ()   # (/proc/self/fd/N, the folder it is)
    checksums = False                  # rsync.run reads the plain format

    def command(self) -> list[str]:
        args = [rsync.RSYNC, "--recursive", "--links", "--times", "--perms", "--specials",
                "--hard-links", "--numeric-ids", "--sparse"]
        if self.as_before:
            args += ["--owner", "--group", "--devices"]
            args += ["--acls"] if self.acls else []
            args += ["--xattrs"] if self.xattrs else []
        else:
            # Elsewhere, nothing may come back that gives rights: no set-user/group-ID bits,
            # no devices, no ACLs or extended attributes (file capabilities live in those).
            args += ["--chmod=ug-s"]
            if self.owner is not None:
                args += ["--owner", "--group", f"--chown={self.owner[0]}:{self.owner[1]}"]
        args += ["--super"] if self.super_user and (self.as_before or self.owner) else []
        args += ["--dry-run"] if self.dry_run else [rsync.PROGRESS]
        # A dry run lists what exists too (to say what would be overwritten or kept).
        if not self.overwrite and not self.dry_run and self.compare_dest is None:
            args += ["--ignore-existing"]
        args += [f"--compare-dest={self.compare_dest}"] if self.compare_dest else []
        args += ["--itemize-changes", "--itemize-changes", f"--out-format={rsync.OUT_FORMAT}",
                 "--stats", "--protect-args"]
        args += ["--mkpath"] if self.cwd_fd is None else []
        args += ["--rsh", self.rsh] if self.rsh else []
        return [*args, "--", *self.sources, self.dest.rstrip("/") + "/"]


@dataclass
class Preview:
    """What a restore would do, from an itemized dry run."""

    files: int = 0
    bytes: int = 0
    created: int = 0
    overwritten: int = 0        # exist and differ: replaced if overwriting, else kept
    unchanged: int = 0
    items: list[tuple[str, str]] = None   # (create | overwrite | keep, path) for the first lines

    def __post_init__(self) -> None:
        self.items = self.items or []


def classify(line: str, overwrite: bool) -> tuple[str, str] | None:
    """An itemized line (`>f+++++++++ 123 path`) as (action, path); None for unchanged ones."""
    code, _, rest = line.partition(" ")
    path = rest.partition(" ")[2]
    if len(code) < 11 or code[0] not in "><ch.":
        return None
    if code[2:11] == "+++++++++":
        return "create", path
    if code[0] in "><" or code[0] == "c":
        return ("overwrite" if overwrite else "keep"), path
    return None


def preview(result: rsync.Result, overwrite: bool) -> Preview:
    out = Preview(files=result.counts.files, bytes=result.counts.bytes,
                  created=result.counts.new_files, overwritten=result.counts.changed_files)
    out.unchanged = out.files - out.created - out.overwritten
    for line in result.items:
        action = classify(line, overwrite)
        if action:
            out.items.append(action)
    return out


# --- test restore ----------------------------------------------------------------------------

def test_restore(tree: Path, chosen: list[manifest.Entry], *, scratch: str | None = None,
                 on_progress: Callable[[manifest.Check], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> manifest.Check:
    """Restore `chosen` files with rsync into a fresh temporary folder, compare each byte for
    byte with the snapshot and by hash with the manifest, and remove the folder."""
    check = manifest.Check(chosen=len(chosen), chosen_bytes=sum(entry.size for entry in chosen))
    folder = tempfile.mkdtemp(prefix="cairn-test-restore-", dir=scratch)
    try:
        listing = os.path.join(folder, ".files")
        with open(listing, "wb") as fh:
            fh.write(b"\0".join(os.fsencode(e.path) for e in chosen))
        into = os.path.join(folder, "restored")
        result = rsync.run(_SampleTransfer(str(tree), listing, into), should_stop=should_stop)
        check.stopped = result.stopped
        buffer = bytearray(manifest.BUFFER_BYTES)
        next_report = time.monotonic() + manifest.PROGRESS_SECONDS
        for entry in chosen:
            if check.stopped:
                break
            _compare(tree, into, entry, check, buffer)
            check.checked += 1
            if on_progress and time.monotonic() >= next_report:
                next_report = time.monotonic() + manifest.PROGRESS_SECONDS
                on_progress(check)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return check


def _compare(tree: Path, into: str, entry: manifest.Entry, check: manifest.Check,
             buffer: bytearray) -> None:
    restored = os.path.join(into, os.fsencode(entry.path).decode("utf-8", "surrogateescape"))
    original_file = os.path.join(str(tree), entry.path)
    if not os.path.lexists(original_file):
        manifest.note(check, check.missing, entry.path, entry.path)
        return
    if not os.path.isfile(restored) or os.path.islink(restored):
        manifest.note(check, check.unreadable, entry.path, f"{entry.path}: not restored")
        return
    try:
        same = filecmp.cmp(original_file, restored, shallow=False)
        digest, read = manifest.hash_file(restored, buffer)
    except OSError as error:
        manifest.note(check, check.unreadable, entry.path, f"{entry.path}: {error.strerror}")
        return
    check.bytes += read
    if not same:
        manifest.note(check, check.changed, entry.path,
                      f"{entry.path} (the restored copy differs from the snapshot)")
    elif entry.hash is not None and digest != entry.hash:
        manifest.note(check, check.changed, entry.path, f"{entry.path} (content differs from the manifest)")


@dataclass(frozen=True)
class _SampleTransfer:
    tree: str
    listing: str
    dest: str
    dry_run: bool = False
    checksums = False

    def command(self) -> list[str]:
        return [rsync.RSYNC, "--archive", "--from0", f"--files-from={self.listing}",
                "--itemize-changes", f"--out-format={rsync.OUT_FORMAT}", "--stats",
                "--protect-args", "--", self.tree.rstrip("/") + "/", self.dest + "/"]

