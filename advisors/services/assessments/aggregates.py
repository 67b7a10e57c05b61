"""Raw values in SQL: per advisor, the sums every metric is formed from, for one period — one
statement, the advisors joined to one grouped aggregate per source table over the period's
Asia/Shanghai bounds (dates: the period's first and last day; timestamps: its UTC bounds)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import aliased

from models import FeedbackLink, FinancingApplication, Referral, RiskReport, User, Visit, db

from ... import periods as periods_module
from ...dbutil import is_postgresql
from ...scoring.rubric import AVERAGE, FIRM_FIRST

# A visit is logged on time when it is logged no later than this many days after its date.
LOG_ON_TIME_DAYS = 3
# Cases that never became work: not counted for coverage or the first-contact clock.
NOT_WORK_STATUSES = ("rejected", "withdrawn")
_ONE, _ZERO = literal_column("1"), literal_column("0")


def _flag(condition):
    """1 where the condition holds, else 0 (to SUM)."""
    return case((condition, _ONE), else_=_ZERO)


@dataclass(slots=True)
class _Work:
    """One advisor's sums for a period (from the grouped aggregates of :func:`_aggregates`)."""

    visits: int = 0
    role_visits: int = 0  # visits counted once per role
    policy_visits: int = 0
    info_visits: int = 0
    logged_on_time: int = 0
    cases: int = 0
    covered: int = 0
    due: int = 0
    due_met: int = 0
    firms_financed: int = 0
    amount_fen: int = 0  # the amount disbursed in 分 (0.000001 万元), as ``Money`` stores it
    first_loans: int = 0
    risk_reports: int = 0
    rating_halves: int = 0  # the rated cases' ratings summed in halves (an average of two: .5)
    ratings: int = 0  # rated cases, each once


def _rows(stmt):
    """``stmt``'s rows as plain tuples, executed on the session's connection (in its
    transaction) without the ORM's per-row result handling: the aggregates return thousands
    of rows of plain numbers."""
    return db.session.connection().execute(stmt)


def _aggregates(
    period: periods_module.Period, case_rating: str = FIRM_FIRST
) -> list[tuple[int, int | None, _Work]]:
    """The advisors assessed — every active advisor, and any advisor (now inactive) with work
    in the period —, ordered by id: (advisor id, institution id, the sums every metric is
    formed from). One statement: the advisors, each joined to one grouped aggregate per source
    table (visits, cases, financing, risk reports, ratings), so Python reads one row per
    advisor. ``case_rating`` is the rubric's rule for a case rated both by the firm and by the
    bureau (:func:`_rating_parts`)."""
    visits = _visits(period)
    cases, ratings = _cases(period, case_rating)
    financing = _financing(period)
    risks = _risks(period)
    stmt = (
        select(
            User.id,
            User.org_id,
            User.active,
            *(visits.c[k] for k in ("n", "by_role", "policy", "info", "on_time")),
            *(cases.c[k] for k in ("n", "covered", "due", "met", "rating_halves", "ratings")),
            *(financing.c[k] for k in ("firms", "fen", "first_loans")),
            risks.c.n,
            ratings.c.halves,
            ratings.c.n,
        )
        .outerjoin(visits, visits.c.aid == User.id)
        .outerjoin(cases, cases.c.aid == User.id)
        .outerjoin(financing, financing.c.aid == User.id)
        .outerjoin(risks, risks.c.aid == User.id)
        .outerjoin(ratings, ratings.c.aid == User.id)
        .where(User.role == "advisor")
        .order_by(User.id)
    )
    out = []
    for row in _rows(stmt):
        assessed = _assessed(*row)
        if assessed is not None:
            out.append(assessed)
    return out


def _assessed(
    aid,
    org_id,
    active,
    n_visits,
    by_role,
    policy,
    info,
    on_time,
    n_cases,
    covered,
    n_due,
    met,
    case_rating_halves,
    case_ratings,
    firms,
    fen,
    first_loans,
    n_risks,
    link_rating_halves,
    link_ratings,
) -> tuple[int, int | None, _Work] | None:
    """One advisor's row of :func:`_aggregates` as (id, institution, sums); None for an
    inactive advisor without work in the period (beyond cumulative coverage)."""
    worked = (
        n_visits is not None
        or bool(n_due or case_ratings)
        or firms is not None
        or n_risks is not None
        or link_ratings is not None
    )
    if not (active or worked):
        return None
    work = _Work(
        visits=n_visits or 0,
        role_visits=by_role or 0,
        policy_visits=policy or 0,
        info_visits=info or 0,
        logged_on_time=on_time or 0,
        cases=n_cases or 0,
        covered=covered or 0,
        due=n_due or 0,
        due_met=met or 0,
        firms_financed=firms or 0,
        amount_fen=int(fen or 0),
        first_loans=first_loans or 0,
        risk_reports=n_risks or 0,
        rating_halves=int(case_rating_halves or 0) + int(link_rating_halves or 0),
        ratings=(case_ratings or 0) + (link_ratings or 0),
    )
    return aid, org_id, work


def _visits(period: periods_module.Period):
    """Visits dated in the period, per advisor. A visit in the policy-promoter role always
    records the catalogue tools it explained (the visit service requires at least one), so the
    policy visits are counted from the role flag, without reading visit_policy."""
    return (
        select(
            Visit.advisor_id.label("aid"),
            func.count().label("n"),
            func.sum(
                _flag(Visit.role_policy)
                + _flag(Visit.role_guidance)
                + _flag(Visit.role_financing)
                + _flag(Visit.role_information)
            ).label("by_role"),
            func.sum(_flag(Visit.role_policy)).label("policy"),
            func.sum(_flag(Visit.role_information)).label("info"),
            func.sum(_flag(Visit.log_delay_days <= LOG_ON_TIME_DAYS)).label("on_time"),
        )
        .where(Visit.visited_on >= period.first_day, Visit.visited_on <= period.last_day)
        .group_by(Visit.advisor_id)
        .subquery("v")
    )


def _cases(period: periods_module.Period, case_rating: str):
    """The advisors' cases — coverage at the period's end, the first-contact clock, and the
    satisfaction the referring bureau confirmed when it closed a case in the period — and the
    firm's ratings (:func:`_rating_parts`): (cases subquery, ratings subquery).

    Cases rejected or withdrawn never became work (and are never closed with a rating).
    Coverage is cumulative, so this reads every case assigned by the period's end: a plain
    scan grouped in memory, not a walk of the (advisor_id, status) index with a table lookup
    per row — ``advisor_id + 0`` keeps SQLite's planner off that index (PostgreSQL plans by its
    statistics either way). Cast back to an integer: a bare expression has no type affinity
    in SQLite, which could then not index it to join it to the advisors."""
    first, last = period.first_day, period.last_day
    _start, end = period.utc_bounds()
    advisor = cast(Referral.advisor_id + _ZERO, Integer).label("aid")
    due = and_(Referral.first_contact_due >= first, Referral.first_contact_due <= last)
    bureau_halves, bureau_rated, firm_of_case, ratings = _rating_parts(period, case_rating)
    cases = (
        select(
            advisor,
            func.count().label("n"),
            func.sum(_flag(Referral.first_contact_on <= last)).label("covered"),
            func.sum(_flag(due)).label("due"),
            func.sum(
                _flag(and_(due, Referral.first_contact_on <= Referral.first_contact_due))
            ).label("met"),
            func.sum(bureau_halves).label("rating_halves"),
            func.sum(bureau_rated).label("ratings"),
        )
        .select_from(
            Referral
            if firm_of_case is None
            else Referral.__table__.outerjoin(
                firm_of_case,
                and_(firm_of_case.c.rid == Referral.id, firm_of_case.c.aid == Referral.advisor_id),
            )
        )
        .where(
            Referral.advisor_id.is_not(None),
            Referral.assigned_at < end,
            Referral.status.notin_(NOT_WORK_STATUSES),
        )
        .group_by(advisor)
        .subquery("r")
    )
    return cases, ratings


def _financing(period: periods_module.Period):
    """Financing applications disbursed in the period (the amounts summed as stored, in 分)."""
    fa = FinancingApplication
    return (
        select(
            fa.advisor_id.label("aid"),
            func.count(distinct(fa.enterprise_id)).label("firms"),
            func.sum(type_coerce(fa.disbursed_amount_wan, BigInteger)).label("fen"),
            func.count(distinct(case((fa.first_loan, fa.enterprise_id)))).label("first_loans"),
        )
        .where(fa.disbursed_on >= period.first_day, fa.disbursed_on <= period.last_day)
        .group_by(fa.advisor_id)
        .subquery("f")
    )


def _risks(period: periods_module.Period):
    """Risk reports filed in the period."""
    start, end = period.utc_bounds()
    return (
        select(RiskReport.reporter_id.label("aid"), func.count().label("n"))
        .where(RiskReport.reported_at >= start, RiskReport.reported_at < end)
        .group_by(RiskReport.reporter_id)
        .subquery("k")
    )


def _rating_parts(period: periods_module.Period, case_rating: str):
    """Satisfaction, one rating per case (a case: a referral and the advisor rated). Its inputs
    are the firm's ratings (feedback links, ``advisor_id`` the advisor whose service is rated)
    and the bureau's (the satisfaction it confirmed when it closed the case; the case's
    advisor); a case counts in the period where a rating of it was given, as it stands at the
    period's end, and never twice in one period:

    - ``firm_first``: a case the firm rated in the period counts with the firm's latest rating;
      a case the bureau closed in the period counts with the bureau's rating unless the firm
      has rated it by the period's end (the firm's own word is preferred);
    - ``average``: the average of the firm's latest rating and the bureau's, as far as each
      exists by the period's end; the case counts in the period where the firm rated it, or
      where the bureau closed it if the firm did not rate it in that period.

    Returns (the bureau's part of a case row, in halves of a rating; 1 when that case counts
    there; on PostgreSQL the firm's ratings of cases by the period's end — a subquery of
    ``rid``, ``aid`` (and, for ``average``, the latest ``rating`` and its time ``at``) the case
    rows are outer joined to —, on SQLite None; the firm's part: a subquery of advisor
    ``aid``, ``halves`` and cases ``n``).

    How the bureau's part finds the firm's rating of a case differs by database, for the same
    result. SQLite evaluates a CASE lazily: a correlated look-up (the index on
    ``feedback_link.referral_id``) runs for just the cases closed with a rating in the period.
    PostgreSQL costs a subquery in a CASE as if it ran for every row of the scan, and that
    estimate alone turns on JIT compilation (a quarter of a second); there the firm's ratings
    are one hash join, costed as what it is."""
    start, end = period.utc_bounds()
    fl = FeedbackLink
    rated = and_(
        Referral.closed_at >= start, Referral.closed_at < end, Referral.satisfaction.is_not(None)
    )
    given = (fl.used_at < end, fl.rating.is_not(None), fl.advisor_id.is_not(None))
    if is_postgresql():
        bureau_halves, bureau_rated, firm_of_case = _bureau_part_joined(
            start, rated, given, case_rating
        )
    else:
        bureau_halves, bureau_rated = _bureau_part_correlated(start, rated, given, case_rating)
        firm_of_case = None
    return bureau_halves, bureau_rated, firm_of_case, _firm_ratings(period, case_rating)


def _bureau_part_correlated(start, rated, given, case_rating: str):
    """SQLite: the bureau's part of a case row (halves, counted), finding the firm's rating of
    the case by a correlated look-up evaluated only for the cases closed in the period."""
    fl = FeedbackLink
    of_case = (fl.referral_id == Referral.id, fl.advisor_id == Referral.advisor_id, *given)
    if case_rating == AVERAGE:
        latest_at = select(func.max(fl.used_at)).where(*of_case).scalar_subquery()
        latest = (
            select(fl.rating)
            .where(*of_case)
            .order_by(fl.used_at.desc(), fl.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        # Rated by the firm in the period: counted with the firm's ratings (below).
        elsewhere = latest_at >= start
        value = Referral.satisfaction + func.coalesce(latest, Referral.satisfaction)
    else:
        elsewhere = exists().where(*of_case)
        value = Referral.satisfaction * 2
    bureau_halves = case((rated, case((elsewhere, _ZERO), else_=value)), else_=_ZERO)
    bureau_rated = case((rated, case((elsewhere, _ZERO), else_=_ONE)), else_=_ZERO)
    return bureau_halves, bureau_rated


def _bureau_part_joined(start, rated, given, case_rating: str):
    """PostgreSQL: the bureau's part of a case row (halves, counted) and the firm's ratings of
    cases by the period's end, a subquery the case rows are outer joined to."""
    fl = FeedbackLink
    if case_rating == AVERAGE:
        latest = (
            select(
                fl.referral_id.label("rid"),
                fl.advisor_id.label("aid"),
                fl.rating.label("rating"),
                fl.used_at.label("at"),
                func.row_number()
                .over(
                    partition_by=(fl.advisor_id, fl.referral_id),
                    order_by=(fl.used_at.desc(), fl.id.desc()),
                )
                .label("nth"),
            )
            .where(*given)
            .subquery("fl")
        )
        firm_of_case = (
            select(latest.c.rid, latest.c.aid, latest.c.rating, latest.c.at)
            .where(latest.c.nth == 1)
            .subquery("fc")
        )
        # Rated by the firm in the period: counted with the firm's ratings (below).
        bureau_counts = and_(rated, or_(firm_of_case.c.at.is_(None), firm_of_case.c.at < start))
        value = Referral.satisfaction + func.coalesce(firm_of_case.c.rating, Referral.satisfaction)
    else:
        firm_of_case = (
            select(fl.referral_id.label("rid"), fl.advisor_id.label("aid"))
            .where(*given)
            .group_by(fl.referral_id, fl.advisor_id)
            .subquery("fc")
        )
        bureau_counts = and_(rated, firm_of_case.c.rid.is_(None))
        value = Referral.satisfaction * 2
    return case((bureau_counts, value), else_=_ZERO), _flag(bureau_counts), firm_of_case


def _firm_ratings(period: periods_module.Period, case_rating: str):
    """The firm's part of satisfaction (:func:`_rating_parts`): per advisor, the cases the firm
    rated in the period, each with its latest rating (``average``: averaged with the bureau's
    rating of the case by the period's end), as ``aid``, ``halves`` and ``n``."""
    start, end = period.utc_bounds()
    fl = FeedbackLink
    ranked = (
        select(
            fl.advisor_id.label("aid"),
            fl.referral_id.label("rid"),
            fl.rating.label("rating"),
            func.row_number()
            .over(
                partition_by=(fl.advisor_id, fl.referral_id),
                order_by=(fl.used_at.desc(), fl.id.desc()),
            )
            .label("nth"),
        )
        .where(
            fl.used_at >= start,
            fl.used_at < end,
            fl.rating.is_not(None),
            fl.advisor_id.is_not(None),
        )
        .subquery("fr")
    )
    firm = select(ranked.c.aid).where(ranked.c.nth == 1)
    if case_rating == AVERAGE:
        bureau = aliased(Referral)
        firm = firm.outerjoin(
            bureau,
            and_(
                bureau.id == ranked.c.rid,
                bureau.advisor_id == ranked.c.aid,
                bureau.closed_at < end,
                bureau.satisfaction.is_not(None),
            ),
        )
        halves = ranked.c.rating + func.coalesce(bureau.satisfaction, ranked.c.rating)
    else:
        halves = ranked.c.rating * 2
    return (
        firm.add_columns(func.sum(halves).label("halves"), func.count().label("n"))
        .group_by(ranked.c.aid)
        .subquery("b")
    )
