"""Run rsync for one unit: build its arguments, count its itemized output, read its summary.

Files are counted from rsync's per-file lines (`--out-format` with the itemize code and the
length): with the itemize flag given twice rsync prints unchanged files as well, so every file
of the unit passes through here exactly once and the counts can be held against the scan's
totals. The data written comes from `--info=progress2`, whose first figure is the bytes of
file data rsync has written so far, the file in flight included, updated about once a second
(its percentage and total are not used: files hardlinked to the previous snapshot never count
there, and its total grows while the file list is still being built). So the figures move
while a 4 GB video is being copied, and speed is data written, never unchanged files.
"""

from __future__ import annotations

import fcntl
import functools
import gzip
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RSYNC = "rsync"
# rsync's environment is built, not inherited: C locale so numbers parse, nothing else leaks.
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
# Line marker: rsync copies the format's literal characters as they are, and escapes a tab
# or newline inside a file name (as \#011, \#012), so a line starting with a tab is ours.
OUT_FORMAT = "\t%i %l %n"
PROGRESS = "--info=progress2"   # the data written so far, about once a second
# With --checksum-choice=xxh128, rsync also gives the xxh3-128 of every file whose data it
# copied (%C: 32 hex digits, blank for the others), the very hash of Cairn's manifests; the
# manifest then need not read the new data again. The log keeps the plain format.
OUT_FORMAT_SUMS = "\t%i %C %l %n"
SUM_WIDTH = 33   # "%C " as rsync writes it
NOTHING_CHANGED = b" " * 9
STOP_GRACE_SECONDS = 10.0
TICK_SECONDS = 0.5
KEPT_MESSAGES = 200
KEPT_ITEMS = 1000
LOG_BATCH = 2000
PIPE_BYTES = 1024 * 1024
GATHER_SECONDS = 0.1
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

EXIT_OK = 0
EXIT_PARTIAL = 23    # some files or attributes were not transferred
EXIT_VANISHED = 24   # some source files vanished before they could be transferred
EXIT_SIGNAL = 20

_RATE_UNITS = {"": 1, "K": 1, "M": 1024, "G": 1024 * 1024}
_BANDWIDTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?(?:/s)?\s*$", re.IGNORECASE)
MAX_BANDWIDTH_KIB = 100 * 1024 * 1024  # 100 GiB/s: anything above is a typo


class BandwidthError(ValueError):
    pass


def parse_bandwidth(text: str) -> int | None:
    """'10M' -> 10240 KiB/s, '1.5G', '500K', '800' (KiB/s, as rsync reads it); '' -> no limit."""
    if not text or not text.strip():
        return None
    match = _BANDWIDTH.match(text)
    if not match:
        raise BandwidthError(f"Bandwidth limit {text!r} is not a rate such as 500K, 10M or 1.5G.")
    kib = float(match[1]) * _RATE_UNITS[match[2].upper()]
    if kib < 1:
        raise BandwidthError(f"Bandwidth limit {text!r} is below 1 KiB/s.")
    if kib > MAX_BANDWIDTH_KIB:
        raise BandwidthError(f"Bandwidth limit {text!r} is above 100 GiB/s.")
    return round(kib)


def format_bandwidth(kib: int | None) -> str:
    if not kib:
        return ""
    for unit, size in (("G", 1024 * 1024), ("M", 1024)):
        if kib >= size and (kib * 100) % size == 0:
            return f"{kib / size:g}{unit}"
    return f"{kib}K"


@dataclass(frozen=True)
class Transfer:
    """One rsync invocation: a source folder into a destination folder, narrowed by rules."""
    source: str                        # absolute folder
    dest: str                          # absolute folder
    link_dest: str | None = None       # absolute folder in the previous snapshot
    rules: tuple[str, ...] = ()        # "+ pattern" / "- pattern", after the user's excludes
    excludes: tuple[str, ...] = ()
    mirror: bool = False               # FAT/exFAT/NTFS: one copy, no links or modes
    acls: bool = False
    xattrs: bool = False
    one_file_system: bool = False
    bwlimit_kib: int | None = None
    dry_run: bool = False
    delete: bool = True                # remove leftovers inside the unit (a killed rsync's temp files)
    # rsync keeps owners only when it runs as root; the installed worker runs as `cairn`
    # with CAP_CHOWN and CAP_FOWNER instead, and must say --super to be believed.
    super_user: bool = False
    rsh: str | None = None             # the remote shell (ssh with Cairn's key) for a host's folder
    checksums: bool = False            # report the xxh3-128 of copied files (local copies only)
    fds: tuple[int, ...] = ()          # descriptors the paths name (/proc/self/fd/N)
    aliases: tuple[tuple[str, str], ...] = ()   # (/proc/self/fd/N, the path people know)

    def command(self) -> list[str]:
        # --sparse: a file's holes stay holes in the snapshot (a 1 GiB disk image with 10 MB
        # in it costs 10 MB), as they do where it came from.
        args = [RSYNC, "--recursive", "--links", "--times", "--sparse"]
        if self.mirror:
            # FAT keeps times to 2 s and has no owners, modes or links.
            args = [RSYNC, "--recursive", "--times", "--modify-window=2"]
        else:
            # --modify-window=-1: times must match to the nanosecond. With the default
            # (whole seconds), rsync leaves a folder created in the same second as its source
            # with the time of its creation.
            args += ["--perms", "--group", "--owner", "--devices", "--specials",
                     "--hard-links", "--numeric-ids", "--modify-window=-1"]
            args += ["--super"] if self.super_user else []
            args += ["--acls"] if self.acls else []
            args += ["--xattrs"] if self.xattrs else []
        args += ["--one-file-system"] if self.one_file_system else []
        # A dry run writes nothing, so it has no written data to report.
        args += ["--dry-run"] if self.dry_run else [PROGRESS]
        args += ["--delete"] if self.delete else []
        args += [f"--bwlimit={self.bwlimit_kib}"] if self.bwlimit_kib else []
        if self.link_dest and not self.mirror:
            args.append(f"--link-dest={self.link_dest}")
        if self.checksums:
            args += ["--checksum-choice=xxh128"]
        args += ["--itemize-changes", "--itemize-changes",
                 f"--out-format={OUT_FORMAT_SUMS if self.checksums else OUT_FORMAT}",
                 "--stats", "--protect-args"]
        args += ["--rsh", self.rsh] if self.rsh else []
        args += [f"--exclude={pattern}" for pattern in self.excludes]
        for rule in self.rules:
            kind, pattern = rule[0], rule[2:]
            args.append(f"--include={pattern}" if kind == "+" else f"--exclude={pattern}")
        # Both paths are absolute, so neither can be read as an option; `--` says so anyway.
        args += ["--", self.source.rstrip("/") + "/", self.dest.rstrip("/") + "/"]
        return args


@dataclass
class Counts:
    files: int = 0           # non-folder entries seen (copied, linked or unchanged)
    bytes: int = 0           # their sizes
    new_files: int = 0
    changed_files: int = 0
    sent_bytes: int = 0      # sizes of files whose data was copied
    dirs: int = 0
    written: int = 0         # file data written so far, the file in flight included
    measures_writes: bool = False   # rsync reports `written` (not in a dry run)

    @property
    def done_bytes(self) -> int:
        """The data done: files unchanged or linked count whole, files being copied as far as
        they are written. An itemized line may come before its file is copied (and then names
        all its size at once) or after it; either way, what was written is what counts."""
        if not self.measures_writes:
            return self.bytes
        return max(self.bytes - self.sent_bytes + self.written, 0)


@dataclass
class Result:
    exit_code: int
    counts: Counts
    stats: dict[str, int]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0
    items: list[str] = field(default_factory=list)   # first changed lines (dry runs)
    disk_full: bool = False
    stopped: bool = False
    duration: float = 0.0
    source_vanished: bool = False    # the folder itself went away while rsync read it

    @property
    def outcome(self) -> str:
        """done | warning | partial | cancelled | fatal | retry"""
        if self.stopped:
            return "cancelled"
        if self.disk_full:
            return "fatal"
        if self.source_vanished:
            return "retry"   # not a success: perhaps a share that comes back
        if self.exit_code == EXIT_OK:
            return "warning" if self.warning_count else "done"
        if self.exit_code == EXIT_VANISHED:
            return "warning"
        if self.exit_code == EXIT_PARTIAL:
            return "partial"
        return "retry"


_STAT_LINE = re.compile(rb"^([A-Z][A-Za-z ]+): ([\d,]+)")
_STAT_KEYS = {
    b"Number of files": "files",
    b"Number of created files": "created_files",
    b"Number of deleted files": "deleted_files",
    b"Number of regular files transferred": "transferred_files",
    b"Total file size": "total_size",
    b"Total transferred file size": "transferred_size",
    b"Literal data": "literal_data",
    b"Matched data": "matched_data",
    b"Total bytes sent": "bytes_sent",
    b"Total bytes received": "bytes_received",
}


def parse_stats(lines: list[bytes]) -> dict[str, int]:
    stats: dict[str, int] = {}
    for line in lines:
        match = _STAT_LINE.match(line)
        if match and match[1] in _STAT_KEYS:
            stats[_STAT_KEYS[match[1]]] = int(match[2].replace(b",", b""))
    return stats


@functools.cache
def reports_checksums() -> bool:
    """Whether this box's rsync can copy with xxh128 as its checksum (3.2 and later, built
    with xxhash), and so report the manifest's hash of each copied file."""
    try:
        out = subprocess.run([RSYNC, "--version"], capture_output=True, timeout=30,
                             env={"LC_ALL": "C", "PATH": SEARCH_PATH}).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    # "Checksum list:", then the names on the same line or on the indented lines below it.
    lines = out.splitlines()
    for index, line in enumerate(lines):
        if line.strip().lower().startswith(b"checksum list:"):
            names = line.split(b":", 1)[1].split()
            for more in lines[index + 1:]:
                if not more[:1].isspace():
                    break
                names += more.split()
            return b"xxh128" in names
    return False


def _open_sums(path: str):
    """The sums file, to append to. A line cut short when a worker was killed mid-write is
    cut off first: its name may be the beginning of another file's name."""
    fh = open(path, "ab")
    end = fh.tell()
    if end:
        with open(path, "rb") as reader:
            reader.seek(max(0, end - PIPE_BYTES))
            tail = reader.read()
        if not tail.endswith(b"\n"):
            fh.truncate(end - len(tail) + tail.rfind(b"\n") + 1)   # rfind: -1 for none
    return fh


def read_sums(path: str | os.PathLike):
    """(name as bytes, size, xxh3-128 digest) of each file a run with `checksums` copied, from
    its sums file, in the order copied (a name copied twice, by a retry, comes twice: the
    later one counts). A last line without its newline was cut short, and is skipped."""
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            digest, _, rest = line[:-1].partition(b" ")
            length, _, name = rest.partition(b" ")
            if len(digest) != 32 or not length.isdigit() or not name:
                continue
            try:
                yield decode_raw_name(name), int(length), bytes.fromhex(digest.decode("ascii"))
            except ValueError:
                continue


_ESCAPE = re.compile(rb"\\#([0-7]{3})")


def decode_raw_name(escaped: bytes) -> bytes:
    """rsync's escaped name (it writes \\#ooo for each unprintable byte, and for a backslash
    that would otherwise read as such an escape) back to the name's bytes."""
    return _ESCAPE.sub(lambda m: bytes((int(m[1], 8),)), escaped)


class ListError(Exception):
    """rsync could not list a folder (on another machine); the message is rsync's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def list_files(source: str, *, rsh: str, excludes: tuple[str, ...] = (),
               one_file_system: bool = False):
    """Yield `rsync -r --list-only` lines of `source` (`user@host:/path`), as rsync would
    select them for a copy: same excludes, same filesystem rule. ListError at the end if
    rsync failed (a missing folder, ssh refused)."""
    args = [RSYNC, "--recursive", "--links", "--list-only", "--no-human-readable",
            "--protect-args", "--rsh", rsh, *(["--one-file-system"] if one_file_system else []),
            *(f"--exclude={pattern}" for pattern in excludes), "--", source.rstrip("/") + "/"]
    process = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", *args],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={"LC_ALL": "C", "PATH": SEARCH_PATH})
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)
    reader.start()
    try:
        for raw in process.stdout:
            yield decode_name(raw.rstrip(b"\n"))
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        reader.join()
    if process.returncode not in (EXIT_OK, EXIT_VANISHED):
        said = [decode_name(e.rstrip(b"\n")) for e in errors if not e.startswith(b"rsync error")]
        raise ListError("; ".join(said[:3]) or f"rsync exited with code {process.returncode}",
                        process.returncode)


def decode_name(raw: bytes) -> str:
    """rsync's escaped name (\\#ooo for unprintable bytes) as text for people to read."""
    text = raw.decode("utf-8", "backslashreplace")
    return re.sub(r"\\#(\d{3})", lambda m: f"\\x{int(m[1], 8):02x}", text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown_name(raw: bytes) -> str:
    """rsync's escaped line as people read its names: rsync (in the C locale) escapes every
    byte above ASCII, so `Ünïcødé` comes as `\\#303\\#234n...`; the bytes are put back and
    read as UTF-8. Bytes that are no UTF-8 and control characters (a newline in a name)
    stay visible as `\\xNN`."""
    text = decode_raw_name(raw).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


_PROGRESS_LINE = re.compile(rb"\r\s*([\d,]+) ")


def written_in(line: bytes) -> int | None:
    """The bytes written that the last progress2 figure of `line` gives
    (`\r   1,114,115  37%    1.00MB/s    0:00:01`, one after the other), if any."""
    at = line.rfind(b"\r")
    match = _PROGRESS_LINE.match(line, at) if at >= 0 else None
    return int(match[1].replace(b",", b"")) if match else None


class _Reader:
    """Counts rsync's itemized lines as they arrive and writes the changed ones to the log.

    This loop sees every file of a backup, so it is kept lean: slices and integer compares,
    and log lines batched into few large writes (a gzip write per line costs more than all
    the counting).
    """

    def __init__(self, log: gzip.GzipFile | None, keep_items: bool, checksums: bool = False,
                 sums=None, measures_writes: bool = False) -> None:
        self.counts = Counts()
        self.other: list[bytes] = []
        self.items: list[str] = []
        self.log = log
        self.pending: list[bytes] = []
        self.keep_items = keep_items
        # Lines of OUT_FORMAT_SUMS: the length starts after the checksum. Copied files'
        # "checksum length name" go to `sums` (an open binary file, if any), one per line.
        self.sums = sums
        self.at = 13 + SUM_WIDTH if checksums else 13
        self.pending_sums: list[bytes] = []
        self.progress = b""
        self.counts.measures_writes = measures_writes

    def current(self) -> Counts:
        """The counts, with the data written as rsync's latest progress line says."""
        written = written_in(self.progress)
        if written is not None:
            self.counts.written = max(self.counts.written, written)
        return self.counts

    def feed(self, line: bytes) -> None:
        if line[:1] != b"\t":
            if line[:1] == b"\r":   # progress2: parsed when the counts are read
                self.progress = line
                return
            if len(self.other) < 100:
                self.other.append(line)
            return
        counts, at = self.counts, self.at
        if line[2] == 100:  # ord("d"): a folder
            counts.dirs += 1
        else:
            end = line.find(b" ", at)
            length = int(line[at:end]) if end > at else 0
            counts.files += 1
            counts.bytes += length
            if line[1] == 62 or line[1] == 60:  # ">" received here, "<" sent to a host
                counts.sent_bytes += length
                if line[3] == 43:  # ord("+"): a new file
                    counts.new_files += 1
                else:
                    counts.changed_files += 1
                if self.sums is not None and line[2] == 102 and line[13] != 32:  # "f", summed
                    self.pending_sums.append(line[13:])
        if line[3:12] != NOTHING_CHANGED:
            if at != 13:
                line = line[:13] + line[at:]   # the log's lines keep the plain format
            if self.log is not None:
                self.pending.append(line[1:])
            if self.keep_items and len(self.items) < KEPT_ITEMS:
                self.items.append(shown_name(line[1:]))
        if len(self.pending) >= LOG_BATCH or len(self.pending_sums) >= LOG_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.log is not None and self.pending:
            self.pending.append(b"")
            self.log.write(b"\n".join(self.pending))
        self.pending = []
        if self.sums is not None and self.pending_sums:
            self.pending_sums.append(b"")
            self.sums.write(b"\n".join(self.pending_sums))
        self.pending_sums = []


class _Messages:
    """rsync's stderr: vanished files are warnings; everything else but its summary is an error."""

    def __init__(self, aliases: tuple[tuple[str, str], ...] = ()) -> None:
        self.aliases = aliases
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.error_count = 0
        self.warning_count = 0
        self.disk_full = False

    def feed(self, raw: bytes) -> None:
        line = shown_name(raw)
        if not line.strip() or line.startswith(("rsync error: ", "rsync warning: ")):
            return   # the summary of what the lines before said (vanished files: code 24)
        for alias, path in self.aliases:
            line = line.replace(alias, path)
        if "No space left on device" in line or "Disk quota exceeded" in line:
            self.disk_full = True
        if line.startswith("file has vanished: "):
            self.warning_count += 1
            if len(self.warnings) < KEPT_MESSAGES:
                self.warnings.append(line)
            return
        self.error_count += 1
        if len(self.errors) < KEPT_MESSAGES:
            self.errors.append(line)


ProgressFn = Callable[[Counts], None]


def run(transfer: Transfer, *, on_progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None, log_path: str | None = None,
        on_start: Callable[[int], None] | None = None, sums_path: str | None = None) -> Result:
    """Run one rsync to the end (or until `should_stop()`), reporting counts every half second.

    rsync runs in its own process group (stopping it stops its helper processes too), with
    SIGKILL as its parent-death signal: if this worker dies, no rsync keeps writing into a
    snapshot that the next worker will resume.
    """
    command = ["setpriv", "--pdeathsig", "KILL", "--", *transfer.command()]
    measures_writes = PROGRESS in command
    env = {"LC_ALL": "C", "PATH": SEARCH_PATH}
    started = time.monotonic()
    log = gzip.open(log_path, "ab", compresslevel=3) if log_path else None
    sums = _open_sums(sums_path) if transfer.checksums and sums_path else None
    reader = _Reader(log, keep_items=transfer.dry_run, checksums=transfer.checksums, sums=sums,
                     measures_writes=measures_writes)
    messages = _Messages(getattr(transfer, "aliases", ()))
    # A transfer may name a folder the worker opened itself as rsync's working folder: the
    # child enters it by descriptor, so no link on the path to it is followed.
    # Its sources may be named through descriptors too (/proc/self/fd/N/name).
    cwd_fd = getattr(transfer, "cwd_fd", None)
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, start_new_session=True,
                                   cwd=None if cwd_fd is None else f"/proc/self/fd/{cwd_fd}",
                                   pass_fds=getattr(transfer, "fds", ()))
        if on_start:
            on_start(process.pid)
        threads = [threading.Thread(target=_pump_lines, args=(process.stdout, reader.feed),
                                    daemon=True),
                   threading.Thread(target=_pump_lines, args=(process.stderr, messages.feed),
                                    daemon=True)]
        for thread in threads:
            thread.start()
        stopped = _supervise(process, reader, on_progress, should_stop)
        for thread in threads:
            thread.join()
        reader.flush()
    finally:
        if log is not None:
            log.close()
        if sums is not None:
            sums.close()
    result = Result(exit_code=process.returncode, counts=reader.current(),
                    stats=parse_stats(reader.other), errors=messages.errors,
                    warnings=messages.warnings, error_count=messages.error_count,
                    warning_count=messages.warning_count, items=reader.items,
                    disk_full=messages.disk_full, stopped=stopped,
                    duration=time.monotonic() - started)
    if on_progress:
        on_progress(reader.current())
    return result


def _pump_lines(stream, feed: Callable[[bytes], None]) -> None:
    """Feed each line (without its newline) to `feed`.

    rsync writes one line per file, so reading line by line would wake this thread for every
    file. Instead the pipe is enlarged and read in large chunks, pausing briefly after a small
    one so that lines gather: a handful of wakeups a second however fast files go by.
    """
    fd = stream.fileno()
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # a smaller pipe only means more wakeups
    tail = b""
    with stream:
        while chunk := os.read(fd, PIPE_BYTES):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                feed(line)
            # A large file's progress figures are each written at once, starting with \r,
            # and no \n comes until the file is done: pass them on as they come, keeping
            # only the newest (a figure cut short by a read is not taken; see written_in).
            if tail[:1] == b"\r":
                feed(tail)
                tail = tail[tail.rfind(b"\r"):]
            if len(chunk) < PIPE_BYTES // 16:
                time.sleep(GATHER_SECONDS)
    if tail:
        feed(tail)


def _supervise(process: subprocess.Popen, reader: _Reader, on_progress: ProgressFn | None,
               should_stop: Callable[[], bool] | None) -> bool:
    while True:
        try:
            process.wait(timeout=TICK_SECONDS)
            return False
        except subprocess.TimeoutExpired:
            pass
        if on_progress:
            on_progress(reader.current())
        if should_stop and should_stop():
            stop(process)
            return True


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (rsync removes its temporary file), then SIGKILL after a grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    # rsync's helper processes (generator, receiver) leave a moment after it does.
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(process.pid) or process.poll() is None:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
