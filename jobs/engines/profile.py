"""Check a backup profile's settings as typed by a person, before anything is saved.

Only what can be judged from the text: whether folders exist and can be read is the worker's
to say (it has rights the web process lacks), at the start of every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from jobs.engines import filters, retention, rsync, schedule, ssh
from jobs.engines.snapshots import CheckError, check_path_text, within

MAX_NAME = 100
MAX_SOURCES = 64
MAX_EXCLUDES = 500
MODES = ("snapshot", "mirror")


class ProfileInvalid(ValueError):
    """Each field's problems; a field with several (three bad source lines) has one per line."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class CleanProfile:
    """Named as models.Profile's columns, so that `Profile.create(**asdict(clean))` works."""
    name: str
    sources: list[str]
    excludes: list[str]
    destination: str
    mode: str = "snapshot"
    one_file_system: bool = False
    max_parallel: int = 4
    bwlimit_kib: int | None = None
    retries: int = 3
    schedule: str = ""                 # cron expression; "" runs only when asked
    schedule_tz: str = "UTC"
    run_on_connect: bool = False       # checked against the drives by the caller
    keep_last: int = 0                 # retention: all zeros keep every snapshot
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_min_free: float | None = None
    verify_schedule: str = ""          # cron expression on schedule_tz's clock; "" never
    verify_percent: float | None = None   # share of files a scheduled check reads; None: all


def clean(name: str, sources: list[str], excludes: list[str], destination: str, *,
          mode: str = "snapshot", one_file_system: bool = False, max_parallel: int = 4,
          bandwidth: str = "", retries: int = 3, cron: str = "",
          schedule_tz: str = "UTC", keep: dict | None = None, verify_cron: str = "",
          verify_percent: float | None = None) -> CleanProfile:
    """Return the profile with normalized values, or raise ProfileInvalid naming each field."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the profile a name."
    elif len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
        errors["name"] = f"A name is one line of at most {MAX_NAME} characters."
    clean_sources = _sources(sources, errors)
    clean_excludes = _excludes(excludes, errors)
    destination = _destination(destination, clean_sources, errors)
    if mode not in MODES:
        errors["mode"] = "Choose snapshot (history, hardlinks) or mirror (one copy)."
    if not 1 <= max_parallel <= 64:
        errors["max_parallel"] = "Run between 1 and 64 rsync processes at once."
    if not 0 <= retries <= 10:
        errors["retries"] = "Retry a failed unit between 0 and 10 times."
    try:
        bwlimit = rsync.parse_bandwidth(bandwidth)
    except rsync.BandwidthError as error:
        errors["bandwidth"], bwlimit = str(error), None
    expression = ""
    try:
        schedule.zone(schedule_tz)
        expression = schedule.validate(cron) if (cron or "").strip() else ""
    except schedule.ScheduleError as error:
        errors["schedule"] = str(error)
    verify_expression = ""
    try:
        verify_expression = schedule.validate(verify_cron) if (verify_cron or "").strip() else ""
    except schedule.ScheduleError as error:
        errors["verify_schedule"] = str(error)
    if verify_percent is not None and not 0 < verify_percent <= 100:
        errors["verify_percent"] = "Check between 0.01 and 100 percent of the files."
    try:
        policy = retention.Policy.from_fields(**(keep or {}))
    except (retention.PolicyError, TypeError, KeyError) as error:
        errors["retention"] = str(error)
        policy = retention.Policy()
    if errors:
        raise ProfileInvalid(errors)
    return CleanProfile(name, clean_sources, clean_excludes, destination, mode, one_file_system,
                        max_parallel, bwlimit, retries, expression, schedule_tz,
                        keep_last=policy.last, keep_daily=policy.daily,
                        keep_weekly=policy.weekly, keep_monthly=policy.monthly,
                        keep_yearly=policy.yearly, keep_min_free=policy.min_free_percent,
                        verify_schedule=verify_expression,
                        verify_percent=None if verify_percent in (None, 100) else verify_percent)


def clean_selection(sources: list[str], excludes: list[str]) -> tuple[list[str], list[str]]:
    """The sources and exclude patterns alone, checked as `clean` checks them (for counting
    what the patterns leave out before the profile is saved)."""
    errors: dict[str, str] = {}
    clean_sources, clean_excludes = _sources(sources, errors), _excludes(excludes, errors)
    if errors:
        raise ProfileInvalid(errors)
    return clean_sources, clean_excludes


def _sources(sources: list[str], errors: dict[str, str]) -> list[str]:
    cleaned: list[str] = []
    problems: list[str] = []
    for raw in sources:
        try:
            remote = ssh.split_remote(raw)
            check_path_text(remote[1] if remote else raw, "source folder")
        except (CheckError, ValueError) as error:
            problems.append(str(error))   # every bad line is named, not only the first
            continue
        # A host's folder is written `user@host[:port]:/path`, with the path tidied.
        path = f"{remote[0]}:{os.path.normpath(remote[1])}" if remote else os.path.normpath(raw)
        if path not in cleaned:
            cleaned.append(path)
    if problems:
        errors["sources"] = "\n".join(dict.fromkeys(problems))
        return []
    if not cleaned:
        errors["sources"] = "Choose at least one folder to back up."
    elif len(cleaned) > MAX_SOURCES:
        errors["sources"] = f"A profile backs up at most {MAX_SOURCES} folders."
    for a in cleaned:
        for b in cleaned:
            if a != b and within(b, a):
                errors["sources"] = f"{b} is inside {a}, which is already backed up."
    return cleaned


def _excludes(excludes: list[str], errors: dict[str, str]) -> list[str]:
    cleaned = [p for p in (e.strip() for e in excludes) if p]
    if len(cleaned) > MAX_EXCLUDES:
        errors["excludes"] = f"At most {MAX_EXCLUDES} exclude patterns."
    problems = []
    for pattern in cleaned:
        try:
            filters.validate(pattern)
        except filters.PatternError as error:
            problems.append(str(error))
    if problems:
        errors["excludes"] = "\n".join(dict.fromkeys(problems))
    return list(dict.fromkeys(cleaned))


def _destination(raw: str, sources: list[str], errors: dict[str, str]) -> str:
    try:
        remote = ssh.split_remote(raw or "")
        check_path_text(remote[1] if remote else raw, "destination folder")
    except (CheckError, ValueError) as error:
        errors["destination"] = str(error)
        return raw
    if remote:
        # Snapshots pushed to a folder on a host: rsync copies between this box and one host.
        path = os.path.normpath(remote[1])
        if path == "/":
            errors["destination"] = "Choose a folder, not the root of the host's filesystem."
        elif any(ssh.split_remote(source) for source in sources):
            errors["destination"] = ("A folder on a host cannot be backed up to a host: one of "
                                     "the two must be a folder of this box.")
        return f"{remote[0]}:{path}"
    path = os.path.normpath(raw)
    if path == "/":
        errors["destination"] = "Choose a folder, not the root of the filesystem."
        return path
    for source in sources:
        if within(path, source):
            errors["destination"] = f"The destination is inside source {source}: each backup " \
                                    "would copy the ones before it."
        elif within(source, path):
            errors["destination"] = f"Source {source} is inside the destination."
    return path

