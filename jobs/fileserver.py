"""Downloads from snapshots, served by the worker to the web over a Unix socket.

The web process runs unprivileged and cannot read files that keep their owners' modes in a
snapshot (ada's 0600 tax return). The worker can (CAP_DAC_READ_SEARCH), so it streams them:
the web checks the user's role, the path against the manifest and writes the audit entry,
then asks here and relays the bytes as they come. Nothing is built in memory or on disk: a
file is copied through in chunks, a folder is written as a tar or zip stream on the fly.

The socket is `<data dir>/files.sock`, mode 0600 in the 0700 data dir: only the service user
(the web and the worker) can connect. Every path is opened one component at a time without
following symlinks (manifest.open_inside), so nothing outside the snapshot can be served.

Protocol: the web sends one JSON line {"profile", "snapshot", "path", "format": file|tar|zip};
the worker answers one JSON line ({"ok": true, "name", "size"} or {"ok": false, "error"}) and
then the bytes, and closes. The same socket answers the profile form's questions about its
folders ({"op": "check-paths" | "make-destination", ...}, jobs/pathcheck.py) with one JSON
line and nothing after it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs import catalog, pathcheck
from jobs.engines import manifest
from jobs.engines.snapshots import CheckError
from models import Profile, Snapshot, db

log = logging.getLogger(__name__)

SOCKET_NAME = "files.sock"
CHUNK = 256 * 1024
MAX_REQUEST = 16 * 1024
FORMATS = ("file", "tar", "zip")
ZIP_EPOCH = 315_576_000   # 1980-01-02, safe in any time zone


class Refused(Exception):
    """A request the worker will not serve, with a message for people."""


class NotRunning(Refused):
    """No worker listens on the socket."""


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


@contextmanager
def _short(path: Path) -> Iterator[str]:
    """`path` as a name short enough for a Unix socket (108 bytes at most): through the
    folder's descriptor, /proc/self/fd/N/files.sock, however deep the data dir is."""
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class FileServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> bool:
        """Listen, unless another live worker on this data dir already does."""
        if _answering(self.path):
            return False
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            with _short(self.path) as name:
                sock.bind(name)
        finally:
            os.umask(old)
        sock.listen(16)
        self.sock = sock
        self.thread = threading.Thread(target=self._accept, name="cairn-files", daemon=True)
        self.thread.start()
        return True

    def stop(self) -> None:
        if self.sock is not None:
            sock, self.sock = self.sock, None
            sock.close()
            self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        while self.sock is not None:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="cairn-files-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = json.loads(_read_line(conn))
                if request.get("op") in QUESTIONS:
                    with db.connection_context():
                        answer = QUESTIONS[request["op"]](request)
                    _header(conn, {"ok": True, **answer})
                    return
                with db.connection_context():
                    tree, path, fmt = _resolve(request)
                _send(conn, tree, path, fmt)
            except Refused as refusal:
                _header(conn, {"ok": False, "error": str(refusal)})
            except (BrokenPipeError, ConnectionResetError):
                pass   # the browser went away; nothing to clean up
            except Exception:
                log.exception("serving a download failed")
                try:
                    _header(conn, {"ok": False, "error": "The worker could not read that."})
                except OSError:
                    pass


def _check_paths(request: dict) -> dict:
    return pathcheck.check(_texts(request.get("sources")), str(request.get("destination") or ""),
                           str(request.get("mode") or "snapshot"))


def _make_destination(request: dict) -> dict:
    try:
        return {"made": True, "message": pathcheck.create_destination(
            str(request.get("destination") or ""), _texts(request.get("sources")))}
    except CheckError as problem:
        return {"made": False, "message": str(problem)}


def _texts(value) -> list[str]:
    return [str(v) for v in value][:pathcheck.MAX_SOURCES] if isinstance(value, list) else []


# Questions the web asks that are answered by one JSON line (no bytes follow).
QUESTIONS = {"check-paths": _check_paths, "make-destination": _make_destination}


def _answering(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _short(path) as name:
            probe.connect(name)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > MAX_REQUEST:
            raise Refused("Incomplete request.")
        data += chunk
    return data.split(b"\n", 1)[0]


def _header(conn: socket.socket, fields: dict) -> None:
    conn.sendall(json.dumps(fields).encode() + b"\n")


def _resolve(request: dict) -> tuple[str, str, str]:
    fmt = request.get("format")
    if fmt not in FORMATS:
        raise Refused("Unknown format.")
    profile = Profile.get_or_none(Profile.id == int(request.get("profile") or 0))
    snapshot = Snapshot.named(profile, str(request.get("snapshot"))) if profile else None
    if snapshot is None:
        raise Refused("No such snapshot.")
    try:
        path = manifest.clean_path(str(request.get("path", "")))
    except manifest.PathRefused as refusal:
        raise Refused(str(refusal)) from None
    try:
        return str(catalog.readable_tree(snapshot)), path, fmt
    except catalog.NotHere as reason:
        raise Refused(str(reason)) from None


def _send(conn: socket.socket, tree: str, path: str, fmt: str) -> None:
    try:
        fd = manifest.open_inside(tree, path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise Refused(f"{path or 'The snapshot'} cannot be opened: {error.strerror}.") from None
    st = os.fstat(fd)
    name = os.path.basename(path) or "snapshot"
    if fmt == "file":
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise Refused("Only a file downloads as itself; a folder comes as a tar or zip.")
        _header(conn, {"ok": True, "name": name, "size": st.st_size})
        with open(fd, "rb", buffering=0) as source:
            while chunk := source.read(CHUNK):
                conn.sendall(chunk)
        return
    if not stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise Refused("Only a folder downloads as an archive.")
    _header(conn, {"ok": True, "name": f"{name}.{fmt}", "size": None})
    try:
        # The folder is pinned by its descriptor: /proc/self/fd/N is that very folder.
        top = f"/proc/self/fd/{fd}"
        with conn.makefile("wb") as out:
            (_tar if fmt == "tar" else _zip)(top, name, out)
    finally:
        os.close(fd)


def _walk(top: str):
    """(path, name inside the archive) for the folder and everything below it; never follows
    a symlink (os.walk's default), so links are archived as links."""
    base = os.fsencode(top)
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        # The top is /proc/self/fd/N, itself a symlink to the folder: "N/." is the folder.
        yield (folder + b"/." if folder == base else folder), os.fsdecode(folder[len(base):].lstrip(b"/"))
        for entry in (os.path.join(folder, f) for f in sorted(files)):
            yield entry, os.fsdecode(entry[len(base):].lstrip(b"/"))
        for d in dirs:
            link = os.path.join(folder, d)
            if os.path.islink(link):   # a symlink to a folder: os.walk lists it, never enters
                yield link, os.fsdecode(link[len(base):].lstrip(b"/"))


def _tar(top: str, name: str, out) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for path, inside in _walk(top):
            arcname = f"{name}/{inside}" if inside else name
            archive.add(os.fsdecode(path), arcname=arcname, recursive=False)


def _zip(top: str, name: str, out) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path, inside in _walk(top):
            arcname = f"{name}/{inside}" if inside else name
            st = os.lstat(path)
            # Zip cannot say times before 1980.
            when = time.localtime(max(st.st_mtime, ZIP_EPOCH))[:6]
            info = zipfile.ZipInfo(arcname + ("/" if stat.S_ISDIR(st.st_mode) else ""), when)
            info.external_attr = (st.st_mode & 0xFFFF) << 16
            if stat.S_ISDIR(st.st_mode):
                archive.writestr(info, b"")
            elif stat.S_ISLNK(st.st_mode):
                archive.writestr(info, os.fsencode(os.readlink(path)))
            elif stat.S_ISREG(st.st_mode):
                info.file_size = st.st_size
                with open(path, "rb") as source, archive.open(info, "w", force_zip64=True) as dest:
                    while chunk := source.read(CHUNK):
                        dest.write(chunk)


def ask(data_dir: Path, question: str, timeout: float = 10, **fields) -> dict:
    """For the web: one of QUESTIONS put to the worker; its answer, or raises Refused."""
    conn = _connect(data_dir, timeout)
    try:
        conn.sendall(json.dumps({"op": question, **fields}).encode() + b"\n")
        with conn.makefile("rb") as reader:
            answer = json.loads(reader.readline(1024 * 1024) or b'{"ok": false}')
    except (OSError, ValueError):
        raise Refused("The worker did not answer in time.") from None
    finally:
        conn.close()
    if not answer.pop("ok", False):
        raise Refused(answer.get("error", "The worker could not answer."))
    return answer


def _connect(data_dir: Path, timeout: float) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        with _short(socket_path(data_dir)) as name:
            conn.connect(name)
    except OSError:
        conn.close()
        raise NotRunning("The worker is not running here. Start it (systemctl start "
                         "cairn-worker) and try again.") from None
    return conn


def fetch(data_dir: Path, profile_id: int, snapshot: str, path: str, fmt: str, timeout: float = 30):
    """For the web: ask the worker; returns (header, chunk iterator) or raises Refused."""
    try:
        conn = _connect(data_dir, timeout)
    except NotRunning:
        raise Refused("Downloads come through the worker, and it is not running here. "
                      "Start it (systemctl start cairn-worker) and try again.") from None
    conn.sendall(json.dumps({"profile": profile_id, "snapshot": snapshot, "path": path,
                             "format": fmt}).encode() + b"\n")
    reader = conn.makefile("rb")
    header = json.loads(reader.readline(MAX_REQUEST) or b'{"ok": false, "error": "No answer."}')
    if not header.get("ok"):
        reader.close()
        conn.close()
        raise Refused(header.get("error", "Refused."))

    def chunks():
        try:
            while chunk := reader.read1(CHUNK):
                yield chunk
        finally:
            reader.close()
            conn.close()

    return header, chunks()


server: FileServer | None = None


def start(data_dir: Path) -> None:
    global server
    server = FileServer(socket_path(data_dir))
    if not server.start():
        log.info("another worker serves downloads from %s", server.path)
        server = None


def stop() -> None:
    global server
    if server is not None:
        server.stop()
        server = None
