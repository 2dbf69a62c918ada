"""Backup profiles: list, create, edit and delete them (admins); run and dry-run them
(operators). Everyone logged in may read them.

Every field is checked by `jobs.engines.profile.clean`, the same rules the CLI uses, plus the
web's own: sources only under the configured roots. Whether a folder exists and can be read
is the worker's to say at the start of each run; the web process cannot read users' folders.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
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

from jobs import backup
from jobs import hosts as host_jobs
from jobs import retention as retention_jobs
from jobs.engines import retention as retention_engine
from jobs.engines import schedule
from jobs.engines.profile import ProfileInvalid, clean
from jobs.engines.rsync import format_bandwidth
from models import AlreadyRunning, Drive, Profile, Run, WorkerProcess, db, utcnow
from models.user import ADMIN, OPERATOR, VIEWER
from views.audit import audit
from views.forms import EmptyForm, text_lines, whole_number
from views.health import worker_note
from views.picker import outside_roots, path_problems, roots_context, source_roots
from views.security import get_profile_or_404, require_role

bp = Blueprint("profiles", __name__, url_prefix="/profiles")

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
        if values.run_on_connect and Drive.of_path(values.destination, _drive_root()) is None:
            self.run_on_connect.errors = [
                "Only a destination on an adopted drive (a folder inside "
                f"{_drive_root()}/<its UUID>, see Drives) can start a backup when plugged in."]
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


@bp.route("/")
@require_role(VIEWER)
def index():
    return render_template("profiles/page.html", profiles=Profile.listing(),
                           action_form=EmptyForm(), now=utcnow())


@bp.route("/new")
@require_role(ADMIN)
def new():
    return _form_page(ProfileForm.blank(current_user.timezone), None)


def _drive_root() -> str:
    return str(current_app.config["CAIRN"].drive_root)


def _form_page(form: ProfileForm, profile: Profile | None, status: int = 200):
    adopted = [d for d in Drive.listing() if d.adopted]
    return render_template("profiles/form.html", form=form, profile=profile,
                           source_roots=source_roots(), **roots_context(),
                           adopted_drives=adopted, drive_root=_drive_root(),
                           **_schedule_preview(form)), status


@bp.route("/schedule")
@require_role(ADMIN)
def schedule_preview():
    """The schedule the form's fields say, in words, with its next runs: asked as they change."""
    form = ScheduleForm(request.args, meta={"csrf": False})
    return render_template("profiles/_schedule.html", **_schedule_preview(form))


def _schedule_preview(form: ScheduleForm) -> dict:
    expression, tz = form.expression(), form.zone_name()
    problem = " ".join(form.schedule_field().errors or form.schedule_tz.errors)
    if not expression or tz is None:
        return {"schedule_words": "", "next_runs": [], "schedule_problem": problem}
    return {"schedule_words": schedule.describe(expression), "schedule_problem": "",
            "next_runs": schedule.next_times(expression, tz, utcnow(), NEXT_RUNS_SHOWN)}


@bp.route("/", methods=["POST"])
@require_role(ADMIN)
def create():
    form = ProfileForm()
    values = form.cleaned()
    if values is None:
        return _form_page(form, None, 422)
    with db.atomic():
        profile = Profile.create(slug=Profile.free_slug(values.name), schedule_looked_at=utcnow(),
                                 verify_looked_at=utcnow(),
                                 **asdict(values))
    audit("profile.create", target=profile.name, detail=f"{', '.join(profile.sources)} -> "
          f"{profile.destination}")
    flash(f"Profile {profile.name} saved. Snapshots go to {profile.root()}.", "success")
    _warn_about_paths(profile.sources, profile.destination, profile.mode)
    return redirect(url_for("profiles.detail", profile_id=profile.id))


def _warn_about_paths(sources: list[str], destination: str, mode: str) -> None:
    """What the worker finds wrong with the saved folders, said now, not first at run time."""
    problems = path_problems(sources, destination, mode)
    if problems:
        flash("Saved, but the first run would fail: " + " ".join(problems), "warning")


@bp.route("/<id:profile_id>")
@require_role(VIEWER)
def detail(profile_id: int):
    profile = get_profile_or_404(profile_id)
    runs = list(profile.runs.order_by(Run.id.desc()).limit(RECENT_RUNS))
    now = utcnow()
    upcoming = []
    if profile.schedule:
        try:
            upcoming = schedule.next_times(profile.schedule, profile.schedule_tz, now,
                                           NEXT_RUNS_SHOWN)
        except schedule.ScheduleError:
            pass
    return render_template("profiles/detail.html", profile=profile, runs=runs,
                           policy=retention_jobs.policy_of(profile),
                           kept=retention_jobs.decisions_from_runs(profile, now),
                           active=profile.active_run(), last_good=profile.last_good_run(),
                           action_form=EmptyForm(), now=now, next_runs=upcoming,
                           bandwidth=format_bandwidth(profile.bwlimit_kib),
                           verify_words=schedule.describe(profile.verify_schedule)
                           if profile.verify_schedule else "")


@bp.route("/<id:profile_id>/retention")
@require_role(ADMIN)
def retention_preview(profile_id: int):
    """What the Keep fields as typed would keep and delete of this profile's snapshots."""
    profile = get_profile_or_404(profile_id)
    form = ProfileForm(request.args, meta={"csrf": False})
    problem, decisions, policy = "", [], None
    try:
        policy = retention_engine.Policy.from_fields(
            **{name: getattr(form, name).data for name in ProfileForm.KEEP})
    except (retention_engine.PolicyError, TypeError) as error:
        problem = str(error)
    # A box left empty is a rule not set ("keep this much free" empty means off), not a
    # number that could not be read.
    if any(getattr(form, name).process_errors and (request.args.get(name) or "").strip()
           for name in ProfileForm.KEEP):
        problem = "Each count is a whole number, the free space a percentage."
    if not problem:
        decisions = retention_jobs.decisions_from_runs(profile, utcnow(), policy)
    return render_template("profiles/_retention.html", policy=policy, kept=decisions,
                           problem=problem, preview=True)


@bp.route("/<id:profile_id>/prune", methods=["POST"])
@require_role(ADMIN)
def prune(profile_id: int):
    profile = get_profile_or_404(profile_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    retention_jobs.prune_profile(profile.id)
    audit("retention.prune", target=profile.name, detail=retention_jobs.policy_of(profile).describe())
    policy = retention_jobs.policy_of(profile).describe().lower()
    flash(f"Applying the retention policy of {profile.name}: {policy}.{worker_note()}", "success")
    return redirect(url_for("profiles.detail", profile_id=profile.id), code=303)


@bp.route("/<id:profile_id>/edit")
@require_role(ADMIN)
def edit(profile_id: int):
    profile = get_profile_or_404(profile_id)
    return _form_page(ProfileForm.of(profile), profile)


@bp.route("/<id:profile_id>/edit", methods=["POST"])
@require_role(ADMIN)
def update(profile_id: int):
    profile = get_profile_or_404(profile_id)
    form = ProfileForm()
    values = form.cleaned(editing=profile)
    if values is None:
        return _form_page(form, profile, 422)
    fields = asdict(values)
    changed = sorted(k for k, v in fields.items() if getattr(profile, k) != v)
    if "schedule" in changed or "schedule_tz" in changed:
        fields["schedule_looked_at"] = utcnow()   # a new schedule owes nothing from before
    if "verify_schedule" in changed or "schedule_tz" in changed:
        fields["verify_looked_at"] = utcnow()
    (Profile.update(updated_at=Profile.updated_at.default(), **fields)
     .where(Profile.id == profile.id).execute())
    audit("profile.update", target=values.name, detail=", ".join(changed) or "nothing changed")
    active = profile.active_run()
    note = " The run in progress keeps its old settings." if active and changed else ""
    flash(f"Profile {values.name} saved.{note}", "success")
    _warn_about_paths(values.sources, values.destination, values.mode)
    return redirect(url_for("profiles.detail", profile_id=profile.id))


@bp.route("/<id:profile_id>/delete")
@require_role(ADMIN)
def confirm_delete(profile_id: int):
    profile = get_profile_or_404(profile_id)
    return render_template("profiles/delete.html", profile=profile, form=EmptyForm(),
                           run_count=profile.runs.count(), active=profile.active_run())


@bp.route("/<id:profile_id>/delete", methods=["POST"])
@require_role(ADMIN)
def delete(profile_id: int):
    profile = get_profile_or_404(profile_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    active = profile.active_run()
    if active is not None:
        return render_template("profiles/delete.html", profile=profile, form=form,
                               run_count=profile.runs.count(), active=active), 409
    with db.atomic():
        profile.delete_instance(recursive=False)
    audit("profile.delete", target=profile.name, detail=f"snapshots kept in {profile.root()}")
    flash(f"Profile {profile.name} deleted. Its snapshots are still in {profile.root()}.",
          "success")
    return redirect(url_for("profiles.index"))


@bp.route("/<id:profile_id>/run", methods=["POST"])
@require_role(OPERATOR)
def run(profile_id: int):
    return _start(get_profile_or_404(profile_id), dry_run=False)


@bp.route("/<id:profile_id>/dry-run", methods=["POST"])
@require_role(OPERATOR)
def dry_run(profile_id: int):
    return _start(get_profile_or_404(profile_id), dry_run=True)


def _start(profile: Profile, dry_run: bool):
    """Queue a run and show it: its own page, or the list when started from the list."""
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    from_list = request.form.get("back") == "list"
    what = "dry run" if dry_run else "backup"
    try:
        started = backup.request_run(profile, dry_run=dry_run,
                                     requested_by=current_user.username)
    except AlreadyRunning as running:
        flash(f"{profile.name} is already running (run {running.run.id}); "
              "a second run was not started.", "error")
        return redirect(url_for("profiles.index") if from_list
                        else url_for("runs.detail", run_id=running.run.id), code=303)
    audit("run.start", target=profile.name, detail=f"{what}, run {started.id}")
    if not WorkerProcess.status().alive:
        flash(f"The {what} of {profile.name} is queued, but no worker is running: it starts "
              "when the worker does (systemctl start cairn-worker).", "warning")
    else:
        # What happened is that it was queued: the page below says, live, what it does next
        # (a run that fails at once must not sit under a green "started").
        follows = "." if from_list else "; this page follows it live."
        flash(f"The {what} of {profile.name} is queued as run {started.id}{follows}", "info")
    return redirect(url_for("profiles.index") if from_list
                    else url_for("runs.detail", run_id=started.id), code=303)
