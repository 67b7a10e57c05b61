"""The service-level clock: first contact is due a configurable number of working days after
assignment (``FIRST_CONTACT_WORKING_DAYS``, default 5), on the Chinese calendar."""

from __future__ import annotations

from datetime import date

from ..workdays import WorkdayCalendar

WAITING = ("assigned",)  # first contact not made yet


def flag(status: str, due: date | None, contacted_on: date | None, today: date,
         cal: WorkdayCalendar) -> str | None:
    """'overdue', 'due_soon' (due today or on the next working day) or None."""
    if status not in WAITING or due is None or contacted_on is not None:
        return None
    if today > due:
        return "overdue"
    if cal.workdays_between(today, due) <= 1:
        return "due_soon"
    return None
