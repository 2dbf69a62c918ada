"""Schedules: cron expressions checked and said in words, next times, and when a run is due,
across clock changes and while the box was off. Fixed times throughout."""

import datetime as dt

import pytest

from jobs.engines.schedule import (
    Due,
    Preset,
    ScheduleError,
    as_preset,
    describe,
    due,
    latest,
    next_times,
    preset,
    previous,
    validate,
)

BERLIN = "Europe/Berlin"
HOUR = dt.timedelta(hours=1)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args)


@pytest.mark.parametrize("raw, tidy", [("30 2 * * *", "30 2 * * *"), ("  0  */6 * * 1-5 ", "0 */6 * * 1-5"),
                                       ("@daily", "0 0 * * *"), ("@Weekly", "0 0 * * 0")])
def test_expressions_are_tidied(raw, tidy):
    assert validate(raw) == tidy


@pytest.mark.parametrize("raw, says", [("", "Write a cron expression"), ("* * * *", "five fields"),
                                       ("0 0 0 * * *", "five fields"), ("61 * * * *", "range"),
                                       ("0 0 30 2 *", "never comes round"), ("x" * 300, "at most"),
                                       ("0 3 * * mon; rm -rf /", "five fields")])
def test_bad_expressions_say_what_is_wrong(raw, says):
    with pytest.raises(ScheduleError, match=says):
        validate(raw)


def test_presets_write_cron_expressions():
    assert preset("hourly", minute=15) == "15 * * * *"
    assert preset("daily", minute=30, hour=2) == "30 2 * * *"
    assert preset("weekly", minute=0, hour=9, weekday=1) == "0 9 * * 1"
    for bad in [dict(kind="monthly"), dict(kind="daily", hour=24), dict(kind="hourly", minute=-1),
                dict(kind="weekly", weekday=7)]:
        with pytest.raises(ScheduleError):
            preset(**bad)


def test_schedules_are_said_in_words():
    assert describe("30 2 * * *") == "At 02:30"
    assert describe("0 9 * * 1") == "At 09:00, only on Monday"
    assert describe("@hourly") == "Every hour"


def test_the_next_times_are_on_the_local_wall_clock():
    # 01:30 UTC on 1 July is 03:30 in Berlin (summer time): the next 02:30 is the next day's.
    assert next_times("30 2 * * *", BERLIN, utc(2026, 7, 1, 1, 30)) == [
        utc(2026, 7, 2, 0, 30), utc(2026, 7, 3, 0, 30), utc(2026, 7, 4, 0, 30)]
    assert next_times("30 2 * * *", "UTC", utc(2026, 7, 1, 1, 30), count=1) == [utc(2026, 7, 1, 2, 30)]


def test_a_time_skipped_when_clocks_go_forward_runs_once_an_hour_later():
    # 29 March 2026: Berlin goes from 02:00 to 03:00; 02:30 never shows on the wall clock.
    times = next_times("30 2 * * *", BERLIN, utc(2026, 3, 28, 12), count=2)
    assert times == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]   # 03:30 CEST, then 02:30
    # Hourly: the missing 02:00 stands in at 03:00, which runs once, not twice.
    assert next_times("0 * * * *", BERLIN, utc(2026, 3, 28, 23, 30), count=4) == [
        utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2), utc(2026, 3, 29, 3)]


def test_a_time_repeated_when_clocks_go_back_runs_once():
    # 25 October 2026: Berlin goes from 03:00 back to 02:00; 02:30 happens twice.
    times = next_times("30 2 * * *", BERLIN, utc(2026, 10, 24, 12), count=2)
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    hourly = next_times("0 * * * *", BERLIN, utc(2026, 10, 24, 23, 30), count=4)
    assert len(set(hourly)) == 4 and hourly == sorted(hourly)


def test_latest_is_at_or_before_now():
    assert latest("0 3 * * *", "UTC", utc(2026, 5, 1, 3, 0)) == utc(2026, 5, 1, 3, 0)
    assert latest("0 3 * * *", "UTC", utc(2026, 5, 1, 2, 59)) == utc(2026, 4, 30, 3, 0)
    # the skipped 02:30 counts only once its stand-in instant (03:30 CEST) has come
    assert latest("30 2 * * *", BERLIN, utc(2026, 3, 29, 1, 10)) == utc(2026, 3, 28, 1, 30)
    assert latest("30 2 * * *", BERLIN, utc(2026, 3, 29, 1, 30)) == utc(2026, 3, 29, 1, 30)


def test_a_run_is_due_in_the_minute_its_time_comes_and_only_once():
    looked = utc(2026, 5, 1, 2, 59)
    assert due("0 3 * * *", "UTC", looked, utc(2026, 5, 1, 2, 59, 30), 6 * HOUR) is None
    assert due("0 3 * * *", "UTC", looked, utc(2026, 5, 1, 3, 0, 5), 6 * HOUR) == \
        Due(utc(2026, 5, 1, 3, 0), late=False)
    # the next look, a minute later, owes nothing more
    assert due("0 3 * * *", "UTC", utc(2026, 5, 1, 3, 0, 5), utc(2026, 5, 1, 3, 1, 5), 6 * HOUR) is None


def test_missed_runs_are_caught_up_once_within_the_window():
    # The box was off from 1 May 00:00 to 3 May 05:00; the daily 03:00 ran neither day.
    off, back = utc(2026, 5, 1, 0, 0), utc(2026, 5, 3, 5, 0)
    assert due("0 3 * * *", "UTC", off, back, 6 * HOUR) == Due(utc(2026, 5, 3, 3, 0), late=True)
    # two hours late: too late, said so rather than run
    assert due("0 3 * * *", "UTC", off, back, HOUR) == Due(utc(2026, 5, 3, 3, 0), True, missed=True)
    assert due("0 3 * * *", "UTC", off, back, dt.timedelta(0)).missed


def test_the_occurrence_before_the_latest_bounds_an_overdue_snapshot():
    assert previous("0 3 * * *", "UTC", utc(2026, 5, 3, 5, 0)) == utc(2026, 5, 2, 3, 0)
    assert previous("0 3 * * *", "UTC", utc(2026, 5, 3, 3, 0)) == utc(2026, 5, 2, 3, 0)
    assert previous("0 * * * *", BERLIN, utc(2026, 5, 3, 5, 30)) == utc(2026, 5, 3, 4, 0)


def test_presets_are_read_back_from_their_expressions():
    for written in (Preset("hourly", 15), Preset("daily", 30, 2), Preset("weekly", 0, 23, 6)):
        assert as_preset(preset(written.kind, written.minute, written.hour, written.weekday)) == written
    for other in ("*/15 * * * *", "0 3 1 * *", "0 3 * * 1-5", "00 3 * * *", "60 * * * *", ""):
        assert as_preset(other) is None


def test_a_profile_never_looked_at_owes_nothing():
    assert due("* * * * *", "UTC", None, utc(2026, 5, 1), 6 * HOUR) is None


def test_time_zones_are_checked():
    with pytest.raises(ScheduleError, match="time zone"):
        next_times("0 3 * * *", "Mars/Olympus", utc(2026, 5, 1))
