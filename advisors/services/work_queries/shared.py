"""What both work lists share: the keyset position (a day and an id), the page and export
shapes, the firm-name search and whether a row's case may be opened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Integer, bindparam, select

from models import (
    Enterprise,
    FinancingApplication,
    User,
)

from ... import paging
from ...params import MAX_PAGE_SIZE
from ...permissions import GLOBAL_ROLES

MAX_LIMIT = MAX_PAGE_SIZE
EXPORT_CAP = 50_000
FA = FinancingApplication


# ------------------------------------------------------------------ cursor
@dataclass(frozen=True)
class Cursor:
    day: date
    id: int


def encode_cursor(day: date, row_id: int) -> str:
    return paging.encode(day, row_id)


def decode_cursor(raw) -> Cursor | None:
    """Where the next page starts; None (the first page) for anything we did not issue."""
    position = paging.decode(raw, date, int)
    return Cursor(*position) if position is not None else None


def _after(stmt, day_col, id_col, cursor: Cursor | None):
    """The rows after ``cursor`` in (day, id) newest-first order."""
    if cursor is None:
        return stmt
    return stmt.where(
        paging.after(day_col, id_col, cursor.day, bindparam("c_id", cursor.id, type_=Integer))
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


@dataclass
class Page:
    rows: list
    next_cursor: str | None


@dataclass
class Export:
    rows: list[list]
    truncated: bool
