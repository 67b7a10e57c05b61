"""assessment rows as snapshots: compact metrics, no foreign keys

An ``assessment_row`` is what a compile found for an advisor: the advisor's and institution's
ids as they were, the points and each metric's result. Three changes make writing the 2,000
rows of a compile cheaper without losing anything:

- ``metrics`` becomes {metric key: ["<raw decimal>" or null, "<points>"]}: the rule of each
  metric is the period's rubric version's (``assessment.rubric_id``), so it is no longer
  repeated on every row of every advisor.
- The foreign keys go: from ``advisor_id`` to ``user_account`` and from ``org_id`` to
  ``organisation`` (users and organisations are never deleted, only deactivated; checking
  them took a key-share lock on 2,000 user rows per compile), and from ``assessment_id`` to
  ``assessment`` (the compile writes the rows right after creating their assessment, under
  the period's lock, and an assessment is never deleted — a draft is compiled again, a
  published one is frozen; checking it row by row was about a tenth of a first compile).
- The indexes on ``assessment_id`` alone (the unique (assessment_id, advisor_id) serves it) and
  on ``org_id`` (an institution's periods are read from ``assessment_institution``) go.

On PostgreSQL, autovacuum analyzes ``assessment_row`` after every 1,000 changed rows instead of
after a tenth of the table: each compile adds a period of 2,000 rows under a new assessment id,
and until the statistics know it the planner expects a few dozen rows and plans the ranking
and notice pages of the newest period — the ones read most — for that.

Revision ID: 5e1c0a7d9b42
Revises: 4b264d4eaa73
Create Date: 2026-11-25 19:30:00

"""

import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5e1c0a7d9b42"
down_revision = "4b264d4eaa73"
branch_labels = None
depends_on = None


def _rewrite(convert) -> None:
    bind = op.get_bind()
    rules: dict[int, dict[str, str]] = {}
    for assessment_id, spec in bind.execute(
        sa.text(
            "SELECT a.id, CAST(v.spec AS TEXT) FROM assessment a "
            "JOIN rubric_version v ON v.id = a.rubric_id"
        )
    ):
        metrics = json.loads(spec).get("metrics") or []
        rules[assessment_id] = {m["key"]: m["rule"] for m in metrics}
    updates = [
        {"id": row_id, "metrics": json.dumps(convert(json.loads(text), rules.get(aid, {})),
                                             separators=(",", ":"), ensure_ascii=False)}
        for row_id, aid, text in bind.execute(
            sa.text("SELECT id, assessment_id, CAST(metrics AS TEXT) FROM assessment_row")
        )
    ]
    if updates:
        bind.execute(sa.text("UPDATE assessment_row SET metrics = :metrics WHERE id = :id"), updates)


def upgrade():
    _rewrite(lambda stored, _rules: {k: [v["raw"], v["points"]] for k, v in stored.items()})
    with op.batch_alter_table(
        "assessment_row", schema=None, reflect_kwargs={"resolve_fks": False}
    ) as batch_op:
        batch_op.drop_index("ix_assessment_row_assessment_id")
        batch_op.drop_index("ix_assessment_row_org_id")
        batch_op.drop_constraint("fk_assessment_row_advisor_id_user_account", type_="foreignkey")
        batch_op.drop_constraint("fk_assessment_row_org_id_organisation", type_="foreignkey")
        batch_op.drop_constraint(
            "fk_assessment_row_assessment_id_assessment", type_="foreignkey"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE assessment_row SET (autovacuum_analyze_scale_factor = 0, "
            "autovacuum_analyze_threshold = 1000)"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE assessment_row RESET (autovacuum_analyze_scale_factor, "
            "autovacuum_analyze_threshold)"
        )
    with op.batch_alter_table(
        "assessment_row", schema=None, reflect_kwargs={"resolve_fks": False}
    ) as batch_op:
        batch_op.create_foreign_key(
            "fk_assessment_row_assessment_id_assessment",
            "assessment",
            ["assessment_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            "fk_assessment_row_org_id_organisation", "organisation", ["org_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_assessment_row_advisor_id_user_account", "user_account", ["advisor_id"], ["id"]
        )
        batch_op.create_index("ix_assessment_row_org_id", ["org_id"], unique=False)
        batch_op.create_index("ix_assessment_row_assessment_id", ["assessment_id"], unique=False)
    _rewrite(
        lambda stored, rules: {
            k: {"raw": v[0], "points": v[1], "rule": rules.get(k)} for k, v in stored.items()
        }
    )
