"""Duplicates in the library: byte-identical files (the funnel in jobs/engines/dupes.py, its
hashes cached in FileHash) and several versions of one movie (MovieFile rows of one Movie).

People resolve them: keep one file of a set and hardlink the others to it (both names stay,
one copy's space is freed) or recycle them; keep the best version of a movie and recycle the
rest. Files are only touched by the worker, after a fresh check that they are still what the
scan found.
"""

from __future__ import annotations

import logging
from pathlib import Path

from peewee import fn

from jobs import library as lib
from jobs.engines import dupes, placing
from jobs.engines.humane import format_bytes, format_count
from jobs.queue import huey, local, with_db
from models import DupeScan, DuplicateSet, Event, FileHash, Library, Movie, MovieFile, db, utcnow
from models.base import bulk_insert

log = logging.getLogger(__name__)


class CannotResolve(ValueError):
    """The choice does not fit the set (a path not in it, a resolved set); says why."""


def request(requested_by: str = "", enqueue: bool = True) -> DupeScan:
    active = DupeScan.select().where(DupeScan.state.in_(("queued", "running"))).first()
    if active is not None:
        return active
    scan = DupeScan.create(requested_by=requested_by)
    Event.publish("dupes.queued", scan.subject, "Duplicate scan of the library queued.",
                  scan=scan.id)
    if enqueue:
        run_scan(scan.id)
    return DupeScan.get_by_id(scan.id)


@huey.task()
@with_db
def run_scan(scan_id: int) -> None:
    scan = DupeScan.get_or_none(DupeScan.id == scan_id)
    if scan is not None:
        run_here(scan)


def run_here(scan: DupeScan) -> None:
    """Claim the scan and do it in this process (the worker's task, or `library dupes`)."""
    if not scan.move(("queued",), "running", started_at=utcnow(), owner=local.worker_id):
        return
    try:
        perform(scan)
    except Exception as error:
        log.exception("duplicate scan %s failed", scan.id)
        _finish(scan, "failed", f"The scan stopped: {error}")


def perform(scan: DupeScan) -> None:
    root = Library.current().root
    if not root or not Path(root).is_dir():
        _finish(scan, "failed", "No library folder to scan (set one in Library settings).")
        return
    lib.scan_library()
    cache = _load_cache()
    known = set(cache)

    def progress(found: dupes.Scan) -> None:
        Event.publish("dupes.progress", scan.subject,
                      f"{found.files:,} files; {found.read_edges:,} compared by their edges",
                      scan=scan.id)

    found = dupes.find([root], cache, on_progress=progress)
    _save_cache(cache, known)
    with db.atomic():
        for paths in found.sets:
            relative = [str(Path(p).relative_to(root)) for p in paths]
            DuplicateSet.create(scan=scan, size=Path(paths[0]).stat().st_size, paths=relative)
        DupeScan.update(files=found.files, bytes_read=found.bytes_read,
                        wasted_bytes=found.wasted_bytes,
                        unreadable=[str(Path(p).relative_to(root)) for p in found.unreadable][:200]
                        ).where(DupeScan.id == scan.id).execute()
    _finish(scan, "done", f"{format_count(found.files, 'file')} looked at: "
                          f"{format_count(len(found.sets), 'set')} of "
                          f"identical files, {format_bytes(found.wasted_bytes)} to gain.")


def _load_cache() -> dict[dupes.Key, str]:
    return {(dev, ino, size, mtime): digest for dev, ino, size, mtime, digest in
            FileHash.select(FileHash.dev, FileHash.ino, FileHash.size, FileHash.mtime_ns,
                            FileHash.digest).tuples()}


def _save_cache(cache: dict[dupes.Key, str], known: set[dupes.Key]) -> None:
    rows = [(*key, digest) for key, digest in cache.items() if key not in known]
    with db.atomic():
        bulk_insert(FileHash, ("dev", "ino", "size", "mtime_ns", "digest"), rows)


def _finish(scan: DupeScan, state: str, message: str) -> None:
    if scan.move(("running",), state, finished_at=utcnow(), message=message, owner=None):
        Event.drop_progress(scan.subject)
        Event.publish(f"dupes.{state}", scan.subject, message,
                      level="info" if state == "done" else "error", scan=scan.id)


def versions() -> list[tuple[Movie, list[MovieFile]]]:
    """Movies the library holds in more than one file, best file first."""
    many = (MovieFile.select(MovieFile.movie).group_by(MovieFile.movie)
            .having(fn.COUNT(MovieFile.id) > 1))
    files: dict[int, list[MovieFile]] = {}
    for record in MovieFile.select().where(MovieFile.movie.in_(many)):
        files.setdefault(record.movie_id, []).append(record)
    out = []
    for group in files.values():
        group.sort(key=MovieFile.standing, reverse=True)
        out.append((group[0].movie, group))
    return sorted(out, key=lambda pair: pair[0].title.lower())


# --- resolving ---------------------------------------------------------------------------------

def resolve_set(dupe_set: DuplicateSet, keep: str, how: str, by: str = "",
                enqueue: bool = True) -> None:
    if how not in ("hardlink", "recycle"):
        raise CannotResolve("Choose to hardlink or to recycle the other copies.")
    if keep not in dupe_set.paths:
        raise CannotResolve("Keep one of the set's own files.")
    if dupe_set.resolved_at is not None:
        raise CannotResolve("This set was resolved already.")
    if enqueue:
        resolve_set_task(dupe_set.id, keep, how, by)


@huey.task()
@with_db
def resolve_set_task(set_id: int, keep: str, how: str, by: str) -> None:
    dupe_set = DuplicateSet.get_or_none(DuplicateSet.id == set_id)
    if dupe_set is None or dupe_set.resolved_at is not None:
        return
    root = Path(Library.current().root)
    done, problems = [], []
    for other in dupe_set.paths:
        if other == keep:
            continue
        try:
            if how == "hardlink":
                placing.relink(root / keep, root / other)
            else:
                placing.recycle(root, root / other, lib.recycle_day(utcnow()))
                MovieFile.delete().where(MovieFile.path == other).execute()
            done.append(other)
        except (OSError, placing.PlaceError) as error:
            problems.append(f"{other}: {getattr(error, 'strerror', None) or error}")
    verb = "hardlinked to" if how == "hardlink" else "recycled, kept"
    words = f"{format_count(len(done), 'file')} {verb} {keep}." + (" Not done: " + "; ".join(problems)
                                                      if problems else "")
    DuplicateSet.update(resolved_at=utcnow(), resolution=words).where(
        DuplicateSet.id == dupe_set.id).execute()
    Event.publish("dupes.resolved", f"dupescan:{dupe_set.scan_id}", words,
                  level="warning" if problems else "info", by=by)


def keep_version(movie: Movie, keep: MovieFile, by: str = "", enqueue: bool = True) -> None:
    if keep.movie_id != movie.id:
        raise CannotResolve("Keep one of this movie's own files.")
    if enqueue:
        keep_version_task(movie.id, keep.id, by)


@huey.task()
@with_db
def keep_version_task(movie_id: int, keep_id: int, by: str) -> None:
    root = Path(Library.current().root)
    recycled, problems = [], []
    for record in MovieFile.select().where((MovieFile.movie == movie_id) & (MovieFile.id != keep_id)):
        try:
            placing.recycle(root, root / record.path, lib.recycle_day(utcnow()))
            record.delete_instance()
            recycled.append(record.path)
        except OSError as error:
            problems.append(f"{record.path}: {error.strerror}")
    movie = Movie.get_by_id(movie_id)
    words = f"{movie.label}: {format_count(len(recycled), 'other version')} recycled." + (
        " Not done: " + "; ".join(problems) if problems else "")
    Event.publish("dupes.resolved", "library", words, level="warning" if problems else "info",
                  by=by)
