"""Risk reports: the finance office's risk queue (acknowledge, follow up, close).

The finance office, the central bank and admins see every report (with status tabs); an
advisor sees the reports they raised ("my risk reports"). Bureaus and liaisons have no access.
Routes are thin: validate -> :mod:`advisors.services.risk` -> render/redirect (the request's unit
of work commits once).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField

from advisors.errors import Conflict, NotFound, ValidationFailed
from advisors.labels import labels
from advisors.params import MAX_ID, parse_limit
from advisors.permissions import GLOBAL_ROLES, OFFICE_ROLES, allow, allow_blueprint
from advisors.services import risk as svc
from advisors.services import saving
from advisors.services.referral_queries import decode_cursor

from ._forms import apply_errors, form_version
from ._http import form_view

bp = Blueprint("risks", __name__, url_prefix="/risks")
allow_blueprint(bp, "admin", "finance_office", "pboc", "advisor")


# ------------------------------------------------------------------ forms
class AcknowledgeForm(FlaskForm):
    version = HiddenField()


class NoteForm(FlaskForm):
    note = TextAreaField(_l("Follow-up note"), render_kw={"rows": 3, "maxlength": svc.MAX_NOTE})


class CloseForm(FlaskForm):
    note = TextAreaField(
        _l("Closing note (what was done)"), render_kw={"rows": 3, "maxlength": svc.MAX_NOTE}
    )
    version = HiddenField()


def _me():
    return current_user._get_current_object()


def _tabs(user) -> list[tuple[str, str]]:
    """(filter value, label) of the status tabs; "" is every status."""
    statuses = labels("risk_status")
    tabs = [
        ("active", _("Needs work")),
        ("open", statuses["open"]),
        ("acknowledged", statuses["acknowledged"]),
        ("closed", statuses["closed"]),
        ("", _("All")),
    ]
    if user.role not in GLOBAL_ROLES:
        tabs.insert(0, tabs.pop())  # an advisor's own list opens on every status
    return tabs


def _default_status(user) -> str:
    return "active" if user.role in GLOBAL_ROLES else ""


# ------------------------------------------------------------------ the queue
@bp.route("/")
def index():
    user = _me()
    raw = request.args.get("status")
    status = _default_status(user) if raw is None else raw.strip()[:20]
    limit = parse_limit(request.args.get("limit"), svc.PAGE_SIZE, svc.MAX_LIMIT)
    cursor = decode_cursor(request.args.get("cursor"))
    error = None
    try:
        page = svc.queue(user, status or None, cursor=cursor, limit=limit)
    except ValidationFailed as exc:
        page = svc.Page([], None)
        error = exc.fields.get("status", exc.message)
    args = {"status": status}
    if limit != svc.PAGE_SIZE:
        args["limit"] = str(limit)
    return render_template(
        "risks/index.html",
        page=page,
        status=status,
        tabs=_tabs(user),
        error=error,
        office=user.role in GLOBAL_ROLES,
        type_labels=labels("risk_type"),
        status_labels=labels("risk_status"),
        next_url=url_for("risks.index", **args, cursor=page.next_cursor)
        if page.next_cursor
        else None,
        first_url=url_for("risks.index", **args) if cursor else None,
    ), (422 if error else 200)


# ------------------------------------------------------------------ the report page
def _view_or_404(risk_id: int) -> svc.RiskView:
    if risk_id > MAX_ID:
        abort(404)
    try:
        return svc.detail(_me(), risk_id)
    except NotFound:
        abort(404)


def _render_detail(
    view: svc.RiskView,
    *,
    acknowledge_form: AcknowledgeForm | None = None,
    note_form: NoteForm | None = None,
    close_form: CloseForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
):
    user = _me()
    report = view.report
    version = str(report.version)
    may_acknowledge = user.role in svc.CLOSE_ROLES and report.status == "open"
    may_close = user.role in svc.CLOSE_ROLES and report.status != "closed"
    may_note = user.role in svc.NOTE_ROLES and report.status != "closed"
    if may_acknowledge and acknowledge_form is None:
        acknowledge_form = AcknowledgeForm(formdata=None, version=version)
    if may_note and note_form is None:
        note_form = NoteForm(formdata=None)
    if may_close and close_form is None:
        close_form = CloseForm(formdata=None, version=version)
    return render_template(
        "risks/detail.html",
        view=view,
        r=report,
        acknowledge_form=acknowledge_form if may_acknowledge else None,
        note_form=note_form if may_note else None,
        close_form=close_form if may_close else None,
        action_errors=errors or [],
        office=user.role in GLOBAL_ROLES,
        type_labels=labels("risk_type"),
        status_labels=labels("risk_status"),
    ), status


@bp.route("/<int:risk_id>")
def detail(risk_id: int):
    return _render_detail(_view_or_404(risk_id))


def _run_action(risk_id: int, form: FlaskForm, form_key: str, call):
    """Validate the form -> call the service (the unit of work commits it). None on success, or
    the report page again: 422 with the field errors, 409 on a conflict; 404 out of scope."""
    view = _view_or_404(risk_id)
    if not form.validate():
        return _render_detail(view, **{form_key: form}, status=422)
    try:
        with saving.attempt(_("This risk report was changed by someone else since you opened it.")):
            call()
    except Conflict as exc:
        view = _view_or_404(risk_id)
        if hasattr(form, "version"):
            # Keep what was typed, at the current version: submitting again applies knowingly.
            form.version.data = str(view.report.version)
        return _render_detail(
            view,
            **{form_key: form},
            errors=[
                exc.message,
                _("The page now shows the report as it is. Check it and try again."),
            ],
            status=409,
        )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_detail(_view_or_404(risk_id), **{form_key: form}, status=422)
    except NotFound:
        abort(404)
    return None


@bp.route("/<int:risk_id>/acknowledge", methods=["POST"])
@allow("finance_office")
@form_view
def acknowledge(risk_id: int):
    form = AcknowledgeForm()
    failed = _run_action(
        risk_id,
        form,
        "acknowledge_form",
        lambda: svc.acknowledge(_me(), risk_id, form_version(form.version.data)),
    )
    if failed is not None:
        return failed
    flash(_("Risk report acknowledged. The advisor has been told."), "success")
    return redirect(url_for("risks.detail", risk_id=risk_id))


@bp.route("/<int:risk_id>/note", methods=["POST"])
@allow(*OFFICE_ROLES)
@form_view
def note(risk_id: int):
    form = NoteForm()
    failed = _run_action(
        risk_id, form, "note_form", lambda: svc.add_note(_me(), risk_id, form.note.data or "")
    )
    if failed is not None:
        return failed
    flash(_("Note added."), "success")
    return redirect(url_for("risks.detail", risk_id=risk_id))


@bp.route("/<int:risk_id>/close", methods=["POST"])
@allow("finance_office")
@form_view
def close(risk_id: int):
    form = CloseForm()
    failed = _run_action(
        risk_id,
        form,
        "close_form",
        lambda: svc.close(_me(), risk_id, form.note.data or "", form_version(form.version.data)),
    )
    if failed is not None:
        return failed
    flash(_("Risk report closed. The advisor has been told."), "success")
    return redirect(url_for("risks.detail", risk_id=risk_id))
