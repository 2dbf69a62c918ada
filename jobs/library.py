"""The movie library's settings as the import uses them: the library folder and its inboxes
(checked before they are saved), the quality profiles (made into the engine's
`decide.QualityProfile`), the naming template, and the recycle folder's clean-up.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from huey import crontab

from jobs import metadata
from jobs.engines import decide, inbox, naming, placing, tmdb
from jobs.engines.humane import format_count
from jobs.engines.release import VIDEO_EXTENSIONS, Release, extension, parse_path
from jobs.queue import huey, settings, with_db
from models import Event, ImportItem, Inbox, Library, Movie, MovieFile, QualityProfile, db, utcnow

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "Any"
# Folders that hold the system, never a library or an inbox.
SYSTEM_FOLDERS = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root",
                  "/run", "/sbin", "/sys", "/usr", "/var", "/tmp")


class FolderRefused(ValueError):
    """A library or inbox folder Cairn will not use; the message says why."""


@dataclass(frozen=True)
class Setup:
    """What an import needs to know, read once per file."""

    library: Library
    root: Path
    template: str
    profile: decide.QualityProfile
    margin: int


def setup() -> Setup:
    library = Library.current()
    return Setup(library, Path(library.root), library.template or naming.DEFAULT_TEMPLATE,
                 engine_profile(profile_of(library)), library.free_margin_mb * 1024 * 1024)


def profile_of(library: Library) -> QualityProfile:
    """The library's quality profile; the default "Any" one is made when there is none."""
    if library.profile_id is not None:
        profile = QualityProfile.get_or_none(QualityProfile.id == library.profile_id)
        if profile is not None:
            return profile
    with db.atomic():
        default = decide.QualityProfile()
        profile, _ = QualityProfile.get_or_create(name=DEFAULT_PROFILE, defaults={
            "allowed": list(default.allowed), "cutoff": default.cutoff})
        Library.update(profile=profile).where(Library.id == library.id).execute()
    library.profile = profile
    return profile


def engine_profile(row: QualityProfile) -> decide.QualityProfile:
    return decide.QualityProfile(name=row.name, allowed=tuple(row.allowed), cutoff=row.cutoff,
                                 upgrades=row.upgrades, prefer_proper=row.prefer_proper)


def check_folder(text: str, *, role: str) -> Path:
    """An absolute, existing folder that is not a system folder, not in Cairn's data dir,
    and neither inside nor around the library or another inbox (a file would be imported
    from the library into itself)."""
    text = (text or "").strip()
    if not text:
        raise FolderRefused(f"Name the {role} folder.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text) or not text.startswith("/"):
        raise FolderRefused(f"The {role} folder must be an absolute path, such as /srv/movies, "
                            "without tabs, line breaks or control characters.")
    if len(os.fsencode(text)) > 4000 or any(len(os.fsencode(p)) > 255 for p in text.split("/")):
        raise FolderRefused(f"The {role} folder's path is too long for a filesystem (4,000 "
                            "bytes in all, 255 for each name).")
    path = Path(os.path.normpath(text))
    if str(path) in SYSTEM_FOLDERS:
        raise FolderRefused(f"{path} is a system folder; choose a folder of its own.")
    try:
        usable = not path.is_symlink() and path.is_dir()
    except OSError as error:
        raise FolderRefused(f"{path} cannot be looked at: {error.strerror}.") from None
    if not usable:
        raise FolderRefused(f"{path} is not a folder on this box (a link to one is not taken).")
    data = settings().data_dir.resolve()
    if path.resolve() == data or data in path.resolve().parents:
        raise FolderRefused(f"{path} is inside Cairn's own data folder.")
    return path


def _overlap(path: Path, other: Path) -> bool:
    return path == other or other in path.parents or path in other.parents


def _apart_from_inboxes(path: Path) -> None:
    for box in Inbox.select():
        if _overlap(path, Path(box.path)):
            raise FolderRefused(f"{path} overlaps the inbox {box.path}; keep them apart.")


def set_root(text: str) -> Library:
    path = check_folder(text, role="library")
    _apart_from_inboxes(path)
    library = Library.current()
    Library.update(root=str(path), updated_at=utcnow()).where(Library.id == library.id).execute()
    Event.publish("library.root", "library", f"The movie library is {path}.")
    scan_library_task()
    return Library.current()


def add_inbox(text: str, added_by: str = "") -> Inbox:
    path = check_folder(text, role="inbox")
    root = Library.current().root
    if root and _overlap(path, Path(root)):
        raise FolderRefused(f"{path} overlaps the library {root}; keep them apart.")
    _apart_from_inboxes(path)
    inbox = Inbox.create(path=str(path), added_by=added_by)
    Event.publish("library.inbox", "library", f"Watching the inbox {path}.")
    return inbox


# --- the recycle folder ------------------------------------------------------------------------

def recycle_day(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%d")


def empty_recycle(now: dt.datetime) -> list[str]:
    """Remove the recycle folder's days older than the library's `recycle_days`: replaced
    files were kept that long for a change of mind, as the settings page says."""
    library = Library.current()
    if not library.root:
        return []
    folder = Path(library.root) / placing.RECYCLE
    oldest = recycle_day(now - dt.timedelta(days=library.recycle_days))
    removed = []
    try:
        days = sorted(entry.name for entry in os.scandir(folder)
                      if entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    for day in days:
        if _is_day(day) and day < oldest:
            shutil.rmtree(folder / day)
            removed.append(day)
    if removed:
        Event.publish("library.recycled", "library",
                      f"Emptied {format_count(len(removed), 'day')} of the recycle folder, older than "
                      f"{library.recycle_days} days.")
    return removed


def _is_day(name: str) -> bool:
    try:
        dt.datetime.strptime(name, "%Y-%m-%d")
        return True
    except ValueError:
        return False


@huey.periodic_task(crontab(minute="41", hour="4"))
@with_db
def empty_recycle_nightly() -> None:
    empty_recycle(utcnow())


# --- movies ------------------------------------------------------------------------------------

def movie_keys(title: str, year: int | None, tmdb_id: int | None = None) -> list[str]:
    """The keys a movie may be recorded under, the surest first."""
    keys = [f"tmdb:{tmdb_id}"] if tmdb_id else []
    return [*keys, f"{tmdb.normalize_title(title)[:300]}|{year or ''}"]


def find_movie(*keys: str) -> Movie | None:
    for key in keys:
        movie = Movie.get_or_none(Movie.key == key)
        if movie is not None:
            return movie
    return None


def movie_for(title: str, year: int | None, tmdb_id: int | None, verified: bool) -> Movie:
    keys = movie_keys(title, year, tmdb_id)
    movie = find_movie(*keys)
    if movie is None:
        movie = Movie.create(key=keys[0], title=title, year=year, tmdb_id=tmdb_id,
                             verified=verified)
    return movie


# --- what the library holds --------------------------------------------------------------------

def scan_library() -> tuple[int, int]:
    """Record the library's movie files that Cairn did not import (a library it was given
    full), and forget records of files no longer there; returns (added, forgotten)."""
    library = Library.current()
    if not library.root or not Path(library.root).is_dir():
        return 0, 0
    root = Path(library.root)
    known = {f.path: f for f in MovieFile.select()}
    seen, added = set(), 0
    for found in inbox.files(str(root)):
        if found.link or extension(found.name) not in VIDEO_EXTENSIONS:
            continue
        seen.add(found.name)
        if found.name not in known:
            _record_found(found)
            added += 1
    gone = [f.id for path, f in known.items() if path not in seen and not (root / path).exists()]
    if gone:
        MovieFile.delete().where(MovieFile.id.in_(gone)).execute()
    if added or gone:
        Event.publish("library.scanned", "library",
                      f"Library scan: {format_count(added, 'file')} found, {len(gone):,} gone.")
    return added, len(gone)


def _record_found(found: inbox.Found) -> None:
    release = parse_path(found.name)
    title = release.title or Path(found.name).stem
    add_file(movie_for(title, release.year, None, False), found.name, found.size, release,
             origin="found")


def add_file(movie: Movie, path: str, size: int, release: Release, content_hash: str = "",
             origin: str = "import") -> MovieFile:
    """Record a library file of `movie`, with the quality and names its release gives."""
    quality = release.quality
    return MovieFile.create(movie=movie, path=path, size=size, quality=quality.name,
                            rank=quality.rank, revision=quality.revision,
                            edition=release.edition[:100], group=release.group[:100],
                            content_hash=content_hash, origin=origin)


@huey.task()
@with_db
def scan_library_task() -> tuple[int, int]:
    return scan_library()


@huey.periodic_task(crontab(minute="11", hour="4"))
@with_db
def scan_library_nightly() -> None:
    scan_library()


def remove_inbox(box: Inbox) -> None:
    """Stop watching an inbox; what was imported from it stays in the history."""
    box.delete_instance()
    Event.publish("library.inbox", "library", f"No longer watching the inbox {box.path}.")


# --- enrichment --------------------------------------------------------------------------------

ENRICH_BATCH = 50


def enrich(now: dt.datetime | None = None) -> int:
    """Ask TMDB again about movies named only from their files (imported with no key set, or
    while TMDB was down, paused or rate limiting), and confirm the ones it knows. Their files
    keep their names: the library is not reshuffled behind anyone's back."""
    if not metadata.enabled():
        return 0
    confirmed = 0
    for movie in Movie.select().where(~Movie.verified).order_by(Movie.id).limit(ENRICH_BATCH):
        found = metadata.identify(movie.title, movie.year, now)
        if found.verified:
            _confirm(movie, found)
            confirmed += 1
        elif found.note.startswith("Unverified"):
            break   # TMDB cannot answer now; the next hour tries again
    return confirmed


def _confirm(movie: Movie, found: metadata.Identity) -> None:
    key = f"tmdb:{found.tmdb_id}"
    with db.atomic():
        same = Movie.get_or_none((Movie.key == key) & (Movie.id != movie.id))
        if same is not None:   # the same movie under another name: one record
            MovieFile.update(movie=same).where(MovieFile.movie == movie).execute()
            ImportItem.update(movie=same).where(ImportItem.movie == movie).execute()
            movie.delete_instance()
            movie = same
        else:
            Movie.update(key=key, title=found.title, year=found.year, tmdb_id=found.tmdb_id,
                         verified=True).where(Movie.id == movie.id).execute()
        ImportItem.update(verified=True).where(ImportItem.movie == movie).execute()
    Event.publish("library.enriched", "library",
                  f"TMDB confirmed {found.title} ({found.year or 'no year'}).", movie=movie.id)


@huey.periodic_task(crontab(minute="17"))
@with_db
def enrich_hourly() -> None:
    enrich()
