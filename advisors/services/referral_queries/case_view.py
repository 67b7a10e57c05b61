"""Everything the case page shows: the case, its firm, the referring bureaus (with the firm
fields they proposed), the advisor and the timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import aliased

from models import (
    NEEDS,
    Enterprise,
    Organisation,
    Referral,
    ReferralBureau,
    ReferralEvent,
    Township,
    User,
    db,
)

from ... import clock
from ...permissions import OFFICE_ROLES
from .. import firms as firm_service
from .. import referrals as svc
from .. import sla


# ------------------------------------------------------------------ the case page
@dataclass
class BureauLine:
    code: str
    name: str
    created_at: datetime
    by: str | None
    needs: list[str]
    amount_wan: Decimal | None
    note: str | None
    proposed: list[ProposalLine] = field(default_factory=list)


@dataclass
class ProposalLine:
    """One firm field a referring bureau sent that differs from the registry."""

    key: str
    label: str
    current: str
    proposed: str


@dataclass
class EventLine:
    at: datetime
    kind: str
    status: str
    actor: str
    advisor: str | None
    note: str | None


@dataclass
class CaseView:
    referral: Referral
    firm: Enterprise
    bureaus: list[BureauLine]
    advisor: User | None
    institution: Organisation | None
    events: list[EventLine]
    flag: str | None
    my_bureau_refers: bool


def _proposal_lines(firm: Enterprise, proposed: dict) -> list[ProposalLine]:
    labels = firm_service.field_labels()
    ids = [
        v["id"]
        for v in (proposed.get("township"), svc.current_firm_value(firm, "township"))
        if isinstance(v, dict) and v.get("id") is not None
    ]
    names = (
        dict(
            db.session.execute(select(Township.id, Township.name).where(Township.id.in_(ids))).all()
        )
        if ids
        else {}
    )
    return [
        ProposalLine(
            key,
            labels.get(key, key),
            svc.proposal_value(key, svc.current_firm_value(firm, key), names),
            svc.proposal_value(key, value, names),
        )
        for key, value in proposed.items()
    ]


def case_view(actor: User, referral_id: int) -> CaseView:
    """A case in the actor's scope (NotFound otherwise) with everything its page shows."""
    referral = svc.get_for(actor, referral_id)
    firm = db.session.execute(
        select(Enterprise).where(Enterprise.id == referral.enterprise_id)
    ).scalar_one()
    bureaus = _bureau_lines(actor, referral, firm)
    advisor = db.session.get(User, referral.advisor_id) if referral.advisor_id else None
    events = _event_lines(referral)
    flag = sla.flag(
        referral.status,
        referral.first_contact_due,
        referral.first_contact_on,
        clock.today(),
        svc.calendar(),
    )
    mine = actor.role == "bureau" and any(
        b.code == (actor.org.code if actor.org else None) for b in bureaus
    )
    return CaseView(
        referral=referral,
        firm=firm,
        bureaus=bureaus,
        advisor=advisor,
        institution=advisor.org if advisor else None,
        events=events,
        flag=flag,
        my_bureau_refers=mine,
    )


def _bureau_lines(actor: User, referral: Referral, firm: Enterprise) -> list[BureauLine]:
    """The referring bureaus, first first; the firm fields a bureau proposed are shown to the
    office roles and the admin, and to that bureau."""
    creator = aliased(User)
    show_proposals = actor.role in OFFICE_ROLES or actor.role == "admin"
    return [
        BureauLine(
            code=org.code,
            name=org.name,
            created_at=rb.created_at,
            by=by,
            needs=[n for n in (rb.needs or []) if n in NEEDS],
            amount_wan=rb.amount_wan,
            note=rb.note,
            proposed=_proposal_lines(firm, rb.proposed)
            if rb.proposed and (show_proposals or org.id == actor.org_id)
            else [],
        )
        for rb, org, by in db.session.execute(
            select(ReferralBureau, Organisation, creator.display_name)
            .join(Organisation, Organisation.id == ReferralBureau.org_id)
            .outerjoin(creator, creator.id == ReferralBureau.created_by_id)
            .where(ReferralBureau.referral_id == referral.id)
            .order_by(ReferralBureau.created_at, ReferralBureau.org_id)
        ).all()
    ]


def _event_lines(referral: Referral) -> list[EventLine]:
    """The case's timeline, oldest first, with the advisor each event names."""
    named = aliased(User)
    return [
        EventLine(ev.at, ev.kind, ev.status, ev.actor_label, name, ev.note)
        for ev, name in db.session.execute(
            select(ReferralEvent, named.display_name)
            .outerjoin(named, named.id == ReferralEvent.advisor_id)
            .where(ReferralEvent.referral_id == referral.id)
            .order_by(ReferralEvent.at, ReferralEvent.id)
        ).all()
    ]
