"""Retention: examples, then every rule's guarantee checked on random histories (hypothesis)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.engines.retention import FUTURE_SLACK, Policy, PolicyError, decide, oldest_deletable

NOW = dt.datetime(2026, 11, 28, 12, 0)


def history(*times: str) -> list[tuple[str, dt.datetime]]:
    return [(t, dt.datetime.fromisoformat(t)) for t in times]


def kept(decisions) -> list[str]:
    return [d.name for d in decisions if d.keep]


def test_daily_keeps_the_newest_of_each_of_the_most_recent_days_with_a_snapshot():
    snaps = history("2026-11-01T03:00", "2026-11-20T03:00", "2026-11-20T15:00",
                    "2026-11-27T03:00", "2026-11-27T09:00")
    decisions = decide(snaps, Policy(daily=3), NOW)
    assert kept(decisions) == ["2026-11-27T09:00", "2026-11-20T15:00", "2026-11-01T03:00"]
    why = {d.name: d.reasons for d in decisions}
    assert why["2026-11-27T09:00"] == ("newest", "newest of day 2026-11-27 (daily 3)")
    assert why["2026-11-27T03:00"] == ()


def test_days_are_counted_on_the_chosen_clock():
    # 23:30 UTC on the 27th is already the 28th in Berlin: one day there, two in UTC.
    snaps = history("2026-11-27T23:30", "2026-11-28T08:00")
    assert len(kept(decide(snaps, Policy(daily=2), NOW))) == 2
    assert kept(decide(snaps, Policy(daily=2), NOW, tz="Europe/Berlin")) == ["2026-11-28T08:00"]


def test_a_snapshot_named_a_second_ahead_of_the_clock_is_not_a_future_one():
    # Runs in quick succession name their snapshots a second apart, ahead of the clock.
    snaps = history("2026-11-28T12:00:01", "2026-11-28T12:00:02", "2026-11-28T12:00:03")
    assert kept(decide(snaps, Policy(last=1), NOW)) == ["2026-11-28T12:00:03"]


def test_the_newest_in_use_and_future_snapshots_are_always_kept():
    snaps = history("2026-01-01T00:00", "2026-06-01T00:00", "2027-01-01T00:00")
    decisions = decide(snaps, Policy(last=1), NOW, protected=["2026-01-01T00:00"])
    reasons = {d.name: d.reasons for d in decisions}
    assert reasons["2027-01-01T00:00"][:2] == ("newest", "dated after now")
    assert reasons["2026-01-01T00:00"] == ("in use by a run",)
    assert reasons["2026-06-01T00:00"] == ()
    assert oldest_deletable(decisions, ["2026-01-01T00:00"]) == ["2026-06-01T00:00"]


def test_a_policy_of_zeros_keeps_everything_and_bad_policies_are_refused():
    snaps = history("2026-01-01T00:00", "2026-02-01T00:00")
    assert kept(decide(snaps, Policy(), NOW)) == ["2026-02-01T00:00", "2026-01-01T00:00"]
    assert Policy().describe() == "Keep every snapshot"
    assert Policy(last=3, weekly=4, min_free_percent=10).describe() == \
        "Keep the last 3, 4 weekly; delete the oldest while less than 10% is free"
    for bad in ({"daily": -1}, {"monthly": 10**6}, {"min_free_percent": 100}, {"last": 1.5}):
        with pytest.raises(PolicyError):
            Policy(**bad)


# --- properties --------------------------------------------------------------------------------

times = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2027, 6, 1))
histories = st.lists(times, min_size=1, max_size=60, unique=True).map(
    lambda ts: [(t.strftime("%Y-%m-%dT%H%M%S.%f"), t) for t in ts])
policies = st.builds(Policy, last=st.integers(0, 5), daily=st.integers(0, 10),
                     weekly=st.integers(0, 6), monthly=st.integers(0, 12), yearly=st.integers(0, 3))
zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Chatham"])


def newest_per_period(snaps, key_of, count):
    """The newest snapshot of each of the `count` most recent periods that have one."""
    best: dict = {}
    for name, at in sorted(snaps, key=lambda s: (s[1], s[0]), reverse=True):
        best.setdefault(key_of(at), name)
    return list(best.values())[:count]


@settings(max_examples=300, deadline=None)
@given(histories, policies, st.lists(st.integers(0, 59), max_size=3), zones)
def test_every_rule_keeps_what_it_promises(snaps, policy, protected_at, tz):

    protected = {snaps[i][0] for i in protected_at if i < len(snaps)}
    decisions = decide(snaps, policy, NOW, protected, tz)
    keep = {d.name for d in decisions if d.keep}
    assert [d.name for d in decisions] == \
        [n for n, _ in sorted(snaps, key=lambda s: (s[1], s[0]), reverse=True)]
    newest = decisions[0].name
    assert newest in keep and protected <= keep
    assert {n for n, at in snaps if at > NOW + FUTURE_SLACK} <= keep
    assert {d.name for d in decisions[:policy.last]} <= keep
    zone = ZoneInfo(tz)
    local = [(n, at.replace(tzinfo=dt.UTC).astimezone(zone)) for n, at in snaps]
    for count, key_of in ((policy.daily, lambda t: t.date()),
                          (policy.weekly, lambda t: tuple(t.isocalendar())[:2]),
                          (policy.monthly, lambda t: (t.year, t.month)),
                          (policy.yearly, lambda t: t.year)):
        assert set(newest_per_period(local, key_of, count)) <= keep
    if policy.keeps_everything:
        assert keep == {n for n, _ in snaps}
    else:
        limit = 1 + len(protected) + policy.last + policy.daily + policy.weekly + \
            policy.monthly + policy.yearly + sum(at > NOW + FUTURE_SLACK for _, at in snaps)
        assert len(keep) <= limit
    # Applying the policy again to what it kept deletes nothing more.
    survivors = [(n, at) for n, at in snaps if n in keep]
    assert all(d.keep for d in decide(survivors, policy, NOW, protected, tz))
    # The free-space rule never offers the newest, a protected or a future snapshot.
    for name in oldest_deletable(decisions, protected):
        assert name != newest and name not in protected
