"""The referral list page (web) and the API's page of ``Referral`` rows: the same scope,
filters and keyset, a fixed number of queries whatever the page size."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import contains_eager

from models import (
    NEEDS,
    Referral,
    User,
    db,
)

from ... import clock, paging
from ...params import MAX_ID, MAX_PAGE_SIZE, PAGE_SIZE
from ...permissions import OFFICE_ROLES, scoped
from .. import referrals as svc
from .. import sla
from .cursor import Cursor
from .filters import ReferralFilters
from .statements import (
    _after,
    _apply_filters,
    _newest_first,
    _page_statement,
    _values,
)

MAX_LIMIT = MAX_PAGE_SIZE


# ------------------------------------------------------------------ list rows
@dataclass(slots=True)
class ListRow:
    id: int
    created_at: datetime
    status: str
    needs: list[str]
    amount_wan: Decimal | None
    purpose: str | None
    firm_id: int
    firm_name: str
    credit_code: str
    industry: str
    size_class: str
    township: str | None  # the listed township's name, or the text kept when not matched
    advisor_name: str | None
    advisor_username: str | None
    institution: str | None
    first_contact_due: date | None
    first_contact_on: date | None
    outcome_result: str | None
    outcome_amount_wan: Decimal | None
    outcome_note: str | None
    rejected_reason: str | None
    satisfaction: int | None
    unread: bool = False
    bureaus: list[str] = field(default_factory=list)
    flag: str | None = None
    township_unmatched: bool = False


def _rows(result, office: bool) -> list[ListRow]:
    """List rows from a result of :func:`_select` (by position: attribute access on result rows
    is the slow part of a page otherwise)."""
    keys = list(result.keys())
    return [_row(dict(zip(keys, values, strict=True)), office) for values in result]


def _row(d: dict, office: bool) -> ListRow:
    return ListRow(
        id=d["id"],
        created_at=d["created_at"],
        status=d["status"],
        needs=[n for n in NEEDS if d[f"need_{n}"]],
        amount_wan=d["amount_wan"],
        purpose=d["purpose"],
        firm_id=d["firm_id"],
        firm_name=d["firm_name"],
        credit_code=d["credit_code"],
        industry=d["industry"],
        size_class=d["size_class"],
        township=d["township"] or d["township_text"],
        township_unmatched=d["township"] is None and d["township_text"] is not None,
        advisor_name=d["advisor_name"],
        advisor_username=d["advisor_username"],
        institution=d["institution"],
        first_contact_due=d["first_contact_due"],
        first_contact_on=d["first_contact_on"],
        outcome_result=d["outcome_result"],
        outcome_amount_wan=d["outcome_amount_wan"],
        outcome_note=d["outcome_note"],
        rejected_reason=d["rejected_reason"],
        satisfaction=d["satisfaction"],
        unread=office and d["read_at"] is None and d["status"] == "submitted",
    )


class _FlagMemo:
    """``sla.flag`` for many rows: cases assigned together share a due date, and counting the
    working days to it walks the calendar day by day, so each distinct date is counted once."""

    def __init__(self, cal, today: date):
        self.cal, self.today, self.seen = cal, today, {}

    def __call__(self, row) -> str | None:
        key = (row.status, row.first_contact_due, row.first_contact_on)
        if key not in self.seen:
            self.seen[key] = sla.flag(*key, self.today, self.cal)
        return self.seen[key]


@dataclass
class Page:
    rows: list[ListRow]
    next_cursor: str | None


def list_page(
    actor: User,
    filters: ReferralFilters,
    *,
    cursor: Cursor | None = None,
    limit: int = PAGE_SIZE,
    cal=None,
    today: date | None = None,
) -> Page:
    """One page of the actor's cases, newest first. Two queries whatever ``limit`` is: the
    rows, and the referring bureaus of the page."""
    limit = paging.clamp(limit, MAX_LIMIT)
    office = actor.role in OFFICE_ROLES
    stmt = _page_statement(actor, filters, cursor, limit + 1)
    rows = _rows(db.session.execute(stmt, _values(filters, cursor)), office)
    rows, next_cursor = paging.split(rows, limit, lambda r: (r.created_at, r.id))
    if rows:
        # A bureau's list shows the closed loop, not who else referred (one query less).
        bureaus = svc.bureaus_of([r.id for r in rows]) if actor.role != "bureau" else {}
        cal = cal if cal is not None else svc.calendar()
        today = today or clock.today()
        flag_of = _FlagMemo(cal, today)
        for row in rows:
            row.bureaus = bureaus.get(row.id, [])
            row.flag = flag_of(row)
    return Page(rows, next_cursor)


def referral_page(
    actor: User,
    *,
    status: str = "",
    cursor: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[Referral], str | None]:
    """One page of the actor's cases as ``Referral`` rows with their firm loaded (the API's
    list), newest first: the same scope, status filter and keyset as :func:`list_page`. One
    query; returns (referrals, the cursor of the next page or None)."""
    limit = paging.clamp(limit, MAX_LIMIT)
    filters = ReferralFilters(status=status)
    stmt = (
        select(Referral).outerjoin(Referral.enterprise).options(contains_eager(Referral.enterprise))
    )
    stmt = _newest_first(_after(_apply_filters(scoped(Referral, actor, stmt), filters), cursor))
    rows = db.session.execute(stmt.limit(limit + 1), _values(filters, cursor)).scalars().all()
    return paging.split(rows, limit, lambda r: (r.created_at, r.id))


def referral_for_api(actor: User, referral_id: int) -> Referral | None:
    """One case in the actor's scope with its firm loaded (the API's detail), or None."""
    if not 0 < referral_id <= MAX_ID:
        return None
    stmt = select(Referral).join(Referral.enterprise).options(contains_eager(Referral.enterprise))
    return db.session.execute(
        scoped(Referral, actor, stmt).where(Referral.id == referral_id)
    ).scalar()
