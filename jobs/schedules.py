"""Scheduled backups: once a minute the worker looks at every scheduled profile and starts
the runs that came due since it last looked (jobs/engines/schedule.py says which).

Each look is claimed with a conditional UPDATE of `schedule_looked_at`, so two workers (or
a duplicate tick after a restart) never start the same occurrence twice; a profile whose
run is still going skips the occurrence and says so. After the box or the worker was off,
the first look catches up the latest missed occurrence once, if it is within
CAIRN_CATCH_UP_HOURS, and says when it is not.
"""

from __future__ import annotations

import datetime as dt
import logging

from huey import crontab

from jobs import backup
from jobs.engines import schedule
from jobs.queue import huey, settings, with_db
from models import AlreadyRunning, Event, Profile, Run, utcnow
from models.setting import live

log = logging.getLogger(__name__)


@huey.periodic_task(crontab())
@with_db
def start_scheduled_runs() -> None:
    start_due_runs(utcnow())


def start_due_runs(now: dt.datetime) -> list[Run]:
    """Start every scheduled profile's run that came due by `now` (naive UTC)."""
    catch_up = dt.timedelta(hours=live(settings()).catch_up_hours)
    started = []
    for profile in Profile.select().where(Profile.schedule != "").order_by(Profile.id):
        if not profile.claim_look("schedule_looked_at", now):
            continue  # another worker looked at it in the meantime
        try:
            due = schedule.due(profile.schedule, profile.schedule_tz,
                               profile.schedule_looked_at, now, catch_up)
        except schedule.ScheduleError as error:  # the zone vanished from tzdata, say
            log.warning("schedule of profile %s cannot be read: %s", profile.name, error)
            continue
        if due is None:
            continue
        run = _start(profile, due)
        if run is not None:
            started.append(run)
    return started


def _start(profile: Profile, due: schedule.Due) -> Run | None:
    when = _wall(due.at, profile.schedule_tz)
    subject = f"profile:{profile.id}"
    if due.missed:
        Event.publish("schedule.missed", subject,
                      f"The scheduled backup of {profile.name} at {when} was missed while the "
                      f"worker was off, longer ago than the catch-up window "
                      f"({live(settings()).catch_up_hours:g} h); it waits for its next time.",
                      level="warning", profile=profile.id)
        return None
    try:
        run = backup.request_run(profile, trigger="schedule", requested_by="schedule")
    except AlreadyRunning as running:
        Event.publish("schedule.skipped", subject,
                      f"The scheduled backup of {profile.name} at {when} was skipped: run "
                      f"{running.run.id} is still going.", level="warning",
                      profile=profile.id, run=running.run.id)
        return None
    if due.late:
        Event.publish("schedule.caught_up", run.subject,
                      f"Catching up the backup of {profile.name} scheduled for {when}, missed "
                      "while the worker was off.", run=run.id, profile=profile.id)
    return run


def _wall(at: dt.datetime, tz_name: str) -> str:
    try:
        return at.replace(tzinfo=dt.UTC).astimezone(schedule.zone(tz_name)).strftime(
            f"%Y-%m-%d %H:%M ({tz_name})")
    except schedule.ScheduleError:
        return at.strftime("%Y-%m-%d %H:%M (UTC)")
