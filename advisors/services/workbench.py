"""The advisor's workbench (the advisor's home page): my firms by urgency with the next due date,
first contacts due and overdue on the service-level clock, financing in progress by stage, and
my month so far.

Read only. A fixed number of queries whatever the advisor's caseload or the size of the tables
(six, each served by an index on the advisor's id):

1. the profile (for the completion prompt),
2. the working-day overrides (the service-level clock's calendar),
3. my open cases (``ix_referral_advisor_status``, the firm's name looked up by its key): a
   caseload is a few hundred rows at most, so they are flagged and ranked here, a pending first
   contact with :func:`advisors.services.sla.flag` (as the case lists do), a planned follow-up
   visit by its calendar day,
4. my applications in progress and this month's approvals and disbursements, one aggregate
   (``ix_financing_advisor_stage``),
5. a few applications in progress, the longest waiting first (the same index),
6. this month's visits and firms served (``ix_visit_advisor_visited``).

Every query selects through :func:`advisors.permissions.scoped`, narrowed to the advisor's own
work (``advisor_id``): the scope lets an advisor read the history of cases now assigned to
them, but "my month" counts only what they did themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, and_, bindparam, exists, func, or_, select, type_coerce

from models import (
    AdvisorProfile,
    AdvisorSpecialty,
    Enterprise,
    FinancingApplication,
    Money,
    Referral,
    User,
    Visit,
    db,
)
from models.user import advisor_township

from .. import clock
from ..permissions import scoped
from ..workdays import WorkdayCalendar
from . import referrals as svc
from . import sla

# The advisor's open cases: assigned (first contact pending), in service, resolved (the outcome
# waits for the referring bureau's confirmation).
OPEN_CASE_STATUSES = ("assigned", "in_service", "resolved")
IN_PROGRESS_STAGES = ("applied", "approved")
URGENT_ROWS = 30
FIRST_CONTACT_ROWS = 10
APPLICATION_ROWS = 5
ZERO = Decimal("0.00")


@dataclass(slots=True)
class FirmRow:
    """One of my cases as the workbench lists it."""

    id: int  # the referral (case)
    firm_name: str
    status: str
    # What is due next: the first contact while it is pending, else the visit I planned.
    due_kind: str | None  # "first_contact" | "visit" | None
    due_on: date | None
    last_visit_on: date | None
    first_contact_on: date | None
    flag: str | None = None  # "overdue" | "due_soon" | None

    @property
    def urgency(self) -> tuple:
        """Overdue first, then by due date (nothing due last), then oldest case first."""
        return (self.flag != "overdue", self.due_on or date.max, self.id)


@dataclass
class FirstContacts:
    waiting: int = 0  # cases whose first contact is not made yet
    overdue: int = 0
    due_soon: int = 0
    rows: list[FirmRow] = field(default_factory=list)  # flagged ones, most urgent first


@dataclass
class StageLine:
    stage: str
    count: int
    amount_wan: Decimal  # applied for (stage applied) or granted (stage approved)


@dataclass(slots=True)
class ApplicationRow:
    id: int
    referral_id: int
    firm_name: str
    stage: str
    amount_wan: Decimal
    since: date  # the day it reached its stage


@dataclass
class Month:
    start: date
    today: date
    visits: int = 0
    firms_served: int = 0
    applied: int = 0
    approved: int = 0
    approved_wan: Decimal = ZERO
    disbursed: int = 0
    disbursed_wan: Decimal = ZERO
    first_loans: int = 0  # disbursements to first-time borrowers (首贷户)


@dataclass
class Profile:
    title: str | None
    capacity: int
    accepting: bool


@dataclass
class Workbench:
    today: date
    profile: Profile | None
    todo: list[str]
    firms_total: int
    by_status: dict[str, int]
    visits_overdue: int  # planned follow-up visits past their date
    urgent: list[FirmRow]
    first_contacts: FirstContacts
    financing: list[StageLine]
    applications: list[ApplicationRow]
    month: Month

    @property
    def more_firms(self) -> bool:
        return self.firms_total > len(self.urgent)


# ------------------------------------------------------------------ the pieces
# The month's bounds are bind parameters: each statement is built once per advisor and reused
# (building and keying these statements costs more than running them).
_START = bindparam("start", type_=Date())
_TODAY = bindparam("today", type_=Date())
_STATEMENTS: dict[tuple, object] = {}
_MAX_STATEMENTS = 1000


def _statement(name: str, user: User, build):
    """The statement ``name`` for ``user``, built by ``build()`` the first time. The scope (role,
    user id, org id) is in both the statement and its key."""
    key = (name, user.id, user.role, user.org_id)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        if len(_STATEMENTS) >= _MAX_STATEMENTS:
            _STATEMENTS.clear()
        stmt = _STATEMENTS[key] = build()
    return stmt


def _profile(user: User) -> tuple[Profile | None, list[str]]:
    """The profile and what it still lacks, in one query (not the relationships' three)."""

    def build():
        has_specialty = exists().where(AdvisorSpecialty.user_id == AdvisorProfile.user_id)
        has_township = exists().where(advisor_township.c.user_id == AdvisorProfile.user_id)
        return select(
            AdvisorProfile.title,
            AdvisorProfile.capacity,
            AdvisorProfile.accepting,
            has_specialty.label("has_specialty"),
            has_township.label("has_township"),
        ).where(AdvisorProfile.user_id == user.id)

    row = db.session.execute(_statement("profile", user, build)).first()
    if row is None:
        return None, []
    todo = []
    if not row.has_specialty:
        todo.append("specialties")
    if not row.has_township:
        todo.append("townships")
    return Profile(row.title, row.capacity, bool(row.accepting)), todo


def _open_cases(user: User) -> list[FirmRow]:
    def build():
        # The firm's name by its key, row by row: a join would let PostgreSQL hash the whole
        # firm table for a few hundred cases.
        firm = select(Enterprise.name).where(Enterprise.id == Referral.enterprise_id)
        return scoped(
            Referral,
            user,
            select(
                Referral.id,
                firm.scalar_subquery(),
                Referral.status,
                Referral.first_contact_due,
                Referral.first_contact_on,
                Referral.next_visit_on,
                Referral.last_visit_on,
            ),
        ).where(Referral.advisor_id == user.id, Referral.status.in_(OPEN_CASE_STATUSES))

    rows = []
    stmt = _statement("open_cases", user, build)
    for rid, name, status, fc_due, fc_on, next_visit, last_visit in db.session.execute(stmt):
        if fc_on is None and fc_due is not None:
            kind, due = "first_contact", fc_due
        elif next_visit is not None:
            kind, due = "visit", next_visit
        else:
            kind, due = None, None
        rows.append(FirmRow(rid, name, status, kind, due, last_visit, fc_on))
    return rows


def _flag_all(rows: list[FirmRow], today: date, cal: WorkdayCalendar) -> None:
    """Set each row's flag. A pending first contact is flagged on the service-level clock,
    exactly as the case lists flag it (:func:`sla.flag`, each distinct case once). A follow-up
    visit is the advisor's own plan, not a service level: overdue once its day has passed, due
    on its day."""
    seen: dict[tuple, str | None] = {}
    for row in rows:
        if row.due_kind == "first_contact":
            key = (row.status, row.due_on, row.first_contact_on)
            if key not in seen:
                seen[key] = sla.flag(*key, today, cal)
            row.flag = seen[key]
        elif row.due_kind == "visit":
            if row.due_on < today:
                row.flag = "overdue"
            elif row.due_on == today:
                row.flag = "due_soon"


def _financing(user: User, start: date, today: date) -> tuple[list[StageLine], Month]:
    """In-progress counts and amounts by stage, and this month's approvals and disbursements,
    in one aggregate over my applications that are in progress or moved this month."""
    stmt = _statement("financing", user, lambda: _financing_statement(user))
    (
        n_applied,
        wan_applied,
        n_approved,
        wan_approved,
        m_approved,
        m_approved_wan,
        m_disbursed,
        m_disbursed_wan,
        m_first,
        m_applied,
    ) = db.session.execute(stmt, {"start": start, "today": today}).one()
    stages = [
        StageLine("applied", n_applied or 0, wan_applied or ZERO),
        StageLine("approved", n_approved or 0, wan_approved or ZERO),
    ]
    figures = Month(
        start=start,
        today=today,
        applied=m_applied or 0,
        approved=m_approved or 0,
        approved_wan=m_approved_wan or ZERO,
        disbursed=m_disbursed or 0,
        disbursed_wan=m_disbursed_wan or ZERO,
        first_loans=m_first or 0,
    )
    return stages, figures


def _money(expr, cond):
    return type_coerce(func.sum(expr).filter(cond), Money)


def _financing_statement(user: User):
    """The aggregate of :func:`_financing`, the month's bounds as bind parameters."""
    fa = FinancingApplication
    start, today = _START, _TODAY
    month = and_(fa.approved_on >= start, fa.approved_on <= today)
    paid = and_(fa.stage == "disbursed", fa.disbursed_on >= start, fa.disbursed_on <= today)
    applied_now = fa.stage == "applied"
    approved_now = fa.stage == "approved"
    return scoped(
        fa,
        user,
        select(
            func.count().filter(applied_now),
            _money(fa.amount_wan, applied_now),
            func.count().filter(approved_now),
            _money(func.coalesce(fa.approved_amount_wan, fa.amount_wan), approved_now),
            func.count().filter(month),
            _money(fa.approved_amount_wan, month),
            func.count().filter(paid),
            _money(fa.disbursed_amount_wan, paid),
            func.count().filter(and_(paid, fa.first_loan.is_(True))),
            func.count().filter(and_(fa.applied_on >= start, fa.applied_on <= today)),
        ),
    ).where(
        fa.advisor_id == user.id,
        or_(
            fa.stage.in_(IN_PROGRESS_STAGES),
            fa.applied_on >= start,
            fa.approved_on >= start,
            fa.disbursed_on >= start,
        ),
    )


def _applications(user: User, limit: int) -> list[ApplicationRow]:
    """A few applications in progress, the longest waiting in its stage first."""

    def build():
        fa = FinancingApplication
        since = func.coalesce(fa.approved_on, fa.applied_on)
        firm = select(Enterprise.name).where(Enterprise.id == fa.enterprise_id)
        return (
            scoped(
                fa,
                user,
                select(
                    fa.id,
                    fa.referral_id,
                    firm.scalar_subquery(),
                    fa.stage,
                    fa.amount_wan,
                    fa.approved_amount_wan,
                    fa.applied_on,
                    fa.approved_on,
                ),
            )
            .where(fa.advisor_id == user.id, fa.stage.in_(IN_PROGRESS_STAGES))
            .order_by(since, fa.id)
            .limit(limit)
        )

    stmt = _statement(f"applications:{limit}", user, build)
    return [
        ApplicationRow(
            id=aid,
            referral_id=rid,
            firm_name=name,
            stage=stage,
            amount_wan=granted if stage == "approved" and granted is not None else applied,
            since=approved_on if stage == "approved" and approved_on else applied_on,
        )
        for aid, rid, name, stage, applied, granted, applied_on, approved_on in (
            db.session.execute(stmt)
        )
    ]


def _visits(user: User, start: date, today: date) -> tuple[int, int]:
    """My visits this month and the distinct firms they served."""

    def build():
        return scoped(
            Visit,
            user,
            select(func.count(), func.count(func.distinct(Visit.enterprise_id))),
        ).where(Visit.advisor_id == user.id, Visit.visited_on >= _START, Visit.visited_on <= _TODAY)

    stmt = _statement("visits", user, build)
    visits, firms = db.session.execute(stmt, {"start": start, "today": today}).one()
    return visits or 0, firms or 0


def month_start(day: date) -> date:
    return day.replace(day=1)


# ------------------------------------------------------------------ the workbench
def workbench(
    user: User,
    *,
    today: date | None = None,
    cal=None,
    urgent_rows: int = URGENT_ROWS,
    first_contact_rows: int = FIRST_CONTACT_ROWS,
    application_rows: int = APPLICATION_ROWS,
) -> Workbench:
    """Everything the advisor's home page shows. ``today`` is the Shanghai calendar day
    (:func:`advisors.clock.today`) unless given; "my month" is its calendar month
    up to and including today."""
    today = today or clock.today()
    start = month_start(today)
    profile, todo = _profile(user)
    cal = cal if cal is not None else svc.calendar()

    cases = _open_cases(user)
    _flag_all(cases, today, cal)
    cases.sort(key=lambda r: r.urgency)

    by_status = {s: 0 for s in OPEN_CASE_STATUSES}
    first = FirstContacts()
    visits_overdue = 0
    for row in cases:
        by_status[row.status] = by_status.get(row.status, 0) + 1
        if row.due_kind == "first_contact":
            first.waiting += 1
            if row.flag == "overdue":
                first.overdue += 1
            elif row.flag == "due_soon":
                first.due_soon += 1
            if row.flag and len(first.rows) < first_contact_rows:
                first.rows.append(row)
        elif row.due_kind == "visit" and row.flag == "overdue":
            visits_overdue += 1

    stages, month = _financing(user, start, today)
    applications = _applications(user, application_rows)
    month.visits, month.firms_served = _visits(user, start, today)
    return Workbench(
        today=today,
        profile=profile,
        todo=todo,
        firms_total=len(cases),
        by_status=by_status,
        visits_overdue=visits_overdue,
        urgent=cases[:urgent_rows],
        first_contacts=first,
        financing=stages,
        applications=applications,
        month=month,
    )
