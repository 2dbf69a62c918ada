"""Scheduled runs: the minute tick starts what came due, once, and says what it skipped.

Inline tests pass fixed times; the last test lets a real worker's own clock start a run."""

import datetime as dt

import pytest

from jobs import schedules
from jobs.queue import huey
from models import Event, Profile, Run, utcnow
from tests.helpers.settings import use_settings
from tests.helpers.trees import write
from tests.jobs.conftest import make_profile, wait_until

MAY_1 = dt.datetime(2026, 5, 1)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 5, day, hour, minute, second)


@pytest.fixture
def nightly(tmp_path):
    source = write(tmp_path / "docs" / "a.txt", "a").parent
    return make_profile(name="Nightly", sources=[source], dest=tmp_path / "backups",
                        schedule="0 3 * * *", schedule_tz="UTC", schedule_looked_at=at(1, 2, 59))


def events(kind: str) -> list[Event]:
    return list(Event.select().where(Event.kind == kind).order_by(Event.id))


@pytest.mark.usefixtures("inline")
class TestTheMinuteTick:
    def test_a_run_starts_in_the_minute_it_is_due_and_only_once(self, nightly):
        assert schedules.start_due_runs(at(1, 2, 59, 30)) == []
        started = schedules.start_due_runs(at(1, 3, 0, 2))
        assert len(started) == 1
        run = Run.get_by_id(started[0].id)
        assert (run.trigger, run.requested_by, run.state) == ("schedule", "schedule", "succeeded")
        assert Profile.get_by_id(nightly.id).schedule_looked_at == at(1, 3, 0, 2)
        assert schedules.start_due_runs(at(1, 3, 1, 2)) == []
        assert schedules.start_due_runs(at(2, 2, 59, 59)) == []
        assert len(schedules.start_due_runs(at(2, 3, 0, 1))) == 1
        assert not events("schedule.caught_up")

    def test_a_profile_still_running_skips_the_occurrence_and_says_so(self, nightly):
        busy = Run.request(nightly)   # queued: active, as a long run would be
        assert schedules.start_due_runs(at(1, 3, 0, 2)) == []
        assert Run.select().count() == 1
        [skipped] = events("schedule.skipped")
        assert skipped.level == "warning" and skipped.subject == f"profile:{nightly.id}"
        assert "2026-05-01 03:00 (UTC)" in skipped.message and f"run {busy.id}" in skipped.message

    def test_a_run_missed_while_the_box_was_off_is_caught_up_once(self, nightly):
        Profile.update(schedule_looked_at=at(1, 1)).execute()
        started = schedules.start_due_runs(at(3, 5, 0))   # off 1 May 01:00 to 3 May 05:00
        assert len(started) == 1
        [caught] = events("schedule.caught_up")
        assert caught.subject == started[0].subject and "2026-05-03 03:00" in caught.message
        assert schedules.start_due_runs(at(3, 5, 1)) == []

    def test_a_run_missed_beyond_the_catch_up_window_is_reported_not_run(self, nightly,
                                                                         monkeypatch):
        use_settings(monkeypatch, catch_up_hours=1)
        Profile.update(schedule_looked_at=at(1, 1)).execute()
        assert schedules.start_due_runs(at(3, 5, 0)) == []
        [missed] = events("schedule.missed")
        assert missed.level == "warning" and "catch-up window (1 h)" in missed.message
        assert not Run.select().exists()
        assert len(schedules.start_due_runs(at(4, 3, 0, 5))) == 1   # the next one runs

    def test_the_schedule_is_read_on_its_own_zone_clock(self, nightly):
        Profile.update(schedule="30 2 * * *", schedule_tz="Europe/Berlin",
                       schedule_looked_at=at(1, 0, 29)).execute()
        assert schedules.start_due_runs(at(1, 0, 29, 59)) == []
        assert len(schedules.start_due_runs(at(1, 0, 30, 1))) == 1   # 02:30 CEST

    def test_profiles_without_a_schedule_or_never_looked_at_start_nothing(self, tmp_path, nightly):
        make_profile(name="By hand", sources=[tmp_path / "docs"], dest=tmp_path / "b2")
        Profile.update(schedule_looked_at=None).where(Profile.id == nightly.id).execute()
        assert schedules.start_due_runs(at(1, 3, 0, 2)) == []
        # the first look only notes the time: nothing before it is owed
        assert Profile.get_by_id(nightly.id).schedule_looked_at == at(1, 3, 0, 2)
        assert Profile.by_name("By hand").schedule_looked_at is None

    def test_a_look_taken_by_another_worker_is_not_taken_twice(self, nightly):
        stale = Profile.get_by_id(nightly.id)
        assert schedules.start_due_runs(at(1, 3, 0, 2))
        assert not stale.claim_look("schedule_looked_at", at(1, 3, 0, 3))
        assert Run.select().count() == 1


def test_the_tick_runs_every_minute():
    name = schedules.start_scheduled_runs.func.__name__
    for minute in range(0, 24 * 60, 7):
        due = huey.read_periodic(MAY_1 + dt.timedelta(minutes=minute))
        assert name in [task.name for task in due]


@pytest.mark.slow
def test_a_running_worker_starts_scheduled_runs_by_itself(tmp_path, worker_factory):
    source = write(tmp_path / "docs" / "a.txt", "a").parent
    profile = make_profile(name="Every minute", sources=[source], dest=tmp_path / "backups",
                           schedule="* * * * *", schedule_looked_at=utcnow())
    worker_factory().start()
    run = wait_until(lambda: Run.get_or_none(Run.profile == profile), timeout=75)
    assert run.trigger == "schedule"
    run = wait_until(lambda: (r := Run.get_by_id(run.id)).state == "succeeded" and r, timeout=30)
    assert run.snapshot
