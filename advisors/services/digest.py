"""The weekly bureau digest: every Monday each bureau's users get one in-app notification with
their referrals' progress over the past week (Monday to Sunday, Asia/Shanghai): new referrals,
cases assigned, first contacts made, outcomes recorded, cases closed, and the cases whose first
contact is overdue now.

A bureau follows every case it referred or co-referred (``referral_bureau``). The figures come
from a few grouped queries over all bureaus at once — never a query per case or per bureau —
and a second run for the same week adds nothing (the dedupe key carries the ISO week)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from models import Referral, ReferralBureau, ReferralEvent, User, db

from .. import clock
from ..i18n import SHANGHAI
from .notifications import notify
from .sla import WAITING

# Timeline event kinds counted, and the digest figure each one feeds.
EVENT_FIGURES = {
    "assigned": "assigned",
    "first_contact": "contacted",
    "resolved": "resolved",
    "closed": "closed",
}
FIGURES = ("new", "assigned", "contacted", "resolved", "closed", "overdue")


@dataclass(frozen=True)
class Week:
    """A Monday-to-Sunday week on the Shanghai calendar."""

    start: date  # Monday

    @property
    def end(self) -> date:  # Sunday
        return self.start + timedelta(days=6)

    @property
    def key(self) -> str:
        year, week, _day = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[Monday 00:00, next Monday 00:00) Shanghai time, in UTC."""
        start = datetime.combine(self.start, time(0), tzinfo=SHANGHAI).astimezone(UTC)
        end = datetime.combine(self.start + timedelta(days=7), time(0), tzinfo=SHANGHAI)
        return start, end.astimezone(UTC)


def last_week(today: date) -> Week:
    """The last complete week before ``today`` (on a Monday: the seven days just ended)."""
    this_monday = today - timedelta(days=today.weekday())
    return Week(this_monday - timedelta(days=7))


def bureau_progress(week: Week, today: date) -> dict[int, dict[str, int]]:
    """bureau org id -> the digest figures, for every bureau with anything to report. Three
    grouped queries whatever the number of bureaus and cases."""
    start, end = week.utc_bounds()
    progress: dict[int, dict[str, int]] = {}

    def add(org_id: int, figure: str, count: int) -> None:
        if count:
            progress.setdefault(org_id, dict.fromkeys(FIGURES, 0))[figure] += count

    # New referrals, co-referrals included: the bureau's own referral_bureau rows.
    for org_id, count in db.session.execute(
        select(ReferralBureau.org_id, func.count())
        .where(ReferralBureau.created_at >= start, ReferralBureau.created_at < end)
        .group_by(ReferralBureau.org_id)
    ):
        add(org_id, "new", count)

    # What happened to the cases the bureau follows: distinct cases per event kind.
    for org_id, kind, count in db.session.execute(
        select(
            ReferralBureau.org_id,
            ReferralEvent.kind,
            func.count(func.distinct(ReferralEvent.referral_id)),
        )
        .join(ReferralBureau, ReferralBureau.referral_id == ReferralEvent.referral_id)
        .where(
            ReferralEvent.at >= start,
            ReferralEvent.at < end,
            ReferralEvent.kind.in_(list(EVENT_FIGURES)),
        )
        .group_by(ReferralBureau.org_id, ReferralEvent.kind)
    ):
        add(org_id, EVENT_FIGURES[kind], count)

    # Overdue now (as the daily sweep sees it): assigned, first contact past due and not made.
    for org_id, count in db.session.execute(
        select(ReferralBureau.org_id, func.count())
        .join(Referral, Referral.id == ReferralBureau.referral_id)
        .where(
            Referral.status.in_(WAITING),
            Referral.first_contact_due < today,
            Referral.first_contact_on.is_(None),
        )
        .group_by(ReferralBureau.org_id)
    ):
        add(org_id, "overdue", count)
    return progress


def send_weekly_digest(today: date | None = None) -> dict[str, int]:
    """Notify each bureau's active users of last week's progress (bureaus with nothing new and
    nothing overdue are left alone). Once per user per ISO week. Flushes; the caller commits."""
    today = today or clock.today()
    week = last_week(today)
    progress = bureau_progress(week, today)
    if not progress:
        return {"bureaus": 0, "notifications": 0}
    users: dict[int, list[int]] = {}
    for user_id, org_id in db.session.execute(
        select(User.id, User.org_id).where(
            User.role == "bureau", User.active.is_(True), User.org_id.in_(sorted(progress))
        )
    ):
        users.setdefault(org_id, []).append(user_id)
    sent = bureaus = 0
    for org_id in sorted(progress):
        recipients = users.get(org_id)
        if not recipients:
            continue
        params = {
            "start": week.start.isoformat(),
            "end": week.end.isoformat(),
            "week": week.key,
            **progress[org_id],
        }
        notify(recipients, "weekly_digest", params=params, dedupe_key=f"weekly_digest:{week.key}")
        bureaus += 1
        sent += len(recipients)
    db.session.flush()
    return {"bureaus": bureaus, "notifications": sent}
