"""Migrations that move data: stored results survive the upgrade and the downgrade.

Each test runs on a database of its own (a SQLite file, or with ``TEST_DATABASE_URL`` a
scratch PostgreSQL database next to the suite's), migrated step by step."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from advisors.scoring import DEFAULT_RUBRIC
from models import db


def _stored(assessment_id: int) -> dict[int, dict]:
    return {
        advisor: json.loads(metrics)
        for advisor, metrics in db.session.execute(
            text(
                "SELECT advisor_id, CAST(metrics AS TEXT) FROM assessment_row "
                "WHERE assessment_id = :a ORDER BY advisor_id"
            ),
            {"a": assessment_id},
        )
    }


def test_assessment_rows_become_snapshots_and_back(bare_app):
    upgrade(revision="4b264d4eaa73")
    # Rows as that revision's schema has them (the services write today's columns).
    now = datetime.now(UTC)
    org_id = db.session.execute(
        text(
            "INSERT INTO organisation (code, name, type, active, version, created_at, updated_at) "
            "VALUES ('B01', '工商银行江州分行', 'bank', :t, 1, :at, :at) RETURNING id"
        ),
        {"t": True, "at": now},
    ).scalar_one()
    advisor_id = db.session.execute(
        text(
            "INSERT INTO user_account (username, display_name, password_hash, role, org_id, "
            "active, version, created_at, updated_at) "
            "VALUES ('adv1', 'adv1', 'x', 'advisor', :o, :t, 1, :at, :at) RETURNING id"
        ),
        {"o": org_id, "t": True, "at": now},
    ).scalar_one()
    rubric = db.session.execute(
        text(
            "INSERT INTO rubric_version (number, spec, created_at) VALUES (1, :spec, :at) "
            "RETURNING id"
        ),
        {"spec": json.dumps(DEFAULT_RUBRIC.to_dict()), "at": datetime.now(UTC)},
    ).scalar_one()
    assessment = db.session.execute(
        text(
            "INSERT INTO assessment (period, kind, starts_on, ends_on, status, rubric_id, "
            "compiled_at, compile_count, version) VALUES ('2026-07', 'month', :a, :b, "
            "'published', :r, :at, 1, 1) RETURNING id"
        ),
        {"a": date(2026, 7, 1), "b": date(2026, 7, 31), "r": rubric, "at": datetime.now(UTC)},
    ).scalar_one()
    old = {
        "visit_coverage": {"raw": "0.833333", "points": "12.50", "rule": "ratio_target_v1"},
        "satisfaction": {"raw": None, "points": "0.00", "rule": "target_v1"},
    }
    db.session.execute(
        text(
            "INSERT INTO assessment_row (assessment_id, advisor_id, org_id, computed, "
            "adjustment, score, rank, metrics) VALUES (:a, :u, :o, 1250, 0, 1250, 1, :m)"
        ),
        {"a": assessment, "u": advisor_id, "o": org_id, "m": json.dumps(old)},
    )
    db.session.commit()

    upgrade()
    assert _stored(assessment) == {
        advisor_id: {"visit_coverage": ["0.833333", "12.50"], "satisfaction": [None, "0.00"]}
    }
    # A row may now name an advisor and an institution the database does not hold.
    db.session.execute(
        text(
            "INSERT INTO assessment_row (assessment_id, advisor_id, org_id, computed, "
            "adjustment, score, metrics) VALUES (:a, 999999, 999999, 0, 0, 0, '{}')"
        ),
        {"a": assessment},
    )
    db.session.rollback()

    downgrade(revision="4b264d4eaa73")
    assert _stored(assessment) == {advisor_id: old}
    db.session.commit()


def test_the_deferral_policy_is_marked_expired_unless_dated_by_hand(bare_app):
    upgrade(revision="5e1c0a7d9b42")
    now = datetime.now(UTC)
    for code, valid_to in (("deferral", None), ("other_tool", None)):
        db.session.execute(
            text(
                "INSERT INTO policy_tool (code, name, description, valid_to, eligible_types, "
                "active, version, created_at, updated_at) "
                "VALUES (:c, :c, '', :v, '[]', :t, 1, :at, :at)"
            ),
            {"c": code, "v": valid_to, "t": True, "at": now},
        )
    db.session.commit()
    upgrade()
    rows = dict(
        db.session.execute(
            text(
                "SELECT code, CAST(valid_to AS TEXT) FROM policy_tool WHERE code IN "
                "('deferral', 'other_tool')"
            )
        ).all()
    )
    assert rows == {"deferral": "2022-12-31", "other_tool": None}
