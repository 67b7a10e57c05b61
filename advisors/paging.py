"""Keyset pages: one cursor format, one "after this position" condition, one way to cut a page.

Every list of the product (referrals on the web and in the API, the visit log, the financing
pipeline, the risk queue) pages newest first on (a date or timestamp, the row id): a page is the
rows *after* the last row of the previous one, so no page costs an OFFSET scan or a COUNT and a
row added meanwhile never shifts the next page. The position travels in the URL as an opaque
cursor: the values joined by ``|`` and base64url-encoded. A cursor is checked strictly when it
comes back (the expected kinds of value, the length, ids up to :data:`params.MAX_ID`, years the
product uses, and the exact spelling :func:`encode` gives): anything we did not issue is None,
which a web list reads as "the first page" and the API answers with a 400.

To page a new list: order it with ``order_by(key.desc(), id.desc())``, add :func:`after` when a
cursor came back, fetch ``limit + 1`` rows and cut them with :func:`split`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, or_

from .params import MAX_ID, MAX_PAGE_SIZE, MAX_YEAR, MIN_YEAR

MAX_CURSOR_CHARS = 96  # the longest cursor we issue is about 40 characters
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS = re.compile(r"^[0-9]{1,17}\Z")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_ID = re.compile(r"^[1-9][0-9]{0,9}\Z")

Value = date | datetime | int


# ------------------------------------------------------------------ the cursor
def encode(*position: Value) -> str:
    """The opaque cursor of a keyset position: timestamps (as microseconds since 1970 UTC; a
    naive one is read as UTC), dates and ids."""
    raw = "|".join(_spell(value) for value in position)
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")


def decode(raw, *kinds: type) -> tuple | None:
    """The position a cursor from :func:`encode` holds, as values of ``kinds`` (``datetime``,
    ``date`` or ``int``, in order), or None for anything we did not issue."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_CURSOR_CHARS or not raw.isascii():
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    parts = text.split("|")
    if len(parts) != len(kinds):
        return None
    values = tuple(_read(part, kind) for part, kind in zip(parts, kinds, strict=True))
    if any(value is None for value in values) or encode(*values) != raw:
        return None  # a value out of range, or not the spelling we give it
    return values


def _spell(value: Value) -> str:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return str((aware - _EPOCH) // timedelta(microseconds=1))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"a keyset position holds dates, timestamps and ids, not {value!r}")


def _read(part: str, kind: type) -> Value | None:
    if kind is datetime:
        return _read_timestamp(part)
    if kind is date:
        return _read_day(part)
    if kind is int and _ID.match(part):
        row_id = int(part)
        return row_id if row_id <= MAX_ID else None
    return None


def _read_timestamp(part: str) -> datetime | None:
    if not _MICROS.match(part):
        return None
    at = _EPOCH + timedelta(microseconds=int(part))
    return at if at.year <= MAX_YEAR else None


def _read_day(part: str) -> date | None:
    if not _DAY.match(part):
        return None
    try:
        day = date.fromisoformat(part)
    except ValueError:
        return None
    return day if MIN_YEAR <= day.year <= MAX_YEAR else None


# ------------------------------------------------------------------ the query
def after(key_col, id_col, key, row_id):
    """The rows after (key, row_id) in newest-first order: ``(key_col, id_col) < (key, row_id)``
    written as ``key_col <= key AND (key_col < key OR id_col < row_id)``, so the index range on
    ``key_col`` is usable on every database. ``key`` and ``row_id`` are values or bind
    parameters."""
    return and_(key_col <= key, or_(key_col < key, id_col < row_id))


def clamp(limit: int, maximum: int = MAX_PAGE_SIZE) -> int:
    """A page size a caller passed, kept from 1 to ``maximum``."""
    return max(1, min(int(limit), maximum))


def split(
    rows: Sequence, limit: int, position: Callable[[object], tuple]
) -> tuple[list, str | None]:
    """``limit + 1`` fetched rows cut to the page, with the cursor of the next page (None on
    the last). ``position(row)`` is the row's keyset position, e.g. ``(row.created_at,
    row.id)``."""
    page = list(rows[:limit])
    if len(rows) <= limit or not page:
        return page, None
    return page, encode(*position(page[-1]))
