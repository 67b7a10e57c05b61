"""What the assessments' modules share: who may do what, the limits on what they write, the
period of a key, and the period's lock and header row (through :mod:`.ranking`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_babel import gettext as _

from models import Assessment

from ... import periods as periods_module
from ...errors import Conflict, ValidationFailed
from . import ranking

MAX_ADJUSTMENT = Decimal(100)
REASON_MAX = 500
COMMENT_MAX = 2000
NOTE_MAX = 500
# PostgreSQL advisory locks: (namespace, key derived from the period).
LOCK_NAMESPACE = 0x41534D  # "ASM"

COMPILER_ROLES = ("finance_office",)
VIEW_ALL_ROLES = ("admin", "finance_office", "pboc")
COMMENT_ROLES = ("finance_office", "pboc")


def parse_period(period_key: Any) -> periods_module.Period:
    """The period of a key, or ValidationFailed naming the ``period`` field."""
    try:
        return periods_module.parse(period_key)
    except ValueError as exc:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"period": str(exc)}
        ) from None


def _lock(period: periods_module.Period) -> None:
    """Serialise every writer of one period (compile, adjust, publish) until commit
    (:func:`.ranking.lock_period`): a second compiler waits for the first and then sees its
    result."""
    try:
        ranking.lock_period(period, "assessment", "compile_count", LOCK_NAMESPACE)
    except Conflict:
        raise Conflict(
            _(
                "The assessment for %(period)s is being compiled or changed; try again shortly.",
                period=period.key,
            )
        ) from None


def _lock_writers(sqlite_write: str, params: dict, key: int) -> None:
    """Another lock of the assessments' namespace (keys below the periods')."""
    ranking.lock_writers(sqlite_write, params, key, LOCK_NAMESPACE)


def _load(period: periods_module.Period) -> Assessment | None:
    return ranking.load_header(Assessment, period)


def not_compiled(period: periods_module.Period) -> str:
    return _("The assessment for %(period)s has not been compiled.", period=period.key)
