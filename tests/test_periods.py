"""Assessment periods: keys, Asia/Shanghai bounds, and which periods the scheduler compiles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from advisors.i18n import SHANGHAI
from advisors.periods import (
    BACKLOG_MONTHS,
    SCHEDULE,
    Period,
    due_periods,
    month_of,
    parse,
    period_of,
    quarter_of,
    year_of,
)


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def keys(periods) -> list[str]:
    return [p.key for p in periods]


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, year, number",
    [
        ("2026-07", "month", 2026, 7),
        ("2026-01", "month", 2026, 1),
        ("2026-12", "month", 2026, 12),
        ("2026-Q3", "quarter", 2026, 3),
        ("2026-q1", "quarter", 2026, 1),  # lower-case q accepted, key is canonical
        ("2026", "year", 2026, 1),
        (" 2026-07 ", "month", 2026, 7),  # surrounding white space is trimmed
        ("2026-Q4\n", "quarter", 2026, 4),
    ],
)
def test_parse_good(text, kind, year, number):
    period = parse(text)
    assert (period.kind, period.year, period.number) == (kind, year, number)
    assert parse(period.key) == period
    assert str(period) == period.key


def test_keys_are_canonical():
    assert parse("2026-q3").key == "2026-Q3"
    assert Period("month", 2026, 7).key == "2026-07"
    assert Period("year", 2026).key == "2026"
    assert repr(parse("2026-07")) == "Period('2026-07')"


@pytest.mark.parametrize(
    "text, says",
    [
        ("2026-13", "month must be 01 to 12"),
        ("2026-00", "month must be 01 to 12"),
        ("2026-Q5", "quarter must be Q1 to Q4"),
        ("2026-Q0", "quarter must be Q1 to Q4"),
        ("26-07", "is not a period"),
        ("2026-7", "is not a period"),
        ("2026/07", "is not a period"),
        ("2026-07-01", "is not a period"),
        ("2026-Q", "is not a period"),
        ("Q3-2026", "is not a period"),
        ("2026 07", "is not a period"),
        ("２０２６-07", "is not a period"),  # full-width digits
        ("", "is not a period"),
        ("   ", "is not a period"),
        ("1999-12", "year must be between 2000 and 2099"),
        ("2100", "year must be between 2000 and 2099"),
    ],
)
def test_parse_bad(text, says):
    with pytest.raises(ValueError, match=says):
        parse(text)


@pytest.mark.parametrize("value", [None, 202607, b"2026-07", ["2026-07"]])
def test_parse_non_text(value):
    with pytest.raises(ValueError, match="Enter a period"):
        parse(value)


def test_period_constructor_checks():
    for args in [("week", 2026, 1), ("month", 2026, 13), ("quarter", 2026, 0), ("year", 2026, 2)]:
        with pytest.raises(ValueError):
            Period(*args)
    with pytest.raises(ValueError):
        Period("month", "2026", 1)


# --- bounds in Asia/Shanghai -------------------------------------------------------------------


def test_month_bounds():
    p = parse("2026-07")
    assert p.first_day == date(2026, 7, 1) and p.last_day == date(2026, 7, 31)
    start, end = p.utc_bounds()
    assert start == utc(2026, 6, 30, 16) and end == utc(2026, 7, 31, 16)
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
    assert p.days == 31


def test_quarter_bounds_and_q4_across_the_year():
    q3 = parse("2026-Q3")
    assert (q3.first_day, q3.last_day) == (date(2026, 7, 1), date(2026, 9, 30))
    q4 = parse("2026-Q4")
    assert (q4.first_day, q4.last_day) == (date(2026, 10, 1), date(2026, 12, 31))
    assert q4.utc_bounds() == (utc(2026, 9, 30, 16), utc(2026, 12, 31, 16))
    assert q4.next() == parse("2027-Q1") and parse("2027-Q1").previous() == q4
    assert keys(q4.months()) == ["2026-10", "2026-11", "2026-12"]


def test_year_bounds():
    y = parse("2026")
    assert (y.first_day, y.last_day) == (date(2026, 1, 1), date(2026, 12, 31))
    assert y.utc_bounds() == (utc(2025, 12, 31, 16), utc(2026, 12, 31, 16))
    assert y.days == 365 and parse("2028").days == 366
    assert len(y.months()) == 12
    assert y.previous().key == "2025" and y.next().key == "2027"


def test_leap_february():
    assert parse("2028-02").last_day == date(2028, 2, 29)
    assert parse("2026-02").last_day == date(2026, 2, 28)
    assert parse("2000-02").last_day == date(2000, 2, 29)  # divisible by 400
    assert parse("2028-02").utc_bounds()[1] == utc(2028, 2, 29, 16)
    assert parse("2028-Q1").days == 91


def test_december_next_and_january_previous():
    assert parse("2026-12").next() == parse("2027-01")
    assert parse("2027-01").previous() == parse("2026-12")
    assert parse("2026-07").shifted(-7) == parse("2025-12")
    assert parse("2026-07").shifted(18) == parse("2028-01")
    with pytest.raises(ValueError):
        parse("2000-01").previous()


def test_contains_dates_and_instants_in_shanghai():
    july = parse("2026-07")
    assert july.contains(date(2026, 7, 1)) and july.contains(date(2026, 7, 31))
    assert not july.contains(date(2026, 6, 30)) and date(2026, 8, 1) not in july
    # 2026-07-31T16:00Z is 08-01 00:00 in Shanghai: August; one second earlier is July
    assert not july.contains(utc(2026, 7, 31, 16))
    assert july.contains(utc(2026, 7, 31, 15, 59, 59))
    # 2026-06-30T16:00Z is July 1st in Shanghai
    assert july.contains(utc(2026, 6, 30, 16))
    with pytest.raises(ValueError, match="aware"):
        july.contains(datetime(2026, 7, 5, 12))


def test_utc_bounds_agree_with_contains():
    for key in ("2026-07", "2026-Q4", "2026", "2028-02"):
        p = parse(key)
        start, end = p.utc_bounds()
        assert p.contains(start) and not p.contains(end)
        assert p.contains(end - timedelta(microseconds=1))
        assert not p.contains(start - timedelta(microseconds=1))


def test_of_functions():
    assert month_of(date(2026, 7, 31)).key == "2026-07"
    assert quarter_of(date(2026, 7, 31)).key == "2026-Q3"
    assert quarter_of(date(2026, 12, 31)).key == "2026-Q4"
    assert quarter_of(date(2026, 1, 1)).key == "2026-Q1"
    assert year_of(date(2026, 7, 31)).key == "2026"
    # the instant of New Year in Shanghai, given in UTC
    assert month_of(utc(2026, 12, 31, 16)).key == "2027-01"
    assert quarter_of(utc(2026, 12, 31, 15, 59)).key == "2026-Q4"
    assert year_of(utc(2026, 12, 31, 16)).key == "2027"
    assert period_of("quarter", date(2026, 5, 5)).key == "2026-Q2"
    with pytest.raises(ValueError):
        period_of("week", date(2026, 5, 5))
    with pytest.raises(ValueError):
        month_of(datetime(2026, 7, 5))  # naive


def test_ordering_within_a_kind_only():
    assert parse("2026-07") < parse("2026-08") < parse("2027-01")
    assert parse("2026-Q4") > parse("2026-Q1")
    assert sorted([parse("2027"), parse("2025")]) == [parse("2025"), parse("2027")]
    with pytest.raises(TypeError):
        parse("2026-07") < parse("2026-Q3")  # noqa: B015
    assert parse("2026-07") != parse("2026-Q3")
    assert len({parse("2026-07"), parse("2026-07"), parse("2026-Q3")}) == 2


def test_labels(app):
    from flask_babel import force_locale

    with force_locale("en"):
        assert parse("2026-07").label == "July 2026"
        assert parse("2026-Q3").label == "Q3 2026"
        assert parse("2026").label == "Year 2026"


# --- when periods are compiled -----------------------------------------------------------------


def test_due_at_is_the_2nd_at_0600_shanghai_of_the_following_month():
    assert parse("2026-07").due_at() == sh(2026, 8, 2, 6)
    assert parse("2026-12").due_at() == sh(2027, 1, 2, 6)
    assert parse("2026-Q3").due_at() == sh(2026, 10, 2, 6)
    assert parse("2026-Q4").due_at() == sh(2027, 1, 2, 6)
    assert parse("2026").due_at() == sh(2027, 1, 2, 6)
    assert parse("2026-07").due_at() == utc(2026, 8, 1, 22)


def test_schedule_cron_fields_match_due_at():
    assert SCHEDULE["month"] == {"day": 2, "hour": 6, "minute": 0}
    assert SCHEDULE["quarter"]["month"] == "1,4,7,10"
    assert SCHEDULE["year"]["month"] == 1


def test_due_just_before_and_at_0600():
    last = {"month": parse("2026-06"), "quarter": parse("2026-Q2"), "year": parse("2025")}
    assert due_periods(sh(2026, 8, 2, 5, 59), last) == []
    assert due_periods(sh(2026, 8, 2, 5, 59, 59, 999999), last) == []
    assert keys(due_periods(sh(2026, 8, 2, 6, 0), last)) == ["2026-07"]
    # the same instant in UTC
    assert keys(due_periods(utc(2026, 8, 1, 22), last)) == ["2026-07"]
    assert due_periods(utc(2026, 8, 1, 21, 59), last) == []


def test_nothing_due_twice_when_last_done_is_current():
    last = {"month": parse("2026-07"), "quarter": parse("2026-Q2"), "year": parse("2025")}
    for now in (sh(2026, 8, 2, 6), sh(2026, 8, 15, 12), sh(2026, 9, 2, 5, 59)):
        assert due_periods(now, last) == []
    # a month later only the next month is due
    assert keys(due_periods(sh(2026, 9, 2, 6), last)) == ["2026-08"]


def test_never_the_running_period_or_the_future():
    now = sh(2026, 8, 20, 12)
    due = due_periods(now, {})
    assert all(p.due_at() <= now for p in due)
    assert all(p.utc_bounds()[1] <= now for p in due)
    assert "2026-08" not in keys(due) and "2026-Q3" not in keys(due) and "2026" not in keys(due)
    # last_done ahead of now (clock set back): nothing
    ahead = {"month": parse("2026-12"), "quarter": parse("2026-Q4"), "year": parse("2026")}
    assert due_periods(now, ahead) == []


def test_catch_up_after_downtime_months_quarter_and_year():
    # Down from early March 2026 to 10 August 2026: the last compiles were of 2026-02 (on
    # 2026-03-02), 2025-Q4 and 2025 (on 2026-01-02).
    last = {"month": parse("2026-02"), "quarter": parse("2025-Q4"), "year": parse("2025")}
    due = due_periods(sh(2026, 8, 10, 9), last)
    assert keys(due) == [
        "2026-03",
        "2026-Q1",
        "2026-04",
        "2026-05",
        "2026-06",
        "2026-Q2",
        "2026-07",
    ]


def test_catch_up_across_new_year_includes_the_year():
    last = {"month": parse("2026-10"), "quarter": parse("2026-Q3"), "year": parse("2025")}
    due = due_periods(sh(2027, 1, 2, 6), last)
    assert keys(due) == ["2026-11", "2026-12", "2026-Q4", "2026"]
    # one minute earlier, the December, Q4 and year compiles are not yet due
    assert keys(due_periods(sh(2027, 1, 2, 5, 59), last)) == ["2026-11"]


def test_each_period_once_when_the_scheduler_follows_its_own_output():
    """Simulate the scheduler waking every 6 hours for 15 months and recording what it did."""
    last = {"month": parse("2026-01"), "quarter": parse("2025-Q4"), "year": parse("2025")}
    compiled = []
    now = sh(2026, 2, 1, 0)
    while now < sh(2027, 5, 1):
        for p in due_periods(now, last):
            compiled.append(p.key)
            last[p.kind] = p
        now += timedelta(hours=6)
    assert len(compiled) == len(set(compiled))
    assert [k for k in compiled if len(k) == 7 and "Q" not in k] == [
        parse("2026-02").shifted(i).key for i in range(14)
    ]  # 2026-02 .. 2027-03
    assert [k for k in compiled if "Q" in k] == [
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
        "2026-Q4",
        "2027-Q1",
    ]
    assert [k for k in compiled if len(k) == 4] == ["2026"]


def test_first_run_backlog_is_bounded():
    due = due_periods(sh(2026, 8, 2, 6), {})
    months = [p for p in due if p.kind == "month"]
    assert len(months) == BACKLOG_MONTHS == 24
    assert months[0].key == "2024-08" and months[-1].key == "2026-07"
    assert keys(p for p in due if p.kind == "quarter") == [
        "2024-Q4",
        "2025-Q1",
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
    ]
    assert keys(p for p in due if p.kind == "year") == ["2025"]
    # ordered by end date; a month before the quarter and the year ending with it
    ends = [(p.last_day, ["month", "quarter", "year"].index(p.kind)) for p in due]
    assert ends == sorted(ends)
    assert keys(due)[-3:] == ["2026-06", "2026-Q2", "2026-07"]


def test_backlog_also_bounds_a_very_old_last_done():
    last = {"month": parse("2020-01"), "quarter": None, "year": None}
    due = due_periods(sh(2026, 8, 2, 6), last, backlog_months=3)
    assert keys(due) == ["2026-05", "2026-06", "2026-07"]


def test_kinds_can_be_limited_and_missing_kinds_count_as_never_done():
    due = due_periods(sh(2026, 8, 2, 6), {"month": parse("2026-06")}, kinds=("month",))
    assert keys(due) == ["2026-07"]
    # a window of 6 months from August opens on 1 February: 2026-Q1 started before it
    due = due_periods(sh(2026, 8, 2, 6), {"month": parse("2026-07")}, backlog_months=6)
    assert keys(due) == ["2026-Q2"]
    due = due_periods(sh(2026, 8, 2, 6), {"month": parse("2026-07")}, backlog_months=7)
    assert keys(due) == ["2026-Q1", "2026-Q2"]


def test_due_periods_input_checks():
    with pytest.raises(ValueError, match="aware"):
        due_periods(datetime(2026, 8, 2, 6), {})
    with pytest.raises(ValueError, match="month period"):
        due_periods(sh(2026, 8, 2, 6), {"month": parse("2026-Q2")})
    with pytest.raises(ValueError, match="month period"):
        due_periods(sh(2026, 8, 2, 6), {"month": "2026-07"})
    with pytest.raises(ValueError):
        due_periods(sh(2026, 8, 2, 6), {}, backlog_months=0)


def test_has_ended():
    july = parse("2026-07")
    assert not july.has_ended(utc(2026, 7, 31, 15, 59))
    assert july.has_ended(utc(2026, 7, 31, 16))
