"""Institution indicators (三项金融指标 and the extras a city tracks): the catalogue, the yearly
growth targets (versioned), the monthly reports of banks and insurers, the ranked months and the
supervision actions (督查、约谈) that follow them.

Figures are exact decimals (:class:`~models.base.Figure`: 亿元 to four places, or a whole
count) and percentages :class:`~models.base.Percent` (two places), stored as integers so sums
and comparisons stay exact on SQLite too. A month is a draft until published; a published
month keeps the target version it was ranked with and its rows (the stored ranking, like an
assessment's rows).
"""

from .base import Figure, Percent, TimestampMixin, UTCDateTime, db, utcnow

INDICATOR_UNITS = ("yi_yuan", "count")
INDICATOR_RANKED_ON = ("growth",)
INDICATOR_REPORTERS = ("bank", "insurer")
INDICATOR_MONTH_STATUSES = ("draft", "published")
SUPERVISION_KINDS = ("inspection", "interview")
SUPERVISION_STATUSES = ("open", "closed")
SUPERVISION_AUTHOR_ROLES = ("liaison", "finance_office", "pboc")


class Indicator(TimestampMixin, db.Model):
    """One indicator of the catalogue. ``name`` is an English msgid (shown translated), or the
    name as edited in the product. Reference data: added by ``db upgrade`` when missing."""

    __tablename__ = "indicator"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(40), nullable=False, unique=True)
    name = db.Column(db.String(120), nullable=False)
    unit = db.Column(db.String(10), nullable=False)
    reported_by_bank = db.Column(db.Boolean, nullable=False, default=False)
    reported_by_insurer = db.Column(db.Boolean, nullable=False, default=False)
    ranked_on = db.Column(db.String(10), nullable=False, default="growth")
    sort_order = db.Column(db.Integer, nullable=False, default=0)
    active = db.Column(db.Boolean, nullable=False, default=True)

    __table_args__ = (
        db.CheckConstraint("unit IN ('yi_yuan', 'count')", name="unit"),
        db.CheckConstraint("ranked_on IN ('growth')", name="ranked_on"),
        db.CheckConstraint("reported_by_bank OR reported_by_insurer", name="reported_by"),
    )

    @property
    def reported_by(self) -> list[str]:
        return [
            t
            for t, on in (("bank", self.reported_by_bank), ("insurer", self.reported_by_insurer))
            if on
        ]

    def reported_by_type(self, org_type: str) -> bool:
        return org_type in self.reported_by

    def __repr__(self):
        return f"<Indicator {self.code}>"


class IndicatorTargetVersion(db.Model):
    """One saved version of a year's targets: every save makes a new one (numbered from 1 in
    the year), and a published month keeps the version it was ranked with."""

    __tablename__ = "indicator_target_version"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    year = db.Column(db.Integer, nullable=False)
    version = db.Column(db.Integer, nullable=False)
    saved_by_id = db.Column(db.ForeignKey("user_account.id"))  # null: the command line
    saved_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    note = db.Column(db.String(500))

    targets = db.relationship(
        "IndicatorTarget", lazy="raise_on_sql", order_by="IndicatorTarget.id", viewonly=True
    )

    __table_args__ = (db.UniqueConstraint("year", "version", name="uq_indicator_target_version"),)


class IndicatorTarget(db.Model):
    """A growth target in a version: city-wide (``institution_id`` null) or one institution's
    override. Unique per (version, indicator, institution); the city-wide one is kept unique by
    a partial index, since NULLs never clash in a unique constraint (SQLite and PostgreSQL)."""

    __tablename__ = "indicator_target"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    version_id = db.Column(
        db.ForeignKey("indicator_target_version.id", ondelete="CASCADE"), nullable=False
    )
    indicator_id = db.Column(db.ForeignKey("indicator.id"), nullable=False, index=True)
    institution_id = db.Column(db.ForeignKey("organisation.id"), index=True)
    growth_pct = db.Column(Percent, nullable=False)

    __table_args__ = (
        db.UniqueConstraint(
            "version_id", "indicator_id", "institution_id", name="uq_indicator_target_institution"
        ),
        db.Index(
            "uq_indicator_target_city",
            "version_id",
            "indicator_id",
            unique=True,
            sqlite_where=db.text("institution_id IS NULL"),
            postgresql_where=db.text("institution_id IS NULL"),
        ),
    )


class IndicatorReport(db.Model):
    """An institution's report for a month (``month``: its first day). Posting again replaces
    the values it names; ``version`` guards against two saves at once."""

    __tablename__ = "indicator_report"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    institution_id = db.Column(db.ForeignKey("organisation.id"), nullable=False)
    month = db.Column(db.Date, nullable=False, index=True)
    submitted_by_id = db.Column(db.ForeignKey("user_account.id"))  # null: an import by the CLI
    submitted_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = db.Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)
    # The reason given for the latest correction made after the month was published.
    reason = db.Column(db.String(500))
    version = db.Column(db.Integer, nullable=False, default=1)

    values = db.relationship(
        "IndicatorValue",
        lazy="raise_on_sql",
        cascade="all, delete-orphan",
        back_populates="report",
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.UniqueConstraint("institution_id", "month", name="uq_indicator_report_month"),
    )


class IndicatorValue(db.Model):
    """One figure of a report."""

    __tablename__ = "indicator_value"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    report_id = db.Column(db.ForeignKey("indicator_report.id", ondelete="CASCADE"), nullable=False)
    indicator_id = db.Column(db.ForeignKey("indicator.id"), nullable=False, index=True)
    value = db.Column(Figure, nullable=False)

    report = db.relationship("IndicatorReport", lazy="raise_on_sql", back_populates="values")

    __table_args__ = (
        db.UniqueConstraint("report_id", "indicator_id", name="uq_indicator_value_indicator"),
        db.CheckConstraint("value >= 0", name="value"),
    )


class IndicatorMonth(db.Model):
    """A ranked month: ``period`` "2026-07" (the key the ranking machinery of
    ``services/assessments/ranking.py`` works with) and ``month`` its first day. A draft until
    published; published, it keeps its rows and ``target_version_id``."""

    __tablename__ = "indicator_month"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    period = db.Column(db.String(7), nullable=False, unique=True)
    month = db.Column(db.Date, nullable=False, unique=True)
    status = db.Column(db.String(10), nullable=False, default="draft")
    target_version_id = db.Column(db.ForeignKey("indicator_target_version.id"))
    compiled_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    compiled_by_id = db.Column(db.ForeignKey("user_account.id"))  # null: the scheduler
    compile_count = db.Column(db.Integer, nullable=False, default=1)
    published_at = db.Column(UTCDateTime)
    published_by_id = db.Column(db.ForeignKey("user_account.id"))
    # The notice's document number (文号), as for assessments: year, number in it, full text.
    notice_year = db.Column(db.Integer)
    notice_seq = db.Column(db.Integer)
    notice_number = db.Column(db.String(60))
    version = db.Column(db.Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint("status IN ('draft', 'published')", name="status"),
        db.Index("uq_indicator_month_notice_number", "notice_year", "notice_seq", unique=True),
    )


class IndicatorRow(db.Model):
    """An institution's figure for one indicator in a ranked month, as computed: value, the
    same month a year earlier, growth, target, gap in percentage points, rank among the
    institutions of its type (``org_type`` as it was) and the change from last month."""

    __tablename__ = "indicator_row"

    id = db.Column(db.Integer, primary_key=True)
    month_id = db.Column(db.ForeignKey("indicator_month.id", ondelete="CASCADE"), nullable=False)
    institution_id = db.Column(db.ForeignKey("organisation.id"), nullable=False, index=True)
    indicator_id = db.Column(db.ForeignKey("indicator.id"), nullable=False)
    org_type = db.Column(db.String(10), nullable=False)
    value = db.Column(Figure, nullable=False)
    last_year = db.Column(Figure)
    growth_pct = db.Column(Percent)
    target_pct = db.Column(Percent)
    gap_pp = db.Column(Percent)
    rank = db.Column(db.Integer)
    rank_change = db.Column(db.Integer)

    __table_args__ = (
        db.UniqueConstraint(
            "month_id", "institution_id", "indicator_id", name="uq_indicator_row_subject"
        ),
        db.CheckConstraint("org_type IN ('bank', 'insurer')", name="org_type"),
        db.Index("ix_indicator_row_rank", "month_id", "indicator_id", "org_type", "rank"),
    )


supervision_month = db.Table(
    "supervision_month",
    db.Column(
        "supervision_id",
        db.ForeignKey("supervision.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    db.Column("month", db.Date, primary_key=True),  # the first day of a month that triggered it
)


class Supervision(db.Model):
    """An on-site inspection (上门督查) or an interview (约谈) of an institution, opened by the
    finance office from a laggard in the monthly notice, with its follow-up."""

    __tablename__ = "supervision"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    institution_id = db.Column(db.ForeignKey("organisation.id"), nullable=False, index=True)
    kind = db.Column(db.String(12), nullable=False)
    held_on = db.Column(db.Date, nullable=False)
    participants = db.Column(db.String(500))
    findings = db.Column(db.Text, nullable=False)
    commitments = db.Column(db.Text)
    follow_up_due = db.Column(db.Date)
    status = db.Column(db.String(10), nullable=False, default="open")
    created_by_id = db.Column(db.ForeignKey("user_account.id"))
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    closed_at = db.Column(UTCDateTime)
    closed_by_id = db.Column(db.ForeignKey("user_account.id"))
    overdue_notified_at = db.Column(UTCDateTime)
    version = db.Column(db.Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint("kind IN ('inspection', 'interview')", name="kind"),
        db.CheckConstraint("status IN ('open', 'closed')", name="status"),
        db.Index("ix_supervision_status_due", "status", "follow_up_due"),
    )


class SupervisionResponse(db.Model):
    """A line on a supervision action: the institution's liaison answering, or a comment of
    the central bank or the finance office (``author_role``, the author's role then)."""

    __tablename__ = "supervision_response"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    supervision_id = db.Column(
        db.ForeignKey("supervision.id", ondelete="CASCADE"), nullable=False, index=True
    )
    author_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    author_role = db.Column(db.String(20), nullable=False)
    text = db.Column(db.Text, nullable=False)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        db.CheckConstraint(
            "author_role IN ('liaison', 'finance_office', 'pboc')", name="author_role"
        ),
    )
