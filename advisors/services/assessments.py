"""Assessments: compile a period in SQL, review it (adjustments, comments), publish it.

Compiling a period (:func:`compile_period`) is one transaction, guarded by a lock taken before
anything is read — a PostgreSQL advisory lock keyed on the period, on SQLite the database's
write lock (the first statement is a write) — so two compilers at once (the scheduler and the
finance office, two web workers) produce one result: the second waits, then recompiles.

Every raw value comes from one grouped aggregate per source table over the period's
Asia/Shanghai bounds (dates: the period's first and last day; timestamps: its UTC bounds), per
advisor: visits, referrals (the cases), financing applications, risk reports and feedback
ratings — joined to the advisors in one statement. Python only turns the per-advisor sums
into exact ratios and averages and scores them with the rubric's pure rules
(:mod:`advisors.scoring`), once per distinct raw value. Each
advisor's metric results (raw value and points; the rule is the period's rubric version's) are
stored on the advisor's row as JSON, their decimals as exact strings. Results are written with
upserts under the unique keys (period; assessment + advisor; assessment + institution) that
leave unchanged rows untouched (compared with what is stored as stored, ``metrics`` as its
text), so recompiling the same data gives the same rows with the same ids. Ranks are window
functions in SQL (``UPDATE … FROM (SELECT rank() OVER …)``; on PostgreSQL the rows of a first
compile are ranked by the same window functions over their scores before one COPY writes
them), overall, within the institution, and for the institutions by their average.

A compiled period is a draft: the finance office may add adjustments (each with its reason,
within the rubric's bound either way; the row's score is the computed points plus the sum of
those not withdrawn), withdraw them (kept and audited) and recompile; central-bank users may
comment. Publishing freezes it — compiles, adjustments, withdrawals and comments are refused
(409) — and gives the notice its document number (文号). A metric with no data counts as the
rubric says (:mod:`advisors.scoring.rubric`): not applicable (stored as ``[null, null]``, its
weight spread over the advisor's other metrics) or 0 points; satisfaction counts one rating
per case (:func:`_rating_parts`). A period compiled before it ended says so
(:func:`compiled_in_progress`).

Who sees what (:func:`get_view`, :func:`breakdown`, :func:`periods`): the finance office, the
central bank and admins every period, drafts too; an advisor only their own row of a published
period; a liaison the rows of its institution's advisors in a published period; bureaus nothing
(403). The caller commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from operator import attrgetter
from typing import Any, NamedTuple

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    case,
    cast,
    delete,
    distinct,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import aliased

from models import (
    Assessment,
    AssessmentAdjustment,
    AssessmentComment,
    AssessmentInstitution,
    AssessmentRow,
    Enterprise,
    FeedbackLink,
    FinancingApplication,
    Organisation,
    Referral,
    RiskReport,
    RubricVersion,
    User,
    Visit,
    VisitPolicy,
    db,
    utcnow,
)

from .. import periods as periods_module
from ..audit import record_bulk
from ..dbutil import among, chunks, copy_stored, custom_plans, is_postgresql
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..i18n import SHANGHAI
from ..permissions import scoped
from ..scoring import rules
from ..scoring.rubric import (
    AVERAGE,
    DEFAULT_RUBRIC,
    FIRM_FIRST,
    RubricSpec,
    applicable_factor,
    best_value,
    load_rubric,
    scale_for_period,
)
from . import referrals as referral_service
from .firms import clean_text
from .labels import risk_type_labels, visit_role_labels
from .notifications import notify

# A visit is logged on time when it is logged no later than this many days after its date.
LOG_ON_TIME_DAYS = 3
# Cases that never became work: not counted for coverage or the first-contact clock.
NOT_WORK_STATUSES = ("rejected", "withdrawn")
# Raw values are kept exact to 1e-6 (the ``Money`` column they are stored in).
RAW_QUANTUM = Decimal("0.000001")
_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)  # fixed, whatever the thread's context
CENT = Decimal("0.01")
ONE = Decimal(1)
MAX_ADJUSTMENT = Decimal(100)
REASON_MAX = 500
COMMENT_MAX = 2000
NOTE_MAX = 500
RECORD_CAP = 200  # breakdown records per metric
# PostgreSQL advisory locks: (namespace, key derived from the period).
LOCK_NAMESPACE = 0x41534D  # "ASM"
LOCK_WAIT = "60s"
RUBRIC_LOCK_KEY = 0  # period keys are 200001 and up

COMPILER_ROLES = ("finance_office",)
VIEW_ALL_ROLES = ("admin", "finance_office", "pboc")
COMMENT_ROLES = ("finance_office", "pboc")
_KIND_OFFSET = {"month": 0, "quarter": 20, "year": 40}


# ============================================================================ rubric versions
def _spec_of(version: RubricVersion) -> RubricSpec:
    return RubricSpec.from_dict(version.spec)


def current_rubric() -> RubricVersion:
    """The newest rubric version; version 1 (the default rubric) is created when there is none
    (in the caller's transaction: commit after)."""
    newest = _newest_rubric()
    if newest is not None:
        return newest
    values = {"number": 1, "spec": DEFAULT_RUBRIC.to_dict(), "note": None, "created_at": utcnow()}
    insert = _insert(RubricVersion.__table__).values(**values)
    result = db.session.execute(insert.on_conflict_do_nothing(index_elements=["number"]))
    newest = _newest_rubric()
    if result.rowcount:
        record_bulk("insert", "rubric_version", [(newest.id, {"number": 1, "note": None})])
    return newest


def _newest_rubric() -> RubricVersion | None:
    return db.session.execute(
        select(RubricVersion).order_by(RubricVersion.number.desc()).limit(1)
    ).scalar_one_or_none()


def rubric_versions() -> list[RubricVersion]:
    """Every rubric version, newest first (for the editor's history)."""
    return list(
        db.session.execute(select(RubricVersion).order_by(RubricVersion.number.desc())).scalars()
    )


def rubric_spec(version: RubricVersion) -> RubricSpec:
    """The stored rubric of a version as a :class:`RubricSpec`."""
    return _spec_of(version)


def save_rubric(actor: User, spec_data: dict, note: str | None = None) -> RubricVersion:
    """A new rubric version (the finance office). ``spec_data`` is shaped like
    :meth:`RubricSpec.to_dict`; errors are reported per field (``metrics.2.weight`` …). A new
    version is used by the next compile of a draft; published results keep theirs."""
    if actor is None or actor.role != "finance_office":
        raise Forbidden(_("Only the finance office may change the rubric."))
    errors: dict[str, str] = {}
    spec, spec_errors = load_rubric(spec_data)
    errors.update({str(k): str(v) for k, v in spec_errors.items()})
    if note is not None and not isinstance(note, str):
        errors["note"] = _("Enter the note as text.")
        note = None
    note = clean_text(note or "") or None  # control characters dropped (no NUL in PostgreSQL)
    if note is not None and len(note) > NOTE_MAX:
        errors["note"] = _("At most %(n)s characters.", n=NOTE_MAX)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    _lock_writers("UPDATE rubric_version SET number = number WHERE number = 0", {}, RUBRIC_LOCK_KEY)
    newest = _newest_rubric()
    version = RubricVersion(
        number=(newest.number if newest is not None else 0) + 1,
        spec=spec.to_dict(),
        note=note,
        created_at=utcnow(),
        created_by_id=actor.id,
    )
    db.session.add(version)
    db.session.flush()
    return version


# ============================================================================ periods and locks
def parse_period(period_key: Any) -> periods_module.Period:
    """The period of a key, or ValidationFailed naming the ``period`` field."""
    try:
        return periods_module.parse(period_key)
    except ValueError as exc:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"period": str(exc)}
        ) from None


def _lock_key(period: periods_module.Period) -> int:
    return period.year * 100 + _KIND_OFFSET[period.kind] + period.number


def _lock(period: periods_module.Period) -> None:
    """Serialise every writer of one period (compile, adjust, publish) until commit.

    PostgreSQL: a transaction-scoped advisory lock on (namespace, period). SQLite has one
    writer at a time: the first write of a transaction takes the database's write lock and
    holds it to the end (pysqlite opens the transaction right before it), so a write on the
    period's row — even one that changes nothing — is the ``BEGIN IMMEDIATE`` of this
    transaction; a second compiler waits for it (busy timeout) and then sees its result."""
    try:
        _lock_writers(
            "UPDATE assessment SET compile_count = compile_count WHERE period = :period",
            {"period": period.key},
            _lock_key(period),
        )
    except Conflict:
        raise Conflict(
            _(
                "The assessment for %(period)s is being compiled or changed; try again shortly.",
                period=period.key,
            )
        ) from None


def _lock_writers(sqlite_write: str, params: dict, key: int) -> None:
    """Take the advisory lock ``key`` (PostgreSQL) or the write lock (SQLite, by running the
    harmless ``sqlite_write``); Conflict when it cannot be had in reasonable time."""
    try:
        if is_postgresql():
            db.session.execute(
                text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": LOCK_WAIT}
            )
            db.session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                {"namespace": LOCK_NAMESPACE, "key": key},
            )
        else:
            db.session.execute(text(sqlite_write), params)
    except OperationalError:
        raise Conflict(_("Someone else is changing this right now; try again shortly.")) from None


def _insert(table):
    return (postgresql.insert if is_postgresql() else sqlite.insert)(table)


def _load(period: periods_module.Period) -> Assessment | None:
    return db.session.execute(
        select(Assessment)
        .where(Assessment.period == period.key)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


# ============================================================================ raw values in SQL
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
    first, last = period.first_day, period.last_day
    start, end = period.utc_bounds()

    # Visits dated in the period. A visit in the policy-promoter role always records the
    # catalogue tools it explained (the visit service requires at least one), so the policy
    # visits are counted from the role flag, without reading visit_policy.
    visits = (
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
        .where(Visit.visited_on >= first, Visit.visited_on <= last)
        .group_by(Visit.advisor_id)
        .subquery("v")
    )

    # The advisors' cases: coverage at the period's end, the first-contact clock, and the
    # satisfaction the referring bureau confirmed when it closed a case in the period. Cases
    # rejected or withdrawn never became work (and are never closed with a rating). Coverage
    # is cumulative, so this reads every case assigned by the period's end: a plain scan
    # grouped in memory, not a walk of the (advisor_id, status) index with a table lookup per
    # row — ``advisor_id + 0`` keeps SQLite's planner off that index (PostgreSQL plans by its
    # statistics either way). Cast back to an integer: a bare expression has no type affinity
    # in SQLite, which could then not index it to join it to the advisors.
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

    # Financing applications disbursed in the period (the amounts summed as stored, in 分).
    fa = FinancingApplication
    financing = (
        select(
            fa.advisor_id.label("aid"),
            func.count(distinct(fa.enterprise_id)).label("firms"),
            func.sum(type_coerce(fa.disbursed_amount_wan, BigInteger)).label("fen"),
            func.count(distinct(case((fa.first_loan, fa.enterprise_id)))).label("first_loans"),
        )
        .where(fa.disbursed_on >= first, fa.disbursed_on <= last)
        .group_by(fa.advisor_id)
        .subquery("f")
    )

    # Risk reports filed in the period.
    risks = (
        select(RiskReport.reporter_id.label("aid"), func.count().label("n"))
        .where(RiskReport.reported_at >= start, RiskReport.reported_at < end)
        .group_by(RiskReport.reporter_id)
        .subquery("k")
    )

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
    for (
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
    ) in _rows(stmt):
        # Work in the period (beyond cumulative coverage) keeps an advisor who has left.
        worked = (
            n_visits is not None
            or bool(n_due or case_ratings)
            or firms is not None
            or n_risks is not None
            or link_ratings is not None
        )
        if not (active or worked):
            continue
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
        out.append((aid, org_id, work))
    return out


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
    if not is_postgresql():
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
        return bureau_halves, bureau_rated, None, _firm_ratings(period, case_rating)
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
    bureau_halves = case((bureau_counts, value), else_=_ZERO)
    bureau_rated = _flag(bureau_counts)
    return bureau_halves, bureau_rated, firm_of_case, _firm_ratings(period, case_rating)


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


MILLION = 1_000_000  # raw values are formed in millionths (exact to 1e-6), as ``Money`` stores


def _share(part: int, whole: int) -> int | None:
    """part / whole in millionths, rounded half up (exact integer arithmetic; the parts are
    counts and sums of ratings, never negative); None ("no data") when there is nothing to
    share."""
    if not whole:
        return None
    return (2 * MILLION * part + whole) // (2 * whole)


def _count(n: int) -> int:
    return n * MILLION


def _sum(a: int, b: int) -> int:
    return (a + b) * MILLION


def _amount(fen: int) -> int:
    return fen  # 分 are millionths of 万元


def _average_of_halves(halves: int, n: int) -> int | None:
    """The average rating of ``n`` cases whose ratings add up to ``halves`` halves."""
    return _share(halves, 2 * n)


class _Source(NamedTuple):
    """How a metric's raw value is formed from an advisor's aggregates: the :class:`_Work`
    fields it reads and the function of them giving the value in millionths."""

    fields: tuple[str, ...]
    form: Any

    def key(self):
        """A function of a :class:`_Work` giving the values the raw value is formed from (a
        cheap, hashable key: advisors with equal keys have equal raw values)."""
        return attrgetter(*self.fields)

    def millionths(self, key: Any) -> int | None:
        return self.form(*key) if len(self.fields) > 1 else self.form(key)


# Each metric's raw value (counts as whole numbers, shares and the average rating exact to
# 1e-6, None where there is nothing to measure).
_SOURCES: dict[str, _Source] = {
    "visit_coverage": _Source(("covered", "cases"), _share),
    "first_contact_on_time": _Source(("due_met", "due"), _share),
    "visits_logged": _Source(("role_visits",), _count),
    "policy_promotion": _Source(("policy_visits",), _count),
    "firms_financed": _Source(("firms_financed",), _count),
    "amount_disbursed": _Source(("amount_fen",), _amount),
    "first_loans": _Source(("first_loans",), _count),
    "info_reports": _Source(("info_visits", "risk_reports"), _sum),
    "satisfaction": _Source(("rating_halves", "ratings"), _average_of_halves),
    "logs_on_time": _Source(("logged_on_time", "visits"), _share),
}


# The metrics whose raw value can be missing (a share or an average with nothing to divide by):
# the ones for which the rubric's "what no data means" makes a difference.
MAY_LACK_DATA = frozenset(
    key for key, source in _SOURCES.items() if source.form in (_share, _average_of_halves)
)


def _decimal(millionths: int | None) -> Decimal | None:
    return None if millionths is None else Decimal(millionths).scaleb(-6)


def millionths_text(millionths: int) -> str:
    """A raw value in millionths as stored in a row's ``metrics`` — the same text as
    :func:`raw_text` of its Decimal, formed with integer arithmetic."""
    sign = "-" if millionths < 0 else ""
    whole, fraction = divmod(abs(millionths), MILLION)
    digits = f"{fraction:06d}".rstrip("0")
    return f"{sign}{whole}.{digits:0<2}"


def raw_values(w: _Work) -> dict[str, Decimal | None]:
    """Each metric's raw value from an advisor's aggregates."""
    return {key: _decimal(source.millionths(source.key()(w))) for key, source in _SOURCES.items()}


# ============================================================================ compile
def compile_period(period_key: str, actor: User | None = None) -> Assessment:
    """Compile (or recompile a draft of) a month, quarter or year. ``actor`` None is the
    scheduler (or the command line). Raises ValidationFailed (``period``), Forbidden (not the
    finance office), Conflict (published, or another writer holds the period too long)."""
    period = parse_period(period_key)
    if actor is not None and actor.role not in COMPILER_ROLES:
        raise Forbidden(_("Only the finance office may compile assessments."))
    if period.first_day > referral_service.today():
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"period": _("%(period)s has not started yet.", period=period.key)},
        )
    _lock(period)
    existing = _load(period)
    if existing is not None and existing.status == "published":
        raise Conflict(
            _(
                "The assessment for %(period)s is published; it can no longer be compiled.",
                period=period.key,
            )
        )
    rubric = current_rubric()
    spec = _spec_of(rubric)
    assessment_id = _upsert_assessment(period, rubric, actor, existing)

    with custom_plans():  # planned for this period's bounds, never a generic plan
        assessed = _aggregates(period, spec.case_rating)
    computed, metrics = _score(spec, period.kind, [work for _aid, _org, work in assessed])
    # A period compiled for the first time has nothing stored yet: no adjustments, no rows.
    fresh = existing is None
    adjustments = {} if fresh else _adjustment_sums(assessment_id)

    rows = []
    for (aid, org_id, _work), points, text_ in zip(assessed, computed, metrics, strict=True):
        adjustment = adjustments.get(aid, 0)
        rows.append((aid, org_id, points, adjustment, points + adjustment, text_))
    ranked = _write(assessment_id, rows, fresh)
    _rank(assessment_id, rows_ranked=ranked, fresh=fresh)
    db.session.flush()
    return _load(period)


def _upsert_assessment(
    period: periods_module.Period,
    rubric: RubricVersion,
    actor: User | None,
    existing: Assessment | None,
) -> int:
    now = utcnow()
    table = Assessment.__table__
    values = {
        "period": period.key,
        "kind": period.kind,
        "starts_on": period.first_day,
        "ends_on": period.last_day,
        "status": "draft",
        "rubric_id": rubric.id,
        "compiled_at": now,
        "compiled_by_id": actor.id if actor is not None else None,
        "compile_count": 1,
        "version": 1,
    }
    stmt = _insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["period"],
        set_={
            "rubric_id": stmt.excluded.rubric_id,
            "compiled_at": stmt.excluded.compiled_at,
            "compiled_by_id": stmt.excluded.compiled_by_id,
            "compile_count": table.c.compile_count + 1,
            "version": table.c.version + 1,
        },
        where=table.c.status == "draft",
    ).returning(table.c.id)
    assessment_id = db.session.execute(stmt).scalar_one()
    if existing is None:
        audit = {k: v for k, v in values.items() if k != "version"}
        record_bulk("insert", "assessment", [(assessment_id, audit)])
    else:
        changes = {
            "compile_count": [existing.compile_count, existing.compile_count + 1],
            "compiled_at": [existing.compiled_at, now],
        }
        if existing.rubric_id != rubric.id:
            changes["rubric_id"] = [existing.rubric_id, rubric.id]
        if existing.compiled_by_id != values["compiled_by_id"]:
            changes["compiled_by_id"] = [existing.compiled_by_id, values["compiled_by_id"]]
        record_bulk("update", "assessment", [(assessment_id, changes)])
    return assessment_id


def raw_text(raw: Decimal | None) -> str | None:
    """A raw value as stored in a row's ``metrics``: exact to 1e-6, at least two decimals, no
    trailing zeros beyond them ("12.00", "0.833333", "1234.50") — what a ``Money`` column reads."""
    if raw is None:
        return None
    value = raw.quantize(RAW_QUANTUM, context=_CONTEXT).normalize(_CONTEXT) + Decimal("0.00")
    return str(value)


def points_text(points: Decimal) -> str:
    """Points as stored in a row's ``metrics``: two decimals ("7.50"; never "-0.00")."""
    value = points.quantize(CENT, context=_CONTEXT)
    return "0.00" if not value else str(value)


def _score(spec: RubricSpec, kind: str, works: list[_Work]) -> tuple[list[int], list[str]]:
    """For each advisor's aggregates (in order): the computed points (in hundredths) and the
    ``metrics`` JSON text stored on the row — the rubric's rules, with the targets scaled to
    the period and the best raw values among the advisors assessed. A metric with no data that
    the rubric calls "not applicable" is stored as ``[null, null]`` and its weight spread over
    the advisor's other metrics (each scaled by :func:`applicable_factor`).

    Advisors are many and their aggregates repeat (a month's counts are small numbers), so
    each metric's raw value is formed once per distinct set of sums it comes from (a cheaply
    hashed key), and scored and formatted once per distinct raw value (and, where some metric
    does not apply to some advisors, per distinct factor)."""
    scaled = scale_for_period(spec, kind)
    if not scaled.metrics:
        return [0] * len(works), ["{}"] * len(works)
    columns: list[tuple[Any, list[Any], dict[Any, int | None]]] = []
    for m in scaled.metrics:
        source = _SOURCES.get(m.key)
        if source is None:  # a metric this compilation does not compute: no data
            keys: list[Any] = [None] * len(works)
            raw_of: dict[Any, int | None] = {None: None}
        else:
            keys = list(map(source.key(), works))
            raw_of = {key: source.millionths(key) for key in set(keys)}
        columns.append((m, keys, raw_of))
    factors = _factors(scaled, columns)

    point_columns: list[list[int]] = []
    text_columns: list[list[str]] = []
    for m, keys, raw_of in columns:
        head = json.dumps(m.key) + ":["
        rule = rules.get(m.rule)
        best = best_value(_decimal(raw) for raw in set(raw_of.values()))
        left_out = m.may_not_apply
        if factors is None:
            cells = _cells(rule, m, head, set(raw_of.values()), best, ONE, left_out)
            cell_of = {key: cells[raw] for key, raw in raw_of.items()}
            point_columns.append([cell_of[key][0] for key in keys])
            text_columns.append([cell_of[key][1] for key in keys])
            continue
        by_factor: dict[Decimal, set] = {}
        for key, factor in set(zip(keys, factors, strict=True)):
            by_factor.setdefault(factor, set()).add(raw_of[key])
        scored = {
            factor: _cells(rule, m, head, raws, best, factor, left_out)
            for factor, raws in by_factor.items()
        }
        pairs = [scored[f][raw_of[k]] for k, f in zip(keys, factors, strict=True)]
        point_columns.append([cell[0] for cell in pairs])
        text_columns.append([cell[1] for cell in pairs])
    computed = [sum(row) for row in zip(*point_columns, strict=True)]
    texts = ["{" + ",".join(row) + "}" for row in zip(*text_columns, strict=True)]
    return computed, texts


def _cells(rule, m, head: str, raws, best: Decimal, factor: Decimal, left_out: bool) -> dict:
    """Raw value (millionths or None) -> (points in hundredths, the metric's JSON member) for
    one metric at one factor: a missing value of a metric that may not apply is ``null``
    points, else the rule's points times ``factor``."""
    raws = list(raws)
    scorable = [raw for raw in raws if raw is not None or not left_out]
    ctx = rules.ScoreContext(weight=m.weight, cap=m.cap, best=best, factor=factor)
    scored = rule.score_many([_decimal(raw) for raw in scorable], m.params, ctx)
    cells = {}
    for raw, points in zip(scorable, scored, strict=True):
        shown = "null" if raw is None else f'"{millionths_text(raw)}"'
        cells[raw] = (_hundredths(points), f'{head}{shown},"{points_text(points)}"]')
    if left_out and None in raws:
        cells[None] = (0, f"{head}null,null]")
    return cells


def _factors(scaled: RubricSpec, columns) -> list[Decimal] | None:
    """Each advisor's factor (:func:`applicable_factor`) when a metric does not apply to some
    of them; None when every metric applies to everyone (factor 1 for all)."""
    optional = [
        (m.key, {key for key, raw in raw_of.items() if raw is None}, keys)
        for m, keys, raw_of in columns
        if m.may_not_apply and None in raw_of.values()
    ]
    if not optional:
        return None
    masks = zip(*([key in missing for key in keys] for _k, missing, keys in optional), strict=True)
    names = [name for name, _missing, _keys in optional]
    factor_of: dict[tuple[bool, ...], Decimal] = {}
    out = []
    for mask in masks:
        factor = factor_of.get(mask)
        if factor is None:
            left_out = [name for name, out_ in zip(names, mask, strict=True) if out_]
            factor = factor_of[mask] = applicable_factor(scaled, left_out) or ONE
        out.append(factor)
    if set(factor_of.values()) <= {ONE}:
        return None
    return out


def _adjustment_sums(assessment_id: int) -> dict[int, int]:
    """advisor id -> the sum of the advisor's adjustments (those not withdrawn), in
    hundredths."""
    return {
        aid: _hundredths(total)
        for aid, total in db.session.execute(
            select(AssessmentAdjustment.advisor_id, func.sum(AssessmentAdjustment.points))
            .where(
                AssessmentAdjustment.assessment_id == assessment_id,
                AssessmentAdjustment.withdrawn_at.is_(None),
            )
            .group_by(AssessmentAdjustment.advisor_id)
        )
    }


_ROW_COLUMNS = ("advisor_id", "org_id", "computed", "adjustment", "score", "metrics")


def _write(assessment_id: int, rows: list[tuple], fresh: bool = False) -> bool:
    """Write the rows — (advisor_id, org_id, computed, adjustment, score, metrics JSON text),
    the points in hundredths —: what is new or changed is upserted, what is unchanged is not
    touched (a recompilation on the same data writes nothing), and the rows of advisors no
    longer assessed are deleted. ``fresh``: the assessment was just created (nothing stored to
    compare with). True when the rows were all new and written with their final ranks (a
    first compile on PostgreSQL)."""
    if fresh and is_postgresql():
        _copy_ranked(assessment_id, rows)
        return True
    if fresh:
        changed, stale, had_rows = [(assessment_id, *row) for row in rows], [], False
    else:
        changed, stale, had_rows = _changes(assessment_id, rows)
    for part in chunks(stale):
        db.session.execute(
            delete(AssessmentRow).where(
                AssessmentRow.assessment_id == assessment_id, AssessmentRow.advisor_id.in_(part)
            )
        )
    _upsert(changed)
    return is_postgresql() and not had_rows


# The ranks: overall, and within the institution (none without one). Equal scores share a rank
# and the next rank skips (1, 2, 2, 4).
_WINDOW_RANKS = (
    "rank() OVER (ORDER BY score DESC) AS overall, "
    "CASE WHEN org_id IS NULL THEN NULL "
    "ELSE rank() OVER (PARTITION BY org_id ORDER BY score DESC) END AS within"
)


def _copy_ranked(assessment_id: int, rows: list[tuple]) -> None:
    """A first compile's rows on PostgreSQL, all new: their ranks by the window functions (one
    SELECT over the rows' scores, the same definitions as :data:`_RANK_ROWS`), then one COPY
    of the rows with their ranks — about half the time of an ``INSERT … SELECT`` of 2,000
    rows."""
    scores = json.dumps([[aid, org_id, score] for aid, org_id, _c, _a, score, _m in rows])
    ranks = {
        aid: (overall, within)
        for aid, overall, within in db.session.execute(
            text(
                f"SELECT advisor_id, {_WINDOW_RANKS} FROM ("  # noqa: S608 (constant SQL)
                "SELECT (r->>0)::integer AS advisor_id, (r->>1)::integer AS org_id, "
                "(r->>2)::bigint AS score FROM json_array_elements(CAST(:scores AS json)) AS r"
                ") AS t"
            ),
            {"scores": scores},
        )
    }
    copy_stored(
        AssessmentRow.__table__,
        ("assessment_id", *_ROW_COLUMNS, "rank", "institution_rank"),
        ((assessment_id, *row, *ranks[row[0]]) for row in rows),
    )


def _hundredths(value: Decimal) -> int:
    """Points as their column stores them (an integer of hundredths), computed exactly."""
    return int(value.scaleb(2).to_integral_value())


def _changes(assessment_id: int, rows: list[tuple]) -> tuple[list[tuple], list[int], bool]:
    """(the rows that are new or differ from what is stored, as
    (assessment_id, advisor_id, org_id, computed, adjustment, score, metrics), the advisors
    stored but no longer assessed, whether any row was stored). The stored rows are read once
    as stored (``metrics`` as its text) and compared without parsing them."""
    existing = {
        r[0]: tuple(r[1:])
        for r in db.session.execute(
            text(
                "SELECT advisor_id, org_id, computed, adjustment, score, "
                "CAST(metrics AS TEXT) FROM assessment_row WHERE assessment_id = :a"
            ),
            {"a": assessment_id},
        )
    }
    had_rows = bool(existing)
    changed = []
    for aid, *stored in rows:
        if existing.pop(aid, None) != tuple(stored):
            changed.append((assessment_id, aid, *stored))
    return changed, list(existing), had_rows


def _upsert(rows: list[tuple]) -> None:
    """INSERT … ON CONFLICT (assessment_id, advisor_id) DO UPDATE the values where they differ,
    for rows already in their stored form (:func:`_changes`): on SQLite one executemany, on
    PostgreSQL one statement reading the rows from JSON arrays."""
    if not rows:
        return
    names = ("assessment_id", *_ROW_COLUMNS)
    values = _ROW_COLUMNS[1:]
    columns = ", ".join(names)
    updates = ", ".join(f"{c} = excluded.{c}" for c in values)
    conflict = f"ON CONFLICT (assessment_id, advisor_id) DO UPDATE SET {updates}"
    if not is_postgresql():
        differs = " OR ".join(f"NOT (assessment_row.{c} IS excluded.{c})" for c in values)
        statement = (
            f"INSERT INTO assessment_row ({columns}) "  # noqa: S608 (names are the model's)
            f"VALUES ({', '.join('?' for _ in names)}) {conflict} WHERE {differs}"
        )
        connection = db.session.connection()
        for part in chunks(rows, 5000):
            connection.exec_driver_sql(statement, list(part))
        return
    differs = " OR ".join(f"assessment_row.{c} IS DISTINCT FROM excluded.{c}" for c in values[:-1])
    differs += " OR CAST(assessment_row.metrics AS TEXT) <> CAST(excluded.metrics AS TEXT)"
    # The rows travel as two JSON arrays read side by side (ROWS FROM): the scalars as arrays
    # taken by position, and ``metrics`` spliced in as the JSON text it is (not a string
    # holding it), so each comes back exactly as written. One statement, much cheaper than
    # binding 2,000 rows; the small arrays keep ``->>`` from re-reading the metrics.
    scalars = (
        "["
        + ",".join(
            f"[{a},{aid},{'null' if org is None else org},{c},{adj},{sc}]"
            for a, aid, org, c, adj, sc, _m in rows
        )
        + "]"
    )
    metrics = "[" + ",".join(row[-1] for row in rows) + "]"
    # A new row gets its ranks among the rows written, by the same window functions as
    # _RANK_ROWS: on a first compile (every row new) they are the final ranks, and _RANK_ROWS
    # then changes nothing instead of rewriting every row. A row already stored keeps its ranks
    # here; _RANK_ROWS settles them.
    statement = (
        f"INSERT INTO assessment_row ({columns}, rank, institution_rank) "  # noqa: S608
        f"SELECT {columns}, {_WINDOW_RANKS} "
        "FROM (SELECT (r->>0)::integer AS assessment_id, (r->>1)::integer AS advisor_id, "
        "(r->>2)::integer AS org_id, (r->>3)::bigint AS computed, "
        "(r->>4)::bigint AS adjustment, (r->>5)::bigint AS score, m AS metrics "
        "FROM ROWS FROM (json_array_elements(CAST(:scalars AS json)), "
        "json_array_elements(CAST(:metrics AS json))) AS x(r, m)) AS t "
        f"{conflict} WHERE {differs}"
    )
    db.session.execute(text(statement), {"scalars": scalars, "metrics": metrics})


_RANK_ROWS = text(
    f"""
    UPDATE assessment_row
    SET rank = ranked.overall, institution_rank = ranked.within
    FROM (
        SELECT id, {_WINDOW_RANKS}
        FROM assessment_row
        WHERE assessment_id = :assessment_id
    ) AS ranked
    WHERE assessment_row.id = ranked.id
      AND (assessment_row.rank IS NULL OR assessment_row.rank <> ranked.overall
           OR COALESCE(assessment_row.institution_rank, -1) <> COALESCE(ranked.within, -1))
    """  # noqa: S608 (constant SQL)
)

# Average in hundredths of a point, rounded half away from zero with integer arithmetic (exact
# on both databases: the points are stored as integers of hundredths).
_UPSERT_INSTITUTIONS = text(
    """
    INSERT INTO assessment_institution (assessment_id, org_id, advisors, total, average)
    SELECT CAST(:assessment_id AS INTEGER), t.org_id, t.n, t.s,
           CASE WHEN t.s >= 0 THEN (2 * t.s + t.n) / (2 * t.n)
                ELSE -((t.n - 2 * t.s) / (2 * t.n)) END
    FROM (
        SELECT org_id, COUNT(*) AS n, CAST(SUM(score) AS BIGINT) AS s
        FROM assessment_row
        WHERE assessment_id = :assessment_id AND org_id IS NOT NULL
        GROUP BY org_id
    ) AS t
    WHERE true
    ON CONFLICT (assessment_id, org_id) DO UPDATE
    SET advisors = excluded.advisors, total = excluded.total, average = excluded.average
    WHERE assessment_institution.advisors <> excluded.advisors
       OR assessment_institution.total <> excluded.total
       OR assessment_institution.average <> excluded.average
    """
)

_DELETE_INSTITUTIONS = text(
    """
    DELETE FROM assessment_institution
    WHERE assessment_id = :assessment_id
      AND org_id NOT IN (
          SELECT org_id FROM assessment_row
          WHERE assessment_id = :assessment_id AND org_id IS NOT NULL
      )
    """
)

_RANK_INSTITUTIONS = text(
    """
    UPDATE assessment_institution
    SET rank = ranked.overall
    FROM (
        SELECT id, rank() OVER (ORDER BY average DESC) AS overall
        FROM assessment_institution
        WHERE assessment_id = :assessment_id
    ) AS ranked
    WHERE assessment_institution.id = ranked.id
      AND (assessment_institution.rank IS NULL OR assessment_institution.rank <> ranked.overall)
    """
)


def _rank(assessment_id: int, rows_ranked: bool = False, fresh: bool = False) -> None:
    """Ranks (overall and within the institution), the institutions' lines and their ranks —
    all in SQL, writing only what changed. ``rows_ranked``: the rows were all written with
    their ranks (nothing for the first statement to change, so it is not run); ``fresh``: the
    assessment was just created (no institution lines to remove)."""
    params = {"assessment_id": assessment_id}
    if not rows_ranked:
        db.session.execute(_RANK_ROWS, params)
    db.session.execute(_UPSERT_INSTITUTIONS, params)
    if not fresh:
        db.session.execute(_DELETE_INSTITUTIONS, params)
    db.session.execute(_RANK_INSTITUTIONS, params)


# ============================================================================ review
def _draft_for_change(actor: User | None, period: periods_module.Period, roles: Iterable[str]):
    if actor is not None and actor.role not in roles:
        raise Forbidden(_("Your role may not change assessments."))
    _lock(period)
    assessment = _load(period)
    if assessment is None:
        raise NotFound(_("The assessment for %(period)s has not been compiled.", period=period.key))
    if assessment.status == "published":
        raise Conflict(
            _(
                "The assessment for %(period)s is published and can no longer be changed.",
                period=period.key,
            )
        )
    return assessment


def publish(
    actor: User | None,
    period_key: str,
    expected_version: int | None = None,
    doc_number: Any = None,
    doc_prefix: str | None = None,
) -> Assessment:
    """Publish a draft (the finance office; ``actor`` None: the command line). It is frozen from
    then on; the advisors assessed and their institutions' liaisons are notified.

    The notice gets its document number (文号) now, kept from then on: ``doc_number`` as the
    office's register gives it (a whole number from 1, unique in the year), or — left out —
    the next after the highest of the year's notices; the year is the year of publishing
    (Asia/Shanghai) and the text ``{doc_prefix}〔{year}〕{number}号`` (``doc_prefix`` None: the
    configured ``NOTICE_DOC_PREFIX``)."""
    period = parse_period(period_key)
    if actor is not None and actor.role not in COMPILER_ROLES:
        raise Forbidden(_("Only the finance office may publish assessments."))
    seq = _doc_number(doc_number)
    _lock(period)
    assessment = _load(period)
    if assessment is None:
        raise NotFound(_("The assessment for %(period)s has not been compiled.", period=period.key))
    if assessment.status == "published":
        raise Conflict(_("The assessment for %(period)s is already published.", period=period.key))
    if expected_version is not None and expected_version != assessment.version:
        raise Conflict(
            _("The assessment was recompiled or changed since you opened it; review it again.")
        )
    year = referral_service.today().year
    _lock_writers(
        "UPDATE assessment SET compile_count = compile_count WHERE id = 0", {}, NOTICE_LOCK_KEY
    )
    taken = db.session.execute(
        select(Assessment.notice_seq, Assessment.period).where(Assessment.notice_year == year)
    ).all()
    used = dict(taken)
    if seq is None:
        seq = max(used, default=0) + 1
    elif seq in used:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "doc_number": _(
                    "No. %(n)s of %(year)s is already the notice for %(period)s.",
                    n=seq,
                    year=year,
                    period=used[seq],
                )
            },
        )
    assessment.status = "published"
    assessment.published_at = utcnow()
    assessment.published_by_id = actor.id if actor is not None else None
    assessment.notice_year = year
    assessment.notice_seq = seq
    if doc_prefix is None:
        doc_prefix = current_app.config.get("NOTICE_DOC_PREFIX", "")
    assessment.notice_number = notice_number_text(doc_prefix, year, seq)
    db.session.flush()

    people = db.session.execute(
        select(AssessmentRow.advisor_id, AssessmentRow.org_id).where(
            AssessmentRow.assessment_id == assessment.id
        )
    ).all()
    recipients = {aid for aid, _org in people}
    org_ids = sorted({org for _aid, org in people if org is not None})
    for part in chunks(org_ids):
        recipients.update(
            db.session.execute(
                select(User.id).where(
                    User.role == "liaison", User.active.is_(True), User.org_id.in_(part)
                )
            ).scalars()
        )
    notify(recipients, "assessment_published", params={"period": period.key})
    return assessment


DOC_NUMBER_MAX = 99999
NOTICE_LOCK_KEY = 1  # the notices' numbering (period keys are 200001 and up)


def _doc_number(raw: Any) -> int | None:
    """A document number as given (None: the next one), or ValidationFailed on ``doc_number``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    value = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        value = int(raw.strip()) if len(raw.strip()) <= 9 else None
    if value is None or not 1 <= value <= DOC_NUMBER_MAX:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "doc_number": _(
                    "Enter the document number as a whole number from 1 to %(max)s, or leave "
                    "it empty for the next one.",
                    max=DOC_NUMBER_MAX,
                )
            },
        )
    return value


def notice_number_text(prefix: str | None, year: int, seq: int) -> str:
    """The document number as written on a notice: 江金办〔2026〕12号 (the year in the
    hexagonal brackets 〔〕, never parentheses; no leading zeros)."""
    return f"{(prefix or '').strip()}〔{year}〕{seq}号"


def next_doc_number(year: int | None = None) -> int:
    """The number the next notice published this year (Asia/Shanghai) would get."""
    year = referral_service.today().year if year is None else year
    highest = db.session.scalar(
        select(func.max(Assessment.notice_seq)).where(Assessment.notice_year == year)
    )
    return (highest or 0) + 1


def _points(raw: Any) -> Decimal:
    if isinstance(raw, bool) or raw is None:
        raise ValueError
    if isinstance(raw, float):
        raw = repr(raw)
    value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    if not value.is_finite():
        raise ValueError
    return value


def adjustment_bound(assessment: Assessment) -> Decimal:
    """The most points adjustments may move a score in this assessment, either way: its
    rubric version's ``adjustment_bound``."""
    version = db.session.get(RubricVersion, assessment.rubric_id)
    return _spec_of(version).adjustment_bound if version is not None else MAX_ADJUSTMENT


def _fmt_points(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def add_adjustment(
    actor: User, period_key: str, advisor_id: int, points: Any, reason: str | None
) -> AssessmentAdjustment:
    """An adjustment to one advisor's score in a draft (the finance office), with its reason:
    ``points`` not 0, at most two decimals, within the rubric's bound either way
    (``adjustment_bound``, 10 by default) — and so must be the sum of the advisor's
    adjustments with it (those not withdrawn). The row's score and the ranks follow at
    once."""
    period = parse_period(period_key)
    if actor is None or actor.role not in COMPILER_ROLES:
        raise Forbidden(_("Only the finance office may adjust scores."))
    assessment = _draft_for_change(actor, period, COMPILER_ROLES)
    bound = adjustment_bound(assessment)
    errors: dict[str, str] = {}
    try:
        value = _points(points)
    except (ValueError, TypeError, InvalidOperation):
        value = None
        errors["points"] = _("Enter the points as a number, such as 2 or -1.5.")
    if value is not None:
        if value == 0:
            errors["points"] = _("An adjustment of 0 points changes nothing.")
        elif not -bound <= value <= bound:
            errors["points"] = _(
                "Points: an adjustment is at most %(bound)s points either way (the rubric's "
                "bound, from -%(bound)s to +%(bound)s).",
                bound=_fmt_points(bound),
            )
        elif value != value.quantize(CENT):
            errors["points"] = _("At most two decimal places.")
    reason = clean_text(reason) if isinstance(reason, str) else ""  # without control characters
    if not reason:
        errors["reason"] = _("Give the reason for the adjustment.")
    elif len(reason) > REASON_MAX:
        errors["reason"] = _("At most %(n)s characters.", n=REASON_MAX)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    if isinstance(advisor_id, bool) or not isinstance(advisor_id, int):
        raise NotFound(_("This advisor is not in the assessment."))
    row_exists = db.session.execute(
        select(AssessmentRow.id).where(
            AssessmentRow.assessment_id == assessment.id, AssessmentRow.advisor_id == advisor_id
        )
    ).first()
    if row_exists is None:
        raise NotFound(_("This advisor is not in the assessment."))
    before = db.session.scalar(
        select(func.coalesce(func.sum(AssessmentAdjustment.points), 0)).where(
            AssessmentAdjustment.assessment_id == assessment.id,
            AssessmentAdjustment.advisor_id == advisor_id,
            AssessmentAdjustment.withdrawn_at.is_(None),
        )
    )
    after = Decimal(before or 0) + value.quantize(CENT)
    if not -bound <= after <= bound:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "points": _(
                    "Points: the adjustments to one advisor add up to at most %(bound)s points "
                    "either way (the rubric's bound); with this one they would come to "
                    "%(total)s.",
                    bound=_fmt_points(bound),
                    total=_fmt_points(after),
                )
            },
        )
    adjustment = AssessmentAdjustment(
        assessment_id=assessment.id,
        advisor_id=advisor_id,
        points=value.quantize(CENT),
        reason=reason,
        created_at=utcnow(),
        created_by_id=actor.id,
    )
    db.session.add(adjustment)
    db.session.flush()
    _apply_adjustments(assessment.id, advisor_id)
    return adjustment


def _apply_adjustments(assessment_id: int, advisor_id: int) -> None:
    """The advisor's row takes the sum of their adjustments not withdrawn; the ranks follow."""
    total = (
        select(func.coalesce(func.sum(AssessmentAdjustment.points), 0))
        .where(
            AssessmentAdjustment.assessment_id == assessment_id,
            AssessmentAdjustment.advisor_id == advisor_id,
            AssessmentAdjustment.withdrawn_at.is_(None),
        )
        .scalar_subquery()
    )
    db.session.execute(
        AssessmentRow.__table__.update()
        .where(
            AssessmentRow.__table__.c.assessment_id == assessment_id,
            AssessmentRow.__table__.c.advisor_id == advisor_id,
        )
        .values(
            adjustment=total,
            score=AssessmentRow.__table__.c.computed + total,
        )
    )
    _rank(assessment_id)


def withdraw_adjustment(actor: User, period_key: str, adjustment_id: Any) -> AssessmentAdjustment:
    """Withdraw an adjustment while the period is a draft (the finance office): it is kept,
    marked with who withdrew it and when (audited), and no longer counts; the advisor's score
    and the ranks follow at once. NotFound for an adjustment not in this period, Conflict once
    the period is published or when it was already withdrawn."""
    period = parse_period(period_key)
    if actor is None or actor.role not in COMPILER_ROLES:
        raise Forbidden(_("Only the finance office may withdraw adjustments."))
    assessment = _draft_for_change(actor, period, COMPILER_ROLES)
    adjustment = None
    if isinstance(adjustment_id, int) and not isinstance(adjustment_id, bool):
        adjustment = db.session.execute(
            select(AssessmentAdjustment).where(
                AssessmentAdjustment.id == adjustment_id,
                AssessmentAdjustment.assessment_id == assessment.id,
            )
        ).scalar_one_or_none()
    if adjustment is None:
        raise NotFound(_("This adjustment is not in the assessment."))
    if adjustment.withdrawn_at is not None:
        raise Conflict(_("This adjustment was already withdrawn."))
    adjustment.withdrawn_at = utcnow()
    adjustment.withdrawn_by_id = actor.id
    db.session.flush()
    _apply_adjustments(assessment.id, adjustment.advisor_id)
    return adjustment


def add_comment(
    actor: User, period_key: str, body: str | None, advisor_id: int | None = None
) -> AssessmentComment:
    """A comment on a draft (the central bank or the finance office), on the whole period or
    on one advisor's row."""
    period = parse_period(period_key)
    errors: dict[str, str] = {}
    body = clean_text(body) if isinstance(body, str) else ""  # without control characters
    if not body:
        errors["body"] = _("Write the comment.")
    elif len(body) > COMMENT_MAX:
        errors["body"] = _("At most %(n)s characters.", n=COMMENT_MAX)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    if actor is None:
        raise Forbidden(_("Your role may not comment on assessments."))
    if actor.role not in COMMENT_ROLES:
        raise Forbidden(_("Your role may not comment on assessments."))
    assessment = _load(period)
    if assessment is None:
        raise NotFound(_("The assessment for %(period)s has not been compiled.", period=period.key))
    if assessment.status == "published":
        raise Conflict(
            _("Comments are closed: the assessment for %(period)s is published.", period=period.key)
        )
    if advisor_id is not None:
        row = None
        if isinstance(advisor_id, int) and not isinstance(advisor_id, bool):
            row = db.session.execute(
                select(AssessmentRow.id).where(
                    AssessmentRow.assessment_id == assessment.id,
                    AssessmentRow.advisor_id == advisor_id,
                )
            ).first()
        if row is None:
            raise ValidationFailed(
                _("Please correct the marked fields."),
                {"advisor_id": _("This advisor is not in the assessment.")},
            )
    comment = AssessmentComment(
        assessment_id=assessment.id,
        advisor_id=advisor_id,
        author_id=actor.id,
        body=body,
        created_at=utcnow(),
    )
    db.session.add(comment)
    db.session.flush()
    return comment


# ============================================================================ reading
@dataclass(frozen=True)
class MetricValue:
    raw: Decimal | None
    points: Decimal | None  # None: the metric did not apply (no data, "not applicable")

    @property
    def applicable(self) -> bool:
        return self.points is not None


def metric_values(stored: dict | None) -> dict[str, MetricValue]:
    """A row's stored ``metrics`` (:func:`_score`'s JSON, parsed: {key: [raw, points]}) as
    ``MetricValue``s. The rule of each is the metric's in the period's rubric version."""
    return {
        key: MetricValue(
            raw=None if raw is None else Decimal(raw),
            points=None if points is None else Decimal(points),
        )
        for key, (raw, points) in (stored or {}).items()
    }


@dataclass(frozen=True)
class AdjustmentLine:
    id: int
    advisor_id: int
    points: Decimal
    reason: str
    created_at: datetime
    created_by: str  # display name
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None  # display name

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


@dataclass
class ViewRow:
    advisor_id: int
    username: str
    name: str
    org_id: int | None
    org_code: str | None
    org_name: str | None
    computed: Decimal
    adjustment: Decimal
    score: Decimal
    rank: int | None
    institution_rank: int | None
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    adjustments: list[AdjustmentLine] = field(default_factory=list)  # withdrawn ones too

    @property
    def active_adjustments(self) -> list[AdjustmentLine]:
        """The adjustments that count (not withdrawn)."""
        return [a for a in self.adjustments if a.withdrawn_at is None]

    @property
    def not_applicable(self) -> list[str]:
        """The metrics that did not apply to the advisor (no data, "not applicable")."""
        return [key for key, m in self.metrics.items() if m.points is None]


@dataclass(frozen=True)
class ViewInstitution:
    org_id: int
    code: str
    name: str
    advisors: int
    total: Decimal
    average: Decimal
    rank: int | None


@dataclass(frozen=True)
class ViewComment:
    id: int
    advisor_id: int | None
    advisor_name: str | None
    author_name: str
    author_role: str
    body: str
    created_at: datetime


@dataclass
class AssessmentView:
    """What one user may see of a period's assessment."""

    assessment: Assessment
    period: periods_module.Period
    rubric_number: int
    spec: RubricSpec
    rows: list[ViewRow]
    institutions: list[ViewInstitution]
    comments: list[ViewComment]
    sees_all: bool  # office roles: every row, drafts too

    @property
    def status(self) -> str:
        return self.assessment.status

    @property
    def is_draft(self) -> bool:
        return self.assessment.status == "draft"

    def row_for(self, advisor_id: int) -> ViewRow | None:
        return next((r for r in self.rows if r.advisor_id == advisor_id), None)

    @property
    def in_progress(self) -> bool:
        """Compiled before the period ended: the figures change until it ends and the period is
        compiled again."""
        return compiled_in_progress(self.assessment)

    @property
    def period_open(self) -> bool:
        """The period has not ended yet (it contains today, Asia/Shanghai)."""
        return referral_service.today() <= self.period.last_day


def compiled_in_progress(assessment: Assessment) -> bool:
    """True when the assessment was compiled on or before its period's last day (Asia/Shanghai):
    the current, unfinished period — its figures are not final."""
    compiled = _shanghai_day(assessment.compiled_at)
    return compiled is not None and compiled <= assessment.ends_on


def row_scope(actor: User, assessment: Assessment):
    """The condition on AssessmentRow for what ``actor`` may see, or an error."""
    if actor is None or actor.role == "bureau":
        raise Forbidden(_("Your role may not see assessments."))
    if actor.role in VIEW_ALL_ROLES:
        return true()
    if assessment.status != "published":
        raise NotFound(_("The page or record was not found."))
    if actor.role == "advisor":
        return AssessmentRow.advisor_id == actor.id
    if actor.role == "liaison" and actor.org_id is not None:
        return AssessmentRow.org_id == actor.org_id
    raise Forbidden(_("Your role may not see assessments."))


def period_head(
    actor: User, period_key: str
) -> tuple[periods_module.Period, Assessment, RubricVersion]:
    """The period, its assessment and rubric version, for a caller who may see assessments."""
    if actor is None or actor.role == "bureau":
        raise Forbidden(_("Your role may not see assessments."))
    period = parse_period(period_key)
    found = db.session.execute(
        select(Assessment, RubricVersion)
        .join(RubricVersion, RubricVersion.id == Assessment.rubric_id)
        .where(Assessment.period == period.key)
    ).first()
    if found is None:
        raise NotFound(_("The page or record was not found."))
    return period, found[0], found[1]


# Built once: an alias is costly to construct, and a statement using the same one caches.
_WRITER, _SUBJECT, _WITHDRAWER = aliased(User), aliased(User), aliased(User)


def adjustment_line(
    adj: AssessmentAdjustment, by: str, withdrawn_by: str | None = None
) -> AdjustmentLine:
    return AdjustmentLine(
        id=adj.id,
        advisor_id=adj.advisor_id,
        points=adj.points,
        reason=adj.reason,
        created_at=adj.created_at,
        created_by=by,
        withdrawn_at=adj.withdrawn_at,
        withdrawn_by=withdrawn_by,
    )


def view_institutions(assessment_id: int, actor: User, sees_all: bool) -> list[ViewInstitution]:
    """The institutions' lines of an assessment in rank order: all of them for the office
    roles (``sees_all``), else the caller's institution's only."""
    stmt = (
        select(AssessmentInstitution, Organisation.code, Organisation.name)
        .join(Organisation, Organisation.id == AssessmentInstitution.org_id)
        .where(AssessmentInstitution.assessment_id == assessment_id)
        .order_by(AssessmentInstitution.rank, Organisation.code)
    )
    if not sees_all:
        stmt = stmt.where(AssessmentInstitution.org_id == actor.org_id if actor.org_id else false())
    return [
        ViewInstitution(
            org_id=i.org_id,
            code=code,
            name=name,
            advisors=i.advisors,
            total=i.total,
            average=i.average,
            rank=i.rank,
        )
        for i, code, name in db.session.execute(stmt)
    ]


def view_comments(assessment_id: int, advisor_id: int | None = None) -> list[ViewComment]:
    """The comments on an assessment (``advisor_id``: those on that advisor), oldest first —
    for the office roles only: the caller checks."""
    cond = true() if advisor_id is None else AssessmentComment.advisor_id == advisor_id
    writer, subject = _WRITER, _SUBJECT
    return [
        ViewComment(
            id=c.id,
            advisor_id=c.advisor_id,
            advisor_name=advisor_name,
            author_name=author_name,
            author_role=author_role,
            body=c.body,
            created_at=c.created_at,
        )
        for c, author_name, author_role, advisor_name in db.session.execute(
            select(AssessmentComment, writer.display_name, writer.role, subject.display_name)
            .join(writer, writer.id == AssessmentComment.author_id)
            .outerjoin(subject, subject.id == AssessmentComment.advisor_id)
            .where(AssessmentComment.assessment_id == assessment_id, cond)
            .order_by(AssessmentComment.created_at, AssessmentComment.id)
        )
    ]


def get_view(actor: User, period_key: str) -> AssessmentView:
    """The period's assessment as ``actor`` may see it, in a fixed number of queries (six)
    whatever the number of rows. Rows are in rank order."""
    period, assessment, rubric = period_head(actor, period_key)
    scope = row_scope(actor, assessment)
    sees_all = actor.role in VIEW_ALL_ROLES
    aid = assessment.id

    rows: list[ViewRow] = []
    by_advisor: dict[int, ViewRow] = {}
    for r in db.session.execute(
        select(
            AssessmentRow.advisor_id,
            AssessmentRow.org_id,
            AssessmentRow.computed,
            AssessmentRow.adjustment,
            AssessmentRow.score,
            AssessmentRow.rank,
            AssessmentRow.institution_rank,
            AssessmentRow.metrics,
            User.username,
            User.display_name,
            Organisation.code,
            Organisation.name,
        )
        .join(User, User.id == AssessmentRow.advisor_id)
        .outerjoin(Organisation, Organisation.id == AssessmentRow.org_id)
        .where(AssessmentRow.assessment_id == aid, scope)
        .order_by(AssessmentRow.rank, User.username)
    ):
        row = ViewRow(
            advisor_id=r.advisor_id,
            username=r.username,
            name=r.display_name,
            org_id=r.org_id,
            org_code=r.code,
            org_name=r.name,
            computed=r.computed,
            adjustment=r.adjustment,
            score=r.score,
            rank=r.rank,
            institution_rank=r.institution_rank,
            metrics=metric_values(r.metrics),
        )
        rows.append(row)
        by_advisor[row.advisor_id] = row
    if not sees_all and not rows:
        raise NotFound(_("The page or record was not found."))

    author, withdrawer = _WRITER, _WITHDRAWER
    adj_stmt = (
        select(AssessmentAdjustment, author.display_name, withdrawer.display_name)
        .join(author, author.id == AssessmentAdjustment.created_by_id)
        .outerjoin(withdrawer, withdrawer.id == AssessmentAdjustment.withdrawn_by_id)
        .where(AssessmentAdjustment.assessment_id == aid)
        .order_by(AssessmentAdjustment.created_at, AssessmentAdjustment.id)
    )
    if not sees_all:
        adj_stmt = adj_stmt.where(
            AssessmentAdjustment.advisor_id.in_(
                select(AssessmentRow.advisor_id).where(AssessmentRow.assessment_id == aid, scope)
            )
        )
    for adj, by, withdrawn_by in db.session.execute(adj_stmt):
        row = by_advisor.get(adj.advisor_id)
        if row is not None:
            row.adjustments.append(adjustment_line(adj, by, withdrawn_by))

    institutions = view_institutions(aid, actor, sees_all)
    comments = view_comments(aid) if sees_all else []
    return AssessmentView(
        assessment=assessment,
        period=period,
        rubric_number=rubric.number,
        spec=_spec_of(rubric),
        rows=rows,
        institutions=institutions,
        comments=comments,
        sees_all=sees_all,
    )


class PeriodSummary(NamedTuple):
    period: str
    status: str
    compiled_at: datetime
    rubric_number: int


def periods(actor: User) -> list[PeriodSummary]:
    """The periods ``actor`` may open, latest first (a month before the quarter and year
    ending with it): every compiled period for the office roles, the published ones with a row
    of theirs for advisors and liaisons."""
    if actor is None or actor.role == "bureau":
        raise Forbidden(_("Your role may not see assessments."))
    stmt = select(
        Assessment.period, Assessment.status, Assessment.compiled_at, RubricVersion.number
    ).join(RubricVersion, RubricVersion.id == Assessment.rubric_id)
    if actor.role not in VIEW_ALL_ROLES:
        # An institution has a line in a period exactly when it has rows in it.
        if actor.role == "advisor":
            mine = exists().where(
                AssessmentRow.assessment_id == Assessment.id,
                AssessmentRow.advisor_id == actor.id,
            )
        elif actor.role == "liaison" and actor.org_id is not None:
            mine = exists().where(
                AssessmentInstitution.assessment_id == Assessment.id,
                AssessmentInstitution.org_id == actor.org_id,
            )
        else:
            return []
        stmt = stmt.where(Assessment.status == "published", mine)
    stmt = stmt.order_by(Assessment.ends_on.desc(), Assessment.starts_on.desc())
    return [PeriodSummary(*row) for row in db.session.execute(stmt)]


# ============================================================================ breakdown
def _shanghai_day(at: datetime | None) -> date | None:
    return at.astimezone(SHANGHAI).date() if at is not None else None


def _capped(stmt, order) -> tuple[list, int]:
    """Up to RECORD_CAP rows of ``stmt`` and the total it would give (one query)."""
    rows = db.session.execute(
        stmt.add_columns(func.count().over().label("total_rows")).order_by(*order).limit(RECORD_CAP)
    ).all()
    return rows, (rows[0].total_rows if rows else 0)


def breakdown(actor: User, period_key: str, advisor_id: int) -> list[dict]:
    """What produced each metric of one advisor's row: per metric ``{key, label, source, raw,
    points, applicable, no_data, weight, effective_weight, cap, rule, rule_label, records,
    total}`` (``applicable`` False and ``points`` None: no data, and the rubric says "not
    applicable" — its weight is spread over the others, whose ``effective_weight`` says how
    much each then counts); ``records`` are the visits,
    cases, financing applications, risk reports and ratings that counted (each
    ``{kind, id, referral_id, date, firm, counted, value, note}``), at most 200 per metric,
    ``total`` how many there are. Same scope as :func:`get_view`; records go through the
    record scopes (a liaison does not see the advisor's risk reports, only their count)."""
    period, assessment, rubric = period_head(actor, period_key)
    scope = row_scope(actor, assessment)
    if isinstance(advisor_id, bool) or not isinstance(advisor_id, int):
        raise NotFound(_("The page or record was not found."))
    row = db.session.execute(
        select(AssessmentRow.metrics).where(
            AssessmentRow.assessment_id == assessment.id,
            AssessmentRow.advisor_id == advisor_id,
            scope,
        )
    ).first()
    if row is None:
        raise NotFound(_("The page or record was not found."))
    spec = _spec_of(rubric)
    stored = metric_values(row.metrics)
    records = _Records(actor, period, advisor_id, spec.case_rating)
    scaled = scale_for_period(spec, period.kind)
    left_out = [key for key, value in stored.items() if value.points is None]
    factor = applicable_factor(scaled, left_out)
    out = []
    for m in scaled.metrics:
        value = stored.get(m.key)
        applicable = value is None or value.points is not None
        effective = None
        if applicable and factor is not None:
            effective = (m.weight * factor).quantize(CENT, context=_CONTEXT)
        items, total = records.for_metric(m.key)
        try:
            rule_label = str(rules.get(m.rule).label)
        except rules.UnknownRuleError:
            rule_label = m.rule
        out.append(
            {
                "key": m.key,
                "label": m.display_label(),
                "source": m.display_source(),
                "raw": value.raw if value else None,
                "points": value.points if value else None,
                "applicable": applicable,
                "no_data": m.no_data,
                "weight": m.weight,
                # The weight it counts with: the weights of metrics that do not apply are
                # spread over those that do (the same as the weight when all apply).
                "effective_weight": effective,
                "cap": m.cap,
                "rule": m.rule,
                "rule_label": rule_label,
                "params": dict(m.params),
                "records": items,
                "total": total,
            }
        )
    return out


class _Records:
    """The records behind one advisor's metrics in a period, through the record scopes."""

    def __init__(
        self,
        actor: User,
        period: periods_module.Period,
        advisor_id: int,
        case_rating: str = FIRM_FIRST,
    ):
        self.actor = actor
        self.period = period
        self.advisor_id = advisor_id
        self.case_rating = case_rating
        self.first, self.last = period.first_day, period.last_day
        self.start, self.end = period.utc_bounds()
        self.role_labels = visit_role_labels()

    def for_metric(self, key: str) -> tuple[list[dict], int]:
        method = getattr(self, f"_{key}", None)
        if method is None:
            return [], 0
        return method()

    # --- visits
    def _visits(self, *conditions, counted=None, value=None, note=None):
        tools = (
            select(func.count())
            .where(VisitPolicy.visit_id == Visit.id)
            .correlate(Visit)
            .scalar_subquery()
            .label("tools")
        )
        stmt = scoped(
            Visit,
            self.actor,
            select(
                Visit.id,
                Visit.referral_id,
                Visit.visited_on,
                Visit.role_policy,
                Visit.role_guidance,
                Visit.role_financing,
                Visit.role_information,
                Visit.log_delay_days,
                tools,
                Enterprise.name.label("firm"),
            ).join(Enterprise, Enterprise.id == Visit.enterprise_id),
        ).where(
            Visit.advisor_id == self.advisor_id,
            Visit.visited_on >= self.first,
            Visit.visited_on <= self.last,
            *conditions,
        )
        rows, total = _capped(stmt, (Visit.visited_on, Visit.id))
        return [
            {
                "kind": "visit",
                "id": r.id,
                "referral_id": r.referral_id,
                "date": r.visited_on,
                "firm": r.firm,
                "counted": counted(r) if counted else True,
                "value": value(r) if value else None,
                "note": note(r) if note else "",
            }
            for r in rows
        ], total

    def _roles(self, r) -> list[str]:
        return [label for key, label in self.role_labels.items() if getattr(r, f"role_{key}")]

    def _visits_logged(self):
        return self._visits(
            value=lambda r: len(self._roles(r)), note=lambda r: "、".join(self._roles(r))
        )

    def _policy_promotion(self):
        return self._visits(
            Visit.role_policy,
            value=lambda r: r.tools,
            note=lambda r: ngettext(
                "%(num)s policy tool explained", "%(num)s policy tools explained", r.tools
            ),
        )

    def _logs_on_time(self):
        return self._visits(
            counted=lambda r: r.log_delay_days <= LOG_ON_TIME_DAYS,
            value=lambda r: r.log_delay_days,
            note=lambda r: ngettext(
                "Logged %(num)s day after the visit",
                "Logged %(num)s days after the visit",
                r.log_delay_days,
            ),
        )

    def _info_reports(self):
        visits, n_visits = self._visits(
            Visit.role_information, note=lambda r: self.role_labels["information"]
        )
        labels = risk_type_labels()
        stmt = scoped(
            RiskReport,
            self.actor,
            select(
                RiskReport.id,
                RiskReport.referral_id,
                RiskReport.reported_at,
                RiskReport.risk_type,
                Enterprise.name.label("firm"),
            ).join(Enterprise, Enterprise.id == RiskReport.enterprise_id),
        ).where(
            RiskReport.reporter_id == self.advisor_id,
            RiskReport.reported_at >= self.start,
            RiskReport.reported_at < self.end,
        )
        rows, n_risks = _capped(stmt, (RiskReport.reported_at, RiskReport.id))
        risks = [
            {
                "kind": "risk_report",
                "id": r.id,
                "referral_id": r.referral_id,
                "date": _shanghai_day(r.reported_at),
                "firm": r.firm,
                "counted": True,
                "value": None,
                "note": labels.get(r.risk_type, r.risk_type),
            }
            for r in rows
        ]
        merged = sorted(visits + risks, key=lambda x: (x["date"], x["kind"], x["id"]))
        return merged[:RECORD_CAP], n_visits + n_risks

    # --- cases
    def _cases(self, *conditions, date_of, counted, value, note):
        stmt = scoped(
            Referral,
            self.actor,
            select(
                Referral.id,
                Referral.assigned_at,
                Referral.first_contact_due,
                Referral.first_contact_on,
                Referral.closed_at,
                Referral.satisfaction,
                Enterprise.name.label("firm"),
            ).join(Enterprise, Enterprise.id == Referral.enterprise_id),
        ).where(
            Referral.advisor_id == self.advisor_id,
            Referral.assigned_at < self.end,
            *conditions,
        )
        rows, total = _capped(stmt, (Referral.assigned_at, Referral.id))
        return [
            {
                "kind": "referral",
                "id": r.id,
                "referral_id": r.id,
                "date": date_of(r),
                "firm": r.firm,
                "counted": counted(r),
                "value": value(r),
                "note": note(r),
            }
            for r in rows
        ], total

    def _visit_coverage(self):
        def note(r):
            if r.first_contact_on is not None and r.first_contact_on <= self.last:
                return _("First visited on %(day)s", day=r.first_contact_on.isoformat())
            return _("Not visited by %(day)s", day=self.last.isoformat())

        return self._cases(
            Referral.status.notin_(NOT_WORK_STATUSES),
            date_of=lambda r: _shanghai_day(r.assigned_at),
            counted=lambda r: r.first_contact_on is not None and r.first_contact_on <= self.last,
            value=lambda r: r.first_contact_on,
            note=note,
        )

    def _first_contact_on_time(self):
        def on_time(r):
            return r.first_contact_on is not None and r.first_contact_on <= r.first_contact_due

        def note(r):
            if r.first_contact_on is None:
                return _("Due %(due)s; no visit yet", due=r.first_contact_due.isoformat())
            return _(
                "Due %(due)s; first visited on %(day)s",
                due=r.first_contact_due.isoformat(),
                day=r.first_contact_on.isoformat(),
            )

        return self._cases(
            Referral.status.notin_(NOT_WORK_STATUSES),
            Referral.first_contact_due >= self.first,
            Referral.first_contact_due <= self.last,
            date_of=lambda r: r.first_contact_due,
            counted=on_time,
            value=lambda r: r.first_contact_on,
            note=note,
        )

    # --- financing
    def _financing(self, *conditions):
        fa = FinancingApplication
        lender = aliased(Organisation)
        stmt = scoped(
            fa,
            self.actor,
            select(
                fa.id,
                fa.referral_id,
                fa.enterprise_id,
                fa.disbursed_on,
                fa.disbursed_amount_wan,
                fa.first_loan,
                Enterprise.name.label("firm"),
                lender.name.label("lender"),
            )
            .join(Enterprise, Enterprise.id == fa.enterprise_id)
            .outerjoin(lender, lender.id == fa.lender_id),
        ).where(
            fa.advisor_id == self.advisor_id,
            fa.disbursed_on >= self.first,
            fa.disbursed_on <= self.last,
            *conditions,
        )
        rows, total = _capped(stmt, (fa.disbursed_on, fa.id))
        return [
            {
                "kind": "financing",
                "id": r.id,
                "referral_id": r.referral_id,
                "date": r.disbursed_on,
                "firm": r.firm,
                "counted": True,
                "value": r.disbursed_amount_wan,
                "note": " · ".join(
                    p for p in (r.lender, _("First loan") if r.first_loan else None) if p
                ),
            }
            for r in rows
        ], total

    def _firms_financed(self):
        return self._financing()

    def _amount_disbursed(self):
        return self._financing()

    def _first_loans(self):
        return self._financing(FinancingApplication.first_loan)

    # --- ratings
    def _satisfaction(self):
        """The ratings given in the period — the firm's (feedback links answered) and the
        bureau's (cases closed with a satisfaction) —, each marked counted or not by the
        rubric's rule for a case rated twice (:func:`_rating_parts`), with why."""
        fl = FeedbackLink
        links = db.session.execute(
            scoped(
                Referral,
                self.actor,
                select(
                    fl.id,
                    fl.referral_id,
                    fl.used_at,
                    fl.rating,
                    Enterprise.name.label("firm"),
                )
                .join(Referral, Referral.id == fl.referral_id)
                .join(Enterprise, Enterprise.id == Referral.enterprise_id),
            )
            .where(
                fl.advisor_id == self.advisor_id,
                fl.used_at >= self.start,
                fl.used_at < self.end,
                fl.rating.is_not(None),
            )
            .order_by(fl.used_at, fl.id)
            .limit(RECORD_CAP + 1)
        ).all()
        closed = db.session.execute(
            scoped(
                Referral,
                self.actor,
                select(
                    Referral.id,
                    Referral.closed_at,
                    Referral.satisfaction,
                    Enterprise.name.label("firm"),
                ).join(Enterprise, Enterprise.id == Referral.enterprise_id),
            )
            .where(
                Referral.advisor_id == self.advisor_id,
                Referral.closed_at >= self.start,
                Referral.closed_at < self.end,
                Referral.satisfaction.is_not(None),
            )
            .order_by(Referral.closed_at, Referral.id)
            .limit(RECORD_CAP + 1)
        ).all()
        case_ids = {r.referral_id for r in links} | {r.id for r in closed}
        # The firm's latest rating of each of these cases by the period's end, and the
        # bureau's rating of the cases the firm rated (as it stands at the period's end).
        firm_latest: dict[int, tuple[datetime, int, int]] = {}
        bureau: dict[int, int] = {r.id: r.satisfaction for r in closed}
        if case_ids:
            for rid, link_id, at, rating in db.session.execute(
                select(fl.referral_id, fl.id, fl.used_at, fl.rating).where(
                    among(fl.referral_id, sorted(case_ids)),
                    fl.advisor_id == self.advisor_id,
                    fl.used_at < self.end,
                    fl.rating.is_not(None),
                )
            ):
                if rid not in firm_latest or (at, link_id) > firm_latest[rid][:2]:
                    firm_latest[rid] = (at, link_id, rating)
            for rid, satisfaction in db.session.execute(
                select(Referral.id, Referral.satisfaction).where(
                    among(Referral.id, sorted({r.referral_id for r in links})),
                    Referral.advisor_id == self.advisor_id,
                    Referral.closed_at < self.end,
                    Referral.satisfaction.is_not(None),
                )
            ):
                bureau[rid] = satisfaction
        average = self.case_rating == AVERAGE

        def half(value: Decimal) -> str:
            return format(value.normalize(), "f")

        records = []
        for r in links:
            latest = firm_latest.get(r.referral_id)
            counted = latest is not None and latest[1] == r.id
            if not counted:
                note = _("Not counted: a later rating of the same case by the firm counts.")
            elif average and r.referral_id in bureau:
                b = bureau[r.referral_id]
                note = _(
                    "Rated by the firm; averaged with the bureau's %(bureau)s: the case counts "
                    "%(value)s.",
                    bureau=b,
                    value=half(Decimal(r.rating + b) / 2),
                )
            else:
                note = _("Rated by the firm through a feedback link")
            records.append(
                {
                    "kind": "rating",
                    "id": r.id,
                    "referral_id": r.referral_id,
                    "date": _shanghai_day(r.used_at),
                    "firm": r.firm,
                    "counted": counted,
                    "value": r.rating,
                    "note": note,
                }
            )
        for r in closed:
            latest = firm_latest.get(r.id)
            firm_in_period = latest is not None and latest[0] >= self.start
            if latest is None:
                counted = True
                note = _("Confirmed by the referring bureau when it closed the case")
            elif average and not firm_in_period:
                counted = True
                note = _(
                    "Confirmed by the bureau; averaged with the firm's %(firm)s of %(day)s: the "
                    "case counts %(value)s.",
                    firm=latest[2],
                    day=_shanghai_day(latest[0]).isoformat(),
                    value=half(Decimal(r.satisfaction + latest[2]) / 2),
                )
            elif average:
                counted = False
                note = _("Counted with the firm's rating of the same case (averaged).")
            else:
                counted = False
                note = _(
                    "Not counted: the firm rated this case itself (%(firm)s on %(day)s), and "
                    "the firm's own rating counts.",
                    firm=latest[2],
                    day=_shanghai_day(latest[0]).isoformat(),
                )
            records.append(
                {
                    "kind": "referral",
                    "id": r.id,
                    "referral_id": r.id,
                    "date": _shanghai_day(r.closed_at),
                    "firm": r.firm,
                    "counted": counted,
                    "value": r.satisfaction,
                    "note": note,
                }
            )
        merged = sorted(records, key=lambda x: (x["date"], x["kind"], x["id"]))
        total = len(merged)
        if len(links) > RECORD_CAP or len(closed) > RECORD_CAP:
            total = self._rating_total()
        return merged[:RECORD_CAP], total

    def _rating_total(self) -> int:
        fl = FeedbackLink
        n_links = db.session.scalar(
            scoped(
                Referral,
                self.actor,
                select(func.count()).select_from(fl).join(Referral, Referral.id == fl.referral_id),
            ).where(
                fl.advisor_id == self.advisor_id,
                fl.used_at >= self.start,
                fl.used_at < self.end,
                fl.rating.is_not(None),
            )
        )
        n_cases = db.session.scalar(
            scoped(Referral, self.actor, select(func.count()).select_from(Referral)).where(
                Referral.advisor_id == self.advisor_id,
                Referral.closed_at >= self.start,
                Referral.closed_at < self.end,
                Referral.satisfaction.is_not(None),
            )
        )
        return (n_links or 0) + (n_cases or 0)


# ============================================================================ JSON
def _num(value: Decimal | int | None) -> str | None:
    """A decimal as a plain string without trailing zeros (like the API's money)."""
    if value is None:
        return None
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(SHANGHAI).isoformat(timespec="seconds") if at is not None else None


def to_api(view: AssessmentView) -> dict:
    """The contract's assessment JSON (decimals as strings), with extensions: per row the
    computed points, the adjustment and its lines, the points per metric; the institutions;
    the comments (office roles)."""
    a = view.assessment
    keys = view.spec.keys
    return {
        "period": view.period.key,
        "kind": view.period.kind,
        "status": a.status,
        "rubric_version": view.rubric_number,
        "compiled_at": _iso(a.compiled_at),
        "compile_count": a.compile_count,
        "published_at": _iso(a.published_at),
        "version": a.version,
        # Compiled before the period ended (the current period): not final figures.
        "in_progress": view.in_progress,
        "ends_on": view.period.last_day.isoformat(),
        "adjustment_bound": _num(view.spec.adjustment_bound),
        "document_number": a.notice_number,
        "rows": [
            {
                "advisor": r.username,
                "name": r.name,
                "institution": r.org_code,
                "score": _num(r.score),
                "rank": r.rank,
                "institution_rank": r.institution_rank,
                "metrics": {k: _num(r.metrics[k].raw) if k in r.metrics else None for k in keys},
                "computed": _num(r.computed),
                "adjustment": _num(r.adjustment),
                "points": {k: _num(r.metrics[k].points) if k in r.metrics else None for k in keys},
                "not_applicable": r.not_applicable,
                "adjustments": [
                    {
                        "id": adj.id,
                        "points": _num(adj.points),
                        "reason": adj.reason,
                        "at": _iso(adj.created_at),
                        "by": adj.created_by,
                        "withdrawn_at": _iso(adj.withdrawn_at),
                        "withdrawn_by": adj.withdrawn_by,
                    }
                    for adj in r.adjustments
                ],
            }
            for r in view.rows
        ],
        "institutions": [
            {
                "institution": i.code,
                "name": i.name,
                "advisors": i.advisors,
                "total": _num(i.total),
                "average": _num(i.average),
                "rank": i.rank,
            }
            for i in view.institutions
        ],
        "comments": [
            {
                "author": c.author_name,
                "advisor": c.advisor_name,
                "body": c.body,
                "at": _iso(c.created_at),
            }
            for c in view.comments
        ],
    }


def periods_to_api(items: list[PeriodSummary]) -> list[dict]:
    """:func:`periods` as JSON."""
    return [
        {
            "period": p.period,
            "status": p.status,
            "compiled_at": _iso(p.compiled_at),
            "rubric_version": p.rubric_number,
        }
        for p in items
    ]


def breakdown_to_api(items: list[dict]) -> list[dict]:
    """:func:`breakdown` as JSON (decimals as strings, dates ISO)."""

    def plain(value):
        if isinstance(value, Decimal):
            return _num(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return [plain(item) for item in items]


__all__ = [
    "MAY_LACK_DATA",
    "AdjustmentLine",
    "AssessmentView",
    "MetricValue",
    "metric_values",
    "view_comments",
    "view_institutions",
    "PeriodSummary",
    "ViewComment",
    "ViewInstitution",
    "ViewRow",
    "add_adjustment",
    "add_comment",
    "adjustment_bound",
    "adjustment_line",
    "compiled_in_progress",
    "next_doc_number",
    "notice_number_text",
    "withdraw_adjustment",
    "breakdown",
    "breakdown_to_api",
    "compile_period",
    "current_rubric",
    "get_view",
    "parse_period",
    "periods",
    "periods_to_api",
    "publish",
    "raw_values",
    "millionths_text",
    "rubric_spec",
    "rubric_versions",
    "save_rubric",
    "to_api",
]
