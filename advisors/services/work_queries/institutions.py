"""The institution view a liaison (or the office) reads: per-advisor figures, overdue first
contacts, recent visits and the pipeline by stage; and the office's overview of them all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import aliased

from models import (
    OPEN_STATUSES,
    Enterprise,
    Organisation,
    Referral,
    User,
    Visit,
    db,
)

from ... import clock
from ...permissions import GLOBAL_ROLES, scoped
from .choices import INSTITUTION_TYPES, InstitutionChoice, institution_choices
from .filters import PipelineFilters
from .pipeline_list import Totals, pipeline_totals
from .shared import FA
from .visit_list import VisitRow, recent_visits

IN_PROGRESS = ("applied", "approved")
OVERDUE_LIST_LIMIT = 50


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
    out: dict[int | None, Figures] = {}
    month = month_bounds(today)
    for k, n, overdue in _case_counts(actor, today, by_org, org_id):
        f = out.setdefault(k, Figures())
        f.open_cases, f.overdue = n, overdue or 0
    for k, n, last in _visit_counts(actor, month, by_org, org_id):
        f = out.setdefault(k, Figures())
        f.visits_month, f.last_visit = n or 0, last
    for k, n, n_disbursed, amount in _application_counts(actor, month, by_org, org_id):
        f = out.setdefault(k, Figures())
        f.in_progress = n or 0
        f.disbursed_month_n = n_disbursed or 0
        f.disbursed_month_wan = amount if amount is not None else Decimal("0.00")
    return out


def _case_counts(actor: User, today: date, by_org: bool, org_id: int | None) -> list:
    """(key, open cases, overdue first contacts), by the case advisor (or their institution)."""
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
    return db.session.execute(stmt).all()


def _visit_counts(actor: User, month: tuple[date, date], by_org: bool, org_id: int | None):
    """(key, visits this month, the last visit), by the advisor (or the institution served)."""
    start, end = month
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
    return db.session.execute(stmt).all()


def _application_counts(actor: User, month: tuple[date, date], by_org: bool, org_id: int | None):
    """(key, applications in progress, disbursed this month: count and amount)."""
    start, end = month
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
    return db.session.execute(stmt).all()


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
    today = today or clock.today()
    total = Figures()
    for figures in _figures(actor, today, by_org=False, org_id=org_id).values():
        total.add(figures)
    return total


def institution_view(
    actor: User, org: InstitutionChoice, today: date | None = None
) -> InstitutionView:
    """Everything the institution page shows. A fixed number of queries: the advisors, three
    grouped figure queries, the overdue cases, the latest visits and the pipeline by stage."""
    today = today or clock.today()
    lines, others = _advisor_lines(actor, org, today)
    totals = Figures()
    for line in [*lines, *([others] if others else [])]:
        totals.add(line.figures)
    return InstitutionView(
        org=org,
        today=today,
        month_start=month_bounds(today)[0],
        advisors=lines,
        others=others,
        totals=totals,
        overdue=_overdue_cases(actor, org, today),
        recent=recent_visits(actor, org.id),
        pipeline=pipeline_totals(actor, PipelineFilters(org_id=org.id)),
    )


def _advisor_lines(
    actor: User, org: InstitutionChoice, today: date
) -> tuple[list[AdvisorLine], AdvisorLine | None]:
    """Each of the institution's advisors with their figures, and the work done for it by
    advisors no longer with it (None when there is none)."""
    advisors = db.session.execute(
        scoped(User, actor, select(User.id, User.username, User.display_name, User.active))
        .where(User.role == "advisor", User.org_id == org.id)
        .order_by(User.active.desc(), User.display_name, User.username)
    ).all()
    figures = _figures(actor, today, by_org=False, org_id=org.id)
    lines = [AdvisorLine(*a, figures.pop(a.id, Figures())) for a in advisors]
    if not figures:
        return lines, None
    rest = Figures()
    for f in figures.values():
        rest.add(f)
    return lines, AdvisorLine(None, None, None, False, rest)


def _overdue_cases(actor: User, org: InstitutionChoice, today: date) -> list[OverdueCase]:
    """The institution's cases whose first contact is overdue, the longest overdue first."""
    case_advisor = aliased(User, name="overdue_advisor")
    stmt = (
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
    )
    return [OverdueCase(*row) for row in db.session.execute(stmt).all()]


@dataclass
class InstitutionLine:
    org: InstitutionChoice
    advisors: int
    figures: Figures


def institutions_overview(actor: User, today: date | None = None) -> list[InstitutionLine]:
    """Every bank and insurer with its figures (the office's entry to the institution pages).
    Five queries: the institutions, the advisors per institution, three grouped figures."""
    today = today or clock.today()
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
