"""In-app notifications: the bell. Every hand-over of a case notifies the people who take it."""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from models import Notification, User, db, utcnow

from ..dbutil import insert_ignoring_conflicts


def _messages() -> dict[str, str]:
    return {
        "referrals_submitted": _("%(bureau)s submitted %(count)s firm(s) for the advisor team."),
        "co_referred": _("%(bureau)s also recommended %(firm)s."),
        "co_referred_many": _("%(bureau)s also recommended %(count)s firms already referred."),
        "assigned": _("%(firm)s was assigned to %(advisor)s."),
        "unassigned": _("%(firm)s was reassigned from %(advisor)s to someone else."),
        "rejected": _("The referral of %(firm)s was rejected: %(reason)s"),
        "withdrawn": _("%(bureau)s withdrew the referral of %(firm)s."),
        "first_contact": _("%(advisor)s made first contact with %(firm)s."),
        "resolved": _("%(firm)s has an outcome: %(outcome)s. Please confirm it."),
        "closed": _("%(bureau)s confirmed the outcome for %(firm)s and closed the case."),
        "overdue": _("First contact with %(firm)s is overdue (due %(due)s, advisor %(advisor)s)."),
        "risk_reported": _("%(advisor)s reported a risk at %(firm)s: %(risk)s."),
        "risk_acknowledged": _("The finance office acknowledged your risk report on %(firm)s."),
        "risk_closed": _("The finance office closed the risk report on %(firm)s."),
        "visit_corrected": _(
            "The finance office corrected your visit log for %(firm)s: %(reason)s"
        ),
        "feedback_received": _("%(firm)s rated the service %(rating)s of 5."),
        "assessment_published": _("The assessment for %(period)s has been published."),
        "job_failed": _("The scheduled job “%(job)s” failed: %(error)s"),
        "weekly_digest": _(
            "Your referrals from %(start)s to %(end)s: %(new)s new, %(assigned)s assigned, "
            "%(contacted)s first contacts, %(resolved)s with an outcome, %(closed)s closed; "
            "%(overdue)s overdue now."
        ),
    }


def render(note: Notification) -> str:
    template = _messages().get(note.kind)
    if template is None:
        return note.kind
    params = {
        "bureau": "",
        "firm": "",
        "advisor": "",
        "count": "",
        "reason": "",
        "due": "",
        "outcome": "",
        "risk": "",
        "rating": "",
        "job": "",
        "error": "",
        "start": "",
        "end": "",
        "new": 0,
        "assigned": 0,
        "contacted": 0,
        "resolved": 0,
        "closed": 0,
        "overdue": 0,
    }
    params.update(note.params or {})
    if note.kind == "resolved" and params.get("outcome"):
        from .referrals import outcome_labels

        params["outcome"] = outcome_labels().get(params["outcome"], params["outcome"])
    if note.kind == "risk_reported" and params.get("risk"):
        from .labels import risk_type_labels

        params["risk"] = risk_type_labels().get(params["risk"], params["risk"])
    if note.kind == "job_failed" and params.get("job"):
        from .jobs import job_labels

        label = job_labels().get(params["job"], params["job"])
        params["job"] = f"{label} {params['period']}" if params.get("period") else label
    try:
        return template % params
    except (KeyError, ValueError, TypeError):
        return template


def notify(
    user_ids: Iterable[int],
    kind: str,
    *,
    referral_id: int | None = None,
    params: dict | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Queue one notification per user (in this transaction). With ``dedupe_key`` a second
    call with the same key for the same user adds nothing."""
    now = utcnow()
    rows = [
        {
            "user_id": uid,
            "kind": kind,
            "referral_id": referral_id,
            "params": params or {},
            "created_at": now,
            "dedupe_key": dedupe_key,
        }
        for uid in sorted(set(user_ids))
    ]
    if not rows:
        return
    if dedupe_key:
        insert_ignoring_conflicts(Notification.__table__, rows)
    else:
        db.session.execute(Notification.__table__.insert(), rows)


def users_with_role(role: str, org_id: int | None = None) -> list[int]:
    stmt = select(User.id).where(User.role == role, User.active.is_(True))
    if org_id is not None:
        stmt = stmt.where(User.org_id == org_id)
    return list(db.session.execute(stmt).scalars())


def unread_count(user: User) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
    )


def recent(user: User, limit: int = 30, before_id: int | None = None) -> list[Notification]:
    stmt = select(Notification).where(Notification.user_id == user.id)
    if before_id:
        stmt = stmt.where(Notification.id < before_id)
    return list(db.session.execute(stmt.order_by(Notification.id.desc()).limit(limit)).scalars())


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    stmt = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids)))
    return db.session.execute(stmt.values(read_at=utcnow())).rowcount


def get_own(user: User, note_id: int) -> Notification | None:
    return db.session.execute(
        select(Notification).where(Notification.id == note_id, Notification.user_id == user.id)
    ).scalar_one_or_none()
