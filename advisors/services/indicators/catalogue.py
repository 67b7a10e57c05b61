"""The indicators every city tracks, defined once here and added by ``db upgrade`` (through
:mod:`advisors.reference`) where missing; an indicator renamed or deactivated in the product
stays so. Names are English msgids, shown in the reader's language."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from models import Indicator, db

from ...labels import N_


@dataclass(frozen=True)
class Entry:
    code: str
    name: str
    unit: str  # yi_yuan (亿元, decimal) or count
    reported_by: tuple[str, ...]  # bank, insurer


BANK, INSURER = ("bank",), ("insurer",)
CATALOGUE: tuple[Entry, ...] = (
    Entry("deposits", N_("RMB deposit balance"), "yi_yuan", BANK),
    Entry("loans", N_("RMB loan balance"), "yi_yuan", BANK),
    Entry("premiums", N_("Premium income (year to date)"), "yi_yuan", INSURER),
    Entry("inclusive_sme_loans", N_("Inclusive small and micro loan balance"), "yi_yuan", BANK),
    Entry("agri_loans", N_("Agriculture-related loan balance"), "yi_yuan", BANK),
    Entry(
        "manufacturing_mlt_loans",
        N_("Medium and long-term manufacturing loan balance"),
        "yi_yuan",
        BANK,
    ),
    Entry("credit_loans", N_("Unsecured (credit) loan balance"), "yi_yuan", BANK),
    Entry("first_time_borrowers", N_("Number of first-time borrowers"), "count", BANK),
)


def seed_catalogue() -> int:
    """Insert the indicators whose code is missing (flushed); how many were inserted."""
    have = set(db.session.execute(select(Indicator.code)).scalars())
    added = 0
    for order, entry in enumerate(CATALOGUE, 1):
        if entry.code in have:
            continue
        db.session.add(
            Indicator(
                code=entry.code,
                name=entry.name,
                unit=entry.unit,
                reported_by_bank="bank" in entry.reported_by,
                reported_by_insurer="insurer" in entry.reported_by,
                ranked_on="growth",
                sort_order=order * 10,
                active=True,
            )
        )
        added += 1
    if added:
        db.session.flush()
    return added


def indicators(active_only: bool = True) -> list[Indicator]:
    """The indicators in their order (the active ones unless told)."""
    query = select(Indicator).order_by(Indicator.sort_order, Indicator.id)
    if active_only:
        query = query.where(Indicator.active.is_(True))
    return list(db.session.execute(query).scalars())


def by_code() -> dict[str, Indicator]:
    """Every indicator (active or not) by its code."""
    return {i.code: i for i in indicators(active_only=False)}


def name_of(indicator: Indicator) -> str:
    """The indicator's name in the reader's language (an edited name is shown as written)."""
    return _(indicator.name)


def to_api(indicator: Indicator) -> dict:
    return {
        "code": indicator.code,
        "name": name_of(indicator),
        "unit": indicator.unit,
        "reported_by": indicator.reported_by,
        "ranked_on": indicator.ranked_on,
    }
