"""Advisor suggestions for a case, ranked by fit, each with its reasons; the advisor picker's
load against capacity; the capacity check before an assignment.

Fit, out of 100 = industry specialty + service township + spare capacity + institution type for
the need (insurance needs go to insurers, financing to banks). :data:`WEIGHTS` are the relative
weights; :data:`POINTS` is their share of 100 (rounded so the parts add up to exactly 100), and
the fit is the sum of the points earned: every point shown can be traced to a part. Spare
capacity earns its points pro rata; an advisor at or over capacity loses them instead (so ranks
below an equal fit with room), and the fit never goes below 0. Advisors not taking new firms
are left out. A fixed number of queries whatever the number of advisors: the advisors with their
profiles (their townships and specialties by ``selectin``), and the open load per advisor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from models import AdvisorProfile, Enterprise, Organisation, Referral, User, db

from ..sizing import INDUSTRIES

WEIGHTS = {"industry": 40, "township": 30, "capacity": 20, "institution": 15}
SCALE = 100
LOAD_STATUSES = ("assigned", "in_service")


def _shares(weights: dict[str, int], total: int) -> dict[str, int]:
    """Each weight's share of ``total`` in whole points, adding up to exactly ``total``
    (largest remainder)."""
    whole = sum(weights.values())
    exact = {k: w * total / whole for k, w in weights.items()}
    points = {k: int(v) for k, v in exact.items()}
    left = total - sum(points.values())
    for k in sorted(exact, key=lambda k: points[k] - exact[k])[:left]:
        points[k] += 1
    return points


POINTS = _shares(WEIGHTS, SCALE)  # industry 38, township 29, capacity 19, institution 14


@dataclass
class Suggestion:
    advisor: User
    score: int  # the fit, 0-100
    load: int
    capacity: int
    reasons: list[str] = field(default_factory=list)
    parts: dict[str, int] = field(default_factory=dict)  # points per part (capacity may be < 0)

    @property
    def full(self) -> bool:
        return self.load >= self.capacity


def scale_parts() -> list[tuple[str, int]]:
    """What makes up the 100, for the legend: (label, points)."""
    return [
        (_("industry"), POINTS["industry"]),
        (_("township"), POINTS["township"]),
        (_("spare capacity"), POINTS["capacity"]),
        (_("institution type"), POINTS["institution"]),
    ]


def open_loads(advisor_ids: list[int] | None = None) -> dict[int, int]:
    stmt = (
        select(Referral.advisor_id, func.count())
        .where(Referral.status.in_(LOAD_STATUSES), Referral.advisor_id.is_not(None))
        .group_by(Referral.advisor_id)
    )
    if advisor_ids is not None:
        stmt = stmt.where(Referral.advisor_id.in_(advisor_ids))
    return dict(db.session.execute(stmt).all())


def _count_cap():
    """How far the picker counts an advisor's open cases: twice the largest capacity, plus one.
    So the page costs what the city's capacities allow, never more with the number of cases;
    every load up to twice a capacity is exact and "past capacity" is always known."""
    other = aliased(AdvisorProfile)
    return (
        select(func.coalesce(func.max(other.capacity), 0) * 2 + 1).correlate(None).scalar_subquery()
    )


def _load_column(capped: bool = True):
    """The advisor's open cases (a correlated scalar subquery on ``ix_referral_advisor_status``,
    which holds all it reads), counted up to :func:`_count_cap` when ``capped``."""
    open_cases = select(Referral.advisor_id).where(
        Referral.advisor_id == User.id, Referral.status.in_(LOAD_STATUSES)
    )
    if not capped:
        return select(func.count()).where(open_cases.whereclause).scalar_subquery().label("load")
    # In index order, so PostgreSQL reads the index and stops at the cap (without an order,
    # it plans a bitmap scan that collects every open case before the limit applies).
    capped_cases = (
        open_cases.order_by(Referral.advisor_id, Referral.status)
        .limit(_count_cap())
        .correlate(User)
        .subquery()
    )
    return select(func.count()).select_from(capped_cases).scalar_subquery().label("load")


@dataclass(frozen=True)
class AdvisorOption:
    """An active advisor for the picker: open load against capacity (None without a profile)."""

    id: int
    username: str
    display_name: str
    institution: str | None
    load: int
    capacity: int | None
    accepting: bool
    counted_up_to: int  # ``load`` is at least this when it equals it

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.load >= self.capacity

    @property
    def load_text(self) -> str:
        shown = f"{self.load}+" if self.load >= self.counted_up_to else str(self.load)
        return f"{shown}/{self.capacity}" if self.capacity is not None else shown


@cache
def _options_statement():
    """Built once: the inbox renders the picker on every request (building and keying this
    statement would cost more than running it)."""
    return (
        select(
            User.id,
            User.username,
            User.display_name,
            func.coalesce(Organisation.short_name, Organisation.name).label("institution"),
            _load_column(),
            _count_cap().label("counted_up_to"),
            AdvisorProfile.capacity,
            AdvisorProfile.accepting,
        )
        .outerjoin(Organisation, Organisation.id == User.org_id)
        .outerjoin(AdvisorProfile, AdvisorProfile.user_id == User.id)
        .where(User.role == "advisor", User.active.is_(True))
        .order_by(User.display_name, User.username)
    )


def advisor_options() -> list[AdvisorOption]:
    """Every active advisor with institution, open load and capacity, by name. One query."""
    return [
        AdvisorOption(
            r.id,
            r.username,
            r.display_name,
            r.institution,
            r.load or 0,
            r.capacity,
            r.accepting is not False,
            r.counted_up_to,
        )
        for r in db.session.execute(_options_statement())
    ]


def option_label(option: AdvisorOption, full_label: str) -> str:
    """ "张伟 · 农行 · 8/15" (and "· full" at or past capacity)."""
    parts = [option.display_name]
    if option.institution:
        parts.append(option.institution)
    parts.append(option.load_text)
    if option.full:
        parts.append(full_label)
    return " · ".join(parts)


@dataclass(frozen=True)
class Overload:
    """Assigning ``adding`` more cases would take the advisor past capacity."""

    name: str
    load: int
    capacity: int
    adding: int

    @property
    def message(self) -> str:
        return _(
            "%(name)s has %(load)s open cases and a capacity of %(capacity)s: assigning "
            "%(n)s more makes %(after)s, past capacity. Tick “Assign anyway” to go ahead.",
            name=self.name,
            load=self.load,
            capacity=self.capacity,
            n=self.adding,
            after=self.load + self.adding,
        )


def check_capacity(advisor_username: str, adding: int, *, flushed: bool = False) -> Overload | None:
    """The load check of assigning ``adding`` cases to an advisor: an :class:`Overload` when
    the open cases would then exceed the advisor's capacity, else None (also for an unknown
    advisor or one without a profile: the assignment itself reports those). ``flushed``: the
    assignment is already flushed, so the cases are in the load. One query. A soft limit for
    the finance office's forms (they confirm to go past it); the API does not apply it."""
    row = db.session.execute(
        select(User.display_name, _load_column(capped=False), AdvisorProfile.capacity)
        .join(AdvisorProfile, AdvisorProfile.user_id == User.id)
        .where(
            func.lower(User.username) == (advisor_username or "").strip().lower(),
            User.role == "advisor",
        )
    ).first()
    before = row.load - adding if row is not None and flushed else row.load if row else 0
    if row is None or adding <= 0 or before + adding <= row.capacity:
        return None
    return Overload(row.display_name, before, row.capacity, adding)


def suggest(
    referral: Referral,
    firm: Enterprise,
    limit: int = 8,
    loads: dict[int, int] | None = None,
) -> list[Suggestion]:
    """The best-fitting advisors taking new firms, best first. ``loads`` (open cases by advisor
    id, e.g. from :func:`advisor_options`) saves the load query."""
    profiles = list(
        db.session.execute(
            select(AdvisorProfile)
            .join(User, User.id == AdvisorProfile.user_id)
            .where(
                User.active.is_(True), User.role == "advisor", AdvisorProfile.accepting.is_(True)
            )
        ).scalars()
    )
    if loads is None:
        loads = open_loads()
    unknown_township = (
        _("Township unknown (%(name)s is not on the city's list)", name=firm.township_text)
        if firm.township_id is None and firm.township_text
        else None
    )
    out = [
        _fit(profile, referral, firm, loads.get(profile.user.id, 0), unknown_township)
        for profile in profiles
        if profile.user.id != referral.advisor_id
    ]
    out.sort(key=lambda s: (-s.score, -sum(s.parts.values()), s.load, s.advisor.display_name))
    return out[:limit]


def _fit(
    profile: AdvisorProfile,
    referral: Referral,
    firm: Enterprise,
    load: int,
    unknown_township: str | None,
) -> Suggestion:
    """How well one advisor fits the case: points per part and the reasons, in words."""
    user = profile.user
    reasons = []
    parts = {}
    if firm.industry in profile.specialties:
        parts["industry"] = POINTS["industry"]
        reasons.append(
            _(
                "Knows the industry (%(industry)s)",
                industry=_(INDUSTRIES.get(firm.industry, firm.industry)),
            )
        )
    if firm.township_id and firm.township_id in {t.id for t in profile.townships}:
        parts["township"] = POINTS["township"]
        reasons.append(_("Serves %(township)s", township=firm.township.name))
    elif unknown_township:
        # Not a mismatch: nobody can be said to serve a township the city has not listed.
        reasons.append(unknown_township)
    capacity = profile.capacity or 0
    if capacity and load < capacity:
        parts["capacity"] = round(POINTS["capacity"] * (capacity - load) / capacity)
        reasons.append(_("Open cases %(load)s of %(capacity)s", load=load, capacity=capacity))
    else:
        parts["capacity"] = -POINTS["capacity"]
        reasons.append(
            _("At or over capacity (%(load)s of %(capacity)s)", load=load, capacity=capacity)
        )
    org_type = user.org.type if user.org else None
    if referral.need_insurance and org_type == "insurer":
        parts["institution"] = POINTS["institution"]
        reasons.append(_("Insurer, for an insurance need"))
    elif referral.need_financing and org_type == "bank":
        parts["institution"] = POINTS["institution"]
        reasons.append(_("Bank, for a financing need"))
    return Suggestion(user, max(0, sum(parts.values())), load, capacity, reasons, parts)
