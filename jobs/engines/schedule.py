"""Backup schedules: cron expressions (or presets that write one), said in words, and when a
schedule is due.

Schedules are read on the wall clock of one time zone (the box's): "daily at 02:30" means 02:30
local time all year. Occurrences are found on naive wall-clock times with croniter and only
then placed in the zone, so a daily run happens once on each day the clocks change: a time
skipped when clocks go forward runs an hour later on the wall clock (the same instant as the
skipped one would have been), and a time that happens twice when they go back runs the first
time only. An hourly schedule therefore runs once, not twice, in the repeated hour.

Everything takes `now` (aware or naive UTC) as an argument: the scheduler passes the clock,
tests pass fixed times.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cron_descriptor import CasingTypeEnum, FormatException, Options, get_description
from croniter import croniter

from jobs.engines import zones

MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
          "@annually": "0 0 1 1 *"}
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
PRESETS = ("hourly", "daily", "weekly")
MAX_EXPRESSION = 200


class ScheduleError(ValueError):
    """A schedule Cairn cannot read; the message says what to write instead."""


def validate(expression: str) -> str:
    """The expression, tidied (one space between fields, macros spelt out), or ScheduleError.

    Five fields (minute hour day-of-month month day-of-week), as crontab(5) has them; croniter's
    sixth field for seconds is refused, since the scheduler looks once a minute."""
    text = " ".join((expression or "").split())
    if not text:
        raise ScheduleError("Write a cron expression, such as 30 2 * * * for every day at 02:30.")
    if len(text) > MAX_EXPRESSION:
        raise ScheduleError(f"A cron expression is at most {MAX_EXPRESSION} characters long.")
    text = MACROS.get(text.lower(), text)
    if len(text.split(" ")) != 5:
        raise ScheduleError(f"{text!r} is not a cron expression: it needs five fields, minute "
                            "hour day-of-month month day-of-week, such as 30 2 * * *.")
    if not croniter.is_valid(text):
        raise ScheduleError(f"{text!r} is not a cron expression croniter can read: check each "
                            "field's range (minute 0-59, hour 0-23, day 1-31, month 1-12, "
                            "weekday 0-7).")
    try:
        croniter(text, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except (ValueError, KeyError, OverflowError) as error:   # e.g. 30 February: never
        raise ScheduleError(f"{text!r} never comes round ({error}).") from None
    return text


def preset(kind: str, minute: int = 0, hour: int = 0, weekday: int = 0) -> str:
    """The cron expression of a preset: hourly at `minute`, daily at `hour`:`minute`, weekly on
    `weekday` (0 = Sunday) at `hour`:`minute`."""
    if kind not in PRESETS:
        raise ScheduleError(f"Choose one of {', '.join(PRESETS)}.")
    if not 0 <= minute <= 59:
        raise ScheduleError("The minute is between 0 and 59.")
    if not 0 <= hour <= 23:
        raise ScheduleError("The hour is between 0 and 23.")
    if not 0 <= weekday <= 6:
        raise ScheduleError(f"The day is one of {', '.join(WEEKDAYS)}.")
    return {"hourly": f"{minute} * * * *", "daily": f"{minute} {hour} * * *",
            "weekly": f"{minute} {hour} * * {weekday}"}[kind]


@dataclass(frozen=True)
class Preset:
    kind: str                 # hourly | daily | weekly
    minute: int = 0
    hour: int = 0
    weekday: int = 0


_PRESET_SHAPES = (
    ("hourly", re.compile(r"^(?P<minute>\d{1,2}) \* \* \* \*$")),
    ("daily", re.compile(r"^(?P<minute>\d{1,2}) (?P<hour>\d{1,2}) \* \* \*$")),
    ("weekly", re.compile(r"^(?P<minute>\d{1,2}) (?P<hour>\d{1,2}) \* \* (?P<weekday>[0-6])$")),
)


def as_preset(expression: str) -> Preset | None:
    """The preset that writes `expression`, if one does (to fill the form back in)."""
    for kind, shape in _PRESET_SHAPES:
        match = shape.match(expression or "")
        if match:
            found = Preset(kind, **{k: int(v) for k, v in match.groupdict().items()})
            try:
                if preset(found.kind, found.minute, found.hour, found.weekday) == expression:
                    return found
            except ScheduleError:
                return None
    return None


def describe(expression: str) -> str:
    """The schedule in words, 24-hour clock: "At 02:30, only on Monday"."""
    options = Options()
    options.use_24hour_time_format = True
    options.casing_type = CasingTypeEnum.Sentence
    options.throw_exception_on_parse_error = True
    try:
        return get_description(validate(expression), options)
    except FormatException:
        return validate(expression)


def zone(name: str) -> ZoneInfo:
    try:
        return zones.zone(name)
    except ValueError as error:
        raise ScheduleError(str(error)) from None


def _wall(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    aware = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    return aware.astimezone(tz).replace(tzinfo=None)


def _instant(wall: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """A wall-clock time in `tz` as naive UTC. fold=0: the first of a repeated time, and for a
    skipped time the instant it would have been with the old offset."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(dt.UTC).replace(tzinfo=None)


def next_times(expression: str, tz_name: str, now: dt.datetime, count: int = 3) -> list[dt.datetime]:
    """The next `count` times the schedule comes round after `now`, as naive UTC."""
    tz = zone(tz_name)
    walls = croniter(validate(expression), _wall(now, tz))
    times: list[dt.datetime] = []
    while len(times) < count:
        instant = _instant(walls.get_next(dt.datetime), tz)
        if not times or instant > times[-1]:   # a skipped hour can map onto the next one
            times.append(instant)
    return times


def latest(expression: str, tz_name: str, now: dt.datetime) -> dt.datetime:
    """The last time the schedule came round at or before `now`, as naive UTC."""
    tz = zone(tz_name)
    wall = _wall(now, tz)
    walls = croniter(validate(expression), wall + dt.timedelta(microseconds=1))
    while True:
        instant = _instant(walls.get_prev(dt.datetime), tz)
        if instant <= _utc(now):
            return instant


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def previous(expression: str, tz_name: str, now: dt.datetime) -> dt.datetime:
    """The occurrence before the latest one: a run started then had a whole period to
    finish, so a newest good snapshot older than this means the schedule fell behind."""
    return latest(expression, tz_name, latest(expression, tz_name, now)
                  - dt.timedelta(microseconds=1))


@dataclass(frozen=True)
class Due:
    at: dt.datetime           # the occurrence (naive UTC)
    late: bool                # it was missed while nothing looked, and caught up now
    missed: bool = False      # ...or missed for longer than the catch-up window: not run


def due(expression: str, tz_name: str, looked_at: dt.datetime | None, now: dt.datetime,
        catch_up: dt.timedelta) -> Due | None:
    """Whether the schedule came round after `looked_at` (the last time the scheduler looked
    at this profile; None: never, so nothing is owed) and at or before `now`: a Due to run
    now, or one marked `missed` when it came round longer than `catch_up` ago (the box was
    off too long for it to still be wanted). Several missed occurrences give one Due."""
    if looked_at is None:
        return None
    at = latest(expression, tz_name, now)
    if at <= _utc(looked_at):
        return None
    late = _utc(now) - at > dt.timedelta(minutes=2)
    return Due(at, late, missed=late and _utc(now) - at > catch_up)
