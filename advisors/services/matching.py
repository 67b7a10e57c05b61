"""Advisor suggestions for a case, ranked by fit, each with its reasons.

Fit = industry specialty + service township + spare capacity + institution type for the need
(insurance needs go to insurers, financing to banks). Advisors not taking new firms are left
out. Two queries whatever the number of advisors: the advisors with their profiles, and the
open load per advisor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import func, select

from models import AdvisorProfile, Enterprise, Referral, User, db

from ..sizing import INDUSTRIES

WEIGHTS = {"industry": 40, "township": 30, "capacity": 20, "institution": 15}
LOAD_STATUSES = ("assigned", "in_service")


@dataclass
class Suggestion:
    advisor: User
    score: int
    load: int
    capacity: int
    reasons: list[str] = field(default_factory=list)


def open_loads(advisor_ids: list[int] | None = None) -> dict[int, int]:
    stmt = (
        select(Referral.advisor_id, func.count())
        .where(Referral.status.in_(LOAD_STATUSES), Referral.advisor_id.is_not(None))
        .group_by(Referral.advisor_id)
    )
    if advisor_ids is not None:
        stmt = stmt.where(Referral.advisor_id.in_(advisor_ids))
    return dict(db.session.execute(stmt).all())


def suggest(referral: Referral, firm: Enterprise, limit: int = 8) -> list[Suggestion]:
    profiles = list(
        db.session.execute(
            select(AdvisorProfile)
            .join(User, User.id == AdvisorProfile.user_id)
            .where(
                User.active.is_(True), User.role == "advisor", AdvisorProfile.accepting.is_(True)
            )
        ).scalars()
    )
    loads = open_loads()
    unknown_township = (
        _("Township unknown (%(name)s is not on the city's list)", name=firm.township_text)
        if firm.township_id is None and firm.township_text
        else None
    )
    out = []
    for profile in profiles:
        user = profile.user
        reasons = []
        score = 0
        if firm.industry in profile.specialties:
            score += WEIGHTS["industry"]
            reasons.append(
                _(
                    "Knows the industry (%(industry)s)",
                    industry=_(INDUSTRIES.get(firm.industry, firm.industry)),
                )
            )
        if firm.township_id and firm.township_id in {t.id for t in profile.townships}:
            score += WEIGHTS["township"]
            reasons.append(_("Serves %(township)s", township=firm.township.name))
        elif unknown_township:
            # Not a mismatch: nobody can be said to serve a township the city has not listed.
            reasons.append(unknown_township)
        load = loads.get(user.id, 0)
        capacity = profile.capacity or 0
        if capacity and load < capacity:
            spare = (capacity - load) / capacity
            score += round(WEIGHTS["capacity"] * spare)
            reasons.append(_("Open cases %(load)s of %(capacity)s", load=load, capacity=capacity))
        else:
            score -= WEIGHTS["capacity"]
            reasons.append(
                _("At or over capacity (%(load)s of %(capacity)s)", load=load, capacity=capacity)
            )
        org_type = user.org.type if user.org else None
        if referral.need_insurance and org_type == "insurer":
            score += WEIGHTS["institution"]
            reasons.append(_("Insurer, for an insurance need"))
        elif referral.need_financing and org_type == "bank":
            score += WEIGHTS["institution"]
            reasons.append(_("Bank, for a financing need"))
        if user.id == referral.advisor_id:
            continue
        out.append(Suggestion(user, score, load, capacity, reasons))
    out.sort(key=lambda s: (-s.score, s.load, s.advisor.display_name))
    return out[:limit]
