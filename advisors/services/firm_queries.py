"""Read side of the enterprise registry for the web pages: filtered lists and the detail card.

Writes go through :mod:`advisors.services.firms`. Everything here selects through
``scoped(Enterprise, actor)`` so a firm outside the actor's scope is never listed or found.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from models import SIZE_CLASSES, Enterprise, Organisation, Township, User, db

from .. import credit_code
from ..permissions import scoped
from ..sizing import INDUSTRIES, measures_for
from . import firms as firm_service

PAGE_SIZE = 50


def list_firms(
    actor: User,
    *,
    q: str = "",
    industry: str | None = None,
    size: str | None = None,
    township_id: int | None = None,
    limit: int = PAGE_SIZE,
    after_id: int | None = None,
) -> list[Enterprise]:
    """Firms in the actor's scope, newest first, keyset paginated on id.

    ``q`` matches as :func:`advisors.services.firms.search` does (credit-code prefix or name
    substring), with LIKE wildcards taken literally; the filters narrow it further. Filter
    values that are not known keys are ignored by the caller, not here.
    """
    if not (industry or size or township_id):
        q_clean = (q or "").replace("\x00", "").strip()
        if "%" not in q_clean and "_" not in q_clean:
            return firm_service.search(actor, q_clean, limit=limit, after_id=after_id)
    stmt = scoped(Enterprise, actor)
    text = (q or "").replace("\x00", "").strip()
    if text:
        code_like = credit_code.normalize(text).upper()
        stmt = stmt.where(
            or_(
                Enterprise.credit_code.startswith(code_like, autoescape=True),
                Enterprise.name.contains(text, autoescape=True),
            )
        )
    if industry:
        stmt = stmt.where(Enterprise.industry == industry)
    if size:
        stmt = stmt.where(Enterprise.size_class == size)
    if township_id:
        stmt = stmt.where(Enterprise.township_id == township_id)
    if after_id is not None:
        stmt = stmt.where(Enterprise.id < after_id)
    stmt = stmt.order_by(Enterprise.id.desc()).limit(limit)
    return list(db.session.execute(stmt).scalars())


def townships(include_id: int | None = None, *, active_only: bool = True) -> list[Township]:
    """Townships for a select, by name: the active ones, plus ``include_id`` (a firm's current
    township, even if it was deactivated since)."""
    stmt = select(Township)
    if active_only:
        cond = Township.active.is_(True)
        if include_id is not None:
            cond = or_(cond, Township.id == include_id)
        stmt = stmt.where(cond)
    return list(db.session.execute(stmt.order_by(Township.name, Township.id)).scalars())


@dataclass
class FirmCard:
    firm: Enterprise
    override_by: User | None
    registered_by: Organisation | None
    measures: tuple[str, ...]
    missing: tuple[str, ...]


def firm_card(actor: User, firm_id: int) -> FirmCard | None:
    """A firm in scope with who overrode its code check and which organisation registered it."""
    firm = firm_service.get(actor, firm_id)
    if firm is None:
        return None
    override_by = (
        db.session.get(User, firm.code_override_by_id) if firm.code_override_by_id else None
    )
    registered_by = (
        db.session.get(Organisation, firm.registered_by_org_id)
        if firm.registered_by_org_id
        else None
    )
    measures = measures_for(firm.industry) if firm.industry in INDUSTRIES else ()
    missing = tuple(m for m in measures if getattr(firm, m) is None)
    return FirmCard(firm, override_by, registered_by, measures, missing)


def code_taken(code: str, exclude_id: int | None = None) -> bool:
    """Whether another firm (any scope) already has this credit code."""
    stmt = select(Enterprise.id).where(Enterprise.credit_code == code)
    if exclude_id is not None:
        stmt = stmt.where(Enterprise.id != exclude_id)
    return db.session.execute(stmt.limit(1)).first() is not None


def valid_size(value: str | None) -> str | None:
    return value if value in SIZE_CLASSES else None


def valid_industry(value: str | None) -> str | None:
    return value if value in INDUSTRIES else None
