"""The bureau dashboard: the closed loop in figures for the actor's cases."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    Date,
    Integer,
    case,
    cast,
    func,
    select,
    type_coerce,
)

from models import (
    STATUSES,
    Referral,
    User,
    db,
)

from ...permissions import OFFICE_ROLES, scoped
from .filters import ReferralFilters
from .listing import ListRow, _rows
from .statements import _decorate, _select


# ------------------------------------------------------------------ bureau dashboard
@dataclass
class Dashboard:
    by_status: dict[str, int]
    referred: int
    median_days_to_contact: float | None
    contacted: int
    financed_wan: Decimal
    financed_cases: int
    latest: list[ListRow]


def _days_to_first_contact():
    """Days from the referral (its Shanghai calendar day) to the first contact, as one column."""
    if db.session.get_bind().dialect.name == "postgresql":
        local_day = cast(
            func.timezone("Asia/Shanghai", func.timezone("UTC", Referral.created_at)), Date
        )
        return type_coerce(Referral.first_contact_on - local_day, Integer)
    # SQLite keeps naive UTC text; Shanghai is UTC+8 all year (no daylight saving).
    return cast(
        func.julianday(Referral.first_contact_on)
        - func.julianday(func.date(Referral.created_at, "+8 hours")),
        Integer,
    )


def bureau_dashboard(actor: User, latest: int = 10) -> Dashboard:
    """The closed loop in figures for the actor's cases. Three queries whatever the volume."""
    financed = case((Referral.outcome_result == "financed", Referral.outcome_amount_wan))
    financed_n = case((Referral.outcome_result == "financed", 1), else_=0)
    by_status: dict[str, int] = {s: 0 for s in STATUSES}
    total_financed = Decimal("0.00")
    financed_cases = 0
    for status, n, amount, n_financed in db.session.execute(
        scoped(
            Referral,
            actor,
            select(Referral.status, func.count(), func.sum(financed), func.sum(financed_n)),
        ).group_by(Referral.status)
    ).all():
        by_status[status] = n
        total_financed += amount or Decimal("0")
        financed_cases += int(n_financed or 0)
    days = [
        d
        for d in db.session.execute(
            scoped(Referral, actor, select(_days_to_first_contact())).where(
                Referral.first_contact_on.is_not(None)
            )
        ).scalars()
        if d is not None
    ]
    median = statistics.median(days) if days else None
    inner = (
        _select(actor, ReferralFilters())
        .where(Referral.outcome_result.is_not(None))
        .order_by(Referral.resolved_at.desc(), Referral.id.desc())
        .limit(latest)
    )
    office = actor.role in OFFICE_ROLES
    rows = _rows(db.session.execute(_decorate(actor, inner, "resolved")), office)
    return Dashboard(
        by_status=by_status,
        referred=sum(by_status.values()),
        median_days_to_contact=median,
        contacted=len(days),
        financed_wan=total_financed,
        financed_cases=financed_cases,
        latest=rows,
    )
