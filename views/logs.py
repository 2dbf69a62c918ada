"""Warnings and errors across all runs, newest first, searchable; each links to its run,
whose full log downloads from the run's page.

With a million lines kept, the page never counts them all: it pages by id ("older than
this line") and says "more than 1,000" rather than scanning to the end for a total.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from models import Profile, Run, RunMessage
from models.user import VIEWER
from views.forms import chosen_profile, profile_filter_choices, whole_number
from views.pagination import url_with
from views.security import require_role

bp = Blueprint("logs", __name__)

PAGE_SIZE = 50
COUNT_CAP = 1000
LEVEL_CHOICES = [SelectChoice("", "Warnings and errors"), SelectChoice("warning", "Warnings"),
                 SelectChoice("error", "Errors")]


class LogFilter(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    level = SelectField("Level", choices=LEVEL_CHOICES, validators=[Optional()])
    profile = SelectField("Profile", validators=[Optional()], validate_choice=False)
    q = StringField("Text", validators=[Optional(), Length(max=200)])


def _before() -> int | None:
    raw = request.args.get("before", "")
    return whole_number(raw)


@bp.route("/logs")
@require_role(VIEWER)
def index():
    form = LogFilter(request.args)
    form.profile.choices = profile_filter_choices()
    if not form.validate():
        return render_template("logs/page.html", form=form, lines=None), 400
    chosen = {"level": form.level.data or "", "profile_id": chosen_profile(form.profile),
              "text": (form.q.data or "").strip()}
    before = _before()
    ids = [i for (i,) in RunMessage.problems(**chosen, before=before).limit(PAGE_SIZE + 1).tuples()]
    lines = list(RunMessage.select(RunMessage, Run.id, Profile.id, Profile.name).join(Run)
                 .join(Profile).where(RunMessage.id.in_(ids)).order_by(RunMessage.id.desc()))
    older = lines[PAGE_SIZE - 1].id if len(lines) > PAGE_SIZE else None
    matching = RunMessage.count_up_to(RunMessage.problems(**chosen), COUNT_CAP + 1)
    return render_template("logs/page.html", form=form, lines=lines[:PAGE_SIZE], newer=bool(before),
                           older=url_with(before=str(older)) if older else None,
                           newest=url_with(before=None), matching=matching, cap=COUNT_CAP)



