"""In-app notifications: the bell. Every hand-over of a case notifies the people who take it.

The list groups them: the notifications of one kind about one case are one line, with how many
there are, how many are unread and the latest one's text and time (five daily "overdue" reminders
for a case are one line). A notification about no case is a line of its own. Lines are newest
first (by their latest notification), keyset-paginated on that notification's id, filterable by
kind and to the unread. Opening a line marks its notifications read; the bell counts unread
notifications with one capped count on the (user, read_at, id) index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import case, func, select, update

from models import Notification, User, db, utcnow

from .. import labels as vocab
from ..dbutil import insert_ignoring_conflicts

BELL_CAP = 100  # the bell says "99+" beyond this; the count never scans further


def _messages() -> dict[str, str]:
    return {
        "referrals_submitted": _("%(bureau)s submitted firms for the advisor team: %(count)s."),
        "co_referred": _("%(bureau)s also recommended %(firm)s."),
        "co_referred_many": _(
            "%(bureau)s also recommended firms already referred (%(count)s in all)."
        ),
        "assigned": _("%(firm)s was assigned to %(advisor)s."),
        "unassigned": _("%(firm)s was reassigned from %(advisor)s to someone else."),
        "rejected": _("The referral of %(firm)s was rejected: %(reason)s"),
        "withdrawn": _("%(bureau)s withdrew the referral of %(firm)s."),
        "first_contact": _("%(advisor)s made first contact with %(firm)s."),
        "resolved": _("%(firm)s has an outcome: %(outcome)s. Please confirm it."),
        "closed": _("%(bureau)s confirmed the outcome for %(firm)s and closed the case."),
        "overdue": _("First contact with %(firm)s is overdue (due %(due)s, advisor %(advisor)s)."),
        "overdue_summary": _(
            "Cases past their first-contact date on %(date)s: %(count)s. See the inbox."
        ),
        "risk_reported": _("%(advisor)s reported a risk at %(firm)s: %(risk)s."),
        "risk_acknowledged": _("The finance office acknowledged your risk report on %(firm)s."),
        "risk_closed": _("The finance office closed the risk report on %(firm)s."),
        "visit_corrected": _(
            "The finance office corrected your visit log for %(firm)s: %(reason)s"
        ),
        "feedback_received": _("%(firm)s rated the service %(rating)s of 5."),
        "assessment_published": _("The assessment for %(period)s has been published."),
        "job_failed": _("The scheduled job “%(job)s” failed: %(error)s"),
        "upload_done": _(
            "Your list %(file)s has been imported: %(created)s new referrals, %(merged)s "
            "co-referrals, %(duplicate)s duplicates, %(rejected)s rejected."
        ),
        "upload_failed": _("Your list %(file)s could not be imported: %(error)s"),
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
        "date": "",
        "reason": "",
        "due": "",
        "outcome": "",
        "risk": "",
        "rating": "",
        "job": "",
        "error": "",
        "file": "",
        "created": 0,
        "merged": 0,
        "duplicate": 0,
        "rejected": 0,
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
        params["outcome"] = vocab.label("outcome", params["outcome"])
    if note.kind == "risk_reported" and params.get("risk"):
        params["risk"] = vocab.label("risk_type", params["risk"])
    if note.kind == "job_failed" and params.get("job"):
        label = vocab.label("job", params["job"])
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
    """The user's unread notifications, counted up to ``BELL_CAP`` (one index range scan)."""
    unread = (
        select(Notification.id)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .limit(BELL_CAP)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(unread))


# ----------------------------------------------------------------------------- the grouped list
def kind_filters() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Filter key -> (label, the kinds it shows). Kinds that read as one thing share a key."""
    return {
        "referrals_submitted": (_("New referrals"), ("referrals_submitted",)),
        "co_referred": (_("Co-referrals"), ("co_referred", "co_referred_many")),
        "assigned": (_("Assignments"), ("assigned", "unassigned")),
        "rejected": (_("Rejected"), ("rejected",)),
        "withdrawn": (_("Withdrawn"), ("withdrawn",)),
        "first_contact": (_("First contact"), ("first_contact",)),
        "overdue": (_("Overdue"), ("overdue",)),
        "resolved": (_("Outcome recorded"), ("resolved",)),
        "closed": (_("Outcome confirmed, case closed"), ("closed",)),
        "risk": (_("Risk reports"), ("risk_reported", "risk_acknowledged", "risk_closed")),
        "visit_corrected": (_("Visit corrections"), ("visit_corrected",)),
        "feedback_received": (_("Firm feedback"), ("feedback_received",)),
        "assessment_published": (_("Assessments"), ("assessment_published",)),
        "job_failed": (_("Scheduled jobs"), ("job_failed",)),
        "upload": (_("List uploads"), ("upload_done", "upload_failed")),
        "weekly_digest": (_("Weekly bureau digest"), ("weekly_digest",)),
    }


def _filter_of(kind: str) -> str:
    for key, (_label, kinds) in kind_filters().items():
        if kind in kinds:
            return key
    return kind


@dataclass(frozen=True)
class Line:
    """One line of the list: the notifications of one kind about one case (or one alone)."""

    latest: Notification  # its newest notification: the text, the time, what "open" opens
    text: str
    count: int
    unread: int

    @property
    def at(self) -> datetime:
        return self.latest.created_at


def _group_key():
    # The case, or for a notification about no case its own (negated) id: a line of its own.
    return case(
        (Notification.referral_id.is_(None), -Notification.id), else_=Notification.referral_id
    )


def lines(
    user: User,
    *,
    kinds: tuple[str, ...] | None = None,
    unread_only: bool = False,
    before_id: int | None = None,
    limit: int = 30,
) -> tuple[list[Line], int | None]:
    """A page of lines, newest first: (lines, the ``before`` of the next page or None). Lines
    whose latest notification has an id below ``before_id``. Two queries, whatever the page."""
    where = [Notification.user_id == user.id]
    if kinds:
        where.append(Notification.kind.in_(kinds))
    if unread_only:
        where.append(Notification.read_at.is_(None))
    latest = func.max(Notification.id)
    stmt = (
        select(
            latest,
            func.count(),
            func.coalesce(func.sum(case((Notification.read_at.is_(None), 1), else_=0)), 0),
        )
        .where(*where)
        .group_by(Notification.kind, _group_key())
    )
    if before_id is not None:
        stmt = stmt.having(latest < before_id)
    groups = db.session.execute(stmt.order_by(latest.desc()).limit(limit + 1)).all()
    more = len(groups) > limit
    groups = groups[:limit]
    notes = {
        n.id: n
        for n in db.session.execute(
            select(Notification).where(Notification.id.in_([g[0] for g in groups]))
        ).scalars()
    }
    page = [
        Line(notes[note_id], render(notes[note_id]), int(count), int(unread))
        for note_id, count, unread in groups
        if note_id in notes
    ]
    return page, (page[-1].latest.id if more and page else None)


def kinds_present(user: User) -> list[str]:
    """The filter keys of the kinds this user has notifications of, in the filters' order."""
    present = {
        _filter_of(kind)
        for kind in db.session.execute(
            select(Notification.kind).where(Notification.user_id == user.id).distinct()
        ).scalars()
    }
    return [key for key in kind_filters() if key in present]


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    stmt = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids)))
    return db.session.execute(stmt.values(read_at=utcnow())).rowcount


def mark_all_read(user: User, kinds: tuple[str, ...] | None = None) -> int:
    """Mark the user's unread notifications read (only those of ``kinds`` when given)."""
    stmt = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if kinds:
        stmt = stmt.where(Notification.kind.in_(kinds))
    return db.session.execute(
        stmt.values(read_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount


def mark_line_read(user: User, note: Notification) -> int:
    """Opening a line marks its notifications read: the same kind about the same case, up to
    this one (a newer one that arrived meanwhile stays unread); one about no case alone."""
    stmt = update(Notification).where(
        Notification.user_id == user.id,
        Notification.read_at.is_(None),
        Notification.id <= note.id,
    )
    if note.referral_id is None:
        stmt = stmt.where(Notification.id == note.id)
    else:
        stmt = stmt.where(
            Notification.kind == note.kind, Notification.referral_id == note.referral_id
        )
    return db.session.execute(
        stmt.values(read_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount


def get_own(user: User, note_id: int) -> Notification | None:
    return db.session.execute(
        select(Notification).where(Notification.id == note_id, Notification.user_id == user.id)
    ).scalar_one_or_none()
