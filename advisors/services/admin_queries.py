"""Read-only queries behind the administration pages: the organisation and user lists (in the
caller's scope, keyset-paged), member counts, and the choices the forms offer.

The writes are in :mod:`.orgs` and :mod:`.users`.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from models import AdvisorProfile, Organisation, Township, User, db

from ..permissions import scoped


def list_orgs(actor: User, *, type_: str, q: str, after: str, limit: int) -> list[Organisation]:
    """Organisations in ``actor``'s scope by code, after the code ``after``; at most ``limit``."""
    stmt = scoped(Organisation, actor)
    if type_:
        stmt = stmt.where(Organisation.type == type_)
    if q:
        stmt = stmt.where(
            or_(
                Organisation.code.icontains(q, autoescape=True),
                Organisation.name.icontains(q, autoescape=True),
            )
        )
    if after:
        stmt = stmt.where(Organisation.code > after)
    return list(db.session.execute(stmt.order_by(Organisation.code).limit(limit)).scalars())


def member_counts(org_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(users, active users) per organisation id (organisations without users are absent)."""
    if not org_ids:
        return {}
    rows = db.session.execute(
        select(User.org_id, func.count(), func.count().filter(User.active.is_(True)))
        .where(User.org_id.in_(org_ids))
        .group_by(User.org_id)
    ).all()
    return {org_id: (total, active) for org_id, total, active in rows}


def list_users(
    actor: User, *, role: str, org_id: int | None, q: str, active: str, after, limit: int
) -> list[User]:
    """Users in ``actor``'s scope by id, after the id ``after``; at most ``limit``.
    ``active`` is "1" (active only), "0" (inactive only) or "" (both)."""
    stmt = scoped(User, actor)
    if role:
        stmt = stmt.where(User.role == role)
    if org_id:
        stmt = stmt.where(User.org_id == org_id)
    if q:
        stmt = stmt.where(
            or_(
                User.username.icontains(q, autoescape=True),
                User.display_name.icontains(q, autoescape=True),
            )
        )
    if active:
        stmt = stmt.where(User.active.is_(active == "1"))
    if after:
        stmt = stmt.where(User.id > after)
    return list(db.session.execute(stmt.order_by(User.id).limit(limit)).scalars())


def all_orgs() -> list[Organisation]:
    """Every organisation, by type and name (the user list's filter)."""
    return list(
        db.session.execute(
            select(Organisation).order_by(Organisation.type, Organisation.name)
        ).scalars()
    )


def active_orgs() -> list[Organisation]:
    """The active organisations, by type and name (the user form's choice)."""
    return list(
        db.session.execute(
            select(Organisation)
            .where(Organisation.active.is_(True))
            .order_by(Organisation.type, Organisation.name)
        ).scalars()
    )


def org_by_id(org_id: int | None) -> Organisation | None:
    return db.session.get(Organisation, org_id) if org_id else None


def active_townships() -> list[Township]:
    return list(
        db.session.execute(
            select(Township).where(Township.active.is_(True)).order_by(Township.code)
        ).scalars()
    )


def advisor_profile(user: User) -> AdvisorProfile | None:
    """The advisor profile of ``user`` (None for any other role)."""
    return db.session.get(AdvisorProfile, user.id) if user.role == "advisor" else None
