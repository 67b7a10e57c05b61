"""SME size classes (中小企业划型标准规定, MIIT 2011 No. 300).

Pure module: no Flask, no database.  The size class is derived from a firm's
figures, never typed by hand:

* X ``employees`` (headcount, int)
* Y ``revenue_wan`` (operating revenue, 万元, int or Decimal)
* Z ``assets_wan`` (total assets, 万元, int or Decimal)

Per industry the rule uses one or two of these measures.  A firm is *large*
when it is at or above the SME cap on every measure of the rule, *medium*
(or *small*) when it meets every lower bound of that column, and *micro*
otherwise.  A missing figure the rule needs gives ``"unknown"``.

Money is never float: floats raise TypeError.  Labels are English msgids
wrapped in the no-op marker ``N_`` (``pybabel extract -k N_``); the caller
translates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

__all__ = [
    "INDUSTRIES",
    "MEASURES",
    "SIZE_CLASSES",
    "classify",
    "measures_for",
]


def N_(message: str) -> str:
    """Mark a string for translation extraction without translating it."""
    return message


#: Industry key -> English label (msgid), in the order of the regulation.
INDUSTRIES = MappingProxyType(
    {
        "agriculture": N_("Agriculture, forestry, animal husbandry and fishery"),
        "industry": N_("Industry (mining, manufacturing, power, gas and water)"),
        "construction": N_("Construction"),
        "wholesale": N_("Wholesale"),
        "retail": N_("Retail"),
        "transport": N_("Transport"),
        "warehousing": N_("Warehousing"),
        "postal": N_("Postal services"),
        "accommodation": N_("Accommodation"),
        "catering": N_("Catering"),
        "information_transmission": N_("Information transmission"),
        "software_it": N_("Software and information technology services"),
        "real_estate": N_("Real-estate development"),
        "property_management": N_("Property management"),
        "leasing_business": N_("Leasing and business services"),
        "other": N_("Other industries not listed"),
    }
)

SIZE_CLASSES = ("micro", "small", "medium", "large", "unknown")

#: All measures, in the order ``measures_for`` reports them.
MEASURES = ("employees", "revenue_wan", "assets_wan")

_X, _Y, _Z = MEASURES


@dataclass(frozen=True)
class _Rule:
    measures: tuple[str, ...]
    large: tuple[int, ...]  # at or above all of these -> large (the SME cap)
    medium: tuple[int, ...]  # at or above all of these -> medium
    small: tuple[int, ...]  # at or above all of these -> small; else micro


# One row per industry, thresholds aligned with ``measures``
# (employees in persons, revenue and assets in 万元).
_RULES: dict[str, _Rule] = {
    "agriculture": _Rule((_Y,), (20000,), (500,), (50,)),
    "industry": _Rule((_X, _Y), (1000, 40000), (300, 2000), (20, 300)),
    "construction": _Rule((_Y, _Z), (80000, 80000), (6000, 5000), (300, 300)),
    "wholesale": _Rule((_X, _Y), (200, 40000), (20, 5000), (5, 1000)),
    "retail": _Rule((_X, _Y), (300, 20000), (50, 500), (10, 100)),
    "transport": _Rule((_X, _Y), (1000, 30000), (300, 3000), (20, 200)),
    "warehousing": _Rule((_X, _Y), (200, 30000), (100, 1000), (20, 100)),
    "postal": _Rule((_X, _Y), (1000, 30000), (300, 2000), (20, 100)),
    "accommodation": _Rule((_X, _Y), (300, 10000), (100, 2000), (10, 100)),
    "catering": _Rule((_X, _Y), (300, 10000), (100, 2000), (10, 100)),
    "information_transmission": _Rule((_X, _Y), (2000, 100000), (100, 1000), (10, 100)),
    "software_it": _Rule((_X, _Y), (300, 10000), (100, 1000), (10, 50)),
    "real_estate": _Rule((_Y, _Z), (200000, 10000), (1000, 5000), (100, 2000)),
    "property_management": _Rule((_X, _Y), (1000, 5000), (300, 1000), (100, 500)),
    "leasing_business": _Rule((_X, _Z), (300, 120000), (100, 8000), (10, 100)),
    "other": _Rule((_X,), (300,), (100,), (10,)),
}

if tuple(_RULES) != tuple(INDUSTRIES):  # pragma: no cover - guards edits to the tables
    raise RuntimeError("sizing rules and INDUSTRIES are out of step")


def _rule(industry: str) -> _Rule:
    try:
        return _RULES[industry]
    except (KeyError, TypeError):
        raise ValueError(f"unknown industry: {industry!r}") from None


def measures_for(industry: str) -> tuple[str, ...]:
    """Which of ``employees``, ``revenue_wan``, ``assets_wan`` the rule uses."""
    used = _rule(industry).measures
    return tuple(m for m in MEASURES if m in used)


def _check_employees(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"employees must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError("employees must not be negative")
    return value


def _check_money(name: str, value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError(f"{name} must be Decimal or int, never float")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"{name} must be Decimal or int, not {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"{name} must be a finite number")
    if amount < 0:
        raise ValueError(f"{name} must not be negative")
    return amount


def classify(
    industry: str,
    employees: int | None,
    revenue_wan: Decimal | int | None,
    assets_wan: Decimal | int | None,
) -> str:
    """Return ``micro``, ``small``, ``medium``, ``large`` or ``unknown``.

    Raises ValueError for an unknown industry or a negative figure and
    TypeError for a float (or other non-numeric) figure.  Figures the
    industry's rule does not use may be None.
    """
    rule = _rule(industry)
    figures = {
        _X: _check_employees(employees),
        _Y: _check_money(_Y, revenue_wan),
        _Z: _check_money(_Z, assets_wan),
    }
    values = [figures[m] for m in rule.measures]
    if any(v is None for v in values):
        return "unknown"

    def meets(bounds: tuple[int, ...]) -> bool:
        return all(v >= b for v, b in zip(values, bounds, strict=True))

    if meets(rule.large):
        return "large"
    if meets(rule.medium):
        return "medium"
    if meets(rule.small):
        return "small"
    return "micro"
