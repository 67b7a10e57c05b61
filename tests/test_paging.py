"""The one keyset-paging module: cursors are opaque, strict, and round-trip exactly."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

import pytest

from advisors import paging
from advisors.params import MAX_ID


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_positions_round_trip():
    at = datetime(2026, 7, 1, 8, 30, 15, 123456, tzinfo=UTC)
    assert paging.decode(paging.encode(at, 42), datetime, int) == (at, 42)
    day = date(2026, 3, 1)
    assert paging.decode(paging.encode(day, MAX_ID), date, int) == (day, MAX_ID)
    naive = datetime(2026, 7, 1, 8, 30)  # read as UTC
    assert paging.decode(paging.encode(naive, 1), datetime, int) == (
        naive.replace(tzinfo=UTC),
        1,
    )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "!!!",
        "é",
        "A" * 500,
        _b64("2026-03-01|5"),  # a date where a timestamp is expected
        _b64("1|2|3"),  # too many values
        _b64("1"),  # too few
        _b64(f"1|{MAX_ID + 1}"),  # an id beyond any record
        _b64("1|0"),
        _b64("1|007"),  # not the spelling we give
        _b64("99999999999999999|1"),  # beyond the years the product uses
        _b64("-1|1"),
        _b64(" 1|1"),
    ],
)
def test_anything_we_did_not_issue_is_refused(raw):
    assert paging.decode(raw, datetime, int) is None


@pytest.mark.parametrize("day", ["2026-02-30", "0001-01-01", "2026-3-1", "２０２６-03-01"])
def test_bad_days_are_refused(day):
    assert paging.decode(_b64(f"{day}|5"), date, int) is None


def test_split_cuts_the_page_and_points_after_its_last_row():
    rows = [(date(2026, 3, d), d) for d in (5, 4, 3)]
    page, cursor = paging.split(rows, 2, lambda r: r)
    assert page == rows[:2]
    assert paging.decode(cursor, date, int) == rows[1]
    assert paging.split(rows, 3, lambda r: r) == (rows, None)
    assert paging.clamp(0) == 1 and paging.clamp(10**6) == 200 and paging.clamp(7) == 7
