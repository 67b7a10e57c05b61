"""The yearly growth targets of the indicators: a city-wide target per indicator and optional
overrides for one institution, kept by the finance office and versioned like the rubric.

Every save makes a new version of the year's targets (numbered from 1 in the year), holding the
whole set; the newest is the one in force, and a ranked month keeps the version it was ranked
with. The same checks serve the API, the page, the command line and the file import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import func, select

from models import (
    Indicator,
    IndicatorTarget,
    IndicatorTargetVersion,
    Organisation,
    User,
    db,
    utcnow,
)

from ...errors import Forbidden, NotFound, ValidationFailed
from ..firms import clean_text
from . import catalogue

YEAR_MIN, YEAR_MAX = 2000, 2999
PCT_MIN, PCT_MAX = Decimal(-100), Decimal(1000)  # -100 < growth <= 1000
MAX_TARGETS = 5000
NOTE_MAX = 500
_TWO = Decimal("0.01")
_NUMBER = re.compile(r"^[+-]?[0-9]{1,6}(\.[0-9]{1,10})?$")
INSTITUTION_TYPES = ("bank", "insurer")


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Line:
    """One target as shown: its indicator, the institution it is for (None: city-wide)."""

    indicator: Indicator
    institution: Organisation | None
    growth_pct: Decimal


def check_year(year) -> int:
    """The year as a number, or ValidationFailed (field ``year``)."""
    if type(year) is int and YEAR_MIN <= year <= YEAR_MAX:
        return year
    message = _("The year must be from %(a)s to %(b)s.", a=YEAR_MIN, b=YEAR_MAX)
    raise ValidationFailed(message, {"year": message})


def latest(year: int) -> IndicatorTargetVersion | None:
    """The version of the year's targets in force (the newest), or None."""
    return db.session.execute(
        select(IndicatorTargetVersion)
        .where(IndicatorTargetVersion.year == year)
        .order_by(IndicatorTargetVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def versions(year: int) -> list[IndicatorTargetVersion]:
    """Every version of the year's targets, newest first."""
    return list(
        db.session.execute(
            select(IndicatorTargetVersion)
            .where(IndicatorTargetVersion.year == year)
            .order_by(IndicatorTargetVersion.version.desc())
        ).scalars()
    )


def version_of(year: int, number: int) -> IndicatorTargetVersion:
    found = db.session.execute(
        select(IndicatorTargetVersion).where(
            IndicatorTargetVersion.year == year, IndicatorTargetVersion.version == number
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(_("The page or record was not found."))
    return found


def lines(version: IndicatorTargetVersion | None, institution_id: int | None = None) -> list[Line]:
    """The targets of ``version``: by indicator, city-wide first, then by institution code.
    ``institution_id``: only the city-wide ones and that institution's overrides."""
    if version is None:
        return []
    query = (
        select(IndicatorTarget, Indicator, Organisation)
        .join(Indicator, Indicator.id == IndicatorTarget.indicator_id)
        .outerjoin(Organisation, Organisation.id == IndicatorTarget.institution_id)
        .where(IndicatorTarget.version_id == version.id)
        .order_by(
            Indicator.sort_order,
            Indicator.id,
            IndicatorTarget.institution_id.is_not(None),
            Organisation.code,
        )
    )
    if institution_id is not None:
        query = query.where(
            (IndicatorTarget.institution_id.is_(None))
            | (IndicatorTarget.institution_id == institution_id)
        )
    return [Line(ind, org, t.growth_pct) for t, ind, org in db.session.execute(query)]


def institutions() -> list[Organisation]:
    """The active banks and insurers (who may have a target of their own), by code."""
    return list(
        db.session.execute(
            select(Organisation)
            .where(Organisation.type.in_(INSTITUTION_TYPES), Organisation.active.is_(True))
            .order_by(Organisation.type, Organisation.code)
        ).scalars()
    )


def saved_by_names(items: Iterable[IndicatorTargetVersion]) -> dict[int, str]:
    """Version id -> the display name of who saved it (the command line: absent)."""
    ids = {v.saved_by_id for v in items if v.saved_by_id}
    if not ids:
        return {}
    names = dict(
        db.session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all()
    )
    return {v.id: names[v.saved_by_id] for v in items if v.saved_by_id in names}


def to_api(year: int, version: IndicatorTargetVersion | None, viewer: User | None) -> dict:
    """The year's targets as the API gives them; a liaison sees the city-wide targets and its
    own institution's."""
    own = viewer.org_id if viewer is not None and viewer.role == "liaison" else None
    names = saved_by_names([version]) if version is not None else {}
    return {
        "year": year,
        "version": version.version if version else None,
        "saved_at": version.saved_at if version else None,
        "saved_by": names.get(version.id) if version else None,
        "note": version.note if version else None,
        "targets": [
            {
                "indicator": line.indicator.code,
                "growth_pct": str(line.growth_pct),
                "institution": line.institution.code if line.institution else None,
            }
            for line in lines(version, own)
        ],
    }


# ----------------------------------------------------------------------------- checking
def parse_pct(value) -> tuple[Decimal | None, str | None]:
    """A growth target in percent: a decimal string or a JSON number, more than -100 and at
    most 1000, at most two decimals. (value, None) or (None, the message)."""
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        return None, _("Give the target growth in percent, such as 8.5.")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value)) if value == value and abs(value) < 1e7 else None
    elif isinstance(value, str) and _NUMBER.match(value.strip().rstrip("%").strip()):
        number = Decimal(value.strip().rstrip("%").strip())
    else:
        number = None
    if number is None:
        return None, _("Enter the target growth as a number in percent, such as 8.5.")
    try:
        exact = number.quantize(_TWO)
    except InvalidOperation:
        exact = None
    if exact is None or exact != number:
        return None, _("At most 2 decimal places.")
    if not PCT_MIN < exact <= PCT_MAX:
        return None, _("The target growth must be above -100 and at most 1000 percent.")
    return exact, None


@dataclass
class _Book:
    """What checking a set of targets looks up once: the indicators by code, the banks and
    insurers by code (case-insensitive)."""

    indicators: dict[str, Indicator]
    orgs: dict[str, Organisation]

    @classmethod
    def load(cls) -> _Book:
        orgs = db.session.execute(
            select(Organisation).where(Organisation.type.in_(INSTITUTION_TYPES))
        ).scalars()
        return cls(catalogue.by_code(), {o.code.lower(): o for o in orgs})

    def indicator(self, value, errors: dict, key: str) -> Indicator | None:
        found = self.indicators.get(value) if isinstance(value, str) else None
        if found is None or not found.active:
            if not isinstance(value, str) or not value.strip():
                errors[key] = _("Give the indicator's code.")
            else:
                errors[key] = _("Unknown indicator %(code)s.", code=value[:40])
            return None
        return found

    def institution(self, value, indicator, errors: dict, key: str) -> Organisation | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        org = self.orgs.get(value.strip().lower()) if isinstance(value, str) else None
        if org is None or not org.active:
            errors[key] = _(
                "No active bank or insurer has the code %(code)s.", code=str(value)[:40]
            )
            return None
        if indicator is not None and not indicator.reported_by_type(org.type):
            errors[key] = _(
                "%(org)s does not report %(indicator)s.",
                org=org.name,
                indicator=catalogue.name_of(indicator),
            )
        return org


def _clean_one(book: _Book, item, key: str, errors: dict, seen: dict) -> IndicatorTarget | None:
    if not isinstance(item, dict):
        errors[key] = _("Give each target as an object with indicator, growth_pct and institution.")
        return None
    indicator = book.indicator(item.get("indicator"), errors, f"{key}.indicator")
    org = book.institution(item.get("institution"), indicator, errors, f"{key}.institution")
    pct, problem = parse_pct(item.get("growth_pct"))
    if problem:
        errors[f"{key}.growth_pct"] = problem
    if indicator is None or f"{key}.institution" in errors:
        return None
    pair = (indicator.id, org.id if org else None)
    if pair in seen:
        errors[f"{key}.indicator"] = _(
            "This target is given twice (also as number %(n)s).", n=seen[pair] + 1
        )
        return None
    seen[pair] = int(key.rsplit(".", 1)[1])
    if problem:
        return None
    return IndicatorTarget(
        indicator_id=indicator.id, institution_id=org.id if org else None, growth_pct=pct
    )


def clean(items) -> list[IndicatorTarget]:
    """The targets given (``[{"indicator", "growth_pct", "institution"}, …]``) checked: new
    unsaved rows, or ValidationFailed with a message per ``targets.N.FIELD``."""
    if not isinstance(items, list):
        message = _("Give the targets as a list.")
        raise ValidationFailed(message, {"targets": message})
    if len(items) > MAX_TARGETS:
        message = _("At most %(n)s targets.", n=MAX_TARGETS)
        raise ValidationFailed(message, {"targets": message})
    book, errors, seen = _Book.load(), {}, {}
    rows = [_clean_one(book, item, f"targets.{n}", errors, seen) for n, item in enumerate(items)]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return rows


# ----------------------------------------------------------------------------- saving
def _clean_note(note, errors: dict) -> str | None:
    if note is not None and not isinstance(note, str):
        errors["note"] = _("Enter the note as text.")
        return None
    text = clean_text(note or "") or None
    if text is not None and len(text) > NOTE_MAX:
        errors["note"] = _("At most %(n)s characters.", n=NOTE_MAX)
    return text


def save(actor: User | None, year, items, note=None) -> IndicatorTargetVersion:
    """Save the year's targets as a new version (``actor`` None: the command line). The whole
    set is given; what is left out has no target from this version on. Two saves at once:
    the unique (year, version) refuses the second (IntegrityError at the flush)."""
    if actor is not None and actor.role != "finance_office":
        raise Forbidden(_("Only the finance office sets the indicator targets."))
    year = check_year(year)
    errors: dict[str, str] = {}
    text = _clean_note(note, errors)
    try:
        rows = clean(items)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    newest = db.session.scalar(
        select(func.max(IndicatorTargetVersion.version)).where(IndicatorTargetVersion.year == year)
    )
    version = IndicatorTargetVersion(
        year=year,
        version=(newest or 0) + 1,
        saved_by_id=actor.id if actor is not None else None,
        saved_at=utcnow(),
        note=text,
    )
    db.session.add(version)
    db.session.flush()
    for row in rows:
        row.version_id = version.id
    db.session.add_all(rows)
    db.session.flush()
    return version


def as_items(found: list[Line]) -> list[dict]:
    """Saved targets in the shape :func:`save` takes (to change some and save again)."""
    return [
        {
            "indicator": line.indicator.code,
            "growth_pct": str(line.growth_pct),
            "institution": line.institution.code if line.institution else None,
        }
        for line in found
    ]
