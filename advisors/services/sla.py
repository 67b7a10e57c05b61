"""The service-level clock: first contact is due a configurable number of working days after
assignment (``FIRST_CONTACT_WORKING_DAYS``, default 5), on the Chinese calendar."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from models import Enterprise, Notification, Referral, User, db, utcnow

from .. import clock
from ..dbutil import chunks
from ..workdays import WorkdayCalendar
from .notifications import users_with_role

WAITING = ("assigned",)  # first contact not made yet
OFFICE_PER_CASE_MAX = 3  # more overdue cases than this: the office gets one summary a day


def flag(
    status: str, due: date | None, contacted_on: date | None, today: date, cal: WorkdayCalendar
) -> str | None:
    """'overdue', 'due_soon' (due today or on the next working day) or None."""
    if status not in WAITING or due is None or contacted_on is not None:
        return None
    if today > due:
        return "overdue"
    if cal.workdays_between(today, due) <= 1:
        return "due_soon"
    return None


def _insert_new(rows: list[dict]) -> int:
    """Insert notifications, skipping those whose (user, dedupe key) exists; returns how many
    were new. Like ``dbutil.insert_ignoring_conflicts`` but counting through RETURNING, since
    PostgreSQL reports no row count for a multi-row insert."""
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    table = Notification.__table__
    stmt = module.insert(table).on_conflict_do_nothing().returning(table.c.id)
    return sum(len(db.session.execute(stmt, list(part)).all()) for part in chunks(rows))


def sweep_overdue(today: date | None = None) -> dict:
    """Notify the advisor and the advisor's institution liaisons of every case whose first
    contact is past due, and the finance office of each (or, beyond a few, of how many in one
    line). Once per case per recipient per day: the dedupe key carries the day, so a second run
    the same day adds nothing. Flushes; the caller commits."""
    day = today or clock.today()
    cases = _overdue_cases(day)
    if not cases:
        return {"overdue": 0, "notifications": 0}
    office = users_with_role("finance_office")
    liaisons = _liaisons_by_org(sorted({c.org_id for c in cases if c.org_id is not None}))
    now = utcnow()
    rows = []
    # The finance office follows every case: a handful is told case by case, more as one line a
    # day (the inbox lists them), so a bad week does not bury its bell.
    per_case_office = office if len(cases) <= OFFICE_PER_CASE_MAX else []
    if not per_case_office and office:
        params = {"count": len(cases), "date": day.isoformat()}
        key = f"overdue_summary:{day.isoformat()}"
        rows += _notes(sorted(office), "overdue_summary", None, params, now, key)
    for case in cases:
        recipients = {*per_case_office, *liaisons.get(case.org_id, [])}
        if case.active:
            recipients.add(case.advisor_id)
        params = {
            "firm": case.firm,
            "due": case.first_contact_due.isoformat(),
            "advisor": case.advisor,
        }
        key = f"overdue:{case.id}:{day.isoformat()}"
        rows += _notes(sorted(recipients), "overdue", case.id, params, now, key)
    return {"overdue": len(cases), "notifications": _insert_new(rows)}


def _overdue_cases(day: date) -> list:
    """Every case still waiting for its first contact after its due date, with its firm's
    name and its advisor. One query."""
    return db.session.execute(
        select(
            Referral.id,
            Referral.first_contact_due,
            Referral.advisor_id,
            Enterprise.name.label("firm"),
            User.display_name.label("advisor"),
            User.org_id,
            User.active,
        )
        .join(Enterprise, Enterprise.id == Referral.enterprise_id)
        .join(User, User.id == Referral.advisor_id)
        .where(
            Referral.status.in_(WAITING),
            Referral.first_contact_due < day,
            Referral.first_contact_on.is_(None),
        )
        .order_by(Referral.id)
    ).all()


def _liaisons_by_org(org_ids: list[int]) -> dict[int, list[int]]:
    """The active liaisons of each institution (user ids by org id)."""
    liaisons: dict[int, list[int]] = {}
    for part in chunks(org_ids):
        for uid, org_id in db.session.execute(
            select(User.id, User.org_id).where(
                User.role == "liaison", User.active.is_(True), User.org_id.in_(part)
            )
        ):
            liaisons.setdefault(org_id, []).append(uid)
    return liaisons


def _notes(user_ids, kind: str, referral_id, params: dict, now, key: str) -> list[dict]:
    """Notification rows: one per user, the same message and dedupe key."""
    return [
        {
            "user_id": uid,
            "kind": kind,
            "referral_id": referral_id,
            "params": params,
            "created_at": now,
            "dedupe_key": key,
        }
        for uid in user_ids
    ]
