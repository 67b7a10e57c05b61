"""Assessment periods: months, quarters and years on the Asia/Shanghai calendar.

A period has a canonical key — ``2026-07`` (month), ``2026-Q3`` (quarter), ``2026`` (year) —
used in URLs, the API, the CLI and result rows. Its bounds are Shanghai dates; stored timestamps
(UTC) are compared with :meth:`Period.utc_bounds`, the half-open interval [start, end) between
the Shanghai midnights that open and close it (2026-07 is [2026-06-30T16:00Z, 2026-07-31T16:00Z)).

When a period is compiled on schedule (:func:`due_periods`): every period — month, quarter or
year — is compiled on the 2nd of the month after it ends, at 06:00 Shanghai time. The extra day
lets advisors log the visits of the period's last day (logs filed within a day or two count as
on time) before the figures are taken, and 06:00 is before anyone starts work. So July 2026 is
compiled on 2026-08-02 06:00, 2026-Q3 on 2026-10-02 06:00, and the year 2026 on 2027-01-02 06:00
(:data:`SCHEDULE` holds the matching cron fields). After downtime the scheduler compiles what it
missed when it starts, going back at most :data:`BACKLOG_MONTHS` months.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import total_ordering

from flask_babel import gettext as _

from .i18n import SHANGHAI

KINDS = ("month", "quarter", "year")
MIN_YEAR = 2000
MAX_YEAR = 2099
COMPILE_DAY = 2  # day of the month after the period ends
COMPILE_HOUR = 6  # Asia/Shanghai
BACKLOG_MONTHS = 24

# APScheduler CronTrigger fields (timezone Asia/Shanghai) that match Period.due_at().
SCHEDULE = {
    "month": {"day": COMPILE_DAY, "hour": COMPILE_HOUR, "minute": 0},
    "quarter": {"month": "1,4,7,10", "day": COMPILE_DAY, "hour": COMPILE_HOUR, "minute": 0},
    "year": {"month": 1, "day": COMPILE_DAY, "hour": COMPILE_HOUR, "minute": 0},
}

_KIND_RANK = {"month": 0, "quarter": 1, "year": 2}
_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")
_QUARTER_RE = re.compile(r"([0-9]{4})-[Qq]([0-9])")
_YEAR_RE = re.compile(r"([0-9]{4})")


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    return message


_MONTH_NAMES = (
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
)


@total_ordering
@dataclass(frozen=True, repr=False)
class Period:
    """A month (``number`` 1-12), a quarter (1-4) or a year (``number`` 1) of ``year``.

    Periods of the same kind compare in time order; comparing different kinds is an error."""

    kind: str
    year: int
    number: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown period kind {self.kind!r}; use month, quarter or year")
        if isinstance(self.year, bool) or not isinstance(self.year, int):
            raise ValueError("the year must be a whole number")
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise ValueError(f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
        highest = {"month": 12, "quarter": 4, "year": 1}[self.kind]
        if isinstance(self.number, bool) or not isinstance(self.number, int):
            raise ValueError("the period number must be a whole number")
        if not 1 <= self.number <= highest:
            raise ValueError(f"a {self.kind} number must be between 1 and {highest}")

    # --- identity ---

    @property
    def key(self) -> str:
        if self.kind == "month":
            return f"{self.year:04d}-{self.number:02d}"
        if self.kind == "quarter":
            return f"{self.year:04d}-Q{self.number}"
        return f"{self.year:04d}"

    def __str__(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"Period({self.key!r})"

    @property
    def label(self) -> str:
        """The period in the user's language ("July 2026", "Q3 2026", "Year 2026")."""
        if self.kind == "month":
            return _("%(month)s %(year)s", month=_(_MONTH_NAMES[self.number - 1]), year=self.year)
        if self.kind == "quarter":
            return _("Q%(quarter)s %(year)s", quarter=self.number, year=self.year)
        return _("Year %(year)s", year=self.year)

    def _index(self) -> int:
        """Position on this kind's time line (consecutive periods differ by one)."""
        per_year = {"month": 12, "quarter": 4, "year": 1}[self.kind]
        return self.year * per_year + self.number - 1

    @classmethod
    def _from_index(cls, kind: str, index: int) -> Period:
        per_year = {"month": 12, "quarter": 4, "year": 1}[kind]
        year, rest = divmod(index, per_year)
        return cls(kind, year, rest + 1)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        if other.kind != self.kind:
            raise TypeError(f"cannot order a {self.kind} against a {other.kind}")
        return self._index() < other._index()

    # --- calendar ---

    @property
    def first_month(self) -> int:
        return {"month": self.number, "quarter": 3 * self.number - 2, "year": 1}[self.kind]

    @property
    def last_month(self) -> int:
        return {"month": self.number, "quarter": 3 * self.number, "year": 12}[self.kind]

    @property
    def first_day(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def last_day(self) -> date:
        return _first_of_next_month(self.year, self.last_month) - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def months(self) -> list[Period]:
        """The months the period is made of (itself for a month)."""
        return [Period("month", self.year, m) for m in range(self.first_month, self.last_month + 1)]

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start, end): the Shanghai midnights opening and closing the period, in UTC."""
        start = datetime.combine(self.first_day, time(0), tzinfo=SHANGHAI)
        end = datetime.combine(self.last_day + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        return start.astimezone(UTC), end.astimezone(UTC)

    def contains(self, when: date | datetime) -> bool:
        """Whether a date (or an aware timestamp, read in Shanghai) falls in the period."""
        day = _local_date(when)
        return self.first_day <= day <= self.last_day

    def __contains__(self, when: date | datetime) -> bool:
        return self.contains(when)

    def previous(self) -> Period:
        return self.shifted(-1)

    def next(self) -> Period:
        return self.shifted(1)

    def shifted(self, n: int) -> Period:
        """The period ``n`` periods of this kind later (earlier when negative)."""
        return Period._from_index(self.kind, self._index() + n)

    def due_at(self) -> datetime:
        """When the scheduler compiles it: the 2nd of the month after the period ends, 06:00
        Asia/Shanghai (aware)."""
        after = self.last_day + timedelta(days=1)
        return datetime(after.year, after.month, COMPILE_DAY, COMPILE_HOUR, tzinfo=SHANGHAI)

    def has_ended(self, now: datetime) -> bool:
        return _aware(now) >= self.utc_bounds()[1]


def _first_of_next_month(year: int, month: int) -> date:
    return date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)


def _aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("a time-zone aware datetime is required")
    return now


def _local_date(when: date | datetime) -> date:
    if isinstance(when, datetime):
        return _aware(when).astimezone(SHANGHAI).date()
    if isinstance(when, date):
        return when
    raise ValueError(f"{when!r} is not a date")


def parse(text: object) -> Period:
    """A period from its key: ``YYYY-MM`` (month 01-12), ``YYYY-Qn`` (n 1-4; ``q`` accepted) or
    ``YYYY``. Surrounding white space is ignored; anything else — ``2026-7``, ``26-07``,
    ``2026-13``, ``2026-Q5``, ``2026/07`` — raises ValueError with a message saying why."""
    if not isinstance(text, str):
        raise ValueError(_("Enter a period such as 2026-07, 2026-Q3 or 2026."))
    value = text.strip()
    for pattern, kind in ((_MONTH_RE, "month"), (_QUARTER_RE, "quarter"), (_YEAR_RE, "year")):
        match = pattern.fullmatch(value)
        if not match:
            continue
        year = int(match.group(1))
        number = int(match.group(2)) if kind != "year" else 1
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValueError(
                _(
                    "%(value)s: the year must be between %(min)s and %(max)s.",
                    value=value,
                    min=MIN_YEAR,
                    max=MAX_YEAR,
                )
            )
        if kind == "month" and not 1 <= number <= 12:
            raise ValueError(_("%(value)s: the month must be 01 to 12.", value=value))
        if kind == "quarter" and not 1 <= number <= 4:
            raise ValueError(_("%(value)s: the quarter must be Q1 to Q4.", value=value))
        return Period(kind, year, number)
    raise ValueError(
        _(
            "%(value)s is not a period: use YYYY-MM (2026-07), YYYY-Qn (2026-Q3) or YYYY (2026).",
            value=value or '""',
        )
    )


def month_of(when: date | datetime) -> Period:
    """The month holding a date (or an aware timestamp, read in Shanghai)."""
    day = _local_date(when)
    return Period("month", day.year, day.month)


def quarter_of(when: date | datetime) -> Period:
    day = _local_date(when)
    return Period("quarter", day.year, (day.month - 1) // 3 + 1)


def year_of(when: date | datetime) -> Period:
    return Period("year", _local_date(when).year)


def period_of(kind: str, when: date | datetime) -> Period:
    """The period of ``kind`` holding a date."""
    try:
        return {"month": month_of, "quarter": quarter_of, "year": year_of}[kind](when)
    except KeyError:
        raise ValueError(f"unknown period kind {kind!r}; use month, quarter or year") from None


def due_periods(
    now: datetime,
    last_done: dict[str, Period | None],
    *,
    backlog_months: int = BACKLOG_MONTHS,
    kinds: tuple[str, ...] = KINDS,
) -> list[Period]:
    """The periods the scheduler should compile at ``now`` (aware): every period of each kind
    later than ``last_done[kind]`` (the latest one compiled, or None) whose compile time
    (:meth:`Period.due_at`) has come — never one still running or not yet due. It looks back at
    most ``backlog_months`` months from the current month (a period starting earlier is left to
    a compile by hand), which also bounds the first run, when nothing was ever compiled.

    Ordered by end date, a month before the quarter and year ending with it, so a catch-up runs
    in the order the schedule would have."""
    now = _aware(now)
    if backlog_months < 1:
        raise ValueError("backlog_months must be at least 1")
    window_start = month_of(now).shifted(-backlog_months).first_day
    today = _local_date(now)
    due: list[Period] = []
    for kind in kinds:
        done = last_done.get(kind)
        if done is not None and (not isinstance(done, Period) or done.kind != kind):
            raise ValueError(f"last_done[{kind!r}] must be a {kind} period")
        candidate = period_of(kind, today)
        while candidate.first_day >= window_start:
            if done is not None and candidate <= done:
                break
            if candidate.due_at() <= now:
                due.append(candidate)
            if candidate.year == MIN_YEAR and candidate.number == 1:
                break
            candidate = candidate.previous()
    due.sort(key=lambda p: (p.last_day, _KIND_RANK[p.kind]))
    return due
