"""Which snapshots a retention policy keeps, and why: a pure function of the snapshots'
times, the policy and `now`.

Grandfather-father-son, as restic and borg count it: keep the newest N; for D days, the
newest snapshot of each of the D most recent days that have one (a box that was off for a
month does not lose its history); likewise weeks (ISO weeks), months and years. Days are
counted on the clock of one time zone. Whatever the policy says, these are always kept: the
newest snapshot, every snapshot named in `protected` (a run reads from or links to it), and
a snapshot dated well after `now` (the clock went back; nobody should decide on it now). A policy
of all zeros keeps everything.

"Keep deleting the oldest while the destination has less than X% free" depends on what each
deletion frees, which only the disk knows: `oldest_deletable` gives the order, and the job
measures between deletions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

MAX_COUNT = 10_000
KEEP_FIELDS = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly",
               "keep_min_free")
# Snapshot names are their run's start, a second later when that name is taken, so runs in
# quick succession are named a little ahead of the clock. Only a snapshot further ahead than
# this is "dated after now" (the clock went back).
FUTURE_SLACK = dt.timedelta(minutes=10)


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    min_free_percent: float | None = None    # delete oldest while free space is below this

    def __post_init__(self) -> None:
        for name in ("last", "daily", "weekly", "monthly", "yearly"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
                raise PolicyError(f"Keep {name}: a whole number from 0 to {MAX_COUNT:,}.")
        if self.min_free_percent is not None and not 0 < self.min_free_percent < 100:
            raise PolicyError("Free space to keep: a percentage between 0 and 100.")

    @classmethod
    def from_fields(cls, **keep: int | float | None) -> Policy:
        """The policy of a profile's `keep_*` fields (None or missing: not set)."""
        names = {"keep_last": "last", "keep_daily": "daily", "keep_weekly": "weekly",
                 "keep_monthly": "monthly", "keep_yearly": "yearly",
                 "keep_min_free": "min_free_percent"}
        return cls(**{names[k]: v for k, v in keep.items() if v is not None})

    @property
    def keeps_everything(self) -> bool:
        return not (self.last or self.daily or self.weekly or self.monthly or self.yearly)

    def describe(self) -> str:
        parts = [f"the last {self.last}"] if self.last else []
        parts += [f"{count} {unit}" for count, unit in (
            (self.daily, "daily"), (self.weekly, "weekly"), (self.monthly, "monthly"),
            (self.yearly, "yearly")) if count]
        text = "Keep " + ", ".join(parts) if parts else "Keep every snapshot"
        if self.min_free_percent:
            text += f"; delete the oldest while less than {self.min_free_percent:g}% is free"
        return text


@dataclass(frozen=True)
class Decision:
    name: str
    at: dt.datetime              # naive UTC
    reasons: tuple[str, ...]     # why it is kept; empty: it may be deleted

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


_PERIODS: tuple[tuple[str, str, Callable[[dt.datetime], tuple]], ...] = (
    ("daily", "day", lambda t: (t.year, t.month, t.day)),
    ("weekly", "week", lambda t: tuple(t.isocalendar())[:2]),
    ("monthly", "month", lambda t: (t.year, t.month)),
    ("yearly", "year", lambda t: (t.year,)),
)


def _label(kind: str, key: tuple) -> str:
    if kind == "day":
        return f"{key[0]:04d}-{key[1]:02d}-{key[2]:02d}"
    if kind == "week":
        return f"{key[0]:04d}-W{key[1]:02d}"
    if kind == "month":
        return f"{key[0]:04d}-{key[1]:02d}"
    return f"{key[0]:04d}"


def decide(snapshots: Iterable[tuple[str, dt.datetime]], policy: Policy, now: dt.datetime,
           protected: Iterable[str] = (), tz: str = "UTC") -> list[Decision]:
    """A decision per snapshot, newest first. `snapshots` are (name, naive UTC time)."""
    zone = ZoneInfo(tz)
    ordered = sorted(snapshots, key=lambda s: (s[1], s[0]), reverse=True)
    reasons: dict[str, list[str]] = {name: [] for name, _ in ordered}
    keep_all = policy.keeps_everything
    protected = set(protected)
    for index, (name, at) in enumerate(ordered):
        if index == 0:
            reasons[name].append("newest")
        if name in protected:
            reasons[name].append("in use by a run")
        if at > now + FUTURE_SLACK:
            reasons[name].append("dated after now")
        if keep_all:
            reasons[name].append("the policy keeps every snapshot")
        if index < policy.last:
            reasons[name].append(f"one of the last {policy.last}")
    for field, kind, key_of in _PERIODS:
        wanted = getattr(policy, field)
        seen: set[tuple] = set()
        for name, at in ordered:
            if len(seen) >= wanted:
                break
            key = key_of(at.replace(tzinfo=dt.UTC).astimezone(zone))
            if key in seen:
                continue
            seen.add(key)
            reasons[name].append(f"newest of {kind} {_label(kind, key)} ({field} {wanted})")
    return [Decision(name, at, tuple(reasons[name])) for name, at in ordered]


def oldest_deletable(decisions: list[Decision], protected: Iterable[str] = ()) -> list[str]:
    """Snapshots the free-space rule may delete, oldest first: all but the newest, those in
    use and those dated after now (whatever the counts keep)."""
    protected = set(protected)
    hard = {"newest", "in use by a run", "dated after now"}
    return [d.name for d in reversed(decisions)
            if d.name not in protected and not hard.intersection(d.reasons)]
