"""Risk reports: a risk signal an advisor raises on a visit (suspected illegal fundraising,
illegal deposit-taking, fraud, other) goes to the finance office's risk queue at once, with a
notification to every active finance-office and central-bank user. The finance office
acknowledges it, follows it up with notes (the central bank may add notes too) and closes it
with a note; the reporter is told when it is acknowledged and when it is closed.

Status: open -> acknowledged -> closed (a report may also be closed straight from open).
``RiskReport.version`` is an optimistic lock: a change made on a page opened before someone
else's change is refused (409).

Visibility is the scope of :func:`advisors.permissions.scoped`: the reporter, the finance
office, the central bank and admins — never bureaus, liaisons, or another advisor who later
takes the case. Everything here reads through it, so a report outside the scope is not found.

Services take plain values and the acting user, flush, and leave the commit to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from models import (
    RISK_STATUSES,
    RISK_TYPES,
    Enterprise,
    Organisation,
    Referral,
    RiskNote,
    RiskReport,
    User,
    Visit,
    db,
    utcnow,
)

from .. import audit, paging
from .. import labels as vocab
from ..errors import Conflict, NotFound, ValidationFailed
from ..permissions import GLOBAL_ROLES, OFFICE_ROLES, get_scoped, scoped
from .firms import clean_text
from .notifications import notify
from .referral_queries import Cursor

MAX_REPORT_NOTE = 2000  # what the advisor observed (RiskReport.note is TEXT)
MAX_NOTE = 1000  # follow-up and closing notes (RiskNote.note, RiskReport.close_note)
PAGE_SIZE = 50
MAX_LIMIT = 200
BADGE_CAP = 100  # the navigation badge says "99+" beyond this; the count never scans further
# Queue filters: a status, or "active" (open and acknowledged: what still needs work).
FILTERS = ("active", *RISK_STATUSES)
CLOSE_ROLES = ("finance_office",)
NOTE_ROLES = OFFICE_ROLES  # finance_office, pboc


def field_labels() -> dict[str, str]:
    return {
        "risk_type": _("Risk type"),
        "note": _("What was observed"),
    }


# ------------------------------------------------------------------ validation
def _text_problem(value, label: str, limit: int, *, required: bool = True) -> tuple[str, str]:
    """(cleaned text, problem or "") for a free-text field."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        return "", _("%(field)s must be text.", field=label)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "", _("%(field)s contains characters that are not valid Unicode.", field=label)
    text = clean_text(value)
    if required and not text:
        return "", _("%(field)s is required.", field=label)
    if len(text) > limit:
        return text, _("%(field)s must be at most %(n)s characters.", field=label, n=limit)
    return text, ""


def clean(risk_type, note) -> dict[str, str]:
    """Field errors of a risk signal (empty when it is valid), for the visit form and API:
    ``risk_type`` one of :data:`models.RISK_TYPES`, ``note`` non-empty text."""
    labels = field_labels()
    errors: dict[str, str] = {}
    if risk_type is None or risk_type == "":
        errors["risk_type"] = _("%(field)s is required.", field=labels["risk_type"])
    elif not isinstance(risk_type, str) or risk_type not in RISK_TYPES:
        errors["risk_type"] = vocab.one_of(labels["risk_type"], vocab.labels("risk_type").values())
    _cleaned, problem = _text_problem(note, labels["note"], MAX_REPORT_NOTE)
    if problem:
        errors["note"] = problem
    return errors


def _follow_up_note(note, label: str) -> str:
    text, problem = _text_problem(note, label, MAX_NOTE)
    if problem:
        raise ValidationFailed(_("Please correct the marked fields."), {"note": problem})
    return text


# ------------------------------------------------------------------ reporting
def _office_user_ids() -> list[int]:
    return list(
        db.session.execute(
            select(User.id).where(User.role.in_(OFFICE_ROLES), User.active.is_(True))
        ).scalars()
    )


def _firm_name(enterprise_id: int) -> str:
    return db.session.scalar(select(Enterprise.name).where(Enterprise.id == enterprise_id)) or ""


def report(actor: User, visit: Visit, risk_type: str, note: str) -> RiskReport:
    """Raise a risk signal from ``visit`` (called by the visit service inside the visit's
    transaction, with values it validated through :func:`clean`). Creates the report in the
    finance office's queue and notifies every active finance-office and central-bank user."""
    errors = clean(risk_type, note)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    if actor.role != "advisor" or visit.advisor_id != actor.id:
        raise Conflict(_("Only the advisor who made the visit can report a risk from it."))
    if visit.id is None:
        db.session.flush()
    row = RiskReport(
        visit_id=visit.id,
        referral_id=visit.referral_id,
        enterprise_id=visit.enterprise_id,
        reporter_id=actor.id,
        org_id=actor.org_id,
        risk_type=risk_type,
        note=clean_text(note),
        status="open",
        reported_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    notify(
        _office_user_ids(),
        "risk_reported",
        referral_id=visit.referral_id,
        params={
            "advisor": actor.display_name,
            "firm": _firm_name(visit.enterprise_id),
            "risk": risk_type,
            "risk_id": row.id,
        },
    )
    return row


# ------------------------------------------------------------------ the queue's actions
def get_for(actor: User, report_id: int) -> RiskReport:
    """One report within the actor's scope; NotFound otherwise (never reveal it exists)."""
    row = get_scoped(RiskReport, actor, report_id)
    if row is None:
        raise NotFound(_("The page or record was not found."))
    return row


def _check_version(row: RiskReport, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != row.version:
        raise Conflict(_("This risk report was changed by someone else since you opened it."))


def _require(actor: User, roles: tuple[str, ...], message: str) -> None:
    if actor.role not in roles:
        raise Conflict(message)


def _tell_reporter(row: RiskReport, kind: str) -> None:
    notify(
        [row.reporter_id],
        kind,
        referral_id=row.referral_id,
        params={
            "firm": _firm_name(row.enterprise_id),
            "risk": row.risk_type,
            "risk_id": row.id,
        },
    )


def acknowledge(actor: User, report_id: int, expected_version: int | None) -> RiskReport:
    """The finance office has seen the report and takes it up (open -> acknowledged)."""
    _require(actor, CLOSE_ROLES, _("Only the finance office acknowledges risk reports."))
    row = get_for(actor, report_id)
    if row.status == "acknowledged":
        raise Conflict(_("This risk report has already been acknowledged."))
    if row.status == "closed":
        raise Conflict(_("This risk report is closed."))
    _check_version(row, expected_version)
    row.status = "acknowledged"
    row.acknowledged_at = utcnow()
    row.acknowledged_by_id = actor.id
    db.session.flush()
    _tell_reporter(row, "risk_acknowledged")
    return row


def add_note(actor: User, report_id: int, note: str) -> RiskNote:
    """A follow-up note by the finance office or the central bank on a report not closed."""
    _require(actor, NOTE_ROLES, _("Only the finance office and the central bank add notes."))
    text = _follow_up_note(note, _("Follow-up note"))
    row = get_for(actor, report_id)
    if row.status == "closed":
        raise Conflict(_("This risk report is closed."))
    item = RiskNote(report_id=row.id, author_id=actor.id, note=text, at=utcnow())
    db.session.add(item)
    db.session.flush()
    # RiskNote is not an audited model: its insert is recorded here.
    audit.record_bulk(
        "insert",
        RiskNote.__tablename__,
        [(item.id, {"report_id": row.id, "author_id": actor.id, "note": text, "at": item.at})],
    )
    return item


def close(actor: User, report_id: int, note: str, expected_version: int | None) -> RiskReport:
    """The finance office closes the report with a note saying what was done."""
    _require(actor, CLOSE_ROLES, _("Only the finance office closes risk reports."))
    text = _follow_up_note(note, _("Closing note"))
    row = get_for(actor, report_id)
    if row.status == "closed":
        raise Conflict(_("This risk report is already closed."))
    _check_version(row, expected_version)
    row.status = "closed"
    row.closed_at = utcnow()
    row.closed_by_id = actor.id
    row.close_note = text
    db.session.flush()
    _tell_reporter(row, "risk_closed")
    return row


# ------------------------------------------------------------------ reading
@dataclass(slots=True)
class RiskRow:
    id: int
    reported_at: datetime
    status: str
    risk_type: str
    note: str
    referral_id: int
    visit_id: int | None
    firm_name: str
    reporter_name: str
    institution: str | None


@dataclass
class Page:
    items: list[RiskRow]
    next_cursor: str | None


def _reporter_alias():
    return aliased(User, name="risk_reporter")


def _listing(actor: User):
    """Report rows with the firm, reporter and institution names in the same query."""
    reporter = _reporter_alias()
    stmt = (
        select(
            RiskReport.id,
            RiskReport.reported_at,
            RiskReport.status,
            RiskReport.risk_type,
            RiskReport.note,
            RiskReport.referral_id,
            RiskReport.visit_id,
            Enterprise.name.label("firm_name"),
            reporter.display_name.label("reporter_name"),
            func.coalesce(Organisation.short_name, Organisation.name).label("institution"),
        )
        .select_from(RiskReport)
        # Outer joins keep the report the driving table (the status/reported_at index orders it).
        .outerjoin(Enterprise, Enterprise.id == RiskReport.enterprise_id)
        .outerjoin(reporter, reporter.id == RiskReport.reporter_id)
        .outerjoin(Organisation, Organisation.id == RiskReport.org_id)
    )
    return scoped(RiskReport, actor, stmt)


def _row(r) -> RiskRow:
    return RiskRow(
        id=r.id,
        reported_at=r.reported_at,
        status=r.status,
        risk_type=r.risk_type,
        note=r.note,
        referral_id=r.referral_id,
        visit_id=r.visit_id,
        firm_name=r.firm_name or "",
        reporter_name=r.reporter_name or "",
        institution=r.institution,
    )


def _status_condition(status: str | None):
    if not status:
        return None
    if status == "active":
        return RiskReport.status.in_(("open", "acknowledged"))
    if status not in RISK_STATUSES:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"status": _("Choose a value from the list.")},
        )
    return RiskReport.status == status


def queue(
    actor: User,
    status: str | None = None,
    cursor: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """The reports the actor may see, newest first, one keyset page at a time. ``status`` is
    one of :data:`models.RISK_STATUSES`, ``"active"`` (open or acknowledged) or None (all)."""
    limit = paging.clamp(limit, MAX_LIMIT)
    stmt = _listing(actor)
    condition = _status_condition(status)
    if condition is not None:
        stmt = stmt.where(condition)
    if cursor is not None:
        stmt = stmt.where(
            paging.after(RiskReport.reported_at, RiskReport.id, cursor.created_at, cursor.id)
        )
    stmt = stmt.order_by(RiskReport.reported_at.desc(), RiskReport.id.desc()).limit(limit + 1)
    rows = [_row(r) for r in db.session.execute(stmt)]
    page, next_cursor = paging.split(rows, limit, lambda row: (row.reported_at, row.id))
    return Page(page, next_cursor)


def reports_for_visit(actor: User, visit_id: int) -> list[RiskReport]:
    """The risk reports raised on one visit that the actor may see, oldest first (for the
    visit page: the reporter and the office roles see them, others see none)."""
    return list(
        db.session.execute(
            scoped(RiskReport, actor)
            .where(RiskReport.visit_id == visit_id)
            .order_by(RiskReport.reported_at, RiskReport.id)
        ).scalars()
    )


def open_count(actor: User) -> int:
    """Reports still needing work (open or acknowledged), for the finance office's and the
    central bank's navigation badge and home page; 0 for other roles. Capped at
    :data:`BADGE_CAP` so it never counts more than that many index entries."""
    if actor.role not in OFFICE_ROLES:
        return 0
    active = (
        select(RiskReport.id)
        .where(RiskReport.status.in_(("open", "acknowledged")))
        .limit(BADGE_CAP)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(active)) or 0


# ------------------------------------------------------------------ the report page
@dataclass(slots=True)
class TimelineEntry:
    kind: str  # reported | acknowledged | note | closed
    at: datetime
    by: str
    note: str | None = None


@dataclass
class RiskView:
    report: RiskReport
    firm_name: str
    credit_code: str
    reporter_name: str
    institution: str | None
    visited_on: object  # date | None
    case_visible: bool  # the firm's case is in the viewer's scope (link to it)
    timeline: list[TimelineEntry]


def detail(actor: User, report_id: int) -> RiskView:
    """The report page: the report with its names, and its timeline (reported, acknowledged,
    follow-up notes, closed), in two queries. NotFound outside the actor's scope."""
    reporter = _reporter_alias()
    acknowledger = aliased(User, name="risk_acknowledger")
    closer = aliased(User, name="risk_closer")
    stmt = (
        select(
            RiskReport,
            Enterprise.name,
            Enterprise.credit_code,
            reporter.display_name,
            func.coalesce(Organisation.short_name, Organisation.name),
            acknowledger.display_name,
            closer.display_name,
            Visit.visited_on,
            Referral.advisor_id,
        )
        .select_from(RiskReport)
        .outerjoin(Enterprise, Enterprise.id == RiskReport.enterprise_id)
        .outerjoin(reporter, reporter.id == RiskReport.reporter_id)
        .outerjoin(Organisation, Organisation.id == RiskReport.org_id)
        .outerjoin(acknowledger, acknowledger.id == RiskReport.acknowledged_by_id)
        .outerjoin(closer, closer.id == RiskReport.closed_by_id)
        .outerjoin(Visit, Visit.id == RiskReport.visit_id)
        .outerjoin(Referral, Referral.id == RiskReport.referral_id)
        .where(RiskReport.id == report_id)
    )
    found = db.session.execute(scoped(RiskReport, actor, stmt)).one_or_none()
    if found is None:
        raise NotFound(_("The page or record was not found."))
    (row, firm, code, reporter_name, institution, ack_by, closed_by, visited_on, case_advisor) = (
        found
    )
    timeline = [TimelineEntry("reported", row.reported_at, reporter_name or "", row.note)]
    if row.acknowledged_at:
        timeline.append(TimelineEntry("acknowledged", row.acknowledged_at, ack_by or ""))
    author = aliased(User, name="risk_note_author")
    for at, by, text in db.session.execute(
        select(RiskNote.at, author.display_name, RiskNote.note)
        .outerjoin(author, author.id == RiskNote.author_id)
        .where(RiskNote.report_id == row.id)
        .order_by(RiskNote.at, RiskNote.id)
    ):
        timeline.append(TimelineEntry("note", at, by or "", text))
    if row.closed_at:
        timeline.append(TimelineEntry("closed", row.closed_at, closed_by or "", row.close_note))
    timeline.sort(key=lambda e: e.at)  # stable: same-instant entries keep their order
    return RiskView(
        report=row,
        firm_name=firm or "",
        credit_code=code or "",
        reporter_name=reporter_name or "",
        institution=institution,
        visited_on=visited_on,
        case_visible=actor.role in GLOBAL_ROLES or case_advisor == actor.id,
        timeline=timeline,
    )
