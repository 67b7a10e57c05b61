"""Referral pages: the inbox and every role's case list (filters, keyset pages, export), the case
page with its timeline, and the hand-overs made on it (assign, reject, withdraw, confirm), and
the bureau's closed-loop dashboard.

Routes are thin: parse -> call a service -> render or redirect (``views/_uow.py`` commits once;
a failed change re-shown runs in :func:`advisors.services.saving.attempt`). The rules live in
:mod:`advisors.services.referrals`; the reading in :mod:`advisors.services.referral_queries`.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, TextAreaField

from advisors import clock
from advisors.errors import Conflict, NotFound, ValidationFailed
from advisors.labels import labels
from advisors.params import MAX_ID, parse_id, parse_int
from advisors.permissions import OFFICE_ROLES, allow, allow_blueprint
from advisors.services import feedback as feedback_service
from advisors.services import financing as financing_service
from advisors.services import matching, saving
from advisors.services import referral_queries as queries
from advisors.services import referrals as svc
from advisors.services import visits as visit_service
from advisors.xlsx import XLSX_MIMETYPE, workbook_bytes
from models import NEEDS, SIZE_CLASSES, STATUSES

from ._forms import apply_errors, form_version, no_control_chars
from ._http import form_view

bp = Blueprint("referrals", __name__, url_prefix="/referrals")
allow_blueprint(bp, "admin", "finance_office", "pboc", "bureau", "advisor", "liaison")

MAX_BULK = queries.MAX_LIMIT  # one page of checkboxes at most
ASSIGNABLE = ("submitted", "assigned", "in_service")


# ------------------------------------------------------------------ forms
class AssignForm(FlaskForm):
    advisor = SelectField(_l("Advisor"), validate_choice=False, validators=[no_control_chars])
    note = TextAreaField(_l("Note for the advisor"), render_kw={"rows": 2, "maxlength": 500})
    force = BooleanField(_l("Assign anyway, past the advisor's capacity"))
    version = HiddenField()
    over_capacity = False  # set when the capacity check refused: the form then shows ``force``


class BulkAssignForm(FlaskForm):
    advisor = SelectField(
        _l("Assign the selected cases to"), validate_choice=False, validators=[no_control_chars]
    )
    note = TextAreaField(_l("Note for the advisor"), render_kw={"rows": 1, "maxlength": 500})
    force = BooleanField(_l("Assign anyway, past the advisor's capacity"))
    over_capacity = False


class RejectForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (the bureau will see it)"), render_kw={"rows": 2, "maxlength": 500}
    )
    version = HiddenField()


class WithdrawForm(FlaskForm):
    version = HiddenField()


class ProposalForm(FlaskForm):
    bureau = HiddenField()
    field = HiddenField()
    decision = HiddenField()  # accept | dismiss


class ConfirmForm(FlaskForm):
    satisfaction = SelectField(_l("The firm's satisfaction (1-5)"), validate_choice=False)
    comment = TextAreaField(_l("Comment"), render_kw={"rows": 2, "maxlength": 500})
    version = HiddenField()


def _satisfaction_choices() -> list[tuple[str, str]]:
    return [
        ("", _("Choose…")),
        ("5", _("5 — very satisfied")),
        ("4", _("4 — satisfied")),
        ("3", _("3 — neutral")),
        ("2", _("2 — dissatisfied")),
        ("1", _("1 — very dissatisfied")),
    ]


def _advisor_choices(advisors, first: list | None = None) -> list[tuple[str, str]]:
    """Advisors for a select (``matching.advisor_options``), each with the open load against
    capacity ("张伟 · 农行 · 8/15"): the suggested ones first, in rank order, then the others
    by name."""
    by_username = {a.username: a for a in advisors}
    ranked = [s.advisor.username for s in first or [] if s.advisor.username in by_username]
    seen = set(ranked)
    ordered = [by_username[u] for u in ranked] + [a for a in advisors if a.username not in seen]
    full = _("full")
    return [("", _("Choose an advisor"))] + [
        (a.username, matching.option_label(a, full)) for a in ordered
    ]


def _check_capacity(form, assigned: list) -> None:
    """After the service assigned (flushed, not committed) the cases ``assigned``: refuse
    (ValidationFailed on ``advisor``; the caller's ``saving.attempt`` rolls back) when they took
    the advisor past capacity, unless the form's "assign anyway" box is ticked; the form then
    shows the box."""
    if form.force.data or not assigned:
        return
    over = matching.check_capacity(form.advisor.data or "", len(assigned), flushed=True)
    if over is not None:
        form.over_capacity = True
        raise ValidationFailed(over.message, {"advisor": over.message})


def _me():
    return current_user._get_current_object()


# ------------------------------------------------------------------ list
def _render_index(
    bulk_form: BulkAssignForm | None = None,
    checked: set[int] | None = None,
    errors: list[str] | None = None,
    status: int = 200,
):
    user = _me()
    args = request.args
    default = queries.default_status(user)
    filters, filter_errors = queries.parse_filters(args, default)
    limit = queries.parse_limit(args.get("limit"))
    cursor = queries.decode_cursor(args.get("cursor"))
    bureaus = queries.bureau_orgs() if user.role != "bureau" else []  # bureaus: no filter
    page = queries.Page([], None)
    if not filter_errors:
        page = queries.list_page(user, filters, cursor=cursor, limit=limit)
    base_args = filters.as_args()
    if limit != queries.PAGE_SIZE:
        base_args["limit"] = str(limit)
    next_url = (
        url_for("referrals.index", **base_args, cursor=page.next_cursor)
        if page.next_cursor
        else None
    )
    may_assign = user.role == "finance_office"
    if may_assign and bulk_form is None:
        bulk_form = BulkAssignForm(formdata=None)
    return render_template(
        "referrals/index.html",
        page=page,
        filters=filters,
        raw=queries.echo_values(args),
        filter_errors=filter_errors,
        filters_open=bool(filter_errors) or filters != queries.ReferralFilters(status=default),
        bureaus=bureaus,
        bureau_names={b.code: (b.short_name or b.name) for b in bureaus},
        townships=queries.townships(),
        statuses=STATUSES,
        needs=NEEDS,
        size_classes=SIZE_CLASSES,
        industry_names=labels("industry"),
        size_names=labels("size"),
        status_labels=labels("referral_status"),
        need_labels=labels("need"),
        outcome_labels=labels("outcome"),
        sla_labels=labels("sla"),
        inbox=user.role in OFFICE_ROLES,
        may_assign=may_assign,
        bulk_form=bulk_form,
        advisor_choices=_advisor_choices(matching.advisor_options()) if may_assign else [],
        checked=checked or set(),
        action_errors=errors or [],
        export_url=url_for("referrals.export", **filters.as_args()),
        first_url=url_for("referrals.index", **base_args) if cursor else None,
        clear_url=url_for("referrals.index", status=""),
        next_url=next_url,
        bulk_url=url_for("referrals.assign_bulk", **_list_args()),
    ), (422 if filter_errors and status == 200 else status)


def _list_args() -> dict[str, str]:
    """The list's own query-string values (filters, cursor, limit) as given, to come back to
    the same page after an action; anything else is dropped (it could clash with url_for)."""
    keys = (*queries.FILTER_KEYS, "cursor", "limit")
    return {k: v[:200] for k, v in request.args.items() if k in keys and isinstance(v, str)}


@bp.route("/")
def index():
    return _render_index()


def _bulk_ids() -> list[int] | None:
    ids = []
    for raw in request.form.getlist("ids"):
        referral_id = parse_id(raw)
        if referral_id is None:
            return None
        if referral_id not in ids:
            ids.append(referral_id)
    return ids


@bp.route("/assign", methods=["POST"])
@allow("finance_office")
@form_view
def assign_bulk():
    form = BulkAssignForm()
    ids = _bulk_ids()
    checked = set(ids or [])
    if not form.validate():
        return _render_index(form, checked, status=422)
    if ids is None:
        return _render_index(form, set(), [_("The selection is not valid.")], 422)
    if len(ids) > MAX_BULK:
        return _render_index(
            form, checked, [_("Select at most %(n)s cases at a time.", n=MAX_BULK)], 422
        )
    try:
        with saving.attempt(_("A case was changed meanwhile.")):
            done = svc.assign(_me(), ids, form.advisor.data or "", note=form.note.data or None)
            _check_capacity(form, done)
    except ValidationFailed as exc:
        if form.over_capacity:
            return _render_index(form, checked, [exc.message], 422)
        apply_errors(form, exc)
        messages = list(form.form_errors)
        form.form_errors.clear()
        return _render_index(form, checked, messages, 422)
    except Conflict as exc:
        return _render_index(form, checked, [exc.message], 409)
    except NotFound:
        return _render_index(form, checked, [_("A selected case no longer exists.")], 422)
    flash(ngettext("%(num)s case assigned.", "%(num)s cases assigned.", len(done)), "success")
    return redirect(url_for("referrals.index", **_list_args()))


# ------------------------------------------------------------------ export
@bp.route("/export.xlsx")
def export():
    user = _me()
    filters, errors = queries.parse_filters(request.args, queries.default_status(user))
    if errors:
        return _render_index()
    data = queries.export_rows(user, filters)
    bureaus = queries.bureau_orgs()
    bureau_names = {b.code.lower(): b.name for b in bureaus}
    township_names = {t.id: t.name for t in queries.townships()}
    notes = [
        [label, value]
        for label, value in queries.iter_filter_notes(filters, bureau_names, township_names)
    ]
    notes.append([_("Rows"), len(data.rows)])
    if data.truncated:
        notes.append(
            [
                _("Note"),
                _(
                    "Only the first %(n)s rows are included. "
                    "Narrow the filters to export the rest.",
                    n=f"{queries.EXPORT_CAP:,}",
                ),
            ]
        )
    body = workbook_bytes(
        [
            (_("Referrals"), queries.export_headers(), data.rows),
            (_("Filters"), [_("Filter"), _("Value")], notes),
        ]
    )
    stamp = clock.local_now().strftime("%Y%m%d-%H%M")
    return Response(
        body,
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="referrals-{stamp}.xlsx"'},
    )


# ------------------------------------------------------------------ the case page
def _view_or_404(referral_id: int) -> queries.CaseView:
    if referral_id > MAX_ID:
        abort(404)
    try:
        return queries.case_view(_me(), referral_id)
    except NotFound:
        abort(404)


def _render_detail(
    view: queries.CaseView,
    *,
    assign_form: AssignForm | None = None,
    reject_form: RejectForm | None = None,
    withdraw_form: WithdrawForm | None = None,
    confirm_form: ConfirmForm | None = None,
    proposal_form: ProposalForm | None = None,  # each proposal has its own buttons
    errors: list[str] | None = None,
    status: int = 200,
):
    user = _me()
    referral = view.referral
    version = str(referral.version)
    may_assign = user.role == "finance_office" and referral.status in ASSIGNABLE
    may_reject = user.role == "finance_office" and referral.status == "submitted"
    may_withdraw = view.my_bureau_refers and referral.status == "submitted"
    may_confirm = view.my_bureau_refers and referral.status == "resolved"
    suggestions = []
    if may_assign:
        options = matching.advisor_options()
        suggestions = matching.suggest(referral, view.firm, loads={a.id: a.load for a in options})
        if assign_form is None:
            assign_form = AssignForm(formdata=None, version=version)
            if suggestions:
                assign_form.advisor.data = suggestions[0].advisor.username
        assign_form.advisor.choices = _advisor_choices(options, suggestions)
    if may_reject and reject_form is None:
        reject_form = RejectForm(formdata=None, version=version)
    if may_withdraw and withdraw_form is None:
        withdraw_form = WithdrawForm(formdata=None, version=version)
    if may_confirm:
        if confirm_form is None:
            confirm_form = ConfirmForm(formdata=None, version=version)
        confirm_form.satisfaction.choices = _satisfaction_choices()
    return render_template(
        "referrals/detail.html",
        view=view,
        work=_work_panel(user, referral),
        r=referral,
        firm=view.firm,
        suggestions=suggestions,
        fit_parts=matching.scale_parts() if may_assign else [],
        assign_form=assign_form if may_assign else None,
        reject_form=reject_form if may_reject else None,
        withdraw_form=withdraw_form if may_withdraw else None,
        confirm_form=confirm_form if may_confirm else None,
        may_settle=user.role == "finance_office",
        action_errors=errors or [],
        status_labels=labels("referral_status"),
        need_labels=labels("need"),
        outcome_labels=labels("outcome"),
        event_labels=labels("referral_event"),
        sla_labels=labels("sla"),
    ), status


def _work_panel(user, referral) -> dict:
    """The advisor work on the case: its visits and financing (for those whose scope covers
    them; bureaus follow the status and outcome), and what the caller can do next."""
    visible = user.role != "bureau"
    mine = user.role == "advisor" and referral.advisor_id == user.id
    return {
        "visible": visible,
        "visits": visit_service.for_referral(user, referral.id) if visible else [],
        "applications": financing_service.for_referral(user, referral.id) if visible else [],
        "may_log": mine and referral.status in visit_service.VISITABLE,
        "may_outcome": mine and referral.status == "in_service",
        # The case is in the caller's scope: a bureau seeing it referred it.
        "may_feedback": referral.status in feedback_service.RATEABLE
        and (mine or user.role in ("finance_office", "admin", "bureau")),
        "firm_rating": feedback_service.firm_rating(referral.id)
        if referral.status in feedback_service.RATEABLE
        else None,
        "mode_labels": labels("visit_mode"),
        "role_labels": labels("visit_role"),
        "stage_labels": labels("stage"),
    }


@bp.route("/<int:referral_id>")
def detail(referral_id: int):
    view = _view_or_404(referral_id)
    user = _me()
    if user.role in OFFICE_ROLES:
        queries.mark_read(user, referral_id)
    return _render_detail(view)


def _refreshed(referral_id: int, form: FlaskForm) -> queries.CaseView:
    """After a failed change: the case as now stored, the form keeping what was typed but
    carrying the current version (submitting again now applies knowingly)."""
    view = _view_or_404(referral_id)
    if hasattr(form, "version"):
        form.version.data = str(view.referral.version)
    return view


def _conflict(referral_id: int, form: FlaskForm, exc: Conflict, form_key: str):
    view = _refreshed(referral_id, form)
    return _render_detail(
        view,
        **{form_key: form},
        errors=[exc.message, _("The page now shows the case as it is. Check it and try again.")],
        status=409,
    )


def _run_action(
    referral_id: int, form: FlaskForm, form_key: str, call, *, field_errors: bool = True
):
    """Validate the form -> call the service (the request's unit of work commits it). Returns
    None on success, or the case page again (422 with the errors, 409 on a conflict; 404 out of
    scope)."""
    view = _view_or_404(referral_id)
    if not form.validate():
        return _render_detail(view, **{form_key: form}, status=422)
    try:
        with saving.attempt(_("This case was changed by someone else since you opened it.")):
            call()
    except Conflict as exc:
        return _conflict(referral_id, form, exc, form_key)
    except ValidationFailed as exc:
        if not field_errors:
            return _render_detail(_view_or_404(referral_id), errors=[exc.message], status=422)
        apply_errors(form, exc)
        return _render_detail(_view_or_404(referral_id), **{form_key: form}, status=422)
    except NotFound:
        abort(404)
    return None


@bp.route("/<int:referral_id>/assign", methods=["POST"])
@allow("finance_office")
@form_view
def assign(referral_id: int):
    form = AssignForm()

    def call():
        done = svc.assign(
            _me(),
            [referral_id],
            form.advisor.data or "",
            note=form.note.data or None,
            expected_version=form_version(form.version.data),
        )
        _check_capacity(form, done)

    failed = _run_action(referral_id, form, "assign_form", call)
    if failed is not None:
        return failed
    flash(_("Case assigned."), "success")
    return redirect(url_for("referrals.detail", referral_id=referral_id))


@bp.route("/<int:referral_id>/reject", methods=["POST"])
@allow("finance_office")
@form_view
def reject(referral_id: int):
    form = RejectForm()
    failed = _run_action(
        referral_id,
        form,
        "reject_form",
        lambda: svc.reject(
            _me(),
            referral_id,
            form.reason.data or "",
            expected_version=form_version(form.version.data),
        ),
    )
    if failed is not None:
        return failed
    flash(_("Referral rejected. The bureau sees your reason."), "success")
    return redirect(url_for("referrals.detail", referral_id=referral_id))


@bp.route("/<int:referral_id>/withdraw", methods=["POST"])
@allow("bureau")
@form_view
def withdraw(referral_id: int):
    form = WithdrawForm()
    failed = _run_action(
        referral_id,
        form,
        "withdraw_form",
        lambda: svc.withdraw(_me(), referral_id, expected_version=form_version(form.version.data)),
        field_errors=False,
    )
    if failed is not None:
        return failed
    flash(_("Your referral was withdrawn."), "success")
    # With co-referrers the case stays open for them and leaves this bureau's scope.
    if not queries.in_scope(_me(), referral_id):
        return redirect(url_for("referrals.index"))
    return redirect(url_for("referrals.detail", referral_id=referral_id))


@bp.route("/<int:referral_id>/proposals", methods=["POST"])
@allow("finance_office")
def settle_proposal(referral_id: int):
    form = ProposalForm()
    accept = form.decision.data == "accept"
    failed = _run_action(
        referral_id,
        form,
        "proposal_form",
        lambda: svc.settle_proposal(
            _me(), referral_id, form.bureau.data or "", form.field.data or "", accept
        ),
        field_errors=False,
    )
    if failed is not None:
        return failed
    flash(
        _("The firm's registry was updated.") if accept else _("The proposed value was dismissed."),
        "success",
    )
    return redirect(url_for("referrals.detail", referral_id=referral_id, _anchor="case-bureaus"))


def _satisfaction(raw) -> int | None:
    return parse_int(raw, 0, 99)


@bp.route("/<int:referral_id>/confirm", methods=["POST"])
@allow("bureau")
@form_view
def confirm(referral_id: int):
    form = ConfirmForm()
    form.satisfaction.choices = _satisfaction_choices()
    failed = _run_action(
        referral_id,
        form,
        "confirm_form",
        lambda: svc.confirm_outcome(
            _me(),
            referral_id,
            _satisfaction(form.satisfaction.data),
            form.comment.data or None,
            expected_version=form_version(form.version.data),
        ),
    )
    if failed is not None:
        return failed
    flash(_("Outcome confirmed; the case is closed."), "success")
    return redirect(url_for("referrals.detail", referral_id=referral_id))


# ------------------------------------------------------------------ bureau dashboard
@bp.route("/dashboard")
@allow("bureau")
def dashboard():
    return render_template(
        "referrals/dashboard.html",
        d=queries.bureau_dashboard(_me()),
        status_labels=labels("referral_status"),
        outcome_labels=labels("outcome"),
    )
