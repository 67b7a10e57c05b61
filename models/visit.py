"""Advisor work on a case: visits (in the four roles), the financing pipeline, risk reports
and the firm's own feedback.

A visit belongs to a referral (the case) and is written by the advisor assigned to it. The
financing pipeline is kept per application, with its current stage and the date and amount of
each stage on the row (what lists and the assessment read), and every step in
``financing_step`` (the history). ``org_id`` on visits, applications and risk reports is the
advisor's institution when the work was done: liaison scope and per-institution assessment read
it without a join through users, and it stays true if the advisor later moves.
"""

from .base import Money, TimestampMixin, UTCDateTime, db, utcnow

VISIT_MODES = ("onsite", "phone", "online", "event")
VISIT_ROLES = ("policy", "guidance", "financing", "information")
FINANCING_STAGES = ("applied", "approved", "disbursed", "declined")
# Order of the stages; declined may follow applied or approved, nothing follows it or disbursed.
STAGE_ORDER = {"applied": 1, "approved": 2, "disbursed": 3, "declined": 3}
RISK_TYPES = ("illegal_fundraising", "illegal_deposit", "fraud", "other")
RISK_STATUSES = ("open", "acknowledged", "closed")


class Visit(TimestampMixin, db.Model):
    __tablename__ = "visit"
    __audited__ = True
    __audit_collections__ = ("policies",)

    id = db.Column(db.Integer, primary_key=True)
    referral_id = db.Column(db.ForeignKey("referral.id"), nullable=False)
    enterprise_id = db.Column(db.ForeignKey("enterprise.id"), nullable=False, index=True)
    advisor_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    org_id = db.Column(db.ForeignKey("organisation.id"))
    visited_on = db.Column(db.Date, nullable=False)
    mode = db.Column(db.String(10), nullable=False)
    # The roles as flags (like a referral's needs): filterable and countable in SQL on both
    # databases, which the assessment's per-role metrics need.
    role_policy = db.Column(db.Boolean, nullable=False, default=False)
    role_guidance = db.Column(db.Boolean, nullable=False, default=False)
    role_financing = db.Column(db.Boolean, nullable=False, default=False)
    role_information = db.Column(db.Boolean, nullable=False, default=False)
    summary = db.Column(db.Text, nullable=False)
    policy_note = db.Column(db.String(500))  # to whom / how the policies were explained
    guidance_topic = db.Column(db.String(100))
    guidance_advice = db.Column(db.Text)
    information_note = db.Column(db.Text)
    next_visit_on = db.Column(db.Date)  # the follow-up the advisor plans
    # Days between the visit and the day it was logged (Asia/Shanghai), set when it is logged:
    # "logs filed on time" is then a plain comparison in SQL on both databases.
    log_delay_days = db.Column(db.Integer, nullable=False, default=0, server_default="0")

    # A finance-office correction after the author's edit window closed.
    corrected_at = db.Column(UTCDateTime)
    corrected_by_id = db.Column(db.ForeignKey("user_account.id"))
    correction_reason = db.Column(db.String(500))

    version = db.Column(db.Integer, nullable=False, default=1)

    referral = db.relationship("Referral", lazy="raise_on_sql")
    enterprise = db.relationship("Enterprise", lazy="raise_on_sql")
    advisor = db.relationship("User", foreign_keys=[advisor_id], lazy="raise_on_sql")
    policies = db.relationship(
        "PolicyTool", secondary="visit_policy", lazy="raise_on_sql", order_by="PolicyTool.id"
    )

    @property
    def roles(self) -> list[str]:
        return [r for r in VISIT_ROLES if getattr(self, f"role_{r}")]

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint("mode IN ('onsite', 'phone', 'online', 'event')", name="mode"),
        db.CheckConstraint(
            "role_policy OR role_guidance OR role_financing OR role_information", name="roles"
        ),
        # The workbench and the advisor's log: my visits, newest first, and this month's.
        db.Index("ix_visit_advisor_visited", "advisor_id", "visited_on", "id"),
        db.Index("ix_visit_referral_visited", "referral_id", "visited_on", "id"),
        db.Index("ix_visit_org_visited", "org_id", "visited_on", "id"),
        # The assessment reads visits by period.
        db.Index("ix_visit_visited", "visited_on", "id"),
    )


class VisitPolicy(db.Model):
    """The catalogue's policy tools explained on a visit."""

    __tablename__ = "visit_policy"

    visit_id = db.Column(db.ForeignKey("visit.id", ondelete="CASCADE"), primary_key=True)
    policy_tool_id = db.Column(db.ForeignKey("policy_tool.id"), primary_key=True)


class FinancingApplication(TimestampMixin, db.Model):
    """One financing application of a firm, from application to disbursement or decline."""

    __tablename__ = "financing_application"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    referral_id = db.Column(db.ForeignKey("referral.id"), nullable=False, index=True)
    enterprise_id = db.Column(db.ForeignKey("enterprise.id"), nullable=False, index=True)
    advisor_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    org_id = db.Column(db.ForeignKey("organisation.id"))  # the advisor's institution
    lender_id = db.Column(db.ForeignKey("organisation.id"))  # the bank or insurer lending
    visit_id = db.Column(db.ForeignKey("visit.id"))  # the visit it was opened on
    product = db.Column(db.String(100))
    purpose = db.Column(db.String(200))
    term_months = db.Column(db.Integer)
    amount_wan = db.Column(Money, nullable=False)  # applied for
    first_loan = db.Column(db.Boolean, nullable=False, default=False)  # 首贷户
    unsecured = db.Column(db.Boolean, nullable=False, default=False)  # 信用贷款

    stage = db.Column(db.String(10), nullable=False, default="applied")
    applied_on = db.Column(db.Date, nullable=False)
    approved_on = db.Column(db.Date)
    approved_amount_wan = db.Column(Money)  # 授信
    disbursed_on = db.Column(db.Date)
    disbursed_amount_wan = db.Column(Money)  # 放款
    declined_on = db.Column(db.Date)
    declined_reason = db.Column(db.String(500))

    version = db.Column(db.Integer, nullable=False, default=1)

    referral = db.relationship("Referral", lazy="raise_on_sql")
    enterprise = db.relationship("Enterprise", lazy="raise_on_sql")
    advisor = db.relationship("User", lazy="raise_on_sql")
    lender = db.relationship("Organisation", foreign_keys=[lender_id], lazy="raise_on_sql")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint(
            "stage IN ('applied', 'approved', 'disbursed', 'declined')", name="stage"
        ),
        db.CheckConstraint("amount_wan > 0", name="amount_positive"),
        db.CheckConstraint(
            "term_months IS NULL OR term_months BETWEEN 1 AND 600", name="term_months"
        ),
        db.Index("ix_financing_advisor_stage", "advisor_id", "stage"),
        db.Index("ix_financing_org_stage", "org_id", "stage"),
        db.Index("ix_financing_disbursed_on", "disbursed_on", "id"),
        db.Index("ix_financing_approved_on", "approved_on", "id"),
        # The pipeline list, newest application first.
        db.Index("ix_financing_applied_on", "applied_on", "id"),
    )


class FinancingStep(db.Model):
    """The history of an application: each stage reached, with its date and amount."""

    __tablename__ = "financing_step"

    id = db.Column(db.Integer, primary_key=True)
    application_id = db.Column(
        db.ForeignKey("financing_application.id", ondelete="CASCADE"), nullable=False, index=True
    )
    stage = db.Column(db.String(10), nullable=False)
    stage_on = db.Column(db.Date, nullable=False)
    amount_wan = db.Column(Money)
    note = db.Column(db.String(500))
    visit_id = db.Column(db.ForeignKey("visit.id"))
    actor_id = db.Column(db.ForeignKey("user_account.id"))
    at = db.Column(UTCDateTime, nullable=False, default=utcnow)


class RiskReport(db.Model):
    """A risk signal an advisor raised (suspected illegal fundraising, deposit-taking, fraud…).
    Goes to the finance office's risk queue at once; seen only by the reporter, the finance
    office, the central bank and admins."""

    __tablename__ = "risk_report"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    visit_id = db.Column(db.ForeignKey("visit.id"), index=True)
    referral_id = db.Column(db.ForeignKey("referral.id"), nullable=False, index=True)
    enterprise_id = db.Column(db.ForeignKey("enterprise.id"), nullable=False, index=True)
    reporter_id = db.Column(db.ForeignKey("user_account.id"), nullable=False, index=True)
    org_id = db.Column(db.ForeignKey("organisation.id"))  # the reporter's institution
    risk_type = db.Column(db.String(20), nullable=False)
    note = db.Column(db.Text, nullable=False)
    status = db.Column(db.String(12), nullable=False, default="open")
    reported_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    acknowledged_at = db.Column(UTCDateTime)
    acknowledged_by_id = db.Column(db.ForeignKey("user_account.id"))
    closed_at = db.Column(UTCDateTime)
    closed_by_id = db.Column(db.ForeignKey("user_account.id"))
    close_note = db.Column(db.String(1000))
    version = db.Column(db.Integer, nullable=False, default=1)

    enterprise = db.relationship("Enterprise", lazy="raise_on_sql")
    reporter = db.relationship("User", foreign_keys=[reporter_id], lazy="raise_on_sql")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint(
            "risk_type IN ('illegal_fundraising', 'illegal_deposit', 'fraud', 'other')",
            name="risk_type",
        ),
        db.CheckConstraint("status IN ('open', 'acknowledged', 'closed')", name="status"),
        db.Index("ix_risk_report_status_reported", "status", "reported_at", "id"),
    )


class RiskNote(db.Model):
    """A follow-up note on a risk report by the finance office or central bank."""

    __tablename__ = "risk_note"

    id = db.Column(db.Integer, primary_key=True)
    report_id = db.Column(
        db.ForeignKey("risk_report.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    author_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    note = db.Column(db.String(1000), nullable=False)


class FeedbackLink(db.Model):
    """A one-time link (and QR code) that lets the firm rate the service without an account.
    Only a digest of the token is stored; the link is shown once, when it is made."""

    __tablename__ = "feedback_link"
    __audited__ = True
    __audit_exclude__ = ("token_hash",)

    id = db.Column(db.Integer, primary_key=True)
    referral_id = db.Column(db.ForeignKey("referral.id"), nullable=False, index=True)
    advisor_id = db.Column(db.ForeignKey("user_account.id"))  # whose service is rated
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    created_by_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    expires_at = db.Column(UTCDateTime, nullable=False)
    revoked_at = db.Column(UTCDateTime)
    used_at = db.Column(UTCDateTime)
    rating = db.Column(db.Integer)
    comment = db.Column(db.String(500))

    __table_args__ = (
        db.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        db.Index("ix_feedback_link_used", "used_at", "id"),
    )
