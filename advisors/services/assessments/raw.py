"""Raw values: each metric's value formed from an advisor's sums (:class:`.aggregates._Work`)
in exact integer millionths, and the text a row's ``metrics`` stores them (and points) as."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from operator import attrgetter
from typing import Any, NamedTuple

from .aggregates import _Work

# Raw values are kept exact to 1e-6 (the ``Money`` column they are stored in).
RAW_QUANTUM = Decimal("0.000001")
_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)  # fixed, whatever the thread's context
CENT = Decimal("0.01")
ONE = Decimal(1)

MILLION = 1_000_000  # raw values are formed in millionths (exact to 1e-6), as ``Money`` stores


def _share(part: int, whole: int) -> int | None:
    """part / whole in millionths, rounded half up (exact integer arithmetic; the parts are
    counts and sums of ratings, never negative); None ("no data") when there is nothing to
    share."""
    if not whole:
        return None
    return (2 * MILLION * part + whole) // (2 * whole)


def _count(n: int) -> int:
    return n * MILLION


def _sum(a: int, b: int) -> int:
    return (a + b) * MILLION


def _amount(fen: int) -> int:
    return fen  # 分 are millionths of 万元


def _average_of_halves(halves: int, n: int) -> int | None:
    """The average rating of ``n`` cases whose ratings add up to ``halves`` halves."""
    return _share(halves, 2 * n)


class _Source(NamedTuple):
    """How a metric's raw value is formed from an advisor's aggregates: the :class:`_Work`
    fields it reads and the function of them giving the value in millionths."""

    fields: tuple[str, ...]
    form: Any

    def key(self):
        """A function of a :class:`_Work` giving the values the raw value is formed from (a
        cheap, hashable key: advisors with equal keys have equal raw values)."""
        return attrgetter(*self.fields)

    def millionths(self, key: Any) -> int | None:
        return self.form(*key) if len(self.fields) > 1 else self.form(key)


# Each metric's raw value (counts as whole numbers, shares and the average rating exact to
# 1e-6, None where there is nothing to measure).
_SOURCES: dict[str, _Source] = {
    "visit_coverage": _Source(("covered", "cases"), _share),
    "first_contact_on_time": _Source(("due_met", "due"), _share),
    "visits_logged": _Source(("role_visits",), _count),
    "policy_promotion": _Source(("policy_visits",), _count),
    "firms_financed": _Source(("firms_financed",), _count),
    "amount_disbursed": _Source(("amount_fen",), _amount),
    "first_loans": _Source(("first_loans",), _count),
    "info_reports": _Source(("info_visits", "risk_reports"), _sum),
    "satisfaction": _Source(("rating_halves", "ratings"), _average_of_halves),
    "logs_on_time": _Source(("logged_on_time", "visits"), _share),
}


# The metrics whose raw value can be missing (a share or an average with nothing to divide by):
# the ones for which the rubric's "what no data means" makes a difference.
MAY_LACK_DATA = frozenset(
    key for key, source in _SOURCES.items() if source.form in (_share, _average_of_halves)
)


def _decimal(millionths: int | None) -> Decimal | None:
    return None if millionths is None else Decimal(millionths).scaleb(-6)


def millionths_text(millionths: int) -> str:
    """A raw value in millionths as stored in a row's ``metrics`` — the same text as
    :func:`raw_text` of its Decimal, formed with integer arithmetic."""
    sign = "-" if millionths < 0 else ""
    whole, fraction = divmod(abs(millionths), MILLION)
    digits = f"{fraction:06d}".rstrip("0")
    return f"{sign}{whole}.{digits:0<2}"


def raw_values(w: _Work) -> dict[str, Decimal | None]:
    """Each metric's raw value from an advisor's aggregates."""
    return {key: _decimal(source.millionths(source.key()(w))) for key, source in _SOURCES.items()}


def raw_text(raw: Decimal | None) -> str | None:
    """A raw value as stored in a row's ``metrics``: exact to 1e-6, at least two decimals, no
    trailing zeros beyond them ("12.00", "0.833333", "1234.50") — what a ``Money`` column reads."""
    if raw is None:
        return None
    value = raw.quantize(RAW_QUANTUM, context=_CONTEXT).normalize(_CONTEXT) + Decimal("0.00")
    return str(value)


def points_text(points: Decimal) -> str:
    """Points as stored in a row's ``metrics``: two decimals ("7.50"; never "-0.00")."""
    value = points.quantize(CENT, context=_CONTEXT)
    return "0.00" if not value else str(value)


def _hundredths(value: Decimal) -> int:
    """Points as their column stores them (an integer of hundredths), computed exactly."""
    return int(value.scaleb(2).to_integral_value())
