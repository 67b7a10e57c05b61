"""Read side of the advisors' work record: the visit log and the financing pipeline (lists,
filters, keyset pages, totals, export rows) and the institution view a liaison (or the office)
reads: per-advisor figures, overdue first contacts, recent visits and the pipeline by stage.

Every query selects through ``scoped(Visit | FinancingApplication | Referral | User, actor)``:
an advisor sees the work they did and the work on the cases now assigned to them, a liaison the
work of its institution (``org_id``), the office roles everything, a bureau nothing. Pure query
helpers: callers pass plain values (a mapping of strings, a cursor); nothing here reads the
HTTP request.

A list page runs a fixed number of queries whatever its size: the page's rows (one select of
plain columns with their joins) and the small lookups of the filter form (the advisors and, for
the office roles, the institutions). Keyset pagination newest first: visits on
(visited_on, id) — served by ``ix_visit_advisor_visited`` / ``ix_visit_org_visited`` /
``ix_visit_visited`` — and applications on (applied_on, id). No COUNT over the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import Integer, and_, bindparam, case, func, or_, select
from sqlalchemy.orm import aliased

from models import (
    FINANCING_STAGES,
    OPEN_STATUSES,
    VISIT_MODES,
    VISIT_ROLES,
    Enterprise,
    FinancingApplication,
    Organisation,
    PolicyTool,
    Referral,
    User,
    Visit,
    VisitPolicy,
    db,
)

from ..params import MAX_ID, parse_day
from ..params import parse_limit as _parse_limit
from ..permissions import GLOBAL_ROLES, scoped
from . import labels as work_labels
from . import referrals as referral_service
from .firms import clean_text

PAGE_SIZE = 50
MAX_LIMIT = 200
EXPORT_CAP = 50_000
MAX_QUERY = 100
SUMMARY_CHARS = 120
INSTITUTION_TYPES = ("bank", "insurer")
IN_PROGRESS = ("applied", "approved")
OVERDUE_LIST_LIMIT = 50
RECENT_VISITS = 10
_CURSOR_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d{1,10})$", re.ASCII)
_FLAG_VALUES = {"1": True, "0": False}
FA = FinancingApplication


# ------------------------------------------------------------------ lookups (filter form)
@dataclass(frozen=True)
class AdvisorChoice:
    id: int
    username: str
    display_name: str
    institution: str | None
    active: bool


@dataclass(frozen=True)
class InstitutionChoice:
    id: int
    code: str
    name: str
    type: str
    active: bool


def advisor_choices(actor: User) -> list[AdvisorChoice]:
    """The advisors the actor may filter by: a liaison its institution's, the office roles all;
    an advisor none (their list is their own work). One query."""
    if actor.role == "advisor" or actor.role not in (*GLOBAL_ROLES, "liaison"):
        return []
    inst = aliased(Organisation)
    stmt = scoped(
        User,
        actor,
        select(
            User.id,
            User.username,
            User.display_name,
            func.coalesce(inst.short_name, inst.name).label("institution"),
            User.active,
        )
        .select_from(User)
        .outerjoin(inst, inst.id == User.org_id),
    ).where(User.role == "advisor")
    stmt = stmt.order_by(User.active.desc(), User.display_name, User.username)
    return [AdvisorChoice(*row) for row in db.session.execute(stmt).all()]


def institution_choices(actor: User) -> list[InstitutionChoice]:
    """Banks and insurers, for the office roles' institution filter (others: none)."""
    if actor.role not in GLOBAL_ROLES:
        return []
    stmt = (
        select(
            Organisation.id,
            Organisation.code,
            func.coalesce(Organisation.short_name, Organisation.name),
            Organisation.type,
            Organisation.active,
        )
        .where(Organisation.type.in_(INSTITUTION_TYPES))
        .order_by(Organisation.active.desc(), Organisation.name, Organisation.id)
    )
    return [InstitutionChoice(*row) for row in db.session.execute(stmt).all()]


# ------------------------------------------------------------------ filters
def visit_filter_labels() -> dict[str, str]:
    return {
        "date_from": _("Visited from"),
        "date_to": _("Visited to"),
        "advisor": _("Advisor"),
        "institution": _("Institution"),
        "role": _("Role"),
        "mode": _("Mode"),
        "q": _("Firm name contains"),
    }


def pipeline_filter_labels() -> dict[str, str]:
    return {
        "stage": _("Stage"),
        "advisor": _("Advisor"),
        "institution": _("Institution"),
        "first_loan": _("First-time borrower (首贷户)"),
        "unsecured": _("Unsecured loan (信用贷款)"),
        "date_from": _("Applied from"),
        "date_to": _("Applied to"),
        "q": _("Firm name contains"),
    }


@dataclass(frozen=True)
class VisitFilters:
    date_from: date | None = None
    date_to: date | None = None
    advisor: str = ""
    institution: str = ""
    role: str = ""
    mode: str = ""
    q: str = ""
    # Resolved from ``advisor`` / ``institution`` (not query-string values).
    advisor_id: int | None = None
    org_id: int | None = None

    KEYS = ("date_from", "date_to", "advisor", "institution", "role", "mode", "q")

    def as_args(self) -> dict[str, str]:
        return _as_args(self, self.KEYS)

    @property
    def narrowed(self) -> bool:
        return any(getattr(self, k) not in (None, "") for k in self.KEYS)


@dataclass(frozen=True)
class PipelineFilters:
    stage: str = ""
    advisor: str = ""
    institution: str = ""
    first_loan: bool | None = None
    unsecured: bool | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    advisor_id: int | None = None
    org_id: int | None = None

    KEYS = (
        "stage",
        "advisor",
        "institution",
        "first_loan",
        "unsecured",
        "date_from",
        "date_to",
        "q",
    )

    def as_args(self) -> dict[str, str]:
        return _as_args(self, self.KEYS)

    @property
    def narrowed(self) -> bool:
        return any(getattr(self, k) not in (None, "") for k in self.KEYS)


def _as_args(filters, keys) -> dict[str, str]:
    """The filters as query-string values, for links, the pager and the export."""
    args = {}
    for key in keys:
        value = getattr(filters, key)
        if value in (None, ""):
            continue
        if isinstance(value, bool):
            args[key] = "1" if value else "0"
        elif isinstance(value, date):
            args[key] = value.isoformat()
        else:
            args[key] = str(value)
    return args


def _text(raw: Mapping, key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        return ""
    return clean_text(value.replace("\x00", ""))


def _day(raw: Mapping, key: str, label: str) -> tuple[date | None, str | None]:
    return parse_day(_text(raw, key), label)


def _common(
    raw: Mapping,
    actor: User,
    labels: dict[str, str],
    advisors: list[AdvisorChoice],
    institutions: list[InstitutionChoice],
    values: dict,
    errors: dict[str, str],
) -> None:
    """Advisor, institution, the date range and the firm name: the filters both lists share."""
    if actor.role != "advisor":  # an advisor's list is their own work: no advisor filter
        typed = _text(raw, "advisor")
        if typed:
            found = next((a for a in advisors if a.username.lower() == typed.lower()), None)
            if found is None:
                errors["advisor"] = _(
                    "%(field)s: choose a value from the list.", field=labels["advisor"]
                )
            else:
                values["advisor"], values["advisor_id"] = found.username, found.id
    if actor.role in GLOBAL_ROLES:  # a liaison's list is its institution already
        typed = _text(raw, "institution")
        if typed:
            found = next((i for i in institutions if i.code.lower() == typed.lower()), None)
            if found is None:
                errors["institution"] = _(
                    "%(field)s: choose a value from the list.", field=labels["institution"]
                )
            else:
                values["institution"], values["org_id"] = found.code, found.id
    for key in ("date_from", "date_to"):
        day, problem = _day(raw, key, labels[key])
        if problem:
            errors[key] = problem
        else:
            values[key] = day
    if (
        values.get("date_from")
        and values.get("date_to")
        and values["date_to"] < values["date_from"]
    ):
        errors["date_to"] = _("%(field)s is before the start date.", field=labels["date_to"])
        values["date_to"] = None
    q = _text(raw, "q")
    if len(q) > MAX_QUERY:
        errors["q"] = _(
            "%(field)s must be at most %(n)s characters.", field=labels["q"], n=MAX_QUERY
        )
    else:
        values["q"] = q


def _choice(raw: Mapping, key: str, allowed, label: str, values: dict, errors: dict) -> None:
    typed = _text(raw, key)
    if typed and typed not in allowed:
        errors[key] = _("%(field)s: choose a value from the list.", field=label)
    else:
        values[key] = typed


def parse_visit_filters(
    raw: Mapping,
    actor: User,
    advisors: list[AdvisorChoice],
    institutions: list[InstitutionChoice],
) -> tuple[VisitFilters, dict[str, str]]:
    """Visit-log filters from a mapping of strings. Returns (filters, errors by field); a field
    in error is left out of the filters. ``advisors``/``institutions``: the actor's choices."""
    labels = visit_filter_labels()
    values: dict = {}
    errors: dict[str, str] = {}
    _common(raw, actor, labels, advisors, institutions, values, errors)
    _choice(raw, "role", VISIT_ROLES, labels["role"], values, errors)
    _choice(raw, "mode", VISIT_MODES, labels["mode"], values, errors)
    return VisitFilters(**values), errors


def parse_pipeline_filters(
    raw: Mapping,
    actor: User,
    advisors: list[AdvisorChoice],
    institutions: list[InstitutionChoice],
) -> tuple[PipelineFilters, dict[str, str]]:
    """Pipeline filters from a mapping of strings, like :func:`parse_visit_filters`."""
    labels = pipeline_filter_labels()
    values: dict = {}
    errors: dict[str, str] = {}
    _common(raw, actor, labels, advisors, institutions, values, errors)
    _choice(raw, "stage", FINANCING_STAGES, labels["stage"], values, errors)
    for key in ("first_loan", "unsecured"):
        typed = _text(raw, key)
        if not typed:
            continue
        if typed not in _FLAG_VALUES:
            errors[key] = _("%(field)s: choose a value from the list.", field=labels[key])
        else:
            values[key] = _FLAG_VALUES[typed]
    return PipelineFilters(**values), errors


def echo_values(raw: Mapping, keys) -> dict[str, str]:
    """The filter values as typed, for showing them back in the form."""
    out = {}
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str):
            out[key] = "".join(c for c in value if c.isprintable())[:200]
    return out


def parse_limit(raw) -> int:
    """Page size: 50 by default, at most 200; anything unusable means the default."""
    return _parse_limit(raw, PAGE_SIZE, MAX_LIMIT)


# ------------------------------------------------------------------ cursor
@dataclass(frozen=True)
class Cursor:
    day: date
    id: int


def encode_cursor(day: date, row_id: int) -> str:
    return f"{day.isoformat()}_{row_id}"


def decode_cursor(raw) -> Cursor | None:
    """Where the next page starts; anything unusable means the first page."""
    if not isinstance(raw, str) or len(raw) > 32:
        return None
    match = _CURSOR_RE.match(raw)
    if not match:
        return None
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:
        return None
    row_id = int(match.group(2))
    if not 0 < row_id <= MAX_ID:
        return None
    return Cursor(day, row_id)


def _after(stmt, day_col, id_col, cursor: Cursor | None):
    """(day, id) < (cursor.day, cursor.id), written so the index range on the day is usable."""
    if cursor is None:
        return stmt
    return stmt.where(
        day_col <= cursor.day,
        or_(day_col < cursor.day, id_col < bindparam("c_id", cursor.id, type_=Integer)),
    )


def _firm_ids(q: str):
    """Firms whose name contains ``q`` (LIKE wildcards in ``q`` taken literally)."""
    return select(Enterprise.id).where(Enterprise.name.contains(q, autoescape=True))


def _case_visible(actor: User, case_advisor_id, case_advisor_org_id) -> bool:
    """Whether the actor may open the case page (the referral scope, from the row's columns)."""
    if actor.role in GLOBAL_ROLES:
        return True
    if actor.role == "advisor":
        return case_advisor_id == actor.id
    if actor.role == "liaison":
        return case_advisor_org_id is not None and case_advisor_org_id == actor.org_id
    return False


# ------------------------------------------------------------------ the visit log
@dataclass(slots=True)
class VisitRow:
    id: int
    visited_on: date
    mode: str
    roles: list[str]
    summary: str
    referral_id: int
    firm_name: str
    advisor_name: str | None
    advisor_username: str | None
    institution: str | None
    corrected: bool
    case_visible: bool


def _visit_filtered(actor: User, f: VisitFilters, stmt):
    stmt = scoped(Visit, actor, stmt)
    if f.advisor_id is not None:
        stmt = stmt.where(Visit.advisor_id == f.advisor_id)
    if f.org_id is not None:
        stmt = stmt.where(Visit.org_id == f.org_id)
    if f.date_from:
        stmt = stmt.where(Visit.visited_on >= f.date_from)
    if f.date_to:
        stmt = stmt.where(Visit.visited_on <= f.date_to)
    if f.role:
        stmt = stmt.where(getattr(Visit, f"role_{f.role}").is_(True))
    if f.mode:
        stmt = stmt.where(Visit.mode == f.mode)
    if f.q:
        stmt = stmt.where(Visit.enterprise_id.in_(_firm_ids(f.q)))
    return stmt


def _visit_select(actor: User, f: VisitFilters, *, full: bool = False):
    """The actor's visits matching ``f`` with the names around them (firm, advisor,
    institution, the case's current advisor); the summary cut to what a list shows unless
    ``full``."""
    advisor = aliased(User, name="visit_advisor")
    inst = aliased(Organisation, name="visit_institution")
    case_advisor = aliased(User, name="case_advisor")
    # The case under its own name: the advisor scope correlates a subquery on ``referral``.
    the_case = aliased(Referral, name="the_case")
    summary = Visit.summary if full else func.substr(Visit.summary, 1, SUMMARY_CHARS + 1)
    columns = [
        Visit.id,
        Visit.visited_on,
        Visit.mode,
        Visit.role_policy,
        Visit.role_guidance,
        Visit.role_financing,
        Visit.role_information,
        summary.label("summary"),
        Visit.referral_id,
        Visit.corrected_at,
        Enterprise.name.label("firm_name"),
        advisor.display_name.label("advisor_name"),
        advisor.username.label("advisor_username"),
        func.coalesce(inst.short_name, inst.name).label("institution"),
        the_case.advisor_id.label("case_advisor_id"),
        case_advisor.org_id.label("case_advisor_org_id"),
    ]
    if full:
        columns += [
            Enterprise.credit_code,
            Visit.guidance_topic,
            Visit.next_visit_on,
            Visit.created_at,
        ]
    stmt = (
        select(*columns)
        .select_from(Visit)
        .join(Enterprise, Enterprise.id == Visit.enterprise_id)
        .join(the_case, the_case.id == Visit.referral_id)
        .outerjoin(advisor, advisor.id == Visit.advisor_id)
        .outerjoin(inst, inst.id == Visit.org_id)
        .outerjoin(case_advisor, case_advisor.id == the_case.advisor_id)
    )
    return _visit_filtered(actor, f, stmt)


def _newest_visits(stmt):
    return stmt.order_by(Visit.visited_on.desc(), Visit.id.desc())


def _visit_row(actor: User, d: Mapping) -> VisitRow:
    summary = d["summary"] or ""
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS].rstrip() + "…"
    return VisitRow(
        id=d["id"],
        visited_on=d["visited_on"],
        mode=d["mode"],
        roles=[r for r in VISIT_ROLES if d[f"role_{r}"]],
        summary=summary,
        referral_id=d["referral_id"],
        firm_name=d["firm_name"],
        advisor_name=d["advisor_name"],
        advisor_username=d["advisor_username"],
        institution=d["institution"],
        corrected=d["corrected_at"] is not None,
        case_visible=_case_visible(actor, d["case_advisor_id"], d["case_advisor_org_id"]),
    )


@dataclass
class Page:
    rows: list
    next_cursor: str | None


def visit_page(
    actor: User, f: VisitFilters, *, cursor: Cursor | None = None, limit: int = PAGE_SIZE
) -> Page:
    """One page of the actor's visit log, newest first. One query whatever ``limit`` is."""
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = _newest_visits(_after(_visit_select(actor, f), Visit.visited_on, Visit.id, cursor))
    rows = [_visit_row(actor, d) for d in db.session.execute(stmt.limit(limit + 1)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].visited_on, rows[-1].id) if more else None
    return Page(rows, next_cursor)


def recent_visits(actor: User, org_id: int, limit: int = RECENT_VISITS) -> list[VisitRow]:
    """The institution's latest visits (in the actor's scope)."""
    stmt = _newest_visits(_visit_select(actor, VisitFilters(org_id=org_id))).limit(limit)
    return [_visit_row(actor, d) for d in db.session.execute(stmt).mappings()]


def visit_export_headers() -> list[str]:
    return [
        _("Visit"),
        _("Visited on"),
        _("Firm name"),
        _("Credit code"),
        _("Case"),
        _("Advisor"),
        _("Institution"),
        _("Mode"),
        _("Roles"),
        _("Summary"),
        _("Policy tools explained"),
        _("Guidance topic"),
        _("Next visit planned"),
        _("Corrected by the finance office"),
        _("Logged at"),
    ]


@dataclass
class Export:
    rows: list[list]
    truncated: bool


def visit_export_rows(actor: User, f: VisitFilters, cap: int | None = None) -> Export:
    """Every visit matching ``f`` (up to ``cap``), newest first, as spreadsheet rows. Two
    queries: the visits, and the policy tools explained on them."""
    cap = EXPORT_CAP if cap is None else cap
    stmt = _newest_visits(_visit_select(actor, f, full=True)).limit(cap + 1)
    found = list(db.session.execute(stmt).mappings())
    truncated = len(found) > cap
    found = found[:cap]
    policies: dict[int, list[str]] = {}
    if found:
        ids = _visit_filtered(actor, f, select(Visit.id).select_from(Visit))
        for visit_id, name in db.session.execute(
            select(VisitPolicy.visit_id, PolicyTool.name)
            .join(PolicyTool, PolicyTool.id == VisitPolicy.policy_tool_id)
            .where(VisitPolicy.visit_id.in_(ids))
            .order_by(VisitPolicy.visit_id, PolicyTool.id)
        ).all():
            policies.setdefault(visit_id, []).append(name)
    modes = work_labels.visit_mode_labels()
    roles = work_labels.visit_role_labels()
    yes = _("Yes")
    out = []
    for d in found:
        out.append(
            [
                d["id"],
                d["visited_on"],
                d["firm_name"],
                d["credit_code"],
                d["referral_id"],
                d["advisor_name"],
                d["institution"],
                modes.get(d["mode"], d["mode"]),
                "、".join(roles[r] for r in VISIT_ROLES if d[f"role_{r}"]),
                d["summary"],
                "、".join(policies.get(d["id"], [])) or None,
                d["guidance_topic"],
                d["next_visit_on"],
                yes if d["corrected_at"] is not None else None,
                d["created_at"],
            ]
        )
    return Export(out, truncated)


# ------------------------------------------------------------------ the financing pipeline
@dataclass(slots=True)
class ApplicationRow:
    id: int
    referral_id: int
    firm_name: str
    advisor_name: str | None
    advisor_username: str | None
    institution: str | None
    lender: str | None
    product: str | None
    amount_wan: Decimal
    stage: str
    applied_on: date
    approved_on: date | None
    approved_amount_wan: Decimal | None
    disbursed_on: date | None
    disbursed_amount_wan: Decimal | None
    declined_on: date | None
    first_loan: bool
    unsecured: bool
    case_visible: bool


def _pipeline_filtered(actor: User, f: PipelineFilters, stmt):
    stmt = scoped(FA, actor, stmt)
    if f.stage:
        stmt = stmt.where(FA.stage == f.stage)
    if f.advisor_id is not None:
        stmt = stmt.where(FA.advisor_id == f.advisor_id)
    if f.org_id is not None:
        stmt = stmt.where(FA.org_id == f.org_id)
    if f.first_loan is not None:
        stmt = stmt.where(FA.first_loan.is_(f.first_loan))
    if f.unsecured is not None:
        stmt = stmt.where(FA.unsecured.is_(f.unsecured))
    if f.date_from:
        stmt = stmt.where(FA.applied_on >= f.date_from)
    if f.date_to:
        stmt = stmt.where(FA.applied_on <= f.date_to)
    if f.q:
        stmt = stmt.where(FA.enterprise_id.in_(_firm_ids(f.q)))
    return stmt


def _pipeline_select(actor: User, f: PipelineFilters, *, full: bool = False):
    advisor = aliased(User, name="app_advisor")
    inst = aliased(Organisation, name="app_institution")
    lender = aliased(Organisation, name="app_lender")
    case_advisor = aliased(User, name="case_advisor")
    the_case = aliased(Referral, name="the_case")
    columns = [
        FA.id,
        FA.referral_id,
        Enterprise.name.label("firm_name"),
        advisor.display_name.label("advisor_name"),
        advisor.username.label("advisor_username"),
        func.coalesce(inst.short_name, inst.name).label("institution"),
        func.coalesce(lender.short_name, lender.name).label("lender"),
        FA.product,
        FA.amount_wan,
        FA.stage,
        FA.applied_on,
        FA.approved_on,
        FA.approved_amount_wan,
        FA.disbursed_on,
        FA.disbursed_amount_wan,
        FA.declined_on,
        FA.first_loan,
        FA.unsecured,
        the_case.advisor_id.label("case_advisor_id"),
        case_advisor.org_id.label("case_advisor_org_id"),
    ]
    if full:
        columns += [Enterprise.credit_code, FA.purpose, FA.term_months, FA.declined_reason]
    stmt = (
        select(*columns)
        .select_from(FA)
        .join(Enterprise, Enterprise.id == FA.enterprise_id)
        .join(the_case, the_case.id == FA.referral_id)
        .outerjoin(advisor, advisor.id == FA.advisor_id)
        .outerjoin(inst, inst.id == FA.org_id)
        .outerjoin(lender, lender.id == FA.lender_id)
        .outerjoin(case_advisor, case_advisor.id == the_case.advisor_id)
    )
    return _pipeline_filtered(actor, f, stmt)


def _newest_applications(stmt):
    return stmt.order_by(FA.applied_on.desc(), FA.id.desc())


def _application_row(actor: User, d: Mapping) -> ApplicationRow:
    return ApplicationRow(
        id=d["id"],
        referral_id=d["referral_id"],
        firm_name=d["firm_name"],
        advisor_name=d["advisor_name"],
        advisor_username=d["advisor_username"],
        institution=d["institution"],
        lender=d["lender"],
        product=d["product"],
        amount_wan=d["amount_wan"],
        stage=d["stage"],
        applied_on=d["applied_on"],
        approved_on=d["approved_on"],
        approved_amount_wan=d["approved_amount_wan"],
        disbursed_on=d["disbursed_on"],
        disbursed_amount_wan=d["disbursed_amount_wan"],
        declined_on=d["declined_on"],
        first_loan=bool(d["first_loan"]),
        unsecured=bool(d["unsecured"]),
        case_visible=_case_visible(actor, d["case_advisor_id"], d["case_advisor_org_id"]),
    )


def pipeline_page(
    actor: User, f: PipelineFilters, *, cursor: Cursor | None = None, limit: int = PAGE_SIZE
) -> Page:
    """One page of the actor's financing applications, newest application first. One query."""
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = _newest_applications(_after(_pipeline_select(actor, f), FA.applied_on, FA.id, cursor))
    rows = [
        _application_row(actor, d) for d in db.session.execute(stmt.limit(limit + 1)).mappings()
    ]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].applied_on, rows[-1].id) if more else None
    return Page(rows, next_cursor)


@dataclass
class StageTotal:
    stage: str
    count: int = 0
    amount_wan: Decimal = Decimal("0.00")
    approved_wan: Decimal = Decimal("0.00")
    disbursed_wan: Decimal = Decimal("0.00")


@dataclass
class Totals:
    by_stage: list[StageTotal]
    all: StageTotal


def pipeline_totals(actor: User, f: PipelineFilters) -> Totals:
    """Count and amounts by stage over every application matching ``f``. One grouped query."""
    stmt = _pipeline_filtered(
        actor,
        f,
        select(
            FA.stage,
            func.count(),
            func.sum(FA.amount_wan),
            func.sum(FA.approved_amount_wan),
            func.sum(FA.disbursed_amount_wan),
        ).select_from(FA),
    ).group_by(FA.stage)
    found = {s: StageTotal(s) for s in FINANCING_STAGES}
    grand = StageTotal("")
    for stage, n, amount, approved, disbursed in db.session.execute(stmt).all():
        t = found.setdefault(stage, StageTotal(stage))
        t.count = n
        t.amount_wan = amount if amount is not None else Decimal("0.00")
        t.approved_wan = approved if approved is not None else Decimal("0.00")
        t.disbursed_wan = disbursed if disbursed is not None else Decimal("0.00")
        grand.count += t.count
        grand.amount_wan += t.amount_wan
        grand.approved_wan += t.approved_wan
        grand.disbursed_wan += t.disbursed_wan
    return Totals([found[s] for s in found], grand)


def pipeline_export_headers() -> list[str]:
    return [
        _("Application"),
        _("Firm name"),
        _("Credit code"),
        _("Case"),
        _("Advisor"),
        _("Institution"),
        _("Lender"),
        _("Product"),
        _("Purpose"),
        _("Term (months)"),
        _("Amount applied (万元)"),
        _("Stage"),
        _("Applied on"),
        _("Approved on"),
        _("Amount approved (万元)"),
        _("Disbursed on"),
        _("Amount disbursed (万元)"),
        _("Declined on"),
        _("Reason declined"),
        _("First-time borrower (首贷户)"),
        _("Unsecured loan (信用贷款)"),
    ]


def pipeline_export_rows(actor: User, f: PipelineFilters, cap: int | None = None) -> Export:
    """Every application matching ``f`` (up to ``cap``), newest first. One query."""
    cap = EXPORT_CAP if cap is None else cap
    stmt = _newest_applications(_pipeline_select(actor, f, full=True)).limit(cap + 1)
    found = list(db.session.execute(stmt).mappings())
    truncated = len(found) > cap
    stages = work_labels.stage_labels()
    yes, no = _("Yes"), _("No")
    out = []
    for d in found[:cap]:
        out.append(
            [
                d["id"],
                d["firm_name"],
                d["credit_code"],
                d["referral_id"],
                d["advisor_name"],
                d["institution"],
                d["lender"],
                d["product"],
                d["purpose"],
                d["term_months"],
                d["amount_wan"],
                stages.get(d["stage"], d["stage"]),
                d["applied_on"],
                d["approved_on"],
                d["approved_amount_wan"],
                d["disbursed_on"],
                d["disbursed_amount_wan"],
                d["declined_on"],
                d["declined_reason"],
                yes if d["first_loan"] else no,
                yes if d["unsecured"] else no,
            ]
        )
    return Export(out, truncated)


# ------------------------------------------------------------------ export notes
def iter_filter_notes(
    filters: VisitFilters | PipelineFilters,
    advisors: list[AdvisorChoice],
    institutions: list[InstitutionChoice],
) -> Iterator[tuple[str, str]]:
    """(label, value) pairs describing the filters of an export, for its "Filters" sheet."""
    pipeline = isinstance(filters, PipelineFilters)
    labels = pipeline_filter_labels() if pipeline else visit_filter_labels()
    advisor_names = {a.username: a.display_name for a in advisors}
    institution_names = {i.code: i.name for i in institutions}
    roles = work_labels.visit_role_labels()
    modes = work_labels.visit_mode_labels()
    stages = work_labels.stage_labels()
    args = filters.as_args()
    if not args:
        yield _("Filters"), _("None (everything in your scope)")
    for key, value in args.items():
        if key == "advisor":
            shown = f"{advisor_names.get(value, value)} ({value})"
        elif key == "institution":
            shown = f"{institution_names.get(value, value)} ({value})"
        elif key == "role":
            shown = roles.get(value, value)
        elif key == "mode":
            shown = modes.get(value, value)
        elif key == "stage":
            shown = stages.get(value, value)
        elif key in ("first_loan", "unsecured"):
            shown = _("Yes") if value == "1" else _("No")
        else:
            shown = value
        yield labels[key], shown


# ------------------------------------------------------------------ the institution view
def month_bounds(today: date) -> tuple[date, date]:
    """The first day of ``today``'s month and of the next (Asia/Shanghai calendar days)."""
    start = today.replace(day=1)
    end = date(start.year + 1, 1, 1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


@dataclass
class Figures:
    """One advisor's (or an institution's) work in numbers."""

    open_cases: int = 0
    overdue: int = 0
    visits_month: int = 0
    in_progress: int = 0
    disbursed_month_n: int = 0
    disbursed_month_wan: Decimal = Decimal("0.00")
    last_visit: date | None = None

    def add(self, other: Figures) -> None:
        self.open_cases += other.open_cases
        self.overdue += other.overdue
        self.visits_month += other.visits_month
        self.in_progress += other.in_progress
        self.disbursed_month_n += other.disbursed_month_n
        self.disbursed_month_wan += other.disbursed_month_wan
        if other.last_visit and (self.last_visit is None or other.last_visit > self.last_visit):
            self.last_visit = other.last_visit


def _overdue(today: date):
    """A first contact overdue: assigned, not contacted, due before today."""
    return and_(
        Referral.status == "assigned",
        Referral.first_contact_on.is_(None),
        Referral.first_contact_due < today,
    )


def _figures(actor: User, today: date, by_org: bool, org_id: int | None = None) -> dict:
    """Figures keyed by advisor id (or by institution id with ``by_org``), in the actor's
    scope and, with ``org_id``, for that institution only. Three grouped queries: cases (by
    the advisor's institution), visits and applications (by the institution they were done
    for, ``org_id`` on the row)."""
    start, end = month_bounds(today)
    out: dict[int | None, Figures] = {}

    def get(key) -> Figures:
        return out.setdefault(key, Figures())

    case_advisor = aliased(User, name="fig_advisor")
    key = case_advisor.org_id if by_org else Referral.advisor_id
    stmt = (
        scoped(
            Referral,
            actor,
            select(key, func.count(), func.count().filter(_overdue(today))).select_from(Referral),
        )
        .join(case_advisor, case_advisor.id == Referral.advisor_id)
        .where(Referral.status.in_(OPEN_STATUSES))
        .group_by(key)
    )
    if org_id is not None:
        stmt = stmt.where(case_advisor.org_id == org_id)
    for k, n, overdue in db.session.execute(stmt).all():
        f = get(k)
        f.open_cases, f.overdue = n, overdue or 0

    key = Visit.org_id if by_org else Visit.advisor_id
    stmt = scoped(
        Visit,
        actor,
        select(
            key,
            func.count().filter(Visit.visited_on >= start, Visit.visited_on < end),
            func.max(Visit.visited_on),
        ).select_from(Visit),
    ).group_by(key)
    stmt = stmt.where(Visit.org_id == org_id) if org_id is not None else stmt
    for k, n, last in db.session.execute(stmt).all():
        f = get(k)
        f.visits_month, f.last_visit = n or 0, last

    in_month = and_(FA.stage == "disbursed", FA.disbursed_on >= start, FA.disbursed_on < end)
    key = FA.org_id if by_org else FA.advisor_id
    stmt = scoped(
        FA,
        actor,
        select(
            key,
            func.count().filter(FA.stage.in_(IN_PROGRESS)),
            func.count().filter(in_month),
            func.sum(case((in_month, FA.disbursed_amount_wan))),
        ).select_from(FA),
    ).group_by(key)
    stmt = stmt.where(FA.org_id == org_id) if org_id is not None else stmt
    for k, n, n_disbursed, amount in db.session.execute(stmt).all():
        f = get(k)
        f.in_progress = n or 0
        f.disbursed_month_n = n_disbursed or 0
        f.disbursed_month_wan = amount if amount is not None else Decimal("0.00")
    return out


def find_institution(actor: User, code: str | None) -> InstitutionChoice | None:
    """The institution whose view the actor asked for, or None (the caller answers 404).
    A liaison: its own institution only (no code, or its own code). The office roles: any bank
    or insurer by code. Everyone else: none."""
    code = (code or "").strip()
    if len(code) > 40 or not code.isprintable():
        return None
    stmt = select(
        Organisation.id,
        Organisation.code,
        func.coalesce(Organisation.short_name, Organisation.name),
        Organisation.type,
        Organisation.active,
    ).where(Organisation.type.in_(INSTITUTION_TYPES))
    if actor.role == "liaison":
        if actor.org_id is None:
            return None
        stmt = stmt.where(Organisation.id == actor.org_id)
        if code:
            stmt = stmt.where(func.lower(Organisation.code) == code.lower())
    elif actor.role in GLOBAL_ROLES and code:
        stmt = stmt.where(func.lower(Organisation.code) == code.lower())
    else:
        return None
    row = db.session.execute(stmt).first()
    return InstitutionChoice(*row) if row else None


@dataclass
class AdvisorLine:
    id: int | None
    username: str | None
    display_name: str | None
    active: bool
    figures: Figures


@dataclass
class OverdueCase:
    referral_id: int
    firm_name: str
    advisor_name: str
    advisor_username: str
    assigned_at: object
    first_contact_due: date


@dataclass
class InstitutionView:
    org: InstitutionChoice
    today: date
    month_start: date
    advisors: list[AdvisorLine]
    others: AdvisorLine | None  # work done for it by advisors who have since left
    totals: Figures
    overdue: list[OverdueCase]
    recent: list[VisitRow]
    pipeline: Totals


def institution_totals(actor: User, org_id: int, today: date | None = None) -> Figures:
    """An institution's figures, summed (the liaison's home page). Three grouped queries."""
    today = today or referral_service.today()
    total = Figures()
    for figures in _figures(actor, today, by_org=False, org_id=org_id).values():
        total.add(figures)
    return total


def institution_view(
    actor: User, org: InstitutionChoice, today: date | None = None
) -> InstitutionView:
    """Everything the institution page shows. A fixed number of queries: the advisors, three
    grouped figure queries, the overdue cases, the latest visits and the pipeline by stage."""
    today = today or referral_service.today()
    advisors = db.session.execute(
        scoped(User, actor, select(User.id, User.username, User.display_name, User.active))
        .where(User.role == "advisor", User.org_id == org.id)
        .order_by(User.active.desc(), User.display_name, User.username)
    ).all()
    figures = _figures(actor, today, by_org=False, org_id=org.id)
    lines = [AdvisorLine(*a, figures.pop(a.id, Figures())) for a in advisors]
    others = None
    if figures:  # visits or applications by advisors no longer with the institution
        rest = Figures()
        for f in figures.values():
            rest.add(f)
        others = AdvisorLine(None, None, None, False, rest)
    totals = Figures()
    for line in [*lines, *([others] if others else [])]:
        totals.add(line.figures)

    case_advisor = aliased(User, name="overdue_advisor")
    overdue = [
        OverdueCase(*row)
        for row in db.session.execute(
            scoped(
                Referral,
                actor,
                select(
                    Referral.id,
                    Enterprise.name,
                    case_advisor.display_name,
                    case_advisor.username,
                    Referral.assigned_at,
                    Referral.first_contact_due,
                )
                .select_from(Referral)
                .join(Enterprise, Enterprise.id == Referral.enterprise_id)
                .join(case_advisor, case_advisor.id == Referral.advisor_id),
            )
            .where(_overdue(today), case_advisor.org_id == org.id)
            .order_by(Referral.first_contact_due, Referral.id)
            .limit(OVERDUE_LIST_LIMIT)
        ).all()
    ]
    return InstitutionView(
        org=org,
        today=today,
        month_start=month_bounds(today)[0],
        advisors=lines,
        others=others,
        totals=totals,
        overdue=overdue,
        recent=recent_visits(actor, org.id),
        pipeline=pipeline_totals(actor, PipelineFilters(org_id=org.id)),
    )


@dataclass
class InstitutionLine:
    org: InstitutionChoice
    advisors: int
    figures: Figures


def institutions_overview(actor: User, today: date | None = None) -> list[InstitutionLine]:
    """Every bank and insurer with its figures (the office's entry to the institution pages).
    Five queries: the institutions, the advisors per institution, three grouped figures."""
    today = today or referral_service.today()
    orgs = institution_choices(actor)
    counts = dict(
        db.session.execute(
            scoped(User, actor, select(User.org_id, func.count()))
            .where(User.role == "advisor", User.active.is_(True))
            .group_by(User.org_id)
        ).all()
    )
    figures = _figures(actor, today, by_org=True)
    return [InstitutionLine(o, counts.get(o.id, 0), figures.get(o.id, Figures())) for o in orgs]
