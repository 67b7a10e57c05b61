"""The referral list's filters: what a query string may ask for, checked and typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _

from models import (
    NEEDS,
    SIZE_CLASSES,
    STATUSES,
    User,
)

from ...params import parse_day, parse_id
from ...permissions import OFFICE_ROLES
from ...sizing import INDUSTRIES
from .. import firms as firm_service
from .label_sets import filter_labels

MAX_QUERY = 200


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


def parse_filters(raw: Mapping, default: str = "") -> tuple[ReferralFilters, dict[str, str]]:
    """Filters from a mapping of strings (a query string). Returns (filters, errors): a field
    in error is left out of the filters. ``default`` is the status when none is given at all
    (an explicitly empty ``status`` means every status)."""
    errors: dict[str, str] = {}
    values: dict = {}
    _bureau(raw, values, errors)
    _choices(raw, default, values, errors)
    _township(raw, values, errors)
    _amounts(raw, values, errors)
    _dates(raw, values, errors)
    q = _text(raw, "q")
    if len(q) > MAX_QUERY:
        errors["q"] = _("%(field)s must be at most %(n)s characters.", field=_label("q"), n=200)
    else:
        values["q"] = q
    return ReferralFilters(**values), errors


def _label(key: str) -> str:
    return filter_labels()[key]  # only when there is something to say: they cost


def _bureau(raw: Mapping, values: dict, errors: dict[str, str]) -> None:
    bureau = _text(raw, "bureau")
    if len(bureau) > 40 or not bureau.isprintable():
        errors["bureau"] = _("Choose a bureau from the list.")
    else:
        values["bureau"] = bureau


def _choices(raw: Mapping, default: str, values: dict, errors: dict[str, str]) -> None:
    """Industry, size class, need and status: a value from their list, or nothing."""
    status = _text(raw, "status") if "status" in raw else default
    for key, value, allowed in (
        ("industry", _text(raw, "industry"), INDUSTRIES),
        ("size", _text(raw, "size"), SIZE_CLASSES),
        ("need", _text(raw, "need"), NEEDS),
        ("status", status, STATUSES),
    ):
        if value and value not in allowed:
            errors[key] = _("Choose a value from the list.")
        else:
            values[key] = value


def _township(raw: Mapping, values: dict, errors: dict[str, str]) -> None:
    township = _text(raw, "township")
    if not township:
        return
    if township == UNMATCHED:
        values["township"] = UNMATCHED
    elif (township_id := parse_id(township)) is not None:
        values["township"] = township_id
    else:
        errors["township"] = _("Choose a value from the list.")


def _amounts(raw: Mapping, values: dict, errors: dict[str, str]) -> None:
    for key in ("amount_min", "amount_max"):
        try:
            typed = _text(raw, key)[:40]
            values[key] = firm_service.parse_wan(typed, _label(key)) if typed else None
        except ValueError as exc:
            errors[key] = str(exc)
    low, high = values.get("amount_min"), values.get("amount_max")
    if low is not None and high is not None and high < low:
        errors["amount_max"] = _("The upper amount is below the lower amount.")
        values["amount_max"] = None


def _dates(raw: Mapping, values: dict, errors: dict[str, str]) -> None:
    for key in ("date_from", "date_to"):
        raw_day = _text(raw, key)
        day, problem = parse_day(raw_day, _label(key) if raw_day else "")
        if problem:
            errors[key] = problem
        values[key] = day
    if values["date_from"] and values["date_to"] and values["date_to"] < values["date_from"]:
        errors["date_to"] = _("The end date is before the start date.")
        values["date_to"] = None


def echo_values(raw: Mapping) -> dict[str, str]:
    """The filter values as typed, for showing them back in the form."""
    out = {}
    for key in FILTER_KEYS:
        value = raw.get(key)
        if isinstance(value, str):
            out[key] = "".join(c for c in value if c.isprintable())[:200]
    return out
