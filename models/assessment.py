"""Assessments: the versioned rubric, compiled periods with their rows per advisor and
institution, the finance office's adjustments, central-bank comments, and the record of every
scheduled job run.

A compiled period is a draft until the finance office publishes it; a published period is
frozen (a compile refuses it). Each advisor's row carries every metric's raw value and points
and the rule that produced them (the row's ``metrics``), and the period keeps the rubric version
it was compiled with, so any result can be explained and recomputed. Unique keys per (period,
advisor) and (period, institution) make a recompilation an upsert, never a duplicate.
"""

from sqlalchemy import JSON

from .base import Points, UTCDateTime, db, utcnow

PERIOD_KINDS = ("month", "quarter", "year")
ASSESSMENT_STATUSES = ("draft", "published")
JOB_RUN_STATUSES = ("running", "ok", "failed", "skipped")


class RubricVersion(db.Model):
    """One version of the rubric (advisors.scoring.rubric.RubricSpec as JSON). A new version
    never changes a result compiled with an older one."""

    __tablename__ = "rubric_version"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.Integer, nullable=False, unique=True)
    spec = db.Column(JSON, nullable=False)
    note = db.Column(db.String(500))
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id = db.Column(db.ForeignKey("user_account.id"))


class Assessment(db.Model):
    """One period's assessment: ``period`` is "2026-07", "2026-Q3" or "2026"."""

    __tablename__ = "assessment"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    period = db.Column(db.String(7), nullable=False, unique=True)
    kind = db.Column(db.String(7), nullable=False)
    starts_on = db.Column(db.Date, nullable=False)
    ends_on = db.Column(db.Date, nullable=False)
    status = db.Column(db.String(10), nullable=False, default="draft")
    rubric_id = db.Column(db.ForeignKey("rubric_version.id"), nullable=False)
    compiled_at = db.Column(UTCDateTime, nullable=False)
    compiled_by_id = db.Column(db.ForeignKey("user_account.id"))  # null: the scheduler
    compile_count = db.Column(db.Integer, nullable=False, default=1)
    published_at = db.Column(UTCDateTime)
    published_by_id = db.Column(db.ForeignKey("user_account.id"))
    version = db.Column(db.Integer, nullable=False, default=1)
    # The notice's document number (文号), given on publishing and kept: the year it was issued
    # in, its number in that year (unique per year) and the full text as issued
    # ("江金办〔2026〕12号"; the prefix as configured then).
    notice_year = db.Column(db.Integer)
    notice_seq = db.Column(db.Integer)
    notice_number = db.Column(db.String(60))

    rubric = db.relationship("RubricVersion", lazy="raise_on_sql")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint("kind IN ('month', 'quarter', 'year')", name="kind"),
        db.CheckConstraint("status IN ('draft', 'published')", name="status"),
        db.Index("ix_assessment_kind_starts", "kind", "starts_on"),
        db.Index("uq_assessment_notice_number", "notice_year", "notice_seq", unique=True),
    )


class AssessmentRow(db.Model):
    """An advisor's result in a period: computed score, adjustments, final score and ranks.

    A snapshot of what the compile found, deliberately without foreign keys: ``advisor_id``
    and ``org_id`` are the advisor's and institution's ids as they were (users and
    organisations are never deleted, only deactivated; a key check on each of 2,000 rows per
    compile took a share lock on every advisor's user row), and ``assessment_id`` is the
    assessment the compile created just before writing them under the period's lock (an
    assessment is never deleted; checking it row by row cost a tenth of a first compile). The
    unique (assessment_id, advisor_id) serves look-ups by period; an institution's periods are
    read from :class:`AssessmentInstitution`."""

    __tablename__ = "assessment_row"

    id = db.Column(db.Integer, primary_key=True)
    assessment_id = db.Column(db.Integer, nullable=False)
    advisor_id = db.Column(db.Integer, nullable=False, index=True)
    org_id = db.Column(db.Integer)
    computed = db.Column(Points, nullable=False)  # the rubric's points
    adjustment = db.Column(Points, nullable=False, default=0)  # sum of the adjustments
    score = db.Column(Points, nullable=False)  # computed + adjustment
    rank = db.Column(db.Integer)
    institution_rank = db.Column(db.Integer)
    # Each metric's result: {metric key: ["<raw decimal>" or null, "<points, 2 decimals>"]},
    # the decimals as exact strings (raw to 1e-6, as ``Money`` reads); the rule that scored it
    # is the metric's in the period's rubric version.
    metrics = db.Column(JSON, nullable=False, server_default="{}")

    __table_args__ = (
        db.UniqueConstraint("assessment_id", "advisor_id", name="uq_assessment_row_advisor"),
        db.Index("ix_assessment_row_rank", "assessment_id", "rank"),
    )


class AssessmentInstitution(db.Model):
    """An institution's line in a period: its advisors, total and average score, rank."""

    __tablename__ = "assessment_institution"

    id = db.Column(db.Integer, primary_key=True)
    assessment_id = db.Column(db.ForeignKey("assessment.id", ondelete="CASCADE"), nullable=False)
    org_id = db.Column(db.ForeignKey("organisation.id"), nullable=False)
    advisors = db.Column(db.Integer, nullable=False)
    total = db.Column(Points, nullable=False)
    average = db.Column(Points, nullable=False)
    rank = db.Column(db.Integer)

    __table_args__ = (
        db.UniqueConstraint("assessment_id", "org_id", name="uq_assessment_institution_org"),
    )


class AssessmentAdjustment(db.Model):
    """A finance-office adjustment to an advisor's score, with its required reason. While the
    period is a draft it may be withdrawn (kept, with who withdrew it and when; a withdrawn
    adjustment no longer counts)."""

    __tablename__ = "assessment_adjustment"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    assessment_id = db.Column(
        db.ForeignKey("assessment.id", ondelete="CASCADE"), nullable=False, index=True
    )
    advisor_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    points = db.Column(Points, nullable=False)
    reason = db.Column(db.String(500), nullable=False)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    withdrawn_at = db.Column(UTCDateTime)
    withdrawn_by_id = db.Column(db.ForeignKey("user_account.id"))


class AssessmentComment(db.Model):
    """A comment on a draft by the central bank (or the finance office), optionally on one
    advisor's row."""

    __tablename__ = "assessment_comment"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    assessment_id = db.Column(
        db.ForeignKey("assessment.id", ondelete="CASCADE"), nullable=False, index=True
    )
    advisor_id = db.Column(db.ForeignKey("user_account.id"))
    author_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    body = db.Column(db.String(2000), nullable=False)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)


class JobRun(db.Model):
    """Every run of a scheduled job (or a "run now"): when, how it ended, rows, error."""

    __tablename__ = "job_run"

    id = db.Column(db.Integer, primary_key=True)
    job_id = db.Column(db.String(40), nullable=False)
    period = db.Column(db.String(7))  # for the compile jobs
    trigger = db.Column(db.String(10), nullable=False)  # schedule | catch_up | manual | cli
    started_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    finished_at = db.Column(UTCDateTime)
    status = db.Column(db.String(10), nullable=False, default="running")
    rows = db.Column(db.Integer)
    message = db.Column(db.String(1000))
    error = db.Column(db.Text)
    triggered_by_id = db.Column(db.ForeignKey("user_account.id"))

    __table_args__ = (
        db.CheckConstraint("status IN ('running', 'ok', 'failed', 'skipped')", name="status"),
        db.Index("ix_job_run_job_started", "job_id", "started_at"),
        db.Index("ix_job_run_job_period", "job_id", "period", "status"),
    )
