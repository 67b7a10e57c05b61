"""What each role sees on its home page: what that person does next."""

from __future__ import annotations

from sqlalchemy import func, select

from models import (
    AdvisorProfile,
    AuditLog,
    Enterprise,
    Organisation,
    PolicyTool,
    Referral,
    ReferralRead,
    User,
    db,
)

from . import clock
from .labels import labels
from .permissions import scoped


def _counts(stmt) -> dict:
    return {key: n for key, n in db.session.execute(stmt).all()}


def _firm_summary(user: User) -> dict:
    base = scoped(Enterprise, user).subquery()
    by_size = _counts(select(base.c.size_class, func.count()).group_by(base.c.size_class))
    recent = list(
        db.session.execute(
            scoped(Enterprise, user)
            .order_by(Enterprise.created_at.desc(), Enterprise.id.desc())
            .limit(8)
        ).scalars()
    )
    return {"firms_by_size": by_size, "firms_total": sum(by_size.values()), "recent_firms": recent}


def _advisor_capacity(org_id: int | None = None) -> dict:
    stmt = (
        select(
            func.count(),
            func.coalesce(func.sum(AdvisorProfile.capacity), 0),
            func.count().filter(AdvisorProfile.accepting.is_(True)),
        )
        .select_from(AdvisorProfile)
        .join(User, User.id == AdvisorProfile.user_id)
        .where(User.active.is_(True))
    )
    if org_id is not None:
        stmt = stmt.where(User.org_id == org_id)
    total, capacity, accepting = db.session.execute(stmt).one()
    return {"advisors": total, "capacity": int(capacity), "accepting": accepting}


def home_for(user: User) -> dict:
    panel: dict = {}
    if user.role == "admin":
        panel["orgs_by_type"] = _counts(
            select(Organisation.type, func.count()).group_by(Organisation.type)
        )
        panel["users_by_role"] = _counts(
            select(User.role, func.count()).where(User.active.is_(True)).group_by(User.role)
        )
        from .services.audit_queries import readable_entries
        from .services.feedback import public_base_problem

        panel["recent_audit"] = readable_entries(
            list(
                db.session.execute(
                    select(AuditLog).order_by(AuditLog.id.desc()).limit(10)
                ).scalars()
            )
        )
        panel["public_base_problem"] = public_base_problem()
    elif user.role in ("finance_office", "pboc"):
        panel.update(_firm_summary(user))
        panel.update(_advisor_capacity())
        panel["policy_tools"] = db.session.scalar(
            select(func.count()).select_from(PolicyTool).where(PolicyTool.active.is_(True))
        )
        from .services.townships import unmatched_count

        panel["townships_unmatched"] = unmatched_count()
    elif user.role == "bureau":
        panel.update(_firm_summary(user))
    elif user.role == "advisor":
        # The workbench: a fixed number of queries whatever the caseload (see the module).
        from .services.workbench import workbench

        bench = workbench(user)
        panel["workbench"] = bench
        panel["profile"] = bench.profile
        panel["todo"] = bench.todo
        panel["status_labels"] = labels("referral_status")
        panel["sla_labels"] = labels("sla")
        panel["stage_labels"] = labels("stage")
    elif user.role == "liaison":
        panel.update(_advisor_capacity(user.org_id))
        panel.update(_liaison_work(user))
        panel["advisors_list"] = list(
            db.session.execute(
                select(AdvisorProfile)
                .join(User, User.id == AdvisorProfile.user_id)
                .where(User.org_id == user.org_id)
                .order_by(User.active.desc(), User.display_name)
            ).scalars()
        )
    return panel


def _liaison_work(user: User) -> dict:
    """The liaison's key figures: its institution's open cases, overdue first contacts, visits
    and disbursements this month, applications in progress (three grouped queries)."""
    from .services.work_queries import institution_totals, month_bounds

    if user.org_id is None:
        return {"work": None}
    day = clock.today()
    return {
        "work": institution_totals(user, user.org_id, day),
        "work_month_start": month_bounds(day)[0].isoformat(),
    }


INBOX_BADGE_CAP = 100


def nav_counts(user: User) -> dict:
    """Badges in the navigation: unread notifications, and for the office roles the referrals
    in the inbox that this user has not opened yet. Two small queries per page."""
    from .services.notifications import unread_count

    counts = {"notifications": unread_count(user)}
    if user.role in ("finance_office", "pboc"):
        # Capped: the badge says "99+" beyond that, and the count never scans the whole inbox.
        unread = (
            select(Referral.id)
            .where(
                Referral.status == "submitted",
                ~select(ReferralRead.referral_id)
                .where(ReferralRead.referral_id == Referral.id, ReferralRead.user_id == user.id)
                .exists(),
            )
            .limit(INBOX_BADGE_CAP)
            .subquery()
        )
        counts["inbox"] = db.session.scalar(select(func.count()).select_from(unread))
        from .services.risk import open_count

        counts["risks"] = open_count(user)
    return counts
