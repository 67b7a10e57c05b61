"""The financing pipeline of a case: applications and their stages.

applied -> approved (授信) -> disbursed (放款), or declined (with reason) from applied or approved.
A stage never goes backwards and nothing follows disbursed or declined. Each stage reached is
kept on the application (date and amount, what lists and the assessment read) and as a
``financing_step`` row (the history). Stages are recorded on a visit (the financing role) or on
the application's own page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, select

from models import (
    FINANCING_STAGES,
    STAGE_ORDER,
    FinancingApplication,
    FinancingStep,
    Organisation,
    Referral,
    User,
    Visit,
    db,
)

from .. import clock
from .. import labels as vocab
from ..errors import Conflict, NotFound, ValidationFailed
from ..params import MAX_ID, parse_date_field
from ..permissions import get_scoped, scoped
from . import firms as firm_service

# One loan to a small firm above 10 亿元 is a typo, not a loan.
MAX_LOAN_WAN = Decimal("100000")
# Loans come from banks; insurers second advisors but do not lend (a credit-insurance product
# still names the bank that lends).
LENDER_TYPES = ("bank",)
TERMINAL = ("disbursed", "declined")


def field_labels() -> dict[str, str]:
    return {
        "application_id": _("Application"),
        "stage": _("Stage"),
        "amount_wan": _("Amount (万元)"),
        "institution": _("Lending institution"),
        "product": _("Product"),
        "purpose": _("Purpose"),
        "term_months": _("Term (months)"),
        "first_loan": _("First-time borrower (首贷户)"),
        "unsecured": _("Unsecured loan (信用贷款)"),
        "reason": _("Reason declined"),
        "on": _("Date"),
    }


@dataclass
class CleanFinancing:
    stage: str
    amount_wan: Decimal | None
    lender: Organisation | None
    application_id: int | None = None
    product: str | None = None
    purpose: str | None = None
    term_months: int | None = None
    first_loan: bool = False
    unsecured: bool = False
    reason: str | None = None


def _bool(raw) -> bool | None:
    if raw is None or raw == "":
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "y", "on", "是"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("0", "false", "no", "n", "off", "否"):
        return False
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    return None


def _amount(raw, label: str, errors: dict, key: str) -> Decimal | None:
    try:
        value = firm_service.parse_wan(raw, label)
    except ValueError as exc:
        errors[key] = str(exc)
        return None
    if value is not None and value <= 0:
        errors[key] = _("%(field)s must be more than zero.", field=label)
        return None
    if value is not None and value > MAX_LOAN_WAN:
        errors[key] = _(
            "%(field)s is more than %(max)s 万元; amounts are in 万元.",
            field=label,
            max=f"{MAX_LOAN_WAN:,}",
        )
        return None
    return value


def _text(raw, limit: int, label: str, errors: dict, key: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str | int | float):
        errors[key] = _("%(field)s must be text.", field=label)
        return None
    text = firm_service.clean_text(raw)
    if len(text) > limit:
        errors[key] = _("%(field)s: at most %(n)s characters.", field=label, n=limit)
        return None
    return text or None


def lender_by_code(code) -> Organisation | None:
    if not isinstance(code, str) or not code.strip() or not code.isprintable():
        return None  # (a NUL byte would not even reach a PostgreSQL comparison)
    return db.session.execute(
        select(Organisation).where(
            func.lower(Organisation.code) == code.strip().lower(),
            Organisation.type.in_(LENDER_TYPES),
            Organisation.active.is_(True),
        )
    ).scalar_one_or_none()


def _visit_lender(
    raw, application_id, default_lender: Organisation | None, errors: dict, prefix: str
) -> Organisation | None:
    """The lender a visit names by code; else (for a new application) the advisor's own bank."""
    label = field_labels()["institution"]
    if raw not in (None, ""):
        lender = lender_by_code(raw)
        if lender is None:
            errors[prefix + "institution"] = _(
                "%(field)s must be the code of an active bank.", field=label
            )
        return lender
    if application_id is not None:
        return None
    lender = default_lender if default_lender and default_lender.type in LENDER_TYPES else None
    if lender is None:
        errors[prefix + "institution"] = _("%(field)s is required.", field=label)
    return lender


def _term(raw, errors: dict, key: str) -> int | None:
    """The term in months (optional): a whole number from 1 to 600."""
    label = field_labels()["term_months"]
    try:
        term = firm_service.parse_int(raw, label, 600)
        if term == 0:
            raise ValueError(_("%(field)s must be at least 1.", field=label))
    except ValueError as exc:
        errors[key] = str(exc)
        return None
    return term


def _flags(data: dict, errors: dict, prefix: str) -> dict[str, bool]:
    """The first-loan and unsecured ticks (true or false; missing is false)."""
    labels = field_labels()
    flags = {}
    for key in ("first_loan", "unsecured"):
        value = _bool(data.get(key))
        if value is None:
            errors[prefix + key] = _("%(field)s must be true or false.", field=labels[key])
        flags[key] = bool(value)
    return flags


def clean(data, *, prefix: str = "", default_lender: Organisation | None = None):
    """The contract's ``financing`` object of a visit. Returns (CleanFinancing | None, errors)
    with error keys ``prefix + field``."""
    labels = field_labels()
    errors: dict[str, str] = {}
    if not isinstance(data, dict):
        return None, {prefix.rstrip(".") or "financing": _("Financing details are required.")}
    stage = data.get("stage")
    if stage not in FINANCING_STAGES:
        errors[prefix + "stage"] = vocab.one_of(labels["stage"], vocab.labels("stage").values())
    amount = _amount(data.get("amount_wan"), labels["amount_wan"], errors, prefix + "amount_wan")
    if (
        amount is None
        and stage in ("applied", "approved", "disbursed")
        and not errors.get(prefix + "amount_wan")
    ):
        errors[prefix + "amount_wan"] = _("%(field)s is required.", field=labels["amount_wan"])
    application_id = None
    raw_app = data.get("application_id")
    if raw_app not in (None, ""):
        try:
            application_id = firm_service.parse_int(raw_app, labels["application_id"], MAX_ID)
        except ValueError as exc:
            errors[prefix + "application_id"] = str(exc)
    lender = _visit_lender(data.get("institution"), application_id, default_lender, errors, prefix)
    term = _term(data.get("term_months"), errors, prefix + "term_months")
    flags = _flags(data, errors, prefix)
    product = _text(data.get("product"), 100, labels["product"], errors, prefix + "product")
    purpose = _text(data.get("purpose"), 200, labels["purpose"], errors, prefix + "purpose")
    reason = _text(data.get("reason"), 500, labels["reason"], errors, prefix + "reason")
    if stage == "declined" and not reason and prefix + "reason" not in errors:
        errors[prefix + "reason"] = _("%(field)s is required.", field=labels["reason"])
    if errors:
        return None, errors
    return (
        CleanFinancing(
            stage=stage,
            amount_wan=amount,
            lender=lender,
            application_id=application_id,
            product=product,
            purpose=purpose,
            term_months=term,
            first_loan=flags["first_loan"],
            unsecured=flags["unsecured"],
            reason=reason,
        ),
        {},
    )


def open_applications(referral_id: int) -> list[FinancingApplication]:
    """The case's applications still in progress (applied or approved), oldest first."""
    return list(
        db.session.execute(
            select(FinancingApplication)
            .where(
                FinancingApplication.referral_id == referral_id,
                FinancingApplication.stage.in_(("applied", "approved")),
            )
            .order_by(FinancingApplication.id)
        ).scalars()
    )


def _step(app: FinancingApplication, stage, on, amount, note, visit_id, actor) -> None:
    db.session.add(
        FinancingStep(
            application_id=app.id,
            stage=stage,
            stage_on=on,
            amount_wan=amount,
            note=note,
            visit_id=visit_id,
            actor_id=actor.id,
        )
    )


def _stage_errors(app: FinancingApplication, stage: str, on: date, amount, key: str) -> dict:
    """Why ``app`` cannot move to ``stage`` on ``on`` with ``amount`` (empty when it can)."""
    labels = vocab.labels("stage")
    current = app.stage
    if current in TERMINAL:
        return {
            key + "stage": _(
                "This application is already %(stage)s; record a new application instead.",
                stage=labels[current],
            )
        }
    if STAGE_ORDER[stage] < STAGE_ORDER[current] or stage == current:
        return {
            key + "stage": _(
                "Stage cannot go back or repeat: the application is already %(stage)s.",
                stage=labels[current],
            )
        }
    last = max(d for d in (app.applied_on, app.approved_on) if d is not None)
    if on < last:
        return {
            key + "on": _(
                "The date cannot be before the previous stage (%(date)s).", date=last.isoformat()
            )
        }
    if stage == "disbursed" and app.approved_amount_wan and amount > app.approved_amount_wan:
        return {
            key + "amount_wan": _(
                "The amount disbursed cannot exceed the credit granted (%(amount)s 万元).",
                amount=app.approved_amount_wan,
            )
        }
    return {}


def _apply_stage(app, stage, on, amount, reason) -> None:
    app.stage = stage
    if stage == "approved":
        app.approved_on, app.approved_amount_wan = on, amount
    elif stage == "disbursed":
        if app.approved_on is None:  # disbursed without a separate approval step
            app.approved_on, app.approved_amount_wan = on, amount
        app.disbursed_on, app.disbursed_amount_wan = on, amount
    elif stage == "declined":
        app.declined_on, app.declined_reason = on, reason


def record_from_visit(
    actor: User, referral: Referral, visit: Visit, fin: CleanFinancing
) -> FinancingApplication:
    """The financing role of a visit: open a new application, or move an open one on.

    The application moved on is the one named by ``application_id``, else the case's open
    application with the same lender when there is exactly one; otherwise a new application is
    opened at the stage given (the earlier stages get the visit's date)."""
    target = _visit_target(referral, fin)
    if target is not None:
        _move_on_from_visit(actor, target, visit, fin)
        return target
    return _open_from_visit(actor, referral, visit, fin)


def _visit_target(referral: Referral, fin: CleanFinancing) -> FinancingApplication | None:
    """The open application a visit's financing moves on, or None for a new application."""
    if fin.application_id is not None:
        target = db.session.get(FinancingApplication, fin.application_id)
        if target is None or target.referral_id != referral.id:
            raise ValidationFailed(
                _("Please correct the marked fields."),
                {"financing.application_id": _("No such application on this case.")},
            )
        return target
    if fin.stage != "applied":
        same = [a for a in open_applications(referral.id) if a.lender_id == fin.lender.id]
        if len(same) == 1:
            return same[0]
    return None


def _move_on_from_visit(
    actor: User, target: FinancingApplication, visit: Visit, fin: CleanFinancing
) -> None:
    on = visit.visited_on
    errors = _stage_errors(target, fin.stage, on, fin.amount_wan, "financing.")
    if "financing.on" in errors:
        errors["visited_on"] = errors.pop("financing.on")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    _apply_stage(target, fin.stage, on, fin.amount_wan, fin.reason)
    if fin.first_loan:
        target.first_loan = True
    if fin.unsecured:
        target.unsecured = True
    db.session.flush()
    _step(target, fin.stage, on, fin.amount_wan, fin.reason, visit.id, actor)


def _open_from_visit(
    actor: User, referral: Referral, visit: Visit, fin: CleanFinancing
) -> FinancingApplication:
    if fin.stage == "declined" and fin.amount_wan is None:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"financing.amount_wan": _("Give the amount applied for (万元).")},
        )
    on = visit.visited_on
    app = FinancingApplication(
        referral_id=referral.id,
        enterprise_id=referral.enterprise_id,
        advisor_id=actor.id,
        org_id=actor.org_id,
        lender_id=fin.lender.id,
        visit_id=visit.id,
        product=fin.product,
        purpose=fin.purpose,
        term_months=fin.term_months,
        amount_wan=fin.amount_wan,
        first_loan=fin.first_loan,
        unsecured=fin.unsecured,
        stage="applied",
        applied_on=on,
    )
    db.session.add(app)
    db.session.flush()
    _step(app, "applied", on, fin.amount_wan, None, visit.id, actor)
    if fin.stage != "applied":
        _apply_stage(app, fin.stage, on, fin.amount_wan, fin.reason)
        _step(app, fin.stage, on, fin.amount_wan, fin.reason, visit.id, actor)
    db.session.flush()
    return app


# ------------------------------------------------------------------ the application page
def get_for(actor: User, application_id: int) -> FinancingApplication:
    app = get_scoped(FinancingApplication, actor, application_id)
    if app is None:
        raise NotFound(_("The page or record was not found."))
    return app


def _may_work_on(actor: User, app: FinancingApplication) -> bool:
    """The advisor the case is assigned to now works its pipeline."""
    if actor.role != "advisor":
        return False
    advisor_id = db.session.scalar(
        select(Referral.advisor_id).where(Referral.id == app.referral_id)
    )
    return advisor_id == actor.id


def may_work_on(actor: User, app: FinancingApplication) -> bool:
    return _may_work_on(actor, app)


def _check_version(app: FinancingApplication, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != app.version:
        raise Conflict(_("This application was changed by someone else since you opened it."))


def advance(
    actor: User,
    application_id: int,
    *,
    stage,
    on,
    amount_wan,
    reason=None,
    expected_version: int | None = None,
) -> FinancingApplication:
    """Move an application to its next stage from its own page."""
    app = get_for(actor, application_id)
    if not _may_work_on(actor, app):
        raise NotFound(_("The page or record was not found."))
    _check_version(app, expected_version)
    labels = field_labels()
    errors: dict[str, str] = {}
    if stage not in FINANCING_STAGES or stage == "applied":
        errors["stage"] = _("%(field)s: choose the stage reached.", field=labels["stage"])
    try:
        on = parse_date_field(on, labels["on"])
        if on is None:
            errors["on"] = _("%(field)s is required.", field=labels["on"])
        elif on > clock.today():
            errors["on"] = _("%(field)s cannot be in the future.", field=labels["on"])
    except ValueError as exc:
        errors["on"] = str(exc)
    amount = _amount(amount_wan, labels["amount_wan"], errors, "amount_wan")
    if stage in ("approved", "disbursed") and amount is None and "amount_wan" not in errors:
        errors["amount_wan"] = _("%(field)s is required.", field=labels["amount_wan"])
    reason = _text(reason, 500, labels["reason"], errors, "reason")
    if stage == "declined" and not reason and "reason" not in errors:
        errors["reason"] = _("%(field)s is required.", field=labels["reason"])
    if not errors:
        errors = _stage_errors(app, stage, on, amount, "")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    _apply_stage(app, stage, on, amount, reason)
    db.session.flush()
    _step(app, stage, on, amount, reason, None, actor)
    db.session.flush()
    return app


EDITABLE = ("product", "purpose", "term_months", "amount_wan", "lender", "first_loan", "unsecured")


def update_details(
    actor: User, application_id: int, data: dict, expected_version: int | None
) -> FinancingApplication:
    """Correct an application's details (not its stages). Checked against the version the
    user saw, so a concurrent change is a conflict, never a silent overwrite."""
    app = get_for(actor, application_id)
    if not _may_work_on(actor, app):
        raise NotFound(_("The page or record was not found."))
    _check_version(app, expected_version)
    labels = field_labels()
    errors: dict[str, str] = {}
    amount = _amount(data.get("amount_wan"), labels["amount_wan"], errors, "amount_wan")
    if amount is None and "amount_wan" not in errors:
        errors["amount_wan"] = _("%(field)s is required.", field=labels["amount_wan"])
    lender = lender_by_code(data.get("institution"))
    if lender is None:
        errors["institution"] = _(
            "%(field)s must be the code of an active bank.", field=labels["institution"]
        )
    term = _term(data.get("term_months"), errors, "term_months")
    product = _text(data.get("product"), 100, labels["product"], errors, "product")
    purpose = _text(data.get("purpose"), 200, labels["purpose"], errors, "purpose")
    flags = _flags(data, errors, "")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    app.amount_wan = amount
    app.lender_id = lender.id
    app.term_months = term
    app.product = product
    app.purpose = purpose
    app.first_loan = flags["first_loan"]
    app.unsecured = flags["unsecured"]
    db.session.flush()
    return app


def steps_of(application_id: int) -> list[tuple[FinancingStep, str]]:
    """The application's history with who recorded each step."""
    return list(
        db.session.execute(
            select(FinancingStep, User.display_name)
            .outerjoin(User, User.id == FinancingStep.actor_id)
            .where(FinancingStep.application_id == application_id)
            .order_by(FinancingStep.id)
        ).all()
    )


def for_referral(actor: User, referral_id: int) -> list[tuple[FinancingApplication, str | None]]:
    """The case's applications in the caller's scope, with the lender's name, oldest first."""
    return list(
        db.session.execute(
            scoped(
                FinancingApplication,
                actor,
                select(FinancingApplication, Organisation.name).outerjoin(
                    Organisation, Organisation.id == FinancingApplication.lender_id
                ),
            )
            .where(FinancingApplication.referral_id == referral_id)
            .order_by(FinancingApplication.id)
        ).all()
    )


def disbursed_total(referral_id: int) -> Decimal | None:
    """The amount disbursed on the case (the default for a 'financed' outcome)."""
    apps = db.session.execute(
        select(FinancingApplication.disbursed_amount_wan).where(
            FinancingApplication.referral_id == referral_id,
            FinancingApplication.stage == "disbursed",
        )
    ).scalars()
    values = [v for v in apps if v is not None]
    return sum(values, Decimal("0")) if values else None


def lenders() -> list[Organisation]:
    return list(
        db.session.execute(
            select(Organisation)
            .where(Organisation.type.in_(LENDER_TYPES), Organisation.active.is_(True))
            .order_by(Organisation.type, Organisation.name)
        ).scalars()
    )
