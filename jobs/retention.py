"""Retention applied: after each successful run (and on demand) delete the snapshots the
profile's policy lets go, never one a run is using, and say which and why.

The decision is jobs/engines/retention.py's, on the snapshots that are really there (listed
on the destination, not taken from the database). Deleted snapshots are marked on their runs
(`pruned_at`) so the pages stop offering them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from jobs import catalog
from jobs.destinations import root_of
from jobs.engines import retention, snapshots
from jobs.engines.humane import format_count
from jobs.queue import huey, with_db
from models import ACTIVE_STATES, Event, Profile, Restore, Run, Snapshot, Verification, utcnow


def policy_of(profile: Profile) -> retention.Policy:
    return retention.Policy.from_fields(**{f: getattr(profile, f) for f in retention.KEEP_FIELDS})


def protected(profile: Profile) -> set[str]:
    """Snapshots a run of the profile reads from or links to right now, or that a restore or
    a verification is reading."""
    names = set()
    for run in Run.select(Run.link_from, Run.snapshot).where(
            (Run.profile == profile) & Run.state.in_(ACTIVE_STATES)):
        names.update(n for n in (run.link_from, run.snapshot) if n)
    for job in (Restore, Verification):
        names.update(name for (name,) in Snapshot.select(Snapshot.name).join(job).where(
            (job.profile == profile) & job.state.in_(("queued", "running"))).tuples())
    return names


def decisions_from_runs(profile: Profile, now: dt.datetime,
                        policy: retention.Policy | None = None) -> list[retention.Decision]:
    """The decisions of `policy` (the profile's own by default) on the snapshots the database
    knows (for the pages, which cannot list the destination)."""
    names = [r.snapshot for r in Run.select(Run.snapshot).where(
        (Run.profile == profile) & Run.good() & (Run.snapshot != "") & Run.pruned_at.is_null())]
    return retention.decide([(n, snapshots.snapshot_time(n)) for n in set(names)],
                            policy or policy_of(profile), now, protected(profile),
                            profile.schedule_tz)


@dataclass
class PruneResult:
    decisions: list[retention.Decision]
    deleted: list[str] = field(default_factory=list)
    for_space: list[str] = field(default_factory=list)   # deleted by the free-space rule


def prune(profile: Profile, now: dt.datetime | None = None, dry_run: bool = False) -> PruneResult:
    """Apply the profile's policy on its destination (a dry run only decides)."""
    now = now or utcnow()
    policy = policy_of(profile)
    if not dry_run and policy.keeps_everything and policy.min_free_percent is None:
        return PruneResult([])
    there = root_of(profile)
    names = there.list_snapshots()
    busy = protected(profile)
    decisions = retention.decide([(n, snapshots.snapshot_time(n)) for n in names], policy, now,
                                 busy, profile.schedule_tz)
    result = PruneResult(decisions)
    if dry_run:
        return result
    for decision in reversed(decisions):
        if not decision.keep and there.remove_snapshot(decision.name):
            result.deleted.append(decision.name)
    if policy.min_free_percent:
        for name in retention.oldest_deletable(decisions, busy):
            if name in result.deleted:
                continue
            if there.free_percent() >= policy.min_free_percent:
                break
            if there.remove_snapshot(name):
                result.for_space.append(name)
    gone = result.deleted + result.for_space
    if gone:
        Run.update(pruned_at=now).where((Run.profile == profile) & Run.snapshot.in_(gone)).execute()
        catalog.forget(profile, gone, now)
        Event.publish("retention.pruned", f"profile:{profile.id}",
                      f"Retention deleted {format_count(len(gone), 'snapshot')} of {profile.name} "
                      f"({policy.describe().lower()}): {', '.join(sorted(gone))}.",
                      profile=profile.id, deleted=len(gone))
    return result


@huey.task()
@with_db
def prune_profile(profile_id: int) -> None:
    profile = Profile.get_or_none(Profile.id == profile_id)
    if profile is None:
        return
    try:
        prune(profile)
    except Exception as error:  # retention failing must not look like the backup failing
        Event.publish("retention.failed", f"profile:{profile.id}",
                      f"Retention of {profile.name} could not delete old snapshots: {error}",
                      level="warning", profile=profile.id)
