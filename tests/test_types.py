"""Money in 万元 as exact Decimal; timestamps stored UTC, shown in Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from advisors.i18n import fmt_datetime
from models import Enterprise, db


def test_money_round_trips_exactly(app, make):
    firm = make.firm(revenue_wan=Decimal("1234.567891"), assets_wan=Decimal("0.1"))
    db.session.expire_all()
    again = db.session.get(Enterprise, firm.id)
    assert again.revenue_wan == Decimal("1234.567891")
    assert isinstance(again.revenue_wan, Decimal)
    assert again.assets_wan == Decimal("0.1")


def test_money_sums_exactly_in_sql(app, make):
    for _ in range(10):
        make.firm(revenue_wan=Decimal("0.1"))
    total = db.session.execute(select(func.sum(Enterprise.revenue_wan))).scalar_one()
    assert Decimal(total) == Decimal("1.0")


def test_money_refuses_float(app, make):
    firm = make.firm()
    firm.revenue_wan = 0.1
    with pytest.raises((TypeError, StatementError)):
        db.session.flush()
    db.session.rollback()


def test_timestamps_are_utc_and_shown_in_shanghai(app, make):
    firm = make.firm()
    db.session.expire_all()
    created = db.session.get(Enterprise, firm.id).created_at
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert fmt_datetime(datetime(2026, 1, 1, 16, 30, tzinfo=UTC)) == "2026-01-02 00:30"
