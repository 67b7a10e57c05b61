"""Working days on the Chinese calendar: weekends, public holidays and make-up working days
(调休). The bundled data of ``chinese_calendar`` covers the years the State Council has
published; for later years, and for local changes, the finance office records overrides
(``WorkdayOverride``), which always win. Without either, a year falls back to Monday-Friday.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import chinese_calendar


class WorkdayCalendar:
    """One calendar per request or job: each day is looked up once (a lookup in the bundled
    calendar costs tens of microseconds, and lists flag many cases over overlapping ranges)."""

    def __init__(self, overrides: Mapping[date, bool] | None = None):
        self.overrides = dict(overrides or {})
        self._days: dict[date, bool] = {}

    def is_workday(self, day: date) -> bool:
        found = self._days.get(day)
        if found is None:
            found = self._days[day] = self._lookup(day)
        return found

    def _lookup(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:  # a year the library has no schedule for yet
            return day.weekday() < 5

    def add_workdays(self, start: date, n: int) -> date:
        """The n-th working day after ``start`` (``start`` itself does not count)."""
        if n < 0:
            raise ValueError("n must not be negative")
        day = start
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return day

    def workdays_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when end <= start)."""
        count = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            if self.is_workday(day):
                count += 1
        return count

    def covered(self, year: int) -> bool:
        """Whether the bundled calendar knows the year's holidays."""
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            return False
        return True
