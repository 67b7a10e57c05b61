"""The advisors and institutions an actor may filter the work lists by."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from models import (
    Organisation,
    User,
    db,
)

from ...permissions import GLOBAL_ROLES, scoped

INSTITUTION_TYPES = ("bank", "insurer")


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
