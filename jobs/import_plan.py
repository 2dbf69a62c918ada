"""The media import's decision for one file: is it taken, and where does it go in the
library (every rule of jobs/engines/decide.py, with the library's state it needs: the best
file of the movie, what was imported before, free space, a name not taken).

`Blocked` and `Retry` are how a step says it stops: a person must look, or a reason that may
pass. jobs/imports.py runs the steps and records the outcome.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from jobs import library as lib
from jobs import metadata
from jobs.engines import decide, inbox, naming, placing
from jobs.engines.release import Quality, Release, extension
from models import ImportItem, MovieFile


class Retry(Exception):
    """A step failed for a reason that may pass (a full disk, a missing library)."""


class Blocked(Exception):
    """A person must look at the file; the reasons say why. `overridable`: policy only, so
    "import anyway" may take it."""

    def __init__(self, *reasons: str, overridable: bool = False) -> None:
        super().__init__(reasons[0])
        self.reasons = list(reasons)
        self.overridable = overridable


@dataclass
class Plan:
    decision: decide.Decision
    release: Release
    title: str
    year: int | None
    tmdb_id: int | None
    verified: bool
    relative: str = ""
    content_hash: str = ""
    identical: MovieFile | None = None
    replaces: MovieFile | None = None


def decide_plan(item: ImportItem, found: inbox.Found, release: Release, identity: metadata.Identity,
            setup: lib.Setup) -> Plan:
    root = library_root(setup)
    digest = _hash_if_known_size(found, root)
    identical = MovieFile.with_content(digest)
    before = ImportItem.imported_with(digest)
    movie = lib.find_movie(*lib.movie_keys(identity.title, identity.year, identity.tmdb_id),
                           *lib.movie_keys(release.title, release.year))
    best = movie.best_file() if movie is not None else None
    existing = decide.Existing(best.path, Quality(best.quality, best.revision),
                               best.content_hash) if best else None
    usage = shutil.disk_usage(root)
    candidate = decide.Candidate(found.path, found.size, release, digest,
                                 inbox.runtime_seconds(found.path) if _may_be_sample(found) else None)
    decision = decide.decide(
        candidate, setup.profile, existing=existing,
        imported_before=before is not None and before.id != item.id,
        identical_in_library=identical.path if identical else "", free_bytes=usage.free,
        same_filesystem=os.stat(found.path).st_dev == os.stat(root).st_dev,
        margin=setup.margin, force=item.force)
    if not decision.accepted:
        raise Blocked(*decision.reasons, overridable=decision.overridable)
    plan = Plan(decision, release, identity.title, identity.year, identity.tmdb_id, identity.verified,
                content_hash=digest, identical=identical,
                replaces=best if decision.replaces is not None else None)
    if decision.action != "link_identical":
        plan.relative = _destination(item, release, plan, setup, root)
    return plan


def library_root(setup: lib.Setup) -> Path:
    if not setup.library.root:
        raise Blocked("No library folder is set (Library settings, or `library root PATH`).")
    if not setup.root.is_dir():
        raise Retry(f"The library folder {setup.root} is not there (a drive unplugged?).")
    return setup.root


def _hash_if_known_size(found: inbox.Found, root: Path) -> str:
    """The file's content hash, read only when a library file or an earlier import has the
    same size: no other file can have the same content, and a movie is a big read."""
    same_size = (MovieFile.select().where(MovieFile.size == found.size).exists()
                 or ImportItem.select().where((ImportItem.size == found.size)
                                              & (ImportItem.state == "imported")).exists())
    if not same_size:
        return ""
    for other in MovieFile.select().where((MovieFile.size == found.size)
                                          & (MovieFile.content_hash == "")):
        try:   # a file the library scan found: its hash is read once, when first needed
            digest = placing.file_hash(root / other.path)
        except OSError:
            continue
        MovieFile.update(content_hash=digest).where(MovieFile.id == other.id).execute()
    return placing.file_hash(found.path)


def _may_be_sample(found: inbox.Found) -> bool:
    return found.size < decide.SAMPLE_BYTES


def _destination(item: ImportItem, release: Release, plan: Plan, setup: lib.Setup,
                 root: Path) -> str:
    ext = extension(item.name)
    values = {"Title": plan.title, "Year": plan.year, "Quality": release.quality.name,
              "Edition": release.edition, "Group": release.group, "ext": ext,
              "Resolution": _resolution(release.quality.name)}
    relative = naming.render(setup.template, values)
    replaced = plan.replaces.path if plan.replaces else None
    if relative == replaced or not _taken(root / relative):
        return relative
    if not item.force:
        raise Blocked(f"{relative} is already in the library and Cairn did not import it: "
                      "nothing was overwritten. Import anyway to keep both.", overridable=True)
    stem, _, ext = relative.rpartition(".")
    for n in range(2, 100):
        other = f"{stem} ({n}).{ext}"
        if not _taken(root / other):
            return other
    raise Blocked(f"{relative} and 98 numbered names beside it are taken.")


def _taken(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _resolution(quality: str) -> str:
    for resolution in ("2160p", "1080p", "720p", "576p", "480p"):
        if resolution in quality:
            return resolution
    return ""
