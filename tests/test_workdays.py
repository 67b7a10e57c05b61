"""The service-level clock counts working days on the Chinese calendar."""

from datetime import date

from advisors.workdays import WorkdayCalendar

cal = WorkdayCalendar()


def test_plain_week():
    # Monday 2026-11-23 + 5 working days -> Monday 2026-11-30
    assert cal.add_workdays(date(2026, 11, 23), 5) == date(2026, 11, 30)


def test_across_national_day_holiday():
    # 2026: 1-7 October are holidays; Saturday 10 October is a make-up working day.
    assert not cal.is_workday(date(2026, 10, 1))
    assert not cal.is_workday(date(2026, 10, 7))
    assert cal.is_workday(date(2026, 10, 10))  # a Saturday, worked
    # Assigned Tuesday 29 Sept: 30 Sept, 8 Oct, 9 Oct, 10 Oct (Sat, make-up), 12 Oct.
    assert cal.add_workdays(date(2026, 9, 29), 5) == date(2026, 10, 12)


def test_make_up_saturday_counts_but_ordinary_saturday_does_not():
    assert cal.is_workday(date(2026, 10, 10))
    assert not cal.is_workday(date(2026, 10, 17))


def test_overrides_win_and_uncovered_years_fall_back_to_weekdays():
    assert cal.is_workday(date(2030, 1, 2))  # a Wednesday, year not in the data
    assert not cal.is_workday(date(2030, 1, 5))  # Saturday
    custom = WorkdayCalendar({date(2030, 1, 2): False, date(2030, 1, 5): True})
    assert not custom.is_workday(date(2030, 1, 2))
    assert custom.is_workday(date(2030, 1, 5))
    assert custom.add_workdays(date(2030, 1, 1), 3) == date(2030, 1, 5)


def test_workdays_between():
    assert cal.workdays_between(date(2026, 9, 29), date(2026, 10, 12)) == 5
    assert cal.workdays_between(date(2026, 10, 12), date(2026, 10, 12)) == 0
