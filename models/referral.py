"""Referrals: a bureau recommends a firm; the finance office assigns it to an advisor; the
bureau follows it to the outcome. One firm has at most one open referral (a case); further
bureaus referring it become co-referrers."""

from sqlalchemy import JSON, text

from .base import Money, TimestampMixin, UTCDateTime, db, utcnow

STATUSES = ("submitted", "assigned", "in_service", "resolved", "closed", "rejected", "withdrawn")
OPEN_STATUSES = ("submitted", "assigned", "in_service", "resolved")
# The contract's three needs, plus insurance (an extension: routed to insurers).
NEEDS = ("financing", "policy", "guidance", "insurance")
OUTCOMES = ("financed", "not_financed", "policy_delivered", "no_need", "declined")
_OPEN = text("status IN ('submitted', 'assigned', 'in_service', 'resolved')")


class Referral(TimestampMixin, db.Model):
    __tablename__ = "referral"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    enterprise_id = db.Column(db.ForeignKey("enterprise.id"), nullable=False, index=True)
    status = db.Column(db.String(12), nullable=False, default="submitted")
    # Needs as flags rather than a JSON list: filterable and indexable the same way on SQLite
    # and PostgreSQL.
    need_financing = db.Column(db.Boolean, nullable=False, default=False)
    need_policy = db.Column(db.Boolean, nullable=False, default=False)
    need_guidance = db.Column(db.Boolean, nullable=False, default=False)
    need_insurance = db.Column(db.Boolean, nullable=False, default=False)
    amount_wan = db.Column(Money)
    purpose = db.Column(db.String(200))
    note = db.Column(db.Text)

    # The bureau that referred it first; co-referrers are in referral_bureau (this one too).
    org_id = db.Column(db.ForeignKey("organisation.id"), nullable=False, index=True)
    created_by_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    source = db.Column(db.String(10), nullable=False, default="form")  # form | upload | api
    upload_id = db.Column(db.ForeignKey("referral_upload.id"), index=True)

    advisor_id = db.Column(db.ForeignKey("user_account.id"), index=True)
    assigned_at = db.Column(UTCDateTime)
    first_contact_due = db.Column(db.Date)
    first_contact_on = db.Column(db.Date)
    # Kept by the visit service: the latest visit and the follow-up it planned (the workbench's
    # "next due" without reading the visit log).
    last_visit_on = db.Column(db.Date)
    next_visit_on = db.Column(db.Date)
    resolved_at = db.Column(UTCDateTime)
    closed_at = db.Column(UTCDateTime)

    rejected_reason = db.Column(db.String(500))
    outcome_result = db.Column(db.String(20))
    outcome_amount_wan = db.Column(Money)
    outcome_note = db.Column(db.String(500))
    satisfaction = db.Column(db.Integer)
    satisfaction_comment = db.Column(db.String(500))

    version = db.Column(db.Integer, nullable=False, default=1)

    enterprise = db.relationship("Enterprise", lazy="raise_on_sql")
    org = db.relationship("Organisation", lazy="raise_on_sql")
    advisor = db.relationship("User", foreign_keys=[advisor_id], lazy="raise_on_sql")
    created_by = db.relationship("User", foreign_keys=[created_by_id], lazy="raise_on_sql")

    @property
    def needs(self) -> list[str]:
        return [n for n in NEEDS if getattr(self, f"need_{n}")]

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint(
            "status IN ('submitted', 'assigned', 'in_service', 'resolved', 'closed', "
            "'rejected', 'withdrawn')",
            name="status",
        ),
        db.CheckConstraint(
            "satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="satisfaction"
        ),
        # Keyset pagination, newest first, overall and per status.
        db.Index("ix_referral_created_id", "created_at", "id"),
        db.Index("ix_referral_status_created_id", "status", "created_at", "id"),
        db.Index("ix_referral_advisor_status", "advisor_id", "status"),
        # The bureau dashboard's latest outcomes.
        db.Index("ix_referral_resolved_id", "resolved_at", "id"),
        # One firm, one open case: enforced by the database too, so two bureaus submitting the
        # same firm at the same moment cannot fork it.
        db.Index(
            "uq_referral_open_enterprise",
            "enterprise_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )


class ReferralBureau(db.Model):
    """A bureau that referred (or co-referred) the firm of this case and follows it."""

    __tablename__ = "referral_bureau"
    __audited__ = True

    referral_id = db.Column(db.ForeignKey("referral.id", ondelete="CASCADE"), primary_key=True)
    org_id = db.Column(db.ForeignKey("organisation.id"), primary_key=True)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id = db.Column(db.ForeignKey("user_account.id"))
    needs = db.Column(JSON)
    amount_wan = db.Column(Money)
    note = db.Column(db.Text)
    # Firm details this bureau sent that differ from what another organisation registered:
    # {field: value as text}, kept for the finance office to accept or dismiss (a push never
    # overwrites another organisation's registration).
    proposed = db.Column(JSON)

    __table_args__ = (db.Index("ix_referral_bureau_org_referral", "org_id", "referral_id"),)


class ReferralEvent(db.Model):
    """The case's timeline: every status change, assignment and note, with who and when."""

    __tablename__ = "referral_event"

    id = db.Column(db.Integer, primary_key=True)
    referral_id = db.Column(
        db.ForeignKey("referral.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    kind = db.Column(db.String(20), nullable=False)  # created, co_referred, assigned, ...
    status = db.Column(db.String(12), nullable=False)
    actor_id = db.Column(db.ForeignKey("user_account.id"))
    actor_label = db.Column(db.String(80), nullable=False)
    advisor_id = db.Column(db.ForeignKey("user_account.id"))
    note = db.Column(db.String(500))


class ReferralUpload(db.Model):
    """An uploaded list. The fingerprint makes a second upload of the same file a no-op."""

    __tablename__ = "referral_upload"

    id = db.Column(db.Integer, primary_key=True)
    org_id = db.Column(db.ForeignKey("organisation.id"), nullable=False)
    user_id = db.Column(db.ForeignKey("user_account.id"), nullable=False)
    filename = db.Column(db.String(200), nullable=False)
    sha256 = db.Column(db.String(64), nullable=False)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    rows = db.Column(db.Integer, nullable=False, default=0)
    counts = db.Column(JSON, nullable=False, default=dict)
    rejected = db.Column(JSON, nullable=False, default=list)  # [{row, values, errors}]
    headers = db.Column(JSON, nullable=False, default=list)
    # Large lists are imported outside the request: queued (the file kept in ``payload``) ->
    # running (``progress`` rows read so far) -> done, or failed with ``error`` (nothing saved).
    status = db.Column(db.String(10), nullable=False, default="done", server_default="done")
    payload = db.Column(db.LargeBinary)
    progress = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    error = db.Column(db.String(1000))
    locale = db.Column(db.String(10))
    started_at = db.Column(UTCDateTime)
    finished_at = db.Column(UTCDateTime)

    __table_args__ = (
        db.UniqueConstraint("org_id", "sha256", name="uq_referral_upload_org_sha"),
        db.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        db.Index("ix_referral_upload_status", "status", "id"),
    )


class ReferralRead(db.Model):
    """Which inbox items a finance-office or central-bank user has opened (for unread counts)."""

    __tablename__ = "referral_read"

    user_id = db.Column(db.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    referral_id = db.Column(db.ForeignKey("referral.id", ondelete="CASCADE"), primary_key=True)
    at = db.Column(UTCDateTime, nullable=False, default=utcnow)
