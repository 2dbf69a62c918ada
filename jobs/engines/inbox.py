"""What an inbox holds, as the import sees it: the files that may be movies (side files such
as .nfo, .srt and posters are left alone), whether each is still being written, and how long
a movie file plays (ffprobe, when installed).

Links are never followed: a symbolic link is reported as one (it could point out of the
inbox, or back into it in a loop), and the import refuses it with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from jobs.engines.decide import PARTIAL_SUFFIXES, WORKING_MARKERS
from jobs.engines.release import extension

SIDE_EXTENSIONS = {"nfo", "txt", "jpg", "jpeg", "png", "gif", "webp", "bmp", "srt", "sub", "idx",
                   "ass", "ssa", "vtt", "sup", "sfv", "md5", "sha1", "sha256", "url", "nzb",
                   "torrent", "db", "ini", "log", "par2", "xml", "json", "html", "htm", "nzo"}
SKIPPED_FOLDERS = {".cairn-recycle", "lost+found", "@eaDir", ".Trash-1000", ".stfolder"}
FFPROBE_SECONDS = 30


@dataclass(frozen=True)
class Found:
    path: str           # absolute
    name: str           # inside the inbox
    size: int
    mtime_ns: int
    link: bool = False  # a symbolic link, not a file


class InboxMissing(Exception):
    """The inbox folder cannot be listed (unmounted, removed, no permission)."""


def files(inbox: str, unreadable: list[str] | None = None) -> Iterator[Found]:
    """Every candidate below `inbox`, depth first. Folders that cannot be read are skipped,
    and named in `unreadable` (inside the inbox)."""
    try:
        top = list(os.scandir(inbox))
    except OSError as error:
        raise InboxMissing(f"Cannot list the inbox {inbox}: {error.strerror}.") from error
    stack = [top]
    unreadable = [] if unreadable is None else unreadable
    while stack:
        for entry in stack.pop():
            found = _candidate(entry, inbox, stack, unreadable)
            if found is not None:
                yield found


def _candidate(entry: os.DirEntry, inbox: str, stack: list, unreadable: list) -> Found | None:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    name = os.path.relpath(entry.path, inbox)
    if stat.S_ISDIR(st.st_mode):
        if entry.name not in SKIPPED_FOLDERS:
            try:
                stack.append(list(os.scandir(entry.path)))
            except OSError:
                unreadable.append(name)
        return None
    if extension(entry.name) in SIDE_EXTENSIONS or entry.name.startswith("."):
        return None
    if stat.S_ISLNK(st.st_mode):
        return Found(entry.path, name, 0, st.st_mtime_ns, link=True)
    if stat.S_ISREG(st.st_mode):
        return Found(entry.path, name, st.st_size, st.st_mtime_ns)
    return None   # sockets, fifos, devices: never a movie


def working(name: str) -> str:
    """Why a file is still being written by a download client, or "" when it is not."""
    lowered = name.lower()
    for marker in WORKING_MARKERS:
        if marker.lower() in lowered:
            return f"In a working folder ({marker}): waiting for the download client to finish."
    if lowered.endswith(PARTIAL_SUFFIXES):
        return f"Still downloading (.{extension(name)})."
    return ""


def runtime_seconds(path: str) -> float | None:
    """How long the video plays, when ffprobe is installed and can tell; None otherwise."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    try:
        done = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration",
                               "-of", "json", "--", path], capture_output=True,
                              timeout=FFPROBE_SECONDS, check=False)
        return float(json.loads(done.stdout)["format"]["duration"])
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None
