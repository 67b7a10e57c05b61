"""Visit logs: one service behind the web form and ``POST /api/v1/visits``.

A visit is logged by the advisor the case is assigned to, on a date not in the future and not
before the case was referred, in one or more of the four roles; each role's details are required
only when that role is ticked. The first visit moves the case to ``in_service``; a financing
role opens or moves on an application (:mod:`.financing`); a risk signal goes to the finance
office's risk queue at once (:mod:`.risk`).

The author may edit a visit for ``VISIT_EDIT_DAYS`` after logging it; afterwards only the
finance office corrects it, with a reason the author is told. Every save is checked against the
version the editor saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from models import (
    RISK_TYPES,
    VISIT_MODES,
    VISIT_ROLES,
    Enterprise,
    FinancingApplication,
    FinancingStep,
    PolicyTool,
    Referral,
    RiskReport,
    User,
    Visit,
    db,
    utcnow,
)

from .. import clock
from .. import labels as vocab
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..i18n import SHANGHAI
from ..params import MAX_ID, parse_date_field, parse_id
from ..permissions import get_scoped, scoped
from . import financing
from . import firms as firm_service
from . import referrals as referral_service
from .notifications import notify

VISITABLE = ("assigned", "in_service", "resolved", "closed")
SUMMARY_MAX = 5000
# The fields a visit edit may change (financing and risk reports have their own pages).
EDITABLE = (
    "visited_on",
    "mode",
    "roles",
    "summary",
    "policies",
    "policy_note",
    "guidance_topic",
    "guidance_advice",
    "information_note",
    "next_visit_on",
)


def field_labels() -> dict[str, str]:
    return {
        "referral_id": _("Case"),
        "visited_on": _("Date of the visit"),
        "mode": _("How"),
        "roles": _("Roles"),
        "summary": _("Summary"),
        "policies": _("Policies explained"),
        "policy_note": _("To whom and how"),
        "guidance_topic": _("Guidance topic"),
        "guidance_advice": _("Advice given"),
        "information": _("Information gathered"),
        "information.note": _("Information gathered"),
        "information.risk_signal": _("Risk signal"),
        "information.risk_type": _("Type of risk"),
        "next_visit_on": _("Next visit planned"),
        "reason": _("Reason for the correction"),
    }


@dataclass
class CleanVisit:
    visited_on: date
    mode: str
    roles: list[str]
    summary: str
    policies: list[PolicyTool] = field(default_factory=list)
    policy_note: str | None = None
    guidance_topic: str | None = None
    guidance_advice: str | None = None
    information_note: str | None = None
    risk_type: str | None = None
    next_visit_on: date | None = None
    financing: financing.CleanFinancing | None = None


def _date(raw, key: str, label: str, errors: dict) -> date | None:
    try:
        return parse_date_field(raw, label)
    except ValueError as exc:
        errors[key] = str(exc)
        return None


def _text(raw, key: str, label: str, limit: int, errors: dict) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        errors[key] = _("%(field)s must be text.", field=label)
        return None
    text = firm_service.clean_text(raw)
    if len(text) > limit:
        errors[key] = _("%(field)s: at most %(n)s characters.", field=label, n=limit)
        return None
    return text or None


def _roles(raw, errors: dict, label: str) -> list[str]:
    if isinstance(raw, str):
        raw = [p for p in raw.replace("，", ",").split(",")]
    if not isinstance(raw, list | tuple):
        errors["roles"] = _("%(field)s: choose at least one.", field=label)
        return []
    roles = []
    for item in raw:
        key = str(item).strip().lower() if isinstance(item, str) else None
        if key not in VISIT_ROLES:
            errors["roles"] = vocab.one_of(label, vocab.labels("visit_role").values())
            return []
        if key not in roles:
            roles.append(key)
    if not roles:
        errors["roles"] = _("%(field)s: choose at least one.", field=label)
    return [r for r in VISIT_ROLES if r in roles]


def _policies(raw, errors: dict, label: str) -> list[PolicyTool]:
    """Catalogue tools by id or code (the contract allows both)."""
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw:
        errors["policies"] = _("%(field)s: choose at least one.", field=label)
        return []
    ids, codes = [], []
    for item in raw:
        tool_id = parse_id(item)  # an id as a number or ASCII digits; else perhaps a code
        if tool_id is not None:
            ids.append(tool_id)
        elif isinstance(item, str) and 0 < len(item.strip()) <= 40 and item.strip().isprintable():
            codes.append(item.strip().lower())
        else:
            errors["policies"] = _("%(field)s: unknown policy tool.", field=label)
            return []
    if len(ids) + len(codes) > 50:
        errors["policies"] = _("%(field)s: at most %(n)s.", field=label, n=50)
        return []
    conditions = []
    if ids:
        conditions.append(PolicyTool.id.in_(ids))
    if codes:
        conditions.append(func.lower(PolicyTool.code).in_(codes))
    tools = list(
        db.session.execute(
            select(PolicyTool).where(or_(*conditions)).order_by(PolicyTool.id)
        ).scalars()
    )
    found_ids = {t.id for t in tools}
    found_codes = {t.code.lower() for t in tools}
    missing = [str(i) for i in ids if i not in found_ids] + [
        c for c in codes if c not in found_codes
    ]
    if missing:
        errors["policies"] = _(
            "%(field)s: unknown policy tool %(value)s.", field=label, value=", ".join(missing)
        )
        return []
    return tools


def referral_start(referral: Referral) -> date:
    """The day the case was referred, in Asia/Shanghai: no visit can be before it."""
    return referral.created_at.astimezone(SHANGHAI).date()


def clean(
    data: dict, referral: Referral, actor: User, *, editing: Visit | None = None
) -> tuple[CleanVisit | None, dict[str, str]]:
    """Validate a visit in the contract's shape. Returns (visit, errors by field)."""
    labels = field_labels()
    errors: dict[str, str] = {}
    if not isinstance(data, dict):
        return None, {"visit": _("The visit must be an object.")}
    visited_on = _visit_date(data.get("visited_on"), referral, labels, errors)
    mode = data.get("mode")
    if mode not in VISIT_MODES:
        errors["mode"] = vocab.one_of(labels["mode"], vocab.labels("visit_mode").values())
    roles = _roles(data.get("roles"), errors, labels["roles"])
    summary = _text(data.get("summary"), "summary", labels["summary"], SUMMARY_MAX, errors)
    if not summary and "summary" not in errors:
        errors["summary"] = _("%(field)s is required.", field=labels["summary"])
    clean_visit = CleanVisit(
        visited_on=visited_on,
        mode=mode,
        roles=roles,
        summary=summary or "",
        next_visit_on=_next_visit(data.get("next_visit_on"), visited_on, labels, errors),
    )
    # Each role's details only when the role is ticked; the rest is ignored.
    if "policy" in roles:
        clean_visit.policies = _policies(data.get("policies"), errors, labels["policies"])
        clean_visit.policy_note = _text(
            data.get("policy_note"), "policy_note", labels["policy_note"], 500, errors
        )
    if "guidance" in roles:
        _clean_guidance(clean_visit, data, labels, errors)
    if "information" in roles:
        _clean_information(clean_visit, data.get("information"), labels, errors, editing)
    if "financing" in roles and not (editing is not None and editing.role_financing):
        fin, fin_errors = financing.clean(
            data.get("financing"), prefix="financing.", default_lender=actor.org
        )
        errors.update(fin_errors)
        clean_visit.financing = fin
    if errors:
        return None, errors
    return clean_visit, {}


def _visit_date(raw, referral: Referral, labels: dict, errors: dict) -> date | None:
    """The visit's date: required, not in the future, not before the firm was referred."""
    visited_on = _date(raw, "visited_on", labels["visited_on"], errors)
    if visited_on is None:
        if "visited_on" not in errors:
            errors["visited_on"] = _("%(field)s is required.", field=labels["visited_on"])
    elif visited_on > clock.today():
        errors["visited_on"] = _("%(field)s cannot be in the future.", field=labels["visited_on"])
    elif visited_on < referral_start(referral):
        errors["visited_on"] = _(
            "%(field)s cannot be before the firm was referred (%(date)s).",
            field=labels["visited_on"],
            date=referral_start(referral).isoformat(),
        )
    return visited_on


def _next_visit(raw, visited_on: date | None, labels: dict, errors: dict) -> date | None:
    """The next visit planned (optional): not before the visit, within a year of it."""
    next_on = _date(raw, "next_visit_on", labels["next_visit_on"], errors)
    if next_on is not None and visited_on is not None:
        if next_on < visited_on:
            errors["next_visit_on"] = _(
                "%(field)s cannot be before the visit.", field=labels["next_visit_on"]
            )
        elif next_on > visited_on + timedelta(days=366):
            errors["next_visit_on"] = _(
                "%(field)s is more than a year away.", field=labels["next_visit_on"]
            )
    return next_on


def _clean_guidance(clean_visit: CleanVisit, data: dict, labels: dict, errors: dict) -> None:
    """The guidance role: a topic (required) and the advice given."""
    topic = _text(
        data.get("guidance_topic"), "guidance_topic", labels["guidance_topic"], 100, errors
    )
    if not topic and "guidance_topic" not in errors:
        errors["guidance_topic"] = _("%(field)s is required.", field=labels["guidance_topic"])
    clean_visit.guidance_topic = topic
    clean_visit.guidance_advice = _text(
        data.get("guidance_advice"),
        "guidance_advice",
        labels["guidance_advice"],
        SUMMARY_MAX,
        errors,
    )


def _clean_information(
    clean_visit: CleanVisit, info, labels: dict, errors: dict, editing: Visit | None
) -> None:
    """The information role: a note (required) and, on a new visit, an optional risk signal
    with its type (an edit never raises a new signal)."""
    if info is None:
        info = {}
    if not isinstance(info, dict):
        errors["information"] = _("%(field)s must be an object.", field=labels["information"])
        return
    note = _text(
        info.get("note"), "information.note", labels["information.note"], SUMMARY_MAX, errors
    )
    if not note and "information.note" not in errors:
        errors["information.note"] = _("%(field)s is required.", field=labels["information.note"])
    clean_visit.information_note = note
    signal = financing._bool(info.get("risk_signal"))
    if signal is None:
        errors["information.risk_signal"] = _(
            "%(field)s must be true or false.", field=labels["information.risk_signal"]
        )
    elif signal and editing is None:
        risk_type = info.get("risk_type")
        if risk_type not in RISK_TYPES:
            errors["information.risk_type"] = vocab.one_of(
                labels["information.risk_type"], vocab.labels("risk_type").values()
            )
        clean_visit.risk_type = risk_type


def _assigned_case(actor: User, referral_id) -> Referral:
    """The case the visit is for: in the caller's scope and assigned to them, else 404 (an
    advisor who is not assigned learns nothing about it)."""
    if isinstance(referral_id, bool) or not isinstance(referral_id, int | str):
        raise ValidationFailed(
            _("Please correct the marked fields."), {"referral_id": _("Choose the case.")}
        )
    rid = parse_id(referral_id)
    if rid is None:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"referral_id": _("Choose the case.")}
        )
    referral = get_scoped(Referral, actor, rid)
    if referral is None or referral.advisor_id != actor.id:
        raise NotFound(_("The page or record was not found."))
    return referral


def case_for_new_visit(actor: User, referral_id) -> Referral:
    referral = _assigned_case(actor, referral_id)
    if referral.status not in VISITABLE:
        raise Conflict(_("Visits can be logged only on an assigned case."))
    return referral


def _apply(visit: Visit, cv: CleanVisit) -> None:
    visit.visited_on = cv.visited_on
    visit.mode = cv.mode
    for role in VISIT_ROLES:
        setattr(visit, f"role_{role}", role in cv.roles)
    visit.summary = cv.summary
    visit.policies = list(cv.policies)
    visit.policy_note = cv.policy_note
    visit.guidance_topic = cv.guidance_topic
    visit.guidance_advice = cv.guidance_advice
    visit.information_note = cv.information_note
    visit.next_visit_on = cv.next_visit_on


def _refresh_case_dates(referral: Referral) -> None:
    """The case's latest visit and the follow-up it planned (for the workbench)."""
    db.session.flush()
    row = db.session.execute(
        select(Visit.visited_on, Visit.next_visit_on)
        .where(Visit.referral_id == referral.id)
        .order_by(Visit.visited_on.desc(), Visit.id.desc())
        .limit(1)
    ).first()
    referral.last_visit_on = row[0] if row else None
    referral.next_visit_on = row[1] if row else None


def log_visit(actor: User, data: dict) -> Visit:
    """Log a visit (form or API)."""
    if actor.role != "advisor":
        raise NotFound(_("The page or record was not found."))
    if not isinstance(data, dict):
        raise ValidationFailed(
            _("Please correct the marked fields."), {"visit": _("The visit must be an object.")}
        )
    referral = case_for_new_visit(actor, data.get("referral_id"))
    cv, errors = clean(data, referral, actor)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    visit = Visit(
        referral_id=referral.id,
        enterprise_id=referral.enterprise_id,
        advisor_id=actor.id,
        org_id=actor.org_id,
    )
    _apply(visit, cv)
    visit.log_delay_days = max(0, (clock.today() - cv.visited_on).days)
    db.session.add(visit)
    db.session.flush()
    if cv.financing is not None:
        financing.record_from_visit(actor, referral, visit, cv.financing)
    if cv.risk_type is not None:
        from . import risk

        risk.report(actor, visit, cv.risk_type, cv.information_note or cv.summary)
    referral_service.record_first_contact(actor, referral, cv.visited_on)
    _refresh_case_dates(referral)
    db.session.flush()
    return visit


# ------------------------------------------------------------------ reading and editing
def get_for(actor: User, visit_id: int) -> Visit:
    visit = get_scoped(Visit, actor, visit_id) if 0 < visit_id <= MAX_ID else None
    if visit is None:
        raise NotFound(_("The page or record was not found."))
    return visit


def edit_days() -> int:
    return int(current_app.config.get("VISIT_EDIT_DAYS", 7))


def edit_deadline(visit: Visit) -> datetime:
    return visit.created_at + timedelta(days=edit_days())


def author_may_edit(actor: User, visit: Visit) -> bool:
    return actor.id == visit.advisor_id and utcnow() < edit_deadline(visit)


def may_correct(actor: User, visit: Visit) -> bool:
    return actor.role == "finance_office"


def _check_version(visit: Visit, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != visit.version:
        raise Conflict(_("This visit log was changed by someone else since you opened it."))


def values_of(visit: Visit) -> dict:
    """The editable values of a visit in the contract's shape (for forms and conflict pages)."""
    return {
        "visited_on": visit.visited_on.isoformat() if visit.visited_on else "",
        "mode": visit.mode,
        "roles": visit.roles,
        "summary": visit.summary,
        "policies": [t.id for t in visit.policies],
        "policy_note": visit.policy_note or "",
        "guidance_topic": visit.guidance_topic or "",
        "guidance_advice": visit.guidance_advice or "",
        "information_note": visit.information_note or "",
        "next_visit_on": visit.next_visit_on.isoformat() if visit.next_visit_on else "",
    }


def load(visit_id: int) -> Visit:
    """A visit with its policies loaded (the page shows them)."""
    from sqlalchemy.orm import selectinload

    return db.session.execute(
        select(Visit).where(Visit.id == visit_id).options(selectinload(Visit.policies))
    ).scalar_one()


def update_visit(
    actor: User,
    visit_id: int,
    data: dict,
    *,
    expected_version: int | None,
    reason: str | None = None,
) -> Visit:
    """The author edits within the window; after it, only a finance-office correction."""
    visit = get_for(actor, visit_id)
    correcting = actor.role == "finance_office"
    if not correcting:
        _check_author_may_edit(actor, visit)
    _check_version(visit, expected_version)
    reason = _correction_reason(reason, required=correcting)
    referral = db.session.get(Referral, visit.referral_id)
    visit = load(visit.id)
    merged = values_of(visit)
    merged.update({k: v for k, v in data.items() if k in EDITABLE})
    merged["information"] = {"note": merged.pop("information_note", None), "risk_signal": False}
    advisor = db.session.get(User, visit.advisor_id)
    cv, errors = clean(merged, referral, advisor, editing=visit)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    if "financing" in cv.roles and not visit.role_financing:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "roles": _(
                    "A financing application is recorded on a new visit or on the case's "
                    "financing page, not added to an earlier visit."
                )
            },
        )
    _apply(visit, cv)
    logged_on = visit.created_at.astimezone(SHANGHAI).date()
    visit.log_delay_days = max(0, (logged_on - cv.visited_on).days)
    if correcting:
        _record_correction(actor, visit, reason)
    db.session.flush()
    if cv.visited_on < (referral.first_contact_on or cv.visited_on):
        referral.first_contact_on = cv.visited_on
    _refresh_case_dates(referral)
    db.session.flush()
    return visit


def _check_author_may_edit(actor: User, visit: Visit) -> None:
    """Only the author edits, and only within the edit window (then: ask for a correction)."""
    if actor.id != visit.advisor_id:
        raise NotFound(_("The page or record was not found."))
    if not author_may_edit(actor, visit):
        raise Forbidden(
            _(
                "Visits can be edited for %(n)s days after they are logged. "
                "Ask the finance office for a correction.",
                n=edit_days(),
            )
        )


def _correction_reason(reason: str | None, *, required: bool) -> str:
    """The reason given for a correction (required of the finance office), cleaned."""
    label = field_labels()["reason"]
    reason = firm_service.clean_text(reason or "")
    if required and len(reason) < 2:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"reason": _("%(field)s is required.", field=label)},
        )
    if len(reason) > 500:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"reason": _("%(field)s: at most %(n)s characters.", field=label, n=500)},
        )
    return reason


def _record_correction(actor: User, visit: Visit, reason: str) -> None:
    """A finance-office correction: who, when and why on the visit; its author is told."""
    visit.corrected_at = utcnow()
    visit.corrected_by_id = actor.id
    visit.correction_reason = reason
    firm = db.session.scalar(select(Enterprise.name).where(Enterprise.id == visit.enterprise_id))
    notify(
        [visit.advisor_id],
        "visit_corrected",
        referral_id=visit.referral_id,
        params={"firm": firm or "", "reason": reason[:200]},
    )


def for_referral(actor: User, referral_id: int, limit: int = 200) -> list[tuple[Visit, str]]:
    """The case's visits in the caller's scope, newest first, with the advisor's name."""
    return list(
        db.session.execute(
            scoped(
                Visit,
                actor,
                select(Visit, User.display_name).join(User, User.id == Visit.advisor_id),
            )
            .where(Visit.referral_id == referral_id)
            .order_by(Visit.visited_on.desc(), Visit.id.desc())
            .limit(limit)
        ).all()
    )


def list_for_api(actor: User, referral_id: int) -> list[Visit]:
    from sqlalchemy.orm import selectinload

    return list(
        db.session.execute(
            scoped(Visit, actor)
            .where(Visit.referral_id == referral_id)
            .options(selectinload(Visit.policies))
            .order_by(Visit.visited_on.desc(), Visit.id.desc())
        ).scalars()
    )


def financing_of_visit(visit_id: int) -> list[tuple[FinancingStep, FinancingApplication]]:
    return list(
        db.session.execute(
            select(FinancingStep, FinancingApplication)
            .join(FinancingApplication, FinancingApplication.id == FinancingStep.application_id)
            .where(FinancingStep.visit_id == visit_id)
            .order_by(FinancingStep.id)
        ).all()
    )


def has_risk(visit_id: int) -> bool:
    return (
        db.session.scalar(select(RiskReport.id).where(RiskReport.visit_id == visit_id).limit(1))
        is not None
    )
