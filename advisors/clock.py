"""The one clock of the product: times are stored in UTC, days are counted in Asia/Shanghai.

Everything that asks "what day is it?" or "what time is it?" asks here, so a test moves time
for the whole product at once with the ``travel`` fixture (time-machine) instead of patching
a function in each module that copied it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """The current instant, timezone-aware, in UTC (what is stored)."""
    return datetime.now(UTC)


def local_now() -> datetime:
    """The current instant in Asia/Shanghai (what users see and what schedules follow)."""
    return datetime.now(SHANGHAI)


def today() -> date:
    """Today's date in Asia/Shanghai: a visit at 07:30 on 1 March there is in March."""
    return local_now().date()
