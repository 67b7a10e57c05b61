"""metrics on the assessment row

Each advisor's metric results move from one ``assessment_metric`` row per metric onto the
advisor's ``assessment_row`` as a JSON column ``metrics``: {metric key: {"raw": "<decimal>" or
null, "points": "<2 decimals>", "rule": "<rule name>"}}. The stored results are carried over
both ways.

Revision ID: 4b264d4eaa73
Revises: 7fd33e1e3b16
Create Date: 2026-11-25 18:26:41.680212

"""
import json
from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '4b264d4eaa73'
down_revision = '7fd33e1e3b16'
branch_labels = None
depends_on = None

MILLION, HUNDRED = Decimal(1_000_000), Decimal(100)


def _raw_text(stored):
    # What advisors.services.assessments.raw_text gives: the Money column's reading as text.
    if stored is None:
        return None
    return str((Decimal(int(stored)) / MILLION).normalize() + Decimal("0.00"))


def _points_text(stored):
    return str((Decimal(int(stored)) / HUNDRED).quantize(Decimal("0.01")))


def upgrade():
    with op.batch_alter_table('assessment_row', schema=None) as batch_op:
        batch_op.add_column(sa.Column('metrics', sa.JSON(), server_default='{}', nullable=False))

    bind = op.get_bind()
    per_row = defaultdict(dict)
    for aid, advisor, metric, raw, points, rule in bind.execute(
        sa.text(
            "SELECT assessment_id, advisor_id, metric, raw, points, rule "
            "FROM assessment_metric ORDER BY assessment_id, advisor_id, id"
        )
    ):
        per_row[(aid, advisor)][metric] = {
            "raw": _raw_text(raw),
            "points": _points_text(points),
            "rule": rule,
        }
    update = sa.text(
        "UPDATE assessment_row SET metrics = :metrics "
        "WHERE assessment_id = :aid AND advisor_id = :advisor"
    )
    if per_row:
        bind.execute(
            update,
            [
                {"aid": aid, "advisor": advisor, "metrics": json.dumps(m, separators=(",", ":"))}
                for (aid, advisor), m in per_row.items()
            ],
        )

    op.drop_table('assessment_metric')


def downgrade():
    op.create_table('assessment_metric',
    sa.Column('id', sa.INTEGER(), nullable=False),
    sa.Column('assessment_id', sa.INTEGER(), nullable=False),
    sa.Column('advisor_id', sa.INTEGER(), nullable=False),
    sa.Column('metric', sa.VARCHAR(length=40), nullable=False),
    sa.Column('raw', sa.BIGINT(), nullable=True),
    sa.Column('points', sa.BIGINT(), nullable=False),
    sa.Column('rule', sa.VARCHAR(length=40), nullable=False),
    sa.ForeignKeyConstraint(
        ['advisor_id'], ['user_account.id'],
        name=op.f('fk_assessment_metric_advisor_id_user_account'),
    ),
    sa.ForeignKeyConstraint(
        ['assessment_id'], ['assessment.id'],
        name=op.f('fk_assessment_metric_assessment_id_assessment'), ondelete='CASCADE',
    ),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assessment_metric')),
    sa.UniqueConstraint(
        'assessment_id', 'advisor_id', 'metric', name=op.f('uq_assessment_metric_key')
    )
    )

    bind = op.get_bind()
    lines = []
    for aid, advisor, metrics in bind.execute(
        sa.text(
            "SELECT assessment_id, advisor_id, CAST(metrics AS TEXT) FROM assessment_row "
            "ORDER BY assessment_id, advisor_id"
        )
    ):
        for key, m in json.loads(metrics or "{}").items():
            raw = m.get("raw")
            lines.append(
                {
                    "aid": aid,
                    "advisor": advisor,
                    "metric": key,
                    "raw": None if raw is None else int(Decimal(raw) * MILLION),
                    "points": int(Decimal(m["points"]) * HUNDRED),
                    "rule": m["rule"],
                }
            )
    if lines:
        bind.execute(
            sa.text(
                "INSERT INTO assessment_metric (assessment_id, advisor_id, metric, raw, points, "
                "rule) VALUES (:aid, :advisor, :metric, :raw, :points, :rule)"
            ),
            lines,
        )

    with op.batch_alter_table('assessment_row', schema=None) as batch_op:
        batch_op.drop_column('metrics')
