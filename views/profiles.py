"""Backup profiles: list, create, edit and delete them (admins); run and dry-run them
(operators). Everyone logged in may read them. The form and its checks are in
views/profile_form.py; whether the folders are usable is the worker's to say (views/picker.py
asks it while the form is filled in, and again when it is saved).
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from jobs import backup
from jobs import retention as retention_jobs
from jobs.engines import retention as retention_engine
from jobs.engines import schedule
from jobs.engines.rsync import format_bandwidth
from models import AlreadyRunning, Drive, Profile, Run, WorkerProcess, db, utcnow
from models.user import ADMIN, OPERATOR, VIEWER
from views.audit import audit
from views.forms import EmptyForm
from views.health import worker_note
from views.picker import path_problems, roots_context, source_roots
from views.profile_form import (
    NEXT_RUNS_SHOWN,
    RECENT_RUNS,
    ProfileForm,
    ScheduleForm,
    drive_root,
)
from views.security import get_profile_or_404, require_role

bp = Blueprint("profiles", __name__, url_prefix="/profiles")


@bp.route("/")
@require_role(VIEWER)
def index():
    return render_template("profiles/page.html", profiles=Profile.listing(),
                           action_form=EmptyForm(), now=utcnow())


@bp.route("/new")
@require_role(ADMIN)
def new():
    return _form_page(ProfileForm.blank(current_user.timezone), None)


def _form_page(form: ProfileForm, profile: Profile | None, status: int = 200):
    adopted = [d for d in Drive.listing() if d.adopted]
    return render_template("profiles/form.html", form=form, profile=profile,
                           source_roots=source_roots(), **roots_context(),
                           adopted_drives=adopted, drive_root=drive_root(),
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
