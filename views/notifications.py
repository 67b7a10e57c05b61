"""The bell: a signed-in user's notifications."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from advisors.permissions import SIGNED_IN, allow_blueprint
from advisors.services import notifications as service
from models import db

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
allow_blueprint(bp, SIGNED_IN)
PAGE = 30


class ConfirmForm(FlaskForm):
    """An action button: only the CSRF token."""


@bp.route("/")
def index():
    before = request.args.get("before", type=int)
    rows = service.recent(current_user, limit=PAGE + 1, before_id=before)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    next_url = url_for("notifications.index", before=rows[-1].id) if more else None
    return render_template(
        "notifications/index.html",
        rows=[(n, service.render(n)) for n in rows],
        next_url=next_url,
        form=ConfirmForm(),
    )


@bp.route("/read-all", methods=["POST"])
def read_all():
    if ConfirmForm().validate_on_submit():
        service.mark_read(current_user)
        db.session.commit()
    return redirect(url_for("notifications.index"))


@bp.route("/<int:note_id>/open", methods=["POST"])
def open_one(note_id: int):
    """Mark one read and go to its case (if any)."""
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("notifications.index"))
    note = service.get_own(current_user, note_id)
    if note is None:
        return redirect(url_for("notifications.index"))
    service.mark_read(current_user, [note.id])
    db.session.commit()
    params = note.params or {}
    if note.kind == "job_failed" and params.get("job"):
        return redirect(url_for("jobs.index", job=params["job"]))
    if note.kind == "weekly_digest":
        return redirect(url_for("referrals.index"))
    if note.kind.startswith("risk_") and params.get("risk_id"):
        return redirect(url_for("risks.detail", risk_id=params["risk_id"]))
    if note.referral_id:
        return redirect(url_for("referrals.detail", referral_id=note.referral_id))
    return redirect(url_for("notifications.index"))
