"""Read side of referrals for the web pages: filters, keyset pages, list rows, the case page,
the bureau dashboard, export rows and inbox reads.

Writes go through :mod:`advisors.services.referrals`. Every query selects through
``scoped(Referral, actor)``, so a case outside the actor's scope is never listed or found.
Pure query helpers: the caller passes plain values (a mapping of filter strings, a cursor);
nothing here reads the HTTP request.

A list page runs a fixed number of queries whatever its size: one select of plain columns with
its joins (firm, township, advisor, institution, and for the office roles the read marker), one
:func:`advisors.services.referrals.bureaus_of` call for the page, and the small lookups of
:func:`page_context` (bureaus, townships, calendar overrides). Keyset pagination on
(created_at, id), newest first, served by ``ix_referral_created_id`` and
``ix_referral_status_created_id``; no COUNT over the table.
"""

from __future__ import annotations

import base64
import binascii
import re
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import (
    Date,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import aliased

from models import (
    NEEDS,
    SIZE_CLASSES,
    STATUSES,
    Enterprise,
    Organisation,
    Referral,
    ReferralBureau,
    ReferralEvent,
    ReferralRead,
    Township,
    User,
    db,
    utcnow,
)

from .. import credit_code
from ..dbutil import insert_ignoring_conflicts
from ..i18n import SHANGHAI
from ..params import MAX_ID, parse_day, parse_id
from ..params import parse_limit as _parse_limit
from ..permissions import OFFICE_ROLES, scoped
from ..sizing import INDUSTRIES
from . import firms as firm_service
from . import referrals as svc
from . import sla

PAGE_SIZE = 50
MAX_LIMIT = 200
EXPORT_CAP = 50_000
MAX_QUERY = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_RE = re.compile(r"^(\d{1,20}):(\d{1,10})$", re.ASCII)


def event_labels() -> dict[str, str]:
    """Timeline event kind -> translated label."""
    return {
        "created": _("Referred"),
        "co_referred": _("Co-referred by another bureau"),
        "assigned": _("Assigned"),
        "reassigned": _("Reassigned"),
        "rejected": _("Rejected"),
        "withdrawn": _("Withdrawn"),
        "co_withdrawn": _("A co-referring bureau withdrew"),
        "first_contact": _("First contact"),
        "resolved": _("Outcome recorded"),
        "closed": _("Outcome confirmed, case closed"),
    }


def sla_labels() -> dict[str, str]:
    return {"overdue": _("Overdue"), "due_soon": _("Due soon")}


_LABEL_CACHE: dict[tuple[str, str], dict[str, str]] = {}


def labels(kind: str) -> dict[str, str]:
    """Translated labels of one kind (status, need, outcome, sla, event, industry, size) for
    the current language, translated once per process and language: a list page shows dozens
    of them and every translation lookup goes through the request context."""
    key = (str(get_locale()), kind)
    found = _LABEL_CACHE.get(key)
    if found is None:
        build = {
            "status": svc.status_labels,
            "need": svc.need_labels,
            "outcome": svc.outcome_labels,
            "sla": sla_labels,
            "event": event_labels,
            "industry": lambda: {k: _(v) for k, v in INDUSTRIES.items()},
            "size": firm_service.size_labels,
        }[kind]
        found = _LABEL_CACHE[key] = dict(build())
    return found


# ------------------------------------------------------------------ filters
UNMATCHED = "unmatched"  # the township filter's value for firms whose township is not listed


@dataclass(frozen=True)
class ReferralFilters:
    bureau: str = ""
    industry: str = ""
    township: int | str | None = None  # a township id, or UNMATCHED
    size: str = ""
    need: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""

    def as_args(self) -> dict[str, str]:
        """The filters as query-string values, for links, the pager and the export. ``status``
        is always there (empty means every status), so the inbox default does not come back
        on the next page."""
        args = {"status": self.status}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "status" or value in (None, ""):
                continue
            args[f.name] = value.isoformat() if isinstance(value, date) else str(value)
        return args

    @property
    def narrowed(self) -> bool:
        return any(getattr(self, f.name) not in (None, "") for f in fields(self))


FILTER_KEYS = tuple(f.name for f in fields(ReferralFilters))


def default_status(actor: User) -> str:
    """The finance office and the central bank open the list as their inbox: new referrals."""
    return "submitted" if actor.role in OFFICE_ROLES else ""


def _text(raw: Mapping, key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        return ""
    return firm_service.clean_text(value.replace("\x00", ""))


def filter_labels() -> dict[str, str]:
    return {
        "bureau": _("Referring bureau"),
        "industry": _("Industry"),
        "township": _("Township"),
        "size": _("Size class"),
        "need": _("Need"),
        "amount_min": _("Amount from (万元)"),
        "amount_max": _("Amount to (万元)"),
        "status": _("Status"),
        "date_from": _("Referred from"),
        "date_to": _("Referred to"),
        "q": _("Firm name or credit code"),
    }


def parse_filters(raw: Mapping, default: str = "") -> tuple[ReferralFilters, dict[str, str]]:
    """Filters from a mapping of strings (a query string). Returns (filters, errors): a field
    in error is left out of the filters. ``default`` is the status when none is given at all
    (an explicitly empty ``status`` means every status)."""
    errors: dict[str, str] = {}
    values: dict = {}

    def label(key: str) -> str:
        return filter_labels()[key]  # only when there is something to say: they cost

    bureau = _text(raw, "bureau")
    if len(bureau) > 40 or not bureau.isprintable():
        errors["bureau"] = _("Choose a bureau from the list.")
    else:
        values["bureau"] = bureau

    for key, allowed in (
        ("industry", INDUSTRIES),
        ("size", SIZE_CLASSES),
        ("need", NEEDS),
    ):
        value = _text(raw, key)
        if value and value not in allowed:
            errors[key] = _("Choose a value from the list.")
        else:
            values[key] = value

    status = _text(raw, "status") if "status" in raw else default
    if status and status not in STATUSES:
        errors["status"] = _("Choose a value from the list.")
    else:
        values["status"] = status

    township = _text(raw, "township")
    if township:
        if township == UNMATCHED:
            values["township"] = UNMATCHED
        elif (township_id := parse_id(township)) is not None:
            values["township"] = township_id
        else:
            errors["township"] = _("Choose a value from the list.")

    for key in ("amount_min", "amount_max"):
        try:
            typed = _text(raw, key)[:40]
            values[key] = firm_service.parse_wan(typed, label(key)) if typed else None
        except ValueError as exc:
            errors[key] = str(exc)
    if (
        values.get("amount_min") is not None
        and values.get("amount_max") is not None
        and values["amount_max"] < values["amount_min"]
    ):
        errors["amount_max"] = _("The upper amount is below the lower amount.")
        values["amount_max"] = None

    for key in ("date_from", "date_to"):
        raw_day = _text(raw, key)
        day, problem = parse_day(raw_day, label(key) if raw_day else "")
        if problem:
            errors[key] = problem
        values[key] = day
    if values["date_from"] and values["date_to"] and values["date_to"] < values["date_from"]:
        errors["date_to"] = _("The end date is before the start date.")
        values["date_to"] = None

    q = _text(raw, "q")
    if len(q) > MAX_QUERY:
        errors["q"] = _("%(field)s must be at most %(n)s characters.", field=label("q"), n=200)
    else:
        values["q"] = q
    return ReferralFilters(**values), errors


def echo_values(raw: Mapping) -> dict[str, str]:
    """The filter values as typed, for showing them back in the form."""
    out = {}
    for key in FILTER_KEYS:
        value = raw.get(key)
        if isinstance(value, str):
            out[key] = "".join(c for c in value if c.isprintable())[:200]
    return out


def parse_limit(raw) -> int:
    """Page size: 50 by default, at most 200; anything unusable means the default."""
    return _parse_limit(raw, PAGE_SIZE, MAX_LIMIT)


# ------------------------------------------------------------------ cursor
@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: int


def encode_cursor(created_at: datetime, referral_id: int) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{micros}:{referral_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(raw) -> Cursor | None:
    """The position after which the next page starts; anything unusable means the first page."""
    if not isinstance(raw, str) or not raw or len(raw) > 64 or not raw.isascii():
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    match = _CURSOR_RE.match(text)
    if not match:
        return None
    micros, rid = int(match.group(1)), int(match.group(2))
    if not 0 < rid <= MAX_ID:
        return None
    try:
        at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None
    if at.year > 2999:
        return None
    return Cursor(at, rid)


# ------------------------------------------------------------------ list rows
@dataclass(slots=True)
class ListRow:
    id: int
    created_at: datetime
    status: str
    needs: list[str]
    amount_wan: Decimal | None
    purpose: str | None
    firm_id: int
    firm_name: str
    credit_code: str
    industry: str
    size_class: str
    township: str | None  # the listed township's name, or the text kept when not matched
    advisor_name: str | None
    advisor_username: str | None
    institution: str | None
    first_contact_due: date | None
    first_contact_on: date | None
    outcome_result: str | None
    outcome_amount_wan: Decimal | None
    outcome_note: str | None
    rejected_reason: str | None
    satisfaction: int | None
    unread: bool = False
    bureaus: list[str] = field(default_factory=list)
    flag: str | None = None
    township_unmatched: bool = False


def _day_start_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(UTC)


def _select(actor: User, filters: ReferralFilters):
    """The actor's cases matching ``filters``: the narrow inner part of a list query (the case
    and its firm, which the scope and the filters need). Add the page's order and LIMIT, then
    wrap it with :func:`_decorate`."""
    stmt = (
        select(
            Referral.id,
            Referral.created_at,
            Referral.status,
            Referral.need_financing,
            Referral.need_policy,
            Referral.need_guidance,
            Referral.need_insurance,
            Referral.amount_wan,
            Referral.purpose,
            Referral.advisor_id,
            Referral.first_contact_due,
            Referral.first_contact_on,
            Referral.resolved_at,
            Referral.outcome_result,
            Referral.outcome_amount_wan,
            Referral.outcome_note,
            Referral.rejected_reason,
            Referral.satisfaction,
            Enterprise.id.label("firm_id"),
            Enterprise.name.label("firm_name"),
            Enterprise.credit_code,
            Enterprise.industry,
            Enterprise.size_class,
            Enterprise.township_id,
            Enterprise.township_text,
        )
        .select_from(Referral)
        # An outer join (the firm always exists) keeps the case the driving table, so the
        # (status,) created_at, id index gives the page in order and LIMIT stops the scan.
        .outerjoin(Enterprise, Enterprise.id == Referral.enterprise_id)
    )
    return _apply_filters(scoped(Referral, actor, stmt), filters)


_ALIASES: dict[str, object] = {}


def _aliases():
    if not _ALIASES:
        _ALIASES["advisor"] = aliased(User, name="case_advisor")
        _ALIASES["institution"] = aliased(Organisation, name="case_institution")
    return _ALIASES["advisor"], _ALIASES["institution"]


def _decorate(actor: User, inner, order: str = "created"):
    """The page (``inner``, already ordered and limited) with the names around it: township,
    advisor, institution and, for the office roles, the read marker. Joining these outside
    the LIMIT keeps them to the page's rows whatever plan the database picks for the page."""
    page = inner.subquery("page")
    advisor, institution = _aliases()
    stmt = (
        select(
            page,
            Township.name.label("township"),
            advisor.display_name.label("advisor_name"),
            advisor.username.label("advisor_username"),
            func.coalesce(institution.short_name, institution.name).label("institution"),
        )
        .select_from(page)
        .outerjoin(Township, Township.id == page.c.township_id)
        .outerjoin(advisor, advisor.id == page.c.advisor_id)
        .outerjoin(institution, institution.id == advisor.org_id)
    )
    if actor.role in OFFICE_ROLES:
        stmt = stmt.add_columns(ReferralRead.at.label("read_at")).outerjoin(
            ReferralRead,
            and_(ReferralRead.referral_id == page.c.id, ReferralRead.user_id == actor.id),
        )
    first = page.c.resolved_at if order == "resolved" else page.c.created_at
    return stmt.order_by(first.desc(), page.c.id.desc())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _apply_filters(stmt, f: ReferralFilters):
    """The filters as conditions on named bind parameters (values from :func:`_values`): the
    statement depends only on which filters are set, so it can be built once and reused."""
    if f.status:
        stmt = stmt.where(Referral.status == bindparam("f_status"))
    if f.bureau:
        org_id = (
            select(Organisation.id)
            .where(func.lower(Organisation.code) == bindparam("f_bureau"))
            .scalar_subquery()
        )
        stmt = stmt.where(
            select(ReferralBureau.referral_id)
            .where(ReferralBureau.referral_id == Referral.id, ReferralBureau.org_id == org_id)
            .exists()
        )
    if f.industry:
        stmt = stmt.where(Enterprise.industry == bindparam("f_industry"))
    if f.township == UNMATCHED:
        stmt = stmt.where(Enterprise.township_id.is_(None), Enterprise.township_text.is_not(None))
    elif f.township:
        stmt = stmt.where(Enterprise.township_id == bindparam("f_township"))
    if f.size:
        stmt = stmt.where(Enterprise.size_class == bindparam("f_size"))
    if f.need:
        stmt = stmt.where(getattr(Referral, f"need_{f.need}").is_(True))
    if f.amount_min is not None:
        stmt = stmt.where(Referral.amount_wan >= bindparam("f_amount_min"))
    if f.amount_max is not None:
        stmt = stmt.where(Referral.amount_wan <= bindparam("f_amount_max"))
    if f.date_from:
        stmt = stmt.where(Referral.created_at >= bindparam("f_from"))
    if f.date_to:
        stmt = stmt.where(Referral.created_at < bindparam("f_to"))
    if f.q:
        found = [
            Enterprise.credit_code.like(bindparam("f_code"), escape="\\"),
            Enterprise.name.like(bindparam("f_name"), escape="\\"),
        ]
        if f.township == UNMATCHED:
            # The townships page links a name not on the list to the cases of its firms.
            found.append(Enterprise.township_text == bindparam("f_text"))
        stmt = stmt.where(or_(*found))
    return stmt


def _values(f: ReferralFilters, cursor: Cursor | None = None) -> dict:
    """The bind values for :func:`_apply_filters` and :func:`_after`."""
    values: dict = {}
    if f.status:
        values["f_status"] = f.status
    if f.bureau:
        values["f_bureau"] = f.bureau.lower()
    if f.industry:
        values["f_industry"] = f.industry
    if f.township and f.township != UNMATCHED:
        values["f_township"] = f.township
    if f.size:
        values["f_size"] = f.size
    if f.amount_min is not None:
        values["f_amount_min"] = f.amount_min
    if f.amount_max is not None:
        values["f_amount_max"] = f.amount_max
    if f.date_from:
        values["f_from"] = _day_start_utc(f.date_from)
    if f.date_to:
        values["f_to"] = _day_start_utc(f.date_to + timedelta(days=1))
    if f.q:
        # A credit code by its start (as typed, normalised), or a part of the name.
        values["f_code"] = _like_escape(credit_code.normalize(f.q).upper()) + "%"
        values["f_name"] = "%" + _like_escape(f.q) + "%"
        if f.township == UNMATCHED:
            values["f_text"] = f.q
    if cursor is not None:
        values["c_at"], values["c_id"] = cursor.created_at, cursor.id
    return values


def _shape(f: ReferralFilters) -> tuple:
    """Which filters are set (and which need column): what the statement's form depends on."""
    return tuple(getattr(f, k) not in (None, "") for k in FILTER_KEYS) + (f.need,)


def _after(stmt, cursor: Cursor | None):
    if cursor is None:
        return stmt
    # (created_at, id) < (c, i), written so the index range on created_at is usable everywhere.
    at = bindparam("c_at", type_=Referral.created_at.type)
    return stmt.where(
        Referral.created_at <= at,
        or_(Referral.created_at < at, Referral.id < bindparam("c_id", type_=Integer)),
    )


_STATEMENTS: dict[tuple, object] = {}
_MAX_STATEMENTS = 1000


def _page_statement(actor: User, filters: ReferralFilters, cursor: Cursor | None, limit: int):
    """The statement of a list page, built once per user and filter shape, then reused with
    new bind values: building and keying a statement this size costs more than running it.
    The scope (role, user id, org id) is in both the statement and its key."""
    key = (actor.id, actor.role, actor.org_id, _shape(filters), cursor is not None, limit)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        if len(_STATEMENTS) >= _MAX_STATEMENTS:
            _STATEMENTS.clear()
        inner = _newest_first(_after(_select(actor, filters), cursor)).limit(limit)
        stmt = _STATEMENTS[key] = _decorate(actor, inner)
    return stmt


def _newest_first(stmt):
    return stmt.order_by(Referral.created_at.desc(), Referral.id.desc())


def _rows(result, office: bool) -> list[ListRow]:
    """List rows from a result of :func:`_select` (by position: attribute access on result rows
    is the slow part of a page otherwise)."""
    keys = list(result.keys())
    return [_row(dict(zip(keys, values, strict=True)), office) for values in result]


def _row(d: dict, office: bool) -> ListRow:
    return ListRow(
        id=d["id"],
        created_at=d["created_at"],
        status=d["status"],
        needs=[n for n in NEEDS if d[f"need_{n}"]],
        amount_wan=d["amount_wan"],
        purpose=d["purpose"],
        firm_id=d["firm_id"],
        firm_name=d["firm_name"],
        credit_code=d["credit_code"],
        industry=d["industry"],
        size_class=d["size_class"],
        township=d["township"] or d["township_text"],
        township_unmatched=d["township"] is None and d["township_text"] is not None,
        advisor_name=d["advisor_name"],
        advisor_username=d["advisor_username"],
        institution=d["institution"],
        first_contact_due=d["first_contact_due"],
        first_contact_on=d["first_contact_on"],
        outcome_result=d["outcome_result"],
        outcome_amount_wan=d["outcome_amount_wan"],
        outcome_note=d["outcome_note"],
        rejected_reason=d["rejected_reason"],
        satisfaction=d["satisfaction"],
        unread=office and d["read_at"] is None and d["status"] == "submitted",
    )


class _FlagMemo:
    """``sla.flag`` for many rows: cases assigned together share a due date, and counting the
    working days to it walks the calendar day by day, so each distinct date is counted once."""

    def __init__(self, cal, today: date):
        self.cal, self.today, self.seen = cal, today, {}

    def __call__(self, row) -> str | None:
        key = (row.status, row.first_contact_due, row.first_contact_on)
        if key not in self.seen:
            self.seen[key] = sla.flag(*key, self.today, self.cal)
        return self.seen[key]


@dataclass
class Page:
    rows: list[ListRow]
    next_cursor: str | None


def list_page(
    actor: User,
    filters: ReferralFilters,
    *,
    cursor: Cursor | None = None,
    limit: int = PAGE_SIZE,
    cal=None,
    today: date | None = None,
) -> Page:
    """One page of the actor's cases, newest first. Two queries whatever ``limit`` is: the
    rows, and the referring bureaus of the page."""
    limit = max(1, min(limit, MAX_LIMIT))
    office = actor.role in OFFICE_ROLES
    stmt = _page_statement(actor, filters, cursor, limit + 1)
    rows = _rows(db.session.execute(stmt, _values(filters, cursor)), office)
    more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        # A bureau's list shows the closed loop, not who else referred (one query less).
        bureaus = svc.bureaus_of([r.id for r in rows]) if actor.role != "bureau" else {}
        cal = cal if cal is not None else svc.calendar()
        today = today or svc.today()
        flag_of = _FlagMemo(cal, today)
        for row in rows:
            row.bureaus = bureaus.get(row.id, [])
            row.flag = flag_of(row)
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
    return Page(rows, next_cursor)


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


# ------------------------------------------------------------------ inbox reads
def mark_read(user: User, referral_id: int) -> None:
    """Record that an office user opened a case (idempotent). The caller commits."""
    if user.role not in OFFICE_ROLES:
        return
    insert_ignoring_conflicts(
        ReferralRead.__table__,
        [{"user_id": user.id, "referral_id": referral_id, "at": utcnow()}],
    )


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
    creator = aliased(User)
    show_proposals = actor.role in OFFICE_ROLES or actor.role == "admin"
    bureaus = [
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
    advisor = db.session.get(User, referral.advisor_id) if referral.advisor_id else None
    named = aliased(User)
    events = [
        EventLine(ev.at, ev.kind, ev.status, ev.actor_label, name, ev.note)
        for ev, name in db.session.execute(
            select(ReferralEvent, named.display_name)
            .outerjoin(named, named.id == ReferralEvent.advisor_id)
            .where(ReferralEvent.referral_id == referral.id)
            .order_by(ReferralEvent.at, ReferralEvent.id)
        ).all()
    ]
    flag = sla.flag(
        referral.status,
        referral.first_contact_due,
        referral.first_contact_on,
        svc.today(),
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


# ------------------------------------------------------------------ bureau dashboard
@dataclass
class Dashboard:
    by_status: dict[str, int]
    referred: int
    median_days_to_contact: float | None
    contacted: int
    financed_wan: Decimal
    financed_cases: int
    latest: list[ListRow]


def _days_to_first_contact():
    """Days from the referral (its Shanghai calendar day) to the first contact, as one column."""
    if db.session.get_bind().dialect.name == "postgresql":
        local_day = cast(
            func.timezone("Asia/Shanghai", func.timezone("UTC", Referral.created_at)), Date
        )
        return type_coerce(Referral.first_contact_on - local_day, Integer)
    # SQLite keeps naive UTC text; Shanghai is UTC+8 all year (no daylight saving).
    return cast(
        func.julianday(Referral.first_contact_on)
        - func.julianday(func.date(Referral.created_at, "+8 hours")),
        Integer,
    )


def bureau_dashboard(actor: User, latest: int = 10) -> Dashboard:
    """The closed loop in figures for the actor's cases. Three queries whatever the volume."""
    financed = case((Referral.outcome_result == "financed", Referral.outcome_amount_wan))
    financed_n = case((Referral.outcome_result == "financed", 1), else_=0)
    by_status: dict[str, int] = {s: 0 for s in STATUSES}
    total_financed = Decimal("0.00")
    financed_cases = 0
    for status, n, amount, n_financed in db.session.execute(
        scoped(
            Referral,
            actor,
            select(Referral.status, func.count(), func.sum(financed), func.sum(financed_n)),
        ).group_by(Referral.status)
    ).all():
        by_status[status] = n
        total_financed += amount or Decimal("0")
        financed_cases += int(n_financed or 0)
    days = [
        d
        for d in db.session.execute(
            scoped(Referral, actor, select(_days_to_first_contact())).where(
                Referral.first_contact_on.is_not(None)
            )
        ).scalars()
        if d is not None
    ]
    median = statistics.median(days) if days else None
    inner = (
        _select(actor, ReferralFilters())
        .where(Referral.outcome_result.is_not(None))
        .order_by(Referral.resolved_at.desc(), Referral.id.desc())
        .limit(latest)
    )
    office = actor.role in OFFICE_ROLES
    rows = _rows(db.session.execute(_decorate(actor, inner, "resolved")), office)
    return Dashboard(
        by_status=by_status,
        referred=sum(by_status.values()),
        median_days_to_contact=median,
        contacted=len(days),
        financed_wan=total_financed,
        financed_cases=financed_cases,
        latest=rows,
    )


# ------------------------------------------------------------------ export
def export_headers() -> list[str]:
    return [
        _("Case"),
        _("Firm name"),
        _("Credit code"),
        _("Industry"),
        _("Township"),
        _("Size class"),
        _("Referring bureaus"),
        _("Needs"),
        _("Amount needed (万元)"),
        _("Purpose"),
        _("Status"),
        _("Advisor"),
        _("Institution"),
        _("First contact due"),
        _("Service-level flag"),
        _("First contact"),
        _("Outcome"),
        _("Amount financed (万元)"),
        _("Outcome note"),
        _("Rejection reason"),
        _("Satisfaction"),
        _("Referred at"),
    ]


@dataclass
class Export:
    rows: list[list]
    truncated: bool


def export_rows(actor: User, filters: ReferralFilters, cap: int = EXPORT_CAP) -> Export:
    """Every case matching ``filters`` (up to ``cap``), as spreadsheet rows, newest first."""
    office = actor.role in OFFICE_ROLES
    inner = _newest_first(_select(actor, filters)).limit(cap + 1)
    rows = _rows(db.session.execute(_decorate(actor, inner), _values(filters)), office)
    truncated = len(rows) > cap
    rows = rows[:cap]
    bureaus = svc.bureaus_of([r.id for r in rows]) if rows else {}
    cal = svc.calendar()
    today = svc.today()
    statuses = svc.status_labels()
    needs = svc.need_labels()
    outcomes = svc.outcome_labels()
    sizes = firm_service.size_labels()
    flags = sla_labels()
    out = []
    flag_of = _FlagMemo(cal, today)
    for r in rows:
        flag = flag_of(r)
        out.append(
            [
                r.id,
                r.firm_name,
                r.credit_code,
                _(INDUSTRIES[r.industry]) if r.industry in INDUSTRIES else r.industry,
                r.township,
                sizes.get(r.size_class, r.size_class),
                ", ".join(bureaus.get(r.id, [])),
                ", ".join(needs.get(n, n) for n in r.needs),
                r.amount_wan,
                r.purpose,
                statuses.get(r.status, r.status),
                r.advisor_name,
                r.institution,
                r.first_contact_due,
                flags.get(flag) if flag else None,
                r.first_contact_on,
                outcomes.get(r.outcome_result, r.outcome_result) if r.outcome_result else None,
                r.outcome_amount_wan,
                r.outcome_note,
                r.rejected_reason,
                r.satisfaction,
                r.created_at,
            ]
        )
    return Export(out, truncated)


def iter_filter_notes(
    filters: ReferralFilters,
    bureau_names: Mapping[str, str],
    township_names: Mapping[int, str],
) -> Iterator[tuple[str, str]]:
    """(label, value) pairs describing the filters of an export, for its notes sheet."""
    labels = filter_labels()
    statuses = svc.status_labels()
    needs = svc.need_labels()
    size_labels = firm_service.size_labels

    for key, value in filters.as_args().items():
        if key == "status":
            yield labels[key], statuses.get(value, value) if value else _("All statuses")
        elif key == "industry":
            yield labels[key], _(INDUSTRIES[value]) if value in INDUSTRIES else value
        elif key == "need":
            yield labels[key], needs.get(value, value)
        elif key == "size":
            yield labels[key], size_labels().get(value, value)
        elif key == "bureau":
            yield labels[key], bureau_names.get(value.lower(), value)
        elif key == "township" and filters.township == UNMATCHED:
            yield labels[key], _("Not on the city's list")
        elif key == "township":
            yield labels[key], township_names.get(filters.township, value)
        else:
            yield labels[key], value
