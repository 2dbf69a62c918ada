"""The media import: files in the inboxes become movies in the library.

`sweep()` looks at every inbox (called by the inotify watcher, every minute as a safety net,
and by `import scan`): it records new files as `waiting`, notes changes, and hands each file
that has kept its size and mtime for the library's `stable_seconds` (and is in no working
folder) to `process`, one Huey task per file, so files are taken in parallel. `process`
identifies the file (name, then TMDB), decides (every rule, every reason kept), and imports
it (jobs/engines/placing.py: nothing overwritten, a replaced file recycled, any failure
undone). A failure is retried with backoff, then the item is `failed` (the dead letter) until
someone retries it. Each step is an event on the item's subject.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import threading
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from huey import crontab

from jobs import library as lib
from jobs import metadata
from jobs.engines import inbox, placing
from jobs.engines.humane import format_count
from jobs.engines.release import Release, parse_path
from jobs.import_plan import Blocked, Plan, Retry, decide_plan
from jobs.queue import box_lock, huey, local, settings, with_db
from models import Event, ImportItem, Inbox, MovieFile, db, utcnow
from models.media import IMPORT_ACTIVE

log = logging.getLogger(__name__)

# Two files of one movie decided at once could both think they are the upgrade; within a
# process they take turns. Across processes the loser finds the destination taken, and its
# retry decides again against what the winner imported.
_movie_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@dataclass
class Sweep:
    found: int = 0
    present: list[int] = field(default_factory=list)   # the items of the files there now
    new: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    gone: int = 0
    problems: list[str] = field(default_factory=list)


# --- looking at the inboxes ------------------------------------------------------------------

def sweep(now: dt.datetime | None = None, hurry: bool = False, enqueue: bool = True) -> Sweep:
    """Record what the inboxes hold and start every file that is ready. `hurry` takes files
    without waiting for them to settle (`import scan --now`).

    One sweep at a time on a box (every worker's minute task, the watcher and the command
    may ask at once): two would both record a new file."""
    lock = box_lock("inbox-sweep", wait=True)
    try:
        return _sweep(now or utcnow(), hurry, enqueue)
    finally:
        os.close(lock)


def _sweep(now: dt.datetime, hurry: bool, enqueue: bool) -> Sweep:
    result = Sweep()
    library = lib.Library.current()
    known = ImportItem.by_path()
    seen: set[str] = set()
    listed: set[int] = set()
    for box in Inbox.select():
        problem = _look_in(box, now, seen, known, result)
        if problem:
            result.problems.append(problem)
        if not problem.startswith("Cannot list"):
            listed.add(box.id)
        if problem != box.problem:
            Inbox.update(problem=problem).where(Inbox.id == box.id).execute()
    result.gone = _forget_gone(seen, listed, now)
    if not library.root:
        result.problems.append("No library folder is set: files wait in the inbox until an "
                               "admin sets one (Library settings, or `library root PATH`).")
        return result
    for item in ImportItem.select().where(ImportItem.state == "waiting"):
        if _ready(item, library.stable_seconds, now, hurry) and _start(item, enqueue, now):
            result.started.append(item.id)
    return result


def _look_in(box: Inbox, now: dt.datetime, seen: set[str], known: dict[str, ImportItem],
             result: Sweep) -> str:
    """Record what one inbox holds; what could not be read there, in words ("" if nothing)."""
    unreadable: list[str] = []
    try:
        for found in inbox.files(box.path, unreadable):
            seen.add(found.path)
            result.found += 1
            _note(box, found, now, known.get(found.path), result)
    except inbox.InboxMissing as missing:
        return str(missing)
    if unreadable:
        return (f"Cairn may not read {format_count(len(unreadable), 'folder')} in {box.path}: "
                f"{', '.join(unreadable[:5])}{'…' if len(unreadable) > 5 else ''}. "
                "Their files are not seen until their permissions let it.")
    return ""


def _note(box: Inbox, found: inbox.Found, now: dt.datetime, item: ImportItem | None,
          result: Sweep) -> None:
    if item is None:
        item = ImportItem.create(inbox=box, path=found.path, name=found.name, size=found.size,
                                 mtime_ns=found.mtime_ns, created_at=now, stable_since=now,
                                 updated_at=now)
        _event(item, "import.waiting", f"Found {found.name} in {box.path}.")
        result.new.append(item.id)
        result.present.append(item.id)
        return
    result.present.append(item.id)
    if (item.size, item.mtime_ns) == (found.size, found.mtime_ns):
        return
    if item.state == "waiting":
        ImportItem.update(size=found.size, mtime_ns=found.mtime_ns, stable_since=now,
                          updated_at=now).where(ImportItem.id == item.id).execute()
    elif item.state in ("blocked", "failed") and item.again(size=found.size,
                                                            mtime_ns=found.mtime_ns):
        # The file changed since it was refused (an empty file filled, a name finished):
        # it gets a fresh look once it settles.
        ImportItem.update(stable_since=now).where(ImportItem.id == item.id).execute()
        _event(item, "import.waiting", f"{found.name} changed; looking at it again.")


def _forget_gone(seen: set[str], listed: set[int], now: dt.datetime) -> int:
    """Items whose file is no longer there. Only in inboxes listed now: an inbox that cannot
    be listed (unmounted, or on another box of a scale-out) loses nothing."""
    gone = 0
    for item in ImportItem.select().where(ImportItem.state.in_(("waiting", "blocked", "failed"))
                                          & ImportItem.inbox.in_(listed or {0})):
        if item.path not in seen and _vanished(item.path) and _gone(item, now):
            gone += 1
    return gone


def _gone(item: ImportItem, now: dt.datetime) -> bool:
    """The file left the inbox: the item ends, in the history, as gone."""
    if item.state in IMPORT_ACTIVE:
        done = item.finish("gone", "The file left the inbox before it was imported.", now=now)
    else:
        done = item.step(("blocked", "failed"), "gone", finished_at=now,
                         message="The file left the inbox; nothing to import.")
    if done:
        _event(item, "import.gone", f"{item.name} left the inbox.")
    return done


def _vanished(path: str) -> bool:
    try:
        os.lstat(path)
        return False
    except FileNotFoundError:
        return True
    except OSError:
        return False   # cannot tell (permissions, a drive gone): keep it


def _ready(item: ImportItem, wait_seconds: int, now: dt.datetime, hurry: bool) -> bool:
    why = inbox.working(item.name)
    if why:
        if item.message != why:
            ImportItem.update(message=why).where(ImportItem.id == item.id).execute()
        return False
    if item.not_before is not None and item.not_before > now:
        return False
    return hurry or now - item.stable_since >= dt.timedelta(seconds=wait_seconds)


def _start(item: ImportItem, enqueue: bool, now: dt.datetime) -> bool:
    if not item.step(("waiting",), "identifying", owner=local.worker_id, message=""):
        return False
    _event(item, "import.identifying", f"Identifying {item.name}.")
    if enqueue:
        process(item.id, now)
    return True


# --- one file --------------------------------------------------------------------------------

@huey.task()
@with_db
def process(item_id: int, now: dt.datetime | None = None) -> None:
    """Identify, decide and import one file. `now` is the clock of the sweep that started
    it: the retry it may set is due by that clock (a queued task runs a moment later; its
    retry comes that moment early)."""
    now = now or utcnow()
    item = ImportItem.get_or_none(ImportItem.id == item_id)
    if item is None or item.state != "identifying":
        return
    ImportItem.update(owner=local.worker_id).where(ImportItem.id == item.id).execute()
    try:
        _process(item, now)
    except Blocked as blocked:
        _block(item, blocked.reasons, blocked.overridable)
    except (Retry, placing.PlaceError) as problem:
        _retry_or_fail(item, str(problem), now)
    except Exception as error:
        log.exception("import of %s failed", item.path)
        _retry_or_fail(item, f"Internal error: {error}", now)


def _process(item: ImportItem, now: dt.datetime) -> None:
    found = _look_again(item, now)
    if found is None:
        return
    parsed = parse_path(item.name)
    release = replace(parsed, title=item.manual_title, year=item.manual_year) \
        if item.manual_title else parsed
    identity = metadata.identify(release.title, release.year) if release.title else \
        metadata.Identity("", None)
    _save_identity(item, parsed, identity)
    if not item.step(("identifying",), "deciding"):
        return
    _event(item, "import.deciding", _identity_words(item))
    setup = lib.setup()
    with _movie_locks[lib.movie_keys(identity.title, identity.year, identity.tmdb_id)[-1]]:
        plan = decide_plan(item, found, release, identity, setup)
        if not item.step(("deciding",), "importing"):
            return
        _event(item, "import.importing", _plan_words(plan))
        _import(item, found, plan, setup, now)


def _look_again(item: ImportItem, now: dt.datetime) -> inbox.Found | None:
    """The file as it is now: gone, changed (back to waiting) or as it was when it settled."""
    try:
        st = os.lstat(item.path)
    except FileNotFoundError:
        _gone(item, now)
        return None
    except OSError as error:
        raise Blocked(f"Cannot look at the file: {error.strerror}.") from error
    if stat.S_ISLNK(st.st_mode):
        raise Blocked("A symbolic link: Cairn imports only real files and does not follow "
                      "links (one may point out of the inbox, or loop back into it).")
    if (st.st_size, st.st_mtime_ns) != (item.size, item.mtime_ns) and not item.force:
        item.step(("identifying",), "waiting", size=st.st_size, mtime_ns=st.st_mtime_ns,
                  stable_since=now, owner=None, message="The file changed; waiting again.")
        return None
    if not os.access(item.path, os.R_OK):
        raise Blocked("Cairn may not read the file (permission denied); fix its permissions "
                      "and retry.")
    return inbox.Found(item.path, item.name, st.st_size, st.st_mtime_ns)


def _save_identity(item: ImportItem, parsed: Release, identity: metadata.Identity) -> None:
    fields = {"title": parsed.title[:300], "year": parsed.year, "quality": parsed.quality.name,
              "revision": parsed.quality.revision, "edition": parsed.edition[:100],
              "group": parsed.group[:100], "verified": identity.verified,
              "identity_note": identity.note}
    ImportItem.update(**fields).where(ImportItem.id == item.id).execute()
    for name, value in fields.items():
        setattr(item, name, value)


def _import(item: ImportItem, found: inbox.Found, plan: Plan, setup: lib.Setup,
            now: dt.datetime) -> None:
    if plan.decision.action == "link_identical":
        _record(item, plan, None, setup)
        return
    placed = placing.place(Path(found.path), setup.root, plan.relative,
                           replace=setup.root / plan.replaces.path if plan.replaces else None,
                           day=lib.recycle_day(now), expected_hash=plan.content_hash)
    try:
        _record(item, plan, placed, setup)
    except BaseException:
        placed.rollback()
        raise
    if setup.library.mode == "move":
        _remove_source(item)


def _record(item: ImportItem, plan: Plan, placed: placing.Placed | None, setup: lib.Setup) -> None:
    with db.atomic():
        if placed is None:
            movie = plan.identical.movie
            fields = {"destination": plan.identical.path, "method": "none",
                      "content_hash": plan.content_hash}
        else:
            movie = lib.movie_for(plan.title, plan.year, plan.tmdb_id, plan.verified)
            if plan.replaces is not None:
                MovieFile.delete().where(MovieFile.id == plan.replaces.id).execute()
            lib.add_file(movie, plan.relative, item.size, plan.release, placed.content_hash)
            fields = {"destination": plan.relative, "method": placed.method,
                      "content_hash": placed.content_hash,
                      "recycled": str(placed.recycled.relative_to(setup.root))
                      if placed.recycled else ""}
        if not item.finish("imported", _done_words(plan, placed), reasons=plan.decision.reasons,
                           action=plan.decision.action, movie=movie, **fields):
            raise Retry("The import was changed by someone else meanwhile.")
    _event(item, "import.imported", f"Imported {item.name} as {fields['destination']}.")


def _remove_source(item: ImportItem) -> None:
    try:
        os.unlink(item.path)
    except OSError as error:
        ImportItem.update(message=item.message + f" The inbox file could not be removed "
                          f"(move mode): {error.strerror}.").where(ImportItem.id == item.id).execute()


# --- outcomes ---------------------------------------------------------------------------------

def _block(item: ImportItem, reasons: list[str], overridable: bool) -> None:
    if item.finish("blocked", reasons[0], reasons=reasons, overridable=overridable):
        _event(item, "import.blocked", f"{item.name} needs attention: " + " ".join(reasons),
               level="warning")


def _retry_or_fail(item: ImportItem, message: str, now: dt.datetime) -> None:
    attempts = item.attempts + 1
    retries = lib.Library.current().retries
    if attempts > retries:
        if item.finish("failed", message, attempts=attempts):
            _event(item, "import.failed", f"Importing {item.name} failed after {attempts} "
                   f"tries: {message}", level="error")
        return
    delay = dt.timedelta(seconds=settings().retry_delay * 2 ** (attempts - 1))
    when = now + delay
    if item.step(IMPORT_ACTIVE, "waiting", attempts=attempts, not_before=when, owner=None,
                 message=f"Try {attempts} of {retries + 1} failed: {message} Trying again "
                         f"in {int(delay.total_seconds())} s."):
        _event(item, "import.waiting", f"{item.name}: {message} Retrying.", level="warning")
        sweep_task.schedule(delay=delay.total_seconds() + 1)


def _event(item: ImportItem, kind: str, message: str, level: str = "info") -> None:
    Event.publish(kind, item.subject, message, level=level, item=item.id)


def _identity_words(item: ImportItem) -> str:
    what = f"{item.title} ({item.year})" if item.year else item.title or "no title"
    how = "confirmed by TMDB" if item.verified else (item.identity_note or "from the name")
    return f"{item.name}: {what}, {item.quality or 'Unknown'}; {how}"


def _plan_words(plan: Plan) -> str:
    if plan.decision.action == "link_identical":
        return f"Same content as {plan.identical.path}: nothing to copy."
    verb = "Replacing " + plan.replaces.path + " with" if plan.replaces else "Placing"
    return f"{verb} {plan.relative}."


def _done_words(plan: Plan, placed: placing.Placed | None) -> str:
    if placed is None:
        return plan.decision.reasons[-1]
    said = {"hardlink": "hardlinked", "reflink": "reflinked", "copy": "copied and checked"}
    words = f"{said[placed.method].capitalize()} to {plan.relative}."
    if placed.recycled is not None:
        words += f" The file it replaced is in the recycle folder ({placing.RECYCLE})."
    return words


# --- people's choices -------------------------------------------------------------------------

def retry(item: ImportItem) -> bool:
    return _again(item, "Retrying", force=False)


def import_anyway(item: ImportItem) -> bool:
    """Only for a file refused by policy: the facts (an executable, an empty file...) stand."""
    if item.state == "blocked" and not item.overridable:
        return False
    return _again(item, "Importing anyway", force=True)


def identify(item: ImportItem, title: str, year: int | None) -> bool:
    return _again(item, f"Identified by hand as {title}" + (f" ({year})" if year else ""),
                  manual_title=title, manual_year=year)


def _again(item: ImportItem, words: str, **fields) -> bool:
    if not item.again(**fields):
        return False
    _event(item, "import.waiting", f"{words}: {item.name}.")
    sweep_task()
    return True


# --- the worker's side ------------------------------------------------------------------------

@huey.task()
@with_db
def sweep_task(hurry: bool = False) -> dict:
    found = sweep(hurry=hurry)
    return {"found": found.found, "started": found.started, "problems": found.problems}


@huey.periodic_task(crontab())
@with_db
def sweep_every_minute() -> None:
    # The safety net under the inotify watcher: events lost to an overflow, a network share
    # that sends none, and files that settled since the last event.
    sweep()


def resume(alive: list[int]) -> int:
    """Items a dead worker was working on go back to the queue, to be taken at once."""
    count = 0
    for item in ImportItem.stale(alive):
        if item.step((item.state,), "waiting", owner=None, stable_since=dt.datetime.min,
                     message="Taken again after its worker stopped."):
            count += 1
    return count
