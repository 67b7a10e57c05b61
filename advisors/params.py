"""Request values as typed: ids, bounded integers, dates and page sizes, parsed in one place.

Query strings, form fields and JSON bodies carry text a user (or a script) wrote. These parsers
take that raw value and answer the typed value or ``None`` (or the default); they never raise,
so no input can become a server error. Only ASCII digits count as digits: ``"¹"``, ``"٣"`` and
full-width ``"１２"`` are refused (``str.isdigit`` accepts them and ``int()`` then fails or reads
them), and the length is checked before ``int()`` (a 10 KB string of digits is refused without
being converted). Nothing here reads the request: views and services both use these.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from flask_babel import gettext as _

MAX_ID = 2**31 - 1  # integer primary keys are 32-bit on PostgreSQL: a larger number names nothing
MIN_YEAR, MAX_YEAR = 1970, 2999  # the dates this product has any use for
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200  # a list page's rows: by default, and at most
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_INT_RE = re.compile(r"^-?[0-9]+\Z")


def parse_int(raw, lo: int = 0, hi: int = MAX_ID) -> int | None:
    """``raw`` as a whole number from ``lo`` to ``hi``, or None.

    A string of ASCII digits (a leading ``-`` only when ``lo`` is negative), surrounding white
    space ignored, or an ``int`` (never a ``bool``). Anything else is None: other types, signs,
    decimals, Unicode digits, and numbers out of range, including those too long to convert."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if lo <= raw <= hi else None
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not _INT_RE.match(text) or (text.startswith("-") and lo >= 0):
        return None
    # A value with more digits than the widest bound (leading zeros aside) is out of range.
    width = max(len(str(abs(lo))), len(str(abs(hi))))
    if len(text.lstrip("-").lstrip("0")) > width:
        return None
    value = int(text)
    return value if lo <= value <= hi else None


def parse_id(raw) -> int | None:
    """A record id (1 to 2**31 - 1) as typed, or None."""
    return parse_int(raw, 1, MAX_ID)


def parse_limit(raw, default: int = PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """A page size from the query string: ``default`` when missing or unusable (not ASCII
    digits, zero, more than six digits), at most ``maximum``."""
    value = parse_int(raw, 1, 999_999)
    return default if value is None else min(value, maximum)


def parse_date(raw) -> date | None:
    """A calendar date written ``YYYY-MM-DD`` (ASCII digits, a real day, year 1970 to 2999),
    or None."""
    day, _problem = _day(raw)
    return day


def parse_date_field(raw, label: str) -> date | None:
    """A date field of a form or a JSON body: a ``date`` as given, None when empty, the day a
    ``YYYY-MM-DD`` text (ASCII digits, a real day) names; anything else raises ``ValueError``
    with the message to show, naming ``label``."""
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    if DATE_RE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(_("%(field)s must be a date (YYYY-MM-DD).", field=label))


def parse_day(raw, label: str) -> tuple[date | None, str | None]:
    """A filter's date: (day, None), (None, None) when empty, or (None, the message naming
    ``label``) when it is not a usable ``YYYY-MM-DD`` date."""
    day, problem = _day(raw)
    if problem == "format":
        return None, _("%(field)s must be a date written YYYY-MM-DD.", field=label)
    if problem == "unreal":
        return None, _("%(field)s is not a real date.", field=label)
    if problem == "range":
        return None, _("%(field)s is out of range.", field=label)
    return day, None


def _day(raw) -> tuple[date | None, str | None]:
    value = raw.strip() if isinstance(raw, str) else ""
    if not value:
        return None, None
    if not DATE_RE.match(value):
        return None, "format"
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None, "unreal"
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return None, "range"
    return day, None
