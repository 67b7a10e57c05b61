"""The bell: a signed-in user's notifications, one line per kind and case, filterable."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from advisors.params import parse_id
from advisors.permissions import SIGNED_IN, allow_blueprint
from advisors.services import notifications as service

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
allow_blueprint(bp, SIGNED_IN)
PAGE = 30


class ConfirmForm(FlaskForm):
    """An action button: only the CSRF token."""


def _filters(values) -> dict[str, str]:
    """The list's filters from a query string or form: a known kind key, and unread only.
    Anything else is ignored (the whole list)."""
    kind = values.get("kind", "")
    out = {}
    if isinstance(kind, str) and kind in service.kind_filters():
        out["kind"] = kind
    if values.get("unread") == "1":
        out["unread"] = "1"
    return out


def _kinds(filters: dict[str, str]) -> tuple[str, ...] | None:
    key = filters.get("kind")
    return service.kind_filters()[key][1] if key else None


@bp.route("/")
def index():
    filters = _filters(request.args)
    # A bad, negative or out-of-range cursor is the first page, never an error.
    before = parse_id(request.args.get("before"))
    page, next_before = service.lines(
        current_user,
        kinds=_kinds(filters),
        unread_only="unread" in filters,
        before_id=before,
        limit=PAGE,
    )
    labels = service.kind_filters()
    return render_template(
        "notifications/index.html",
        lines=page,
        filters=filters,
        kind_options=[(key, labels[key][0]) for key in service.kinds_present(current_user)],
        kind_label=labels[filters["kind"]][0] if "kind" in filters else None,
        next_url=url_for("notifications.index", **filters, before=next_before)
        if next_before
        else None,
        paged=before is not None,
        form=ConfirmForm(),
    )


@bp.route("/read-all", methods=["POST"])
def read_all():
    """Mark everything read (with a kind filter: that kind's); back to the same list."""
    filters = _filters(request.form)
    if ConfirmForm().validate_on_submit():
        service.mark_all_read(current_user, _kinds(filters))
    return redirect(url_for("notifications.index", **filters))


@bp.route("/<int:note_id>/open", methods=["POST"])
def open_one(note_id: int):
    """Mark a line read (its notifications up to this one) and go to its case (if any)."""
    if not ConfirmForm().validate_on_submit() or parse_id(note_id) is None:
        return redirect(url_for("notifications.index"))
    note = service.get_own(current_user, note_id)
    if note is None:
        return redirect(url_for("notifications.index"))
    service.mark_line_read(current_user, note)
    params = note.params or {}
    if note.kind == "job_failed" and params.get("job"):
        return redirect(url_for("jobs.index", job=params["job"]))
    if note.kind == "weekly_digest":
        return redirect(url_for("referrals.index"))
    if note.kind.startswith("risk_") and params.get("risk_id"):
        return redirect(url_for("risks.detail", risk_id=params["risk_id"]))
    if note.kind == "upload_done" and params.get("upload_id"):
        return redirect(url_for("intake.report", upload_id=params["upload_id"]))
    if note.kind == "upload_failed":  # the list of uploads (a retried one is a new upload)
        return redirect(url_for("intake.upload"))
    if note.referral_id:
        return redirect(url_for("referrals.detail", referral_id=note.referral_id))
    return redirect(url_for("notifications.index"))
