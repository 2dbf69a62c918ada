"""The profile form and what pages say about a profile's schedule: the fields, their
checks (the same rules as the CLI, `jobs.engines.profile.clean`, plus the web's own: sources
only under the allowed roots, hosts that were added), and a schedule in words.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FloatField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, NumberRange, Optional

from jobs import hosts as host_jobs
from jobs.engines import retention as retention_engine
from jobs.engines import schedule
from jobs.engines.profile import ProfileInvalid, clean
from jobs.engines.rsync import format_bandwidth
from models import Drive, Profile
from views.forms import text_lines, whole_number
from views.picker import outside_roots

MODE_CHOICES = [
    SelectChoice("snapshot", "Snapshots – a browsable copy per run, unchanged files hardlinked"),
    SelectChoice("mirror", "Mirror – one up-to-date copy, no history (for FAT, exFAT, NTFS drives)"),
]
RECENT_RUNS = 10


SCHEDULE_CHOICES = [
    SelectChoice("manual", "Only when started by hand"),
    SelectChoice("hourly", "Every hour"),
    SelectChoice("daily", "Every day"),
    SelectChoice("weekly", "Every week"),
    SelectChoice("cron", "On a cron schedule"),
]
NEXT_RUNS_SHOWN = 3


class ScheduleForm(FlaskForm):
    """When a profile runs by itself: a preset or a cron expression, on one zone's clock."""
    schedule_kind = RadioField("Runs by itself", choices=SCHEDULE_CHOICES, default="manual")
    schedule_minute = IntegerField("Minutes past the hour", default=0)
    schedule_time = StringField("At", default="02:30")
    schedule_weekday = SelectField("On", default="0", choices=[
        SelectChoice(str(i), day) for i, day in enumerate(schedule.WEEKDAYS)])
    schedule_cron = StringField("Cron expression")
    schedule_tz = StringField("Time zone")

    def fill_schedule(self, expression: str, tz: str) -> None:
        self.schedule_tz.data = tz
        if not expression:
            self.schedule_kind.data = "manual"
            return
        found = schedule.as_preset(expression)
        if found is None:
            self.schedule_kind.data, self.schedule_cron.data = "cron", expression
            return
        self.schedule_kind.data = found.kind
        self.schedule_minute.data = found.minute
        self.schedule_time.data = f"{found.hour:02d}:{found.minute:02d}"
        self.schedule_weekday.data = str(found.weekday)

    def expression(self) -> str | None:
        """The cron expression the fields say ("" for by hand), or None with the problem
        beside its field."""
        kind = self.schedule_kind.data
        try:
            if kind == "manual":
                return ""
            if kind == "cron":
                return schedule.validate(self.schedule_cron.data or "")
            if kind == "hourly":
                if self.schedule_minute.data is None:
                    raise schedule.ScheduleError("Enter the minute, from 0 to 59.")
                return schedule.preset("hourly", minute=self.schedule_minute.data)
            hour, minute = _clock_time(self.schedule_time.data)
            weekday = whole_number(self.schedule_weekday.data or "0", 0, 6)
            if weekday is None:
                raise schedule.ScheduleError("Pick a day of the week.")
            return schedule.preset(kind, minute=minute, hour=hour, weekday=weekday)
        except schedule.ScheduleError as error:
            self.schedule_field().errors = [str(error)]
            return None

    def zone_name(self) -> str | None:
        name = (self.schedule_tz.data or "").strip()
        if self.schedule_kind.data == "manual" and not name:
            return "UTC"   # no times to read: any zone will do
        try:
            schedule.zone(name)
        except schedule.ScheduleError as error:
            self.schedule_tz.errors = [str(error)]
            return None
        return name

    def schedule_field(self):
        """The field a schedule problem belongs beside."""
        return {"cron": self.schedule_cron, "hourly": self.schedule_minute,
                "weekly": self.schedule_time, "daily": self.schedule_time}.get(
                    self.schedule_kind.data, self.schedule_kind)


# A backup run only by hand whose newest good snapshot is older than this is overdue.
UNSCHEDULED_OVERDUE = dt.timedelta(days=7)


def schedule_words(profile: Profile) -> str:
    if not profile.schedule:
        return "Only when started by hand"
    try:
        return schedule.describe(profile.schedule)
    except schedule.ScheduleError:
        return profile.schedule


def next_run(profile: Profile, now: dt.datetime) -> dt.datetime | None:
    """When the profile's schedule next comes round (None: run by hand, or unreadable)."""
    if not profile.schedule:
        return None
    try:
        return schedule.next_times(profile.schedule, profile.schedule_tz, now, 1)[0]
    except schedule.ScheduleError:
        return None


def overdue_before(profile: Profile, now: dt.datetime) -> dt.datetime:
    """A newest good snapshot older than this is overdue: older than the scheduled time
    before the latest one (that run had a whole period to finish), or a week old for a
    profile run by hand."""
    if profile.schedule:
        try:
            return schedule.previous(profile.schedule, profile.schedule_tz, now)
        except schedule.ScheduleError:
            pass
    return now - UNSCHEDULED_OVERDUE


def waits_for_first_run(profile: Profile, now: dt.datetime) -> bool:
    """A profile that has never run and has missed nothing yet: run by hand only, or its
    first scheduled time is still ahead. It is new, not overdue."""
    last = profile.last if hasattr(profile, "last") else profile.last_run()
    if last is not None:
        return False
    return not profile.schedule or profile.created_at >= overdue_before(profile, now)


def unknown_hosts(sources: list[str]) -> str | None:
    """Why a source on another machine cannot be backed up (its host is not added, or its
    key not pinned), or None."""
    for source in sources:
        remote = host_jobs.remote_source(source)
        if not remote:
            continue
        host = host_jobs.host_for(remote[0])
        if host is None:
            return f"{remote[0]} is not an added host: add it on the Hosts page first."
        if not host.pinned:
            return f"{remote[0]} has no pinned host key yet: confirm it on the Hosts page first."
    return None


def _clock_time(text: str | None) -> tuple[int, int]:
    hour, sep, minute = (text or "").strip().partition(":")
    hours, minutes = whole_number(hour, 0, 23), whole_number(minute, 0, 59)
    if not sep or hours is None or minutes is None or len(minute) != 2:
        raise schedule.ScheduleError("Write the time as hours and minutes, such as 02:30.")
    return hours, minutes


class ProfileForm(ScheduleForm):
    name = StringField("Name")
    sources = TextAreaField("Folders to back up")
    excludes = TextAreaField("Leave out")
    destination = StringField("Destination folder")
    mode = RadioField("Kind", choices=MODE_CHOICES, default="snapshot")
    one_file_system = BooleanField("Stay on each folder's filesystem (do not cross mount points)")
    run_on_connect = BooleanField("Run whenever its drive is plugged in")
    max_parallel = IntegerField("rsync processes at once", default=4, validators=[
        InputRequired("Enter a number from 1 to 64."),
        NumberRange(1, 64, "Run between 1 and 64 rsync processes at once.")])
    bandwidth = StringField("Bandwidth limit")
    retries = IntegerField("Retries of a failed part", default=3, validators=[
        InputRequired("Enter a number from 0 to 10."),
        NumberRange(0, 10, "Retry a failed part between 0 and 10 times.")])
    keep_last = IntegerField("Newest", default=0, validators=[Optional()])
    keep_daily = IntegerField("Daily", default=0, validators=[Optional()])
    keep_weekly = IntegerField("Weekly", default=0, validators=[Optional()])
    keep_monthly = IntegerField("Monthly", default=0, validators=[Optional()])
    keep_yearly = IntegerField("Yearly", default=0, validators=[Optional()])
    keep_min_free = FloatField("Keep this much free (%)", validators=[Optional()])
    verify_schedule = StringField("Verify the newest snapshot")
    verify_percent = FloatField("Share of files (%)", default=100, validators=[Optional()])

    KEEP = retention_engine.KEEP_FIELDS

    @classmethod
    def of(cls, profile: Profile) -> ProfileForm:
        form = cls(name=profile.name, sources="\n".join(profile.sources),
                   excludes="\n".join(profile.excludes), destination=profile.destination,
                   mode=profile.mode, one_file_system=profile.one_file_system,
                   max_parallel=profile.max_parallel, bandwidth=format_bandwidth(profile.bwlimit_kib),
                   retries=profile.retries, run_on_connect=profile.run_on_connect,
                   verify_schedule=profile.verify_schedule,
                   verify_percent=profile.verify_percent or 100,
                   **{name: getattr(profile, name) for name in cls.KEEP})
        form.fill_schedule(profile.schedule, profile.schedule_tz)
        return form

    @classmethod
    def blank(cls, tz: str) -> ProfileForm:
        form = cls()
        form.schedule_tz.data = tz
        return form

    def cleaned(self, editing: Profile | None = None):
        """The checked profile values, or None with each problem beside its field."""
        if not self.validate_on_submit():
            return None
        expression, tz = self.expression(), self.zone_name()
        try:
            values = clean(self.name.data or "", text_lines(self.sources.data),
                           text_lines(self.excludes.data), (self.destination.data or "").strip(),
                           mode=self.mode.data, one_file_system=bool(self.one_file_system.data),
                           max_parallel=self.max_parallel.data, bandwidth=self.bandwidth.data or "",
                           retries=self.retries.data, cron=expression or "",
                           schedule_tz=tz or "UTC",
                           keep={name: getattr(self, name).data for name in self.KEEP},
                           verify_cron=self.verify_schedule.data or "",
                           verify_percent=self.verify_percent.data)
        except ProfileInvalid as invalid:
            for name, message in invalid.errors.items():
                field = {"schedule": self.schedule_field(), "retention": self.keep_last}.get(
                    name) or getattr(self, name)
                field.errors = message.split("\n")
            return None
        if expression is None or tz is None:
            return None
        values.run_on_connect = bool(self.run_on_connect.data)
        if values.run_on_connect and Drive.of_path(values.destination, drive_root()) is None:
            self.run_on_connect.errors = [
                "Only a destination on an adopted drive (a folder inside "
                f"{drive_root()}/<its UUID>, see Drives) can start a backup when plugged in."]
            return None
        outside = outside_roots(values.sources) or unknown_hosts(values.sources)
        if outside:
            self.sources.errors = [outside]
            return None
        unknown = unknown_hosts([values.destination])
        if unknown:
            self.destination.errors = [unknown]
            return None
        same_name = Profile.by_name(values.name)
        if same_name is not None and (editing is None or same_name.id != editing.id):
            self.name.errors = [f"A profile named {values.name} already exists."]
            return None
        return values


def drive_root() -> str:
    return str(current_app.config["CAIRN"].drive_root)
