"""Reading the audit trail: filters, keyset pagination and a compact rendering of changes.

Pure query helpers: the caller passes plain values (a mapping of filter strings, a page cursor);
nothing here reads the HTTP request. A page is one query for its rows and one for the names they
refer to (:func:`readable_entries`), whatever its size. Labels, in the reader's language, come
from the one mapping in :mod:`advisors.services.audit_labels`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from models import AuditLog, User, db

from ..i18n import SHANGHAI
from ..params import parse_day, parse_id
from . import audit_labels
from .audit_labels import VALUE_CHARS as VALUE_CHARS  # a longer value is shortened
from .audit_labels import Entry, plain_text

PAGE_SIZE = 50
MAX_TEXT = 60  # record ids and actor labels are at most this long in the trail


def table_labels() -> dict[str, str]:
    """Audited table name -> translated label, for the filter and the list."""
    return audit_labels.table_labels()


def action_labels() -> dict[str, str]:
    return audit_labels.action_labels()


def readable_entries(rows: list[AuditLog]) -> list[Entry]:
    """Audit rows as people read them (labels, names, Shanghai times): one more query for the
    names of everything the rows refer to, whatever their number."""
    return audit_labels.readable(rows)


@dataclass(frozen=True)
class AuditFilters:
    table: str = ""
    record: str = ""
    actor: str = ""
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_args(self) -> dict[str, str]:
        """The filters as query-string values (empty ones left out), for links and the pager."""
        args = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value:
                args[f.name] = value.isoformat() if isinstance(value, date) else value
        return args

    @property
    def active(self) -> bool:
        return bool(self.as_args())


def _text(raw: Mapping, key: str) -> str:
    value = raw.get(key)
    return value.strip() if isinstance(value, str) else ""


def parse_filters(raw: Mapping) -> tuple[AuditFilters, dict[str, str]]:
    """Filter values from a mapping of strings (a query string). Returns (filters, errors):
    ``errors`` maps a field to a translated message; a field in error is left out of the
    filters."""
    errors: dict[str, str] = {}
    values: dict = {}

    table = _text(raw, "table")
    if table and table not in table_labels():
        errors["table"] = _("Choose a table from the list.")
    else:
        values["table"] = table

    action = _text(raw, "action")
    if action and action not in action_labels():
        errors["action"] = _("Choose an action from the list.")
    else:
        values["action"] = action

    for key, label in (("record", _("Record")), ("actor", _("By"))):
        value = _text(raw, key)
        if "\x00" in value or not value.isprintable():
            errors[key] = _("%(field)s contains characters that are not allowed.", field=label)
        elif len(value) > MAX_TEXT:
            errors[key] = _("%(field)s must be at most %(n)s characters.", field=label, n=MAX_TEXT)
        else:
            values[key] = value

    date_from, problem = parse_day(_text(raw, "date_from"), _("From"))
    if problem:
        errors["date_from"] = problem
    date_to, problem = parse_day(_text(raw, "date_to"), _("To"))
    if problem:
        errors["date_to"] = problem
    if date_from and date_to and date_to < date_from:
        errors["date_to"] = _("The end date is before the start date.")
        date_to = None
    values["date_from"], values["date_to"] = date_from, date_to
    return AuditFilters(**values), errors


FILTER_KEYS = tuple(f.name for f in fields(AuditFilters))


def echo_values(raw: Mapping) -> dict[str, str]:
    """The filter values as typed, for showing them back in the form: control characters
    dropped and length bounded (a value in error is shown as typed, so it can be corrected)."""
    values = {}
    for key in FILTER_KEYS:
        value = raw.get(key)
        if isinstance(value, str):
            values[key] = "".join(c for c in value if c.isprintable())[:200]
    return values


def parse_cursor(raw) -> int | None:
    """The ``before`` id of keyset pagination; anything unusable means the first page."""
    return parse_id(raw if isinstance(raw, str) else None)


def day_start_utc(day: date) -> datetime:
    """Midnight of a Shanghai calendar day, as a UTC instant."""
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(UTC)


def _like_prefix(value: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search_audit(
    filters: AuditFilters, before_id: int | None = None, limit: int = PAGE_SIZE
) -> tuple[list[AuditLog], int | None]:
    """Audit rows matching ``filters``, newest first, at most ``limit`` of them with an id below
    ``before_id``. Returns (rows, next_before): the cursor of the next page, or None on the
    last page. One query."""
    stmt = select(AuditLog)
    if filters.table:
        stmt = stmt.where(AuditLog.table_name == filters.table)
    if filters.record:
        stmt = stmt.where(AuditLog.record_id == filters.record)
    if filters.action:
        stmt = stmt.where(AuditLog.action == filters.action)
    if filters.actor:
        # The label written at the time (a username, or cli/demo/system), or the account's
        # current username or display name: exact or as a prefix, ignoring case.
        pattern = _like_prefix(filters.actor)
        accounts = select(User.id).where(
            or_(
                func.lower(User.username).like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
            )
        )
        stmt = stmt.where(
            or_(
                func.lower(AuditLog.actor_label).like(pattern, escape="\\"),
                AuditLog.actor_id.in_(accounts),
            )
        )
    if filters.date_from:
        stmt = stmt.where(AuditLog.at >= day_start_utc(filters.date_from))
    if filters.date_to:
        stmt = stmt.where(AuditLog.at < day_start_utc(filters.date_to + timedelta(days=1)))
    if before_id is not None:
        stmt = stmt.where(AuditLog.id < before_id)
    stmt = stmt.order_by(AuditLog.id.desc()).limit(limit + 1)
    rows = list(db.session.execute(stmt).scalars())
    next_before = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_before


# ------------------------------------------------------------------ rendering changes
# One old or new value as short text, without its field's kind (masked secrets stay ``***``).
format_value = plain_text


@dataclass(frozen=True)
class Change:
    field: str
    old: str | None  # None: not shown (an insert has no old value, a delete no new one)
    new: str | None


def changes_of(entry: AuditLog) -> list[Change]:
    """The ``{column: [old, new]}`` of an audit row as a list for display, sorted by column."""
    changes = entry.changes
    if not isinstance(changes, dict):
        return [Change("", None, format_value(changes))] if changes else []
    result = []
    for key in sorted(changes, key=str):
        pair = changes[key]
        if isinstance(pair, list | tuple) and len(pair) == 2:
            old, new = pair
        else:
            old, new = None, pair
        result.append(
            Change(
                str(key),
                None if entry.action == "insert" else format_value(old),
                None if entry.action == "delete" else format_value(new),
            )
        )
    return result
