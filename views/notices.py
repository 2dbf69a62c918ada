"""What a page says after an action: for htmx, the notice put in place (the feed brings the
changed rows); for a plain form, a flash on the page it goes back to."""

from __future__ import annotations

from flask import flash, redirect, render_template


def after_action(note: str, back: str, status: int = 200, htmx: bool = True):
    level = "error" if status >= 400 else "success"
    if not htmx:
        flash(note, level)
        return redirect(back, code=303)
    return render_template("_notice_oob.html", note=note, note_level=level), status
