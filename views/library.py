"""The movie library: its movies with quality, size, path and versions (everyone); the
duplicates report with its resolutions (operators); the library's settings, inboxes and
quality profiles (admins).

Files are only touched by the worker: a resolution here enqueues a job (jobs/dupes.py).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from peewee import JOIN, fn
from wtforms import BooleanField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange
from wtforms.widgets import CheckboxInput, ListWidget

from jobs import dupes
from jobs import library as lib
from jobs.engines import decide, naming
from jobs.engines.release import LADDER
from models import DupeScan, DuplicateSet, Inbox, Library, Movie, MovieFile, QualityProfile, db, utcnow
from models.media import MODES
from models.user import ADMIN, OPERATOR, VIEWER
from views import feed
from views.audit import audit
from views.health import worker_note
from views.notices import after_action
from views.pagination import paginate
from views.security import get_or_404, is_htmx, require_role

bp = Blueprint("library", __name__)

MOVIES_PAGE = 100
SHOWN_SETS = 200
EXAMPLE = {"Title": "The Thing", "Year": 1982, "Quality": "Bluray-1080p", "Edition": "Director's Cut",
           "Group": "GRP", "Resolution": "1080p", "ext": "mkv"}


class SettingsForm(FlaskForm):
    root = StringField("Library folder", validators=[Length(max=4096)])
    template = StringField("Naming template", validators=[Length(max=naming.MAX_TEMPLATE)])
    mode = SelectField("The inbox file", choices=[SelectChoice(k, v) for k, v in MODES.items()])
    profile = SelectField("Quality profile")
    stable_seconds = IntegerField("Settled after (seconds)", validators=[
        InputRequired("Say how long a file must stay unchanged."),
        NumberRange(1, 86_400, "From 1 second to a day (86400).")])
    recycle_days = IntegerField("Keep replaced files (days)", validators=[
        InputRequired("Say how many days."), NumberRange(1, 3650, "From 1 to 3650 days.")])
    free_margin_mb = IntegerField("Free space kept (MB)", validators=[
        InputRequired("Say how much space to keep free."),
        NumberRange(0, 10_000_000, "From 0 to 10,000,000 MB.")])
    retries = IntegerField("Retries of a failed import", validators=[
        InputRequired("Say how many retries."), NumberRange(0, 10, "From 0 to 10.")])


class InboxForm(FlaskForm):
    path = StringField("Inbox folder", validators=[Length(max=4096)])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired("Name the profile."), Length(max=100)])
    allowed = MultiCheckboxField("Allowed qualities", choices=[SelectChoice(q, q) for q in LADDER])
    cutoff = SelectField("Upgrade until", choices=[SelectChoice(q, q) for q in LADDER])
    upgrades = BooleanField("Upgrade files below the cutoff", default=True)
    prefer_proper = BooleanField("A PROPER or REPACK replaces its own quality", default=True)


# --- movies --------------------------------------------------------------------------------------

@bp.route("/library/")
@require_role(VIEWER)
def index():
    words = (request.args.get("q") or "").strip()[:200]
    query = (Movie.select(Movie, fn.COUNT(MovieFile.id).alias("versions"))
             .join(MovieFile, JOIN.LEFT_OUTER).group_by(Movie).order_by(fn.LOWER(Movie.title), Movie.year))
    if words:
        query = query.where(Movie.title.contains(words))
    page = paginate(query, request.args.get("page"), MOVIES_PAGE,
                    total=Movie.select().where(Movie.title.contains(words)).count())
    best = _best_files([m.id for m in page.items])
    return render_template("library/page.html", page=page, best=best, q=words,
                           library=Library.current(), totals=_totals())


def _best_files(movie_ids: list[int]) -> dict[int, MovieFile]:
    best: dict[int, MovieFile] = {}
    for record in MovieFile.select().where(MovieFile.movie.in_(movie_ids or [0])):
        have = best.get(record.movie_id)
        if have is None or record.standing() > have.standing():
            best[record.movie_id] = record
    return best


def _totals() -> dict:
    files, size = MovieFile.select(fn.COUNT(MovieFile.id), fn.SUM(MovieFile.size)).tuples().get()
    return {"movies": Movie.select().count(), "files": files, "bytes": size or 0}


@bp.route("/library/movies/<id:movie_id>")
@require_role(VIEWER)
def movie(movie_id: int):
    found = get_or_404(Movie, movie_id)
    files = sorted(found.files, key=MovieFile.standing, reverse=True)
    return render_template("library/movie.html", movie=found, files=files)


# --- duplicates ----------------------------------------------------------------------------------

@feed.subject("dupes", ("library/_dupes.html",))
def dupes_context(arg: str | None = None) -> dict:
    scan = DupeScan.newest()
    done = DupeScan.newest_done()
    sets = list(DuplicateSet.select().where(DuplicateSet.scan == done).order_by(
        DuplicateSet.resolved_at.is_null(False), DuplicateSet.size.desc()).limit(SHOWN_SETS)) if done else []
    return {"scan": scan, "done": done, "sets": sets, "versions": dupes.versions(), "now": utcnow()}


feed.on_event(lambda event: event.kind.startswith("dupes."), lambda event: "dupes")


@bp.route("/library/duplicates")
@require_role(VIEWER)
def duplicates():
    return render_template("library/duplicates.html", **dupes_context())


@bp.route("/library/duplicates/scan", methods=["POST"])
@require_role(OPERATOR)
def scan_duplicates():
    scan = dupes.request(current_user.username)
    return _changed(f"Duplicate scan {scan.id} {'running' if scan.state == 'running' else 'queued'}."
                    + worker_note(), "library.duplicates")


@bp.route("/library/duplicates/sets/<id:set_id>", methods=["POST"])
@require_role(OPERATOR)
def resolve_set(set_id: int):
    found = get_or_404(DuplicateSet, set_id)
    keep, how = request.form.get("keep", ""), request.form.get("how", "")
    try:
        dupes.resolve_set(found, keep, how, current_user.username)
    except dupes.CannotResolve as refused:
        return _changed(str(refused), "library.duplicates", 422)
    audit(f"dupes.{how}", target=keep, detail=", ".join(p for p in found.paths if p != keep))
    return _changed(f"Keeping {keep}; the other copies will be "
                    f"{'hardlinked to it' if how == 'hardlink' else 'recycled'}." + worker_note(),
                    "library.duplicates")


@bp.route("/library/movies/<id:movie_id>/keep/<id:file_id>", methods=["POST"])
@require_role(OPERATOR)
def keep_version(movie_id: int, file_id: int):
    found, keep = get_or_404(Movie, movie_id), get_or_404(MovieFile, file_id)
    try:
        dupes.keep_version(found, keep, current_user.username)
    except dupes.CannotResolve as refused:
        return _changed(str(refused), "library.duplicates", 422)
    audit("dupes.keep_version", target=keep.path)
    return _changed(f"Keeping {keep.path}; the other versions of {found.label} will be recycled."
                    + worker_note(), "library.duplicates")


# --- settings ------------------------------------------------------------------------------------

@bp.route("/library/settings")
@require_role(ADMIN)
def settings():
    return _settings_page(_saved_settings(), InboxForm(formdata=None))


def _saved_settings() -> SettingsForm:
    """The settings form filled with what is saved."""
    library = Library.current()
    form = SettingsForm(obj=library, formdata=None)
    form.template.data = library.template or naming.DEFAULT_TEMPLATE
    form.profile.data = str(lib.profile_of(library).id)
    return form


def _profile_choices() -> list[SelectChoice]:
    return [SelectChoice(str(p.id), p.name)
            for p in QualityProfile.select().order_by(QualityProfile.name)]


def _settings_page(form: SettingsForm, inbox_form: InboxForm, status: int = 200):
    form.profile.choices = _profile_choices()
    try:
        example = naming.render(form.template.data or naming.DEFAULT_TEMPLATE, EXAMPLE)
    except naming.TemplateError:
        example = ""
    return render_template("library/settings.html", form=form, inbox_form=inbox_form,
                           inboxes=list(Inbox.select().order_by(Inbox.path)), example=example,
                           tokens=naming.TOKENS, library=Library.current()), status


@bp.route("/library/settings", methods=["POST"])
@require_role(ADMIN)
def save_settings():
    library = Library.current()
    lib.profile_of(library)
    form = SettingsForm()
    form.profile.choices = _profile_choices()
    if not form.validate_on_submit():
        return _settings_page(form, InboxForm(formdata=None), 422)
    try:
        template = naming.check(form.template.data)
    except naming.TemplateError as error:
        form.template.errors = [str(error)]
        return _settings_page(form, InboxForm(formdata=None), 422)
    root = (form.root.data or "").strip()
    if root != library.root:
        try:
            lib.set_root(root)
        except lib.FolderRefused as refused:
            form.root.errors = [str(refused)]
            return _settings_page(form, InboxForm(formdata=None), 422)
    Library.update(template="" if template == naming.DEFAULT_TEMPLATE else template,
                   mode=form.mode.data, profile=int(form.profile.data),
                   stable_seconds=form.stable_seconds.data, recycle_days=form.recycle_days.data,
                   free_margin_mb=form.free_margin_mb.data, retries=form.retries.data,
                   updated_at=utcnow()).where(Library.id == library.id).execute()
    audit("library.settings", target=root, detail=f"mode {form.mode.data}, template {template}")
    flash("Library settings saved.", "success")
    return redirect(url_for("library.settings"), code=303)


@bp.route("/library/inboxes", methods=["POST"])
@require_role(ADMIN)
def add_inbox():
    form = InboxForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        box = lib.add_inbox(form.path.data, current_user.username)
    except lib.FolderRefused as refused:
        form.path.errors = [str(refused)]
        return _settings_page(_saved_settings(), form, 422)
    audit("library.inbox_add", target=box.path)
    flash(f"Watching the inbox {box.path}." + worker_note(), "success")
    return redirect(url_for("library.settings"), code=303)


@bp.route("/library/inboxes/<id:inbox_id>/delete", methods=["POST"])
@require_role(ADMIN)
def remove_inbox(inbox_id: int):
    box = get_or_404(Inbox, inbox_id)
    lib.remove_inbox(box)
    audit("library.inbox_remove", target=box.path)
    flash(f"No longer watching {box.path}; its files stay where they are.", "success")
    return redirect(url_for("library.settings"), code=303)


# --- quality profiles ----------------------------------------------------------------------------

@bp.route("/library/profiles")
@require_role(VIEWER)
def profiles():
    lib.profile_of(Library.current())
    return _profiles_page(ProfileForm(formdata=None, allowed=list(LADDER[1:]), cutoff="Bluray-1080p"))


def _profiles_page(form: ProfileForm, editing: QualityProfile | None = None, status: int = 200):
    listed = list(QualityProfile.select().order_by(QualityProfile.name))
    return render_template("library/profiles.html", profiles=listed, form=form, editing=editing,
                           current=Library.current().profile_id, ladder=LADDER), status


@bp.route("/library/profiles/<id:profile_id>")
@require_role(ADMIN)
def edit_profile(profile_id: int):
    row = get_or_404(QualityProfile, profile_id)
    return _profiles_page(ProfileForm(formdata=None, obj=row), row)


@bp.route("/library/profiles", methods=["POST"])
@require_role(ADMIN)
def create_profile():
    return _save_profile(None)


@bp.route("/library/profiles/<id:profile_id>", methods=["POST"])
@require_role(ADMIN)
def update_profile(profile_id: int):
    return _save_profile(get_or_404(QualityProfile, profile_id))


def _save_profile(row: QualityProfile | None):
    form = ProfileForm()
    if not form.validate_on_submit():
        return _profiles_page(form, row, 422)
    allowed = tuple(q for q in LADDER if q in (form.allowed.data or []))
    name = form.name.data.strip()
    try:
        decide.QualityProfile(name, allowed, form.cutoff.data, form.upgrades.data,
                              form.prefer_proper.data)
    except decide.ProfileError as error:
        form.allowed.errors = [str(error)]
        return _profiles_page(form, row, 422)
    clash = QualityProfile.get_or_none(QualityProfile.name == name)
    if clash is not None and (row is None or clash.id != row.id):
        form.name.errors = [f"A profile named {name!r} exists already."]
        return _profiles_page(form, row, 422)
    fields = {"name": name, "allowed": list(allowed), "cutoff": form.cutoff.data,
              "upgrades": form.upgrades.data, "prefer_proper": form.prefer_proper.data}
    with db.atomic():
        if row is None:
            row = QualityProfile.create(**fields)
        else:
            QualityProfile.update(**fields).where(QualityProfile.id == row.id).execute()
    audit("library.profile_save", target=name, detail=f"{len(allowed)} qualities, cutoff {form.cutoff.data}")
    flash(f"Quality profile {name} saved.", "success")
    return redirect(url_for("library.profiles"), code=303)


@bp.route("/library/profiles/<id:profile_id>/delete", methods=["POST"])
@require_role(ADMIN)
def delete_profile(profile_id: int):
    row = get_or_404(QualityProfile, profile_id)
    if row.in_use():
        flash(f"{row.name} is the library's profile: choose another in the settings first.", "error")
        return redirect(url_for("library.profiles"), code=303)
    row.delete_instance()
    audit("library.profile_delete", target=row.name)
    flash(f"Quality profile {row.name} deleted.", "success")
    return redirect(url_for("library.profiles"), code=303)


def _changed(note: str, endpoint: str, status: int = 200):
    return after_action(note, url_for(endpoint), status, htmx=is_htmx())
