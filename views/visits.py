"""Visit logs (the four roles), the financing pipeline of a case, and the case outcome.

Routes are thin: the rules live in :mod:`advisors.services.visits` and
:mod:`advisors.services.financing` (the same services as ``POST /api/v1/visits``). A save is
checked against the version the user opened; a concurrent change gives a conflict page that
shows what is saved now beside what the user typed, never a silent overwrite. Each save runs
in :func:`advisors.services.saving.attempt`: a refusal or a race lost at the flush
(``StaleDataError``, turned into a ``Conflict``) is rolled back there, so the page shown next
reads what is stored now. Nothing here commits (``views/_uow.py`` does, once); page look-ups
are in :mod:`advisors.services.visit_queries`.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.widgets import CheckboxInput, ListWidget

from advisors import clock
from advisors import labels as vocab
from advisors.errors import Conflict, Forbidden, NotFound, ValidationFailed
from advisors.i18n import fmt_datetime
from advisors.params import MAX_ID, parse_id
from advisors.permissions import allow, allow_blueprint
from advisors.services import financing as financing_service
from advisors.services import policies as policy_service
from advisors.services import referrals as referral_service
from advisors.services import saving
from advisors.services import visit_queries as queries
from advisors.services import visits as service
from advisors.services.firms import parse_wan
from models import OUTCOMES, RISK_TYPES, VISIT_MODES, VISIT_ROLES, User

from ._forms import apply_errors, form_version, restore_pending
from ._http import form_view

bp = Blueprint("visits", __name__, url_prefix="/visits")
allow_blueprint(bp, "admin", "finance_office", "pboc", "advisor", "liaison")


def _me() -> User:
    return current_user._get_current_object()


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):  # the service checks the choices and names the field
        pass


# ------------------------------------------------------------------ forms
class VisitForm(FlaskForm):
    visited_on = StringField(_l("Date of the visit"), render_kw={"type": "date"})
    mode = RadioField(_l("How"), validate_choice=False)
    roles = MultiCheckboxField(_l("Roles on this visit"))
    summary = TextAreaField(_l("Summary"), render_kw={"rows": 4, "maxlength": service.SUMMARY_MAX})
    policies = MultiCheckboxField(_l("Policies explained"), coerce=str)
    policy_note = StringField(_l("To whom and how"), render_kw={"maxlength": 500})
    guidance_topic = StringField(
        _l("Guidance topic"), render_kw={"maxlength": 100, "list": "guidance-topics"}
    )
    guidance_advice = TextAreaField(_l("Advice given"), render_kw={"rows": 3})
    information_note = TextAreaField(_l("Information gathered"), render_kw={"rows": 3})
    risk_signal = BooleanField(_l("Report a risk signal to the finance office"))
    risk_type = SelectField(_l("Type of risk"), validate_choice=False)
    fin_application = SelectField(_l("Application"), validate_choice=False)
    fin_stage = SelectField(_l("Stage"), validate_choice=False)
    fin_amount = StringField(_l("Amount (万元)"), render_kw={"inputmode": "decimal"})
    fin_institution = SelectField(_l("Lending institution"), validate_choice=False)
    fin_product = StringField(_l("Product"), render_kw={"maxlength": 100})
    fin_term = StringField(_l("Term (months)"), render_kw={"inputmode": "numeric"})
    fin_first_loan = BooleanField(_l("First-time borrower (首贷户)"))
    fin_unsecured = BooleanField(_l("Unsecured loan (信用贷款)"))
    fin_reason = StringField(_l("Reason declined"), render_kw={"maxlength": 500})
    next_visit_on = StringField(_l("Next visit planned"), render_kw={"type": "date"})
    reason = TextAreaField(_l("Reason for the correction"), render_kw={"rows": 2, "maxlength": 500})
    version = HiddenField()

    def as_data(self) -> dict:
        return {
            "visited_on": (self.visited_on.data or "").strip(),
            "mode": self.mode.data,
            "roles": self.roles.data or [],
            "summary": self.summary.data or "",
            "policies": self.policies.data or [],
            "policy_note": self.policy_note.data,
            "guidance_topic": self.guidance_topic.data,
            "guidance_advice": self.guidance_advice.data,
            "information": {
                "note": self.information_note.data,
                "risk_signal": bool(self.risk_signal.data),
                "risk_type": self.risk_type.data or None,
            },
            "information_note": self.information_note.data,
            "financing": {
                "application_id": self.fin_application.data or None,
                "stage": self.fin_stage.data or None,
                "amount_wan": self.fin_amount.data,
                "institution": self.fin_institution.data or None,
                "product": self.fin_product.data,
                "term_months": self.fin_term.data,
                "first_loan": bool(self.fin_first_loan.data),
                "unsecured": bool(self.fin_unsecured.data),
                "reason": self.fin_reason.data,
            },
            "next_visit_on": (self.next_visit_on.data or "").strip() or None,
        }


# Service error keys -> form fields.
_FIELD_OF = {
    "information.note": "information_note",
    "information": "information_note",
    "information.risk_signal": "risk_signal",
    "information.risk_type": "risk_type",
    "financing": "fin_stage",
    "financing.application_id": "fin_application",
    "financing.stage": "fin_stage",
    "financing.amount_wan": "fin_amount",
    "financing.institution": "fin_institution",
    "financing.product": "fin_product",
    "financing.purpose": "fin_product",
    "financing.term_months": "fin_term",
    "financing.first_loan": "fin_first_loan",
    "financing.unsecured": "fin_unsecured",
    "financing.reason": "fin_reason",
    "referral_id": None,
}


def guidance_topic_suggestions() -> list[str]:
    """Suggestions offered in the form; the topic itself is free text."""
    return [
        _("Financial management"),
        _("Credit repair"),
        _("Listing preparation"),
        _("Insurance planning"),
        _("Digital transformation"),
        _("Tax and accounting"),
    ]


def _prepare(form: VisitForm, referral_id: int, actor: User) -> VisitForm:
    modes = vocab.labels("visit_mode")
    roles = vocab.labels("visit_role")
    form.mode.choices = [(m, modes[m]) for m in VISIT_MODES]
    form.roles.choices = [(r, roles[r]) for r in VISIT_ROLES]
    tools = queries.active_policy_tools()
    expired = _("expired")
    form.policies.choices = [
        (str(t.id), t.name if policy_service.validity(t) != "expired" else f"{t.name}（{expired}）")
        for t in tools
    ]
    risks = vocab.labels("risk_type")
    form.risk_type.choices = [("", _("Choose…"))] + [(k, risks[k]) for k in RISK_TYPES]
    stages = vocab.labels("stage")
    form.fin_stage.choices = [("", _("Choose…"))] + [(k, v) for k, v in stages.items()]
    open_apps = financing_service.open_applications(referral_id)
    lender_names = queries.org_names(a.lender_id for a in open_apps)
    form.fin_application.choices = [("", _("A new application"))] + [
        (
            str(a.id),
            f"#{a.id} · {lender_names.get(a.lender_id, '')} · {a.amount_wan} 万元 · "
            f"{stages[a.stage]}",
        )
        for a in open_apps
    ]
    form.fin_institution.choices = [("", _("Choose…"))] + [
        (o.code, o.name) for o in financing_service.lenders()
    ]
    if (
        form.fin_institution.data in (None, "")
        and actor.org is not None
        and actor.org.type == "bank"
    ):
        form.fin_institution.data = actor.org.code
    return form


def _render_form(form, *, referral, mode: str, visit=None, changes=None, status: int = 200):
    return render_template(
        "visits/form.html",
        form=form,
        referral=referral,
        firm=queries.case_header(referral.id),
        mode=mode,
        visit=visit,
        changes=changes or [],
        topics=guidance_topic_suggestions(),
        edit_deadline=service.edit_deadline(visit) if visit is not None else None,
    ), status


def _referral_arg() -> int:
    referral_id = parse_id(request.args.get("referral_id"))
    if referral_id is None:
        abort(404)
    return referral_id


# ------------------------------------------------------------------ log a visit
@bp.route("/new", methods=["GET", "POST"])
@allow("advisor")
@form_view
def new():
    me = _me()
    referral_id = _referral_arg()
    try:
        referral = service.case_for_new_visit(me, referral_id)
    except NotFound:
        abort(404)
    except Conflict as exc:
        flash(exc.message, "warning")
        return redirect(url_for("referrals.detail", referral_id=referral_id))
    form = _prepare(VisitForm(), referral.id, me)
    if request.method != "POST":
        if not restore_pending(form):
            form.visited_on.data = clock.today().isoformat()
            form.mode.data = "onsite"
        return _render_form(form, referral=referral, mode="new")
    if not form.validate():
        return _render_form(form, referral=referral, mode="new", status=422)
    try:
        with saving.attempt(_("The case was changed at the same moment. Please submit again.")):
            data = form.as_data()
            data["referral_id"] = referral.id
            visit = service.log_visit(me, data)
    except ValidationFailed as exc:
        apply_errors(form, exc, _FIELD_OF)
        return _render_form(form, referral=_fresh_case(me, referral_id), mode="new", status=422)
    except Conflict:
        form.form_errors.append(_("The case was changed at the same moment. Please submit again."))
        return _render_form(form, referral=_fresh_case(me, referral_id), mode="new", status=409)
    flash(_("Visit logged."), "success")
    return redirect(url_for("visits.detail", visit_id=visit.id))


def _fresh_case(me: User, referral_id: int):
    try:
        return service.case_for_new_visit(me, referral_id)
    except (NotFound, Conflict):
        abort(404)


# ------------------------------------------------------------------ one visit
def _visit_or_404(visit_id: int):
    try:
        visit = service.get_for(_me(), visit_id)
    except NotFound:
        abort(404)
    return service.load(visit.id)


@bp.route("/<int:visit_id>")
def detail(visit_id: int):
    me = _me()
    visit = _visit_or_404(visit_id)
    from advisors.services import risk as risk_service

    author, firm, corrected_by = queries.visit_names(visit)
    return render_template(
        "visits/detail.html",
        v=visit,
        author=author,
        firm=firm,
        corrected_by=corrected_by,
        steps=service.financing_of_visit(visit.id),
        risks=risk_service.reports_for_visit(me, visit.id),
        may_edit=service.author_may_edit(me, visit),
        may_correct=service.may_correct(me, visit),
        edit_deadline=service.edit_deadline(visit),
        mode_labels=vocab.labels("visit_mode"),
        role_labels_=vocab.labels("visit_role"),
        stage_labels=vocab.labels("stage"),
        risk_labels=vocab.labels("risk_type"),
    )


def _form_from_visit(visit, referral_id: int, me: User) -> VisitForm:
    values = service.values_of(visit)
    form = VisitForm(formdata=None, version=str(visit.version))
    form.visited_on.data = values["visited_on"]
    form.mode.data = values["mode"]
    form.roles.data = values["roles"]
    form.summary.data = values["summary"]
    form.policies.data = [str(i) for i in values["policies"]]
    form.policy_note.data = values["policy_note"]
    form.guidance_topic.data = values["guidance_topic"]
    form.guidance_advice.data = values["guidance_advice"]
    form.information_note.data = values["information_note"]
    form.next_visit_on.data = values["next_visit_on"]
    return _prepare(form, referral_id, me)


def _changes(visit, form: VisitForm) -> list[tuple[str, str, str]]:
    """(field, saved now, yours) for each field where the stored visit differs from the input."""
    saved = service.values_of(visit)
    yours = form.as_data()
    yours["information_note"] = form.information_note.data or ""
    labels = service.field_labels()
    tools = queries.policy_tool_names()
    modes = vocab.labels("visit_mode")
    roles = vocab.labels("visit_role")

    def show(key, value):
        if key == "roles":
            return "、".join(roles.get(r, r) for r in value or [])
        if key == "policies":
            ids = [parse_id(i) for i in value or []]
            return "、".join(tools.get(i, str(i)) for i in ids if i is not None)
        if key == "mode":
            return modes.get(value, value or "")
        return (value or "").strip() if isinstance(value, str) else str(value or "")

    out = []
    for key in service.EDITABLE:
        label = labels.get(key) or labels.get("information.note")
        a, b = show(key, saved.get(key)), show(key, yours.get(key))
        if key in ("roles", "policies"):
            same = sorted(map(str, saved.get(key) or [])) == sorted(map(str, yours.get(key) or []))
        else:
            same = a == b
        if not same:
            out.append((label, a, b))
    return out


def _edit_conflict(form: VisitForm, visit_id: int, *, referral, mode: str):
    """The 409 page of a visit saved by someone else since the form was opened: what is saved
    now beside what the user typed, and the current version so a second save applies theirs."""
    current = _visit_or_404(visit_id)
    changes = _changes(current, form)
    who = queries.last_change(visit_id)
    form.version.data = str(current.version)
    message = _("This visit log was changed by someone else since you opened it.")
    if who:
        message += " " + _("Last change: %(who)s, %(when)s.", who=who[0], when=fmt_datetime(who[1]))
    form.form_errors.append(message)
    form.form_errors.append(
        _("Compare what is saved now with your input, then save again to apply yours.")
    )
    return _render_form(
        form, referral=referral, mode=mode, visit=current, changes=changes, status=409
    )


@bp.route("/<int:visit_id>/edit", methods=["GET", "POST"])
@allow("advisor", "finance_office")
@form_view
def edit(visit_id: int):
    me = _me()
    visit = _visit_or_404(visit_id)
    correcting = me.role == "finance_office"
    if not correcting and not service.author_may_edit(me, visit):
        if me.id != visit.advisor_id:
            abort(404)
        flash(
            _(
                "Visits can be edited for %(n)s days after they are logged. "
                "Ask the finance office for a correction.",
                n=service.edit_days(),
            ),
            "warning",
        )
        return redirect(url_for("visits.detail", visit_id=visit_id), code=303)
    referral = queries.referral_of(visit)
    mode = "correct" if correcting else "edit"
    if request.method != "POST":
        form = _form_from_visit(visit, referral.id, me)
        restore_pending(form)
        return _render_form(form, referral=referral, mode=mode, visit=visit)
    form = _prepare(VisitForm(), referral.id, me)
    if not form.validate():
        return _render_form(form, referral=referral, mode=mode, visit=visit, status=422)
    data = form.as_data()
    try:
        with saving.attempt(_("This visit log was changed by someone else since you opened it.")):
            service.update_visit(
                me,
                visit_id,
                {k: v for k, v in data.items() if k in service.EDITABLE},
                expected_version=form_version(form.version.data),
                reason=form.reason.data if correcting else None,
            )
    except Conflict:
        return _edit_conflict(form, visit_id, referral=referral, mode=mode)
    except Forbidden as exc:
        flash(exc.message, "warning")
        return redirect(url_for("visits.detail", visit_id=visit_id), code=303)
    except ValidationFailed as exc:
        apply_errors(form, exc, _FIELD_OF)
        return _render_form(
            form, referral=referral, mode=mode, visit=_visit_or_404(visit_id), status=422
        )
    flash(
        _("Correction saved; the advisor is told.") if correcting else _("Visit updated."),
        "success",
    )
    return redirect(url_for("visits.detail", visit_id=visit_id))


# ------------------------------------------------------------------ financing application
class StageForm(FlaskForm):
    stage = SelectField(_l("Stage reached"), validate_choice=False)
    on = StringField(_l("Date"), render_kw={"type": "date"})
    amount_wan = StringField(_l("Amount (万元)"), render_kw={"inputmode": "decimal"})
    reason = StringField(_l("Reason declined"), render_kw={"maxlength": 500})
    version = HiddenField()


# The details form shares the page with the stage form: a prefix keeps their field ids apart.
DETAILS_PREFIX = "details"


class ApplicationForm(FlaskForm):
    institution = SelectField(_l("Lending institution"), validate_choice=False)
    product = StringField(_l("Product"), render_kw={"maxlength": 100})
    purpose = StringField(_l("Purpose"), render_kw={"maxlength": 200})
    amount_wan = StringField(_l("Amount applied for (万元)"), render_kw={"inputmode": "decimal"})
    term_months = StringField(_l("Term (months)"), render_kw={"inputmode": "numeric"})
    first_loan = BooleanField(_l("First-time borrower (首贷户)"))
    unsecured = BooleanField(_l("Unsecured loan (信用贷款)"))
    version = HiddenField()


def _application_or_404(application_id: int):
    if not 0 < application_id <= MAX_ID:
        abort(404)
    try:
        return financing_service.get_for(_me(), application_id)
    except NotFound:
        abort(404)


def _stage_choices(app) -> list[tuple[str, str]]:
    labels = vocab.labels("stage")
    order = {
        "applied": ("approved", "disbursed", "declined"),
        "approved": ("disbursed", "declined"),
    }
    return [("", _("Choose…"))] + [(k, labels[k]) for k in order.get(app.stage, ())]


def _render_application(
    app, *, stage_form=None, details_form=None, changes=None, errors=None, status=200
):
    me = _me()
    may_work = financing_service.may_work_on(me, app)
    if may_work and app.stage not in financing_service.TERMINAL and stage_form is None:
        stage_form = StageForm(
            formdata=None, version=str(app.version), on=clock.today().isoformat()
        )
    if stage_form is not None:
        stage_form.stage.choices = _stage_choices(app)
    if may_work and details_form is None:
        details_form = ApplicationForm(
            formdata=None,
            prefix=DETAILS_PREFIX,
            version=str(app.version),
            product=app.product,
            purpose=app.purpose,
            amount_wan=str(app.amount_wan),
            term_months=str(app.term_months or ""),
            first_loan=app.first_loan,
            unsecured=app.unsecured,
        )
        lender = queries.lender_of(app)
        details_form.institution.data = lender.code if lender else ""
    if details_form is not None:
        details_form.institution.choices = [("", _("Choose…"))] + [
            (o.code, o.name) for o in financing_service.lenders()
        ]
    firm, advisor, lender_name = queries.application_names(app)
    return render_template(
        "visits/application.html",
        a=app,
        firm=firm,
        advisor=advisor,
        lender_name=lender_name,
        steps=financing_service.steps_of(app.id),
        stage_form=stage_form if may_work and app.stage not in financing_service.TERMINAL else None,
        details_form=details_form if may_work else None,
        changes=changes or [],
        action_errors=errors or [],
        stage_labels=vocab.labels("stage"),
    ), status


@bp.route("/financing/<int:application_id>")
def application(application_id: int):
    return _render_application(_application_or_404(application_id))


@bp.route("/financing/<int:application_id>/stage", methods=["POST"])
@allow("advisor")
@form_view
def stage(application_id: int):
    app = _application_or_404(application_id)
    form = StageForm()
    if not form.validate():
        return _render_application(app, stage_form=form, status=422)
    try:
        with saving.attempt(_("This application was changed by someone else since you opened it.")):
            financing_service.advance(
                _me(),
                application_id,
                stage=form.stage.data,
                on=form.on.data,
                amount_wan=form.amount_wan.data,
                reason=form.reason.data,
                expected_version=form_version(form.version.data),
            )
    except NotFound:
        abort(404)
    except Conflict:
        app = _application_or_404(application_id)
        form.version.data = str(app.version)
        return _render_application(
            app,
            stage_form=form,
            errors=[
                _("This application was changed by someone else since you opened it."),
                _("The page now shows it as it is. Check it and try again."),
            ],
            status=409,
        )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_application(_application_or_404(application_id), stage_form=form, status=422)
    flash(_("Stage recorded."), "success")
    return redirect(url_for("visits.application", application_id=application_id))


def _details_changes(app, form: ApplicationForm) -> list[tuple[str, str, str]]:
    labels = financing_service.field_labels()
    lender = queries.lender_of(app)
    names = {o.code: o.name for o in financing_service.lenders()}
    yes, no = _("Yes"), _("No")
    pairs = [
        ("institution", lender.name if lender else "", names.get(form.institution.data or "", "")),
        ("product", app.product or "", (form.product.data or "").strip()),
        ("purpose", app.purpose or "", (form.purpose.data or "").strip()),
        ("amount_wan", str(app.amount_wan), (form.amount_wan.data or "").strip()),
        ("term_months", str(app.term_months or ""), (form.term_months.data or "").strip()),
        ("first_loan", yes if app.first_loan else no, yes if form.first_loan.data else no),
        ("unsecured", yes if app.unsecured else no, yes if form.unsecured.data else no),
    ]
    out = []
    for key, saved, yours in pairs:
        if key == "amount_wan":
            try:
                same = parse_wan(yours, "") == app.amount_wan
            except ValueError:
                same = False
        else:
            same = saved == yours
        if not same:
            out.append((labels[key], saved, yours))
    return out


@bp.route("/financing/<int:application_id>/edit", methods=["POST"])
@allow("advisor")
@form_view
def edit_application(application_id: int):
    app = _application_or_404(application_id)
    form = ApplicationForm(prefix=DETAILS_PREFIX)
    if not form.validate():
        return _render_application(app, details_form=form, status=422)
    try:
        with saving.attempt(_("This application was changed by someone else since you opened it.")):
            financing_service.update_details(
                _me(),
                application_id,
                {
                    "institution": form.institution.data,
                    "product": form.product.data,
                    "purpose": form.purpose.data,
                    "amount_wan": form.amount_wan.data,
                    "term_months": form.term_months.data,
                    "first_loan": bool(form.first_loan.data),
                    "unsecured": bool(form.unsecured.data),
                },
                form_version(form.version.data),
            )
    except NotFound:
        abort(404)
    except Conflict:
        app = _application_or_404(application_id)
        changes = _details_changes(app, form)
        form.version.data = str(app.version)
        return _render_application(
            app,
            details_form=form,
            changes=changes,
            errors=[
                _("This application was changed by someone else since you opened it."),
                _("Compare what is saved now with your input, then save again to apply yours."),
            ],
            status=409,
        )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_application(
            _application_or_404(application_id), details_form=form, status=422
        )
    flash(_("Application updated."), "success")
    return redirect(url_for("visits.application", application_id=application_id))


# ------------------------------------------------------------------ outcome
class OutcomeForm(FlaskForm):
    result = RadioField(_l("Outcome"), validate_choice=False)
    amount_wan = StringField(_l("Amount financed (万元)"), render_kw={"inputmode": "decimal"})
    note = TextAreaField(_l("Note (the bureau sees it)"), render_kw={"rows": 2, "maxlength": 500})
    version = HiddenField()


def _outcome_case(referral_id: int):
    me = _me()
    if not 0 < referral_id <= MAX_ID:
        abort(404)
    try:
        referral = referral_service.get_for(me, referral_id)
    except NotFound:
        abort(404)
    if referral.advisor_id != me.id:
        abort(404)
    return referral


def _render_outcome(form, referral, status=200):
    labels = vocab.labels("outcome")
    form.result.choices = [(k, labels[k]) for k in OUTCOMES]
    return render_template(
        "visits/outcome.html",
        form=form,
        r=referral,
        firm=queries.case_header(referral.id),
        disbursed=financing_service.disbursed_total(referral.id),
    ), status


@bp.route("/case/<int:referral_id>/outcome", methods=["GET", "POST"])
@allow("advisor")
@form_view
def outcome(referral_id: int):
    referral = _outcome_case(referral_id)
    if referral.status != "in_service":
        flash(
            _("The outcome is recorded once the firm has been visited and before it is resolved."),
            "warning",
        )
        return redirect(url_for("referrals.detail", referral_id=referral_id))
    form = OutcomeForm()
    if request.method != "POST":
        form = OutcomeForm(formdata=None, version=str(referral.version))
        disbursed = financing_service.disbursed_total(referral.id)
        if disbursed:
            form.result.data = "financed"
            form.amount_wan.data = str(disbursed)
        restore_pending(form)
        return _render_outcome(form, referral)
    if not form.validate():
        return _render_outcome(form, referral, 422)
    amount = None
    try:
        amount = parse_wan(form.amount_wan.data, _("Amount financed (万元)"))
    except ValueError as exc:
        form.amount_wan.errors = [str(exc)]
        return _render_outcome(form, referral, 422)
    try:
        if form_version(form.version.data) != referral.version:
            raise Conflict(_("This case was changed by someone else since you opened it."))
        with saving.attempt(_("The case was changed meanwhile.")):
            referral_service.record_outcome(
                _me(), referral, form.result.data or "", amount, form.note.data
            )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_outcome(form, _outcome_case(referral_id), 422)
    except Conflict as exc:
        referral = _outcome_case(referral_id)
        form.version.data = str(referral.version)
        form.form_errors.append(exc.message)
        return _render_outcome(form, referral, 409)
    flash(_("Outcome recorded; the referring bureau is asked to confirm it."), "success")
    return redirect(url_for("referrals.detail", referral_id=referral_id))
