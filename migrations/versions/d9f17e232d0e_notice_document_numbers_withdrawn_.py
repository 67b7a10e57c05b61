"""notice document numbers, withdrawn adjustments

- ``assessment`` gets the notice's document number (文号), given when the period is published
  and kept: ``notice_year`` (the year it was issued), ``notice_seq`` (its number in that year,
  unique per year: a unique index, created in place on SQLite without copying the table) and
  ``notice_number`` (the full text as issued, e.g. 江金办〔2026〕12号).
- ``assessment_adjustment`` gets ``withdrawn_at`` and ``withdrawn_by_id``: an adjustment
  withdrawn while the period is a draft is kept (audited, shown with who and when) and no
  longer counts.

Revision ID: d9f17e232d0e
Revises: 362febb9a05b
Create Date: 2026-12-05 16:42:54.814952

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d9f17e232d0e"
down_revision = "362febb9a05b"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table(
        "assessment", schema=None, reflect_kwargs={"resolve_fks": False}
    ) as batch_op:
        batch_op.add_column(sa.Column("notice_year", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("notice_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("notice_number", sa.String(length=60), nullable=True))
    op.create_index(
        "uq_assessment_notice_number", "assessment", ["notice_year", "notice_seq"], unique=True
    )

    with op.batch_alter_table(
        "assessment_adjustment", schema=None, reflect_kwargs={"resolve_fks": False}
    ) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_assessment_adjustment_withdrawn_by_id_user_account"),
            "user_account",
            ["withdrawn_by_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table(
        "assessment_adjustment", schema=None, reflect_kwargs={"resolve_fks": False}
    ) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_assessment_adjustment_withdrawn_by_id_user_account"),
            type_="foreignkey",
        )
        batch_op.drop_column("withdrawn_by_id")
        batch_op.drop_column("withdrawn_at")

    op.drop_index("uq_assessment_notice_number", table_name="assessment")
    with op.batch_alter_table(
        "assessment", schema=None, reflect_kwargs={"resolve_fks": False}
    ) as batch_op:
        batch_op.drop_column("notice_number")
        batch_op.drop_column("notice_seq")
        batch_op.drop_column("notice_year")
