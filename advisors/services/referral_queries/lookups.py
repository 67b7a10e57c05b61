"""Small reads around the referral pages: bureaus and townships for the filters, whether a
case is in scope, and the office's read markers."""

from __future__ import annotations

from sqlalchemy import (
    select,
)

from models import (
    Organisation,
    Referral,
    ReferralEvent,
    ReferralRead,
    Township,
    User,
    db,
    utcnow,
)

from ...dbutil import chunks, insert_ignoring_conflicts
from ...permissions import OFFICE_ROLES, scoped


# ------------------------------------------------------------------ page lookups
# Plain columns, not entities: these run on every list page and must stay cheap.
def bureau_orgs() -> list:
    """Bureaus (code, name, short_name), for the filter and to name a referring bureau."""
    return db.session.execute(
        select(Organisation.code, Organisation.name, Organisation.short_name)
        .where(Organisation.type == "bureau")
        .order_by(Organisation.active.desc(), Organisation.name)
    ).all()


def townships() -> list:
    """Townships (id, name), by name."""
    return db.session.execute(
        select(Township.id, Township.name).order_by(Township.name, Township.id)
    ).all()


def in_scope(actor: User, referral_id: int) -> bool:
    stmt = scoped(Referral, actor, select(Referral.id)).where(Referral.id == referral_id)
    return db.session.execute(stmt).first() is not None


def timelines_of(referral_ids: list[int]) -> dict[int, list]:
    """Referral id -> its timeline events (mappings of referral_id, at, kind, status, by,
    note), oldest first, one query per chunk of ids (the API's page of cases)."""
    timelines: dict[int, list] = {rid: [] for rid in referral_ids}
    for part in chunks(referral_ids):
        for event in db.session.execute(
            select(
                ReferralEvent.referral_id,
                ReferralEvent.at,
                ReferralEvent.kind,
                ReferralEvent.status,
                ReferralEvent.actor_label.label("by"),
                ReferralEvent.note,
            )
            .where(ReferralEvent.referral_id.in_(part))
            .order_by(ReferralEvent.referral_id, ReferralEvent.at, ReferralEvent.id)
        ):
            timelines[event.referral_id].append(event._mapping)
    return timelines


# ------------------------------------------------------------------ inbox reads
def mark_read(user: User, referral_id: int) -> None:
    """Record that an office user opened a case (idempotent). The caller commits."""
    if user.role not in OFFICE_ROLES:
        return
    insert_ignoring_conflicts(
        ReferralRead.__table__,
        [{"user_id": user.id, "referral_id": referral_id, "at": utcnow()}],
    )
