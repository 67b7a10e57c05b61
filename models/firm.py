"""The enterprise registry, keyed by the unified social credit code (统一社会信用代码)."""

from .base import Money, TimestampMixin, UTCDateTime, db

SIZE_CLASSES = ("micro", "small", "medium", "large", "unknown")


class Enterprise(TimestampMixin, db.Model):
    __tablename__ = "enterprise"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    credit_code = db.Column(db.String(18), nullable=False, unique=True)
    name = db.Column(db.String(200), nullable=False, index=True)
    industry = db.Column(db.String(40), nullable=False, index=True)
    township_id = db.Column(db.ForeignKey("township.id"), index=True)
    # The township as the referring bureau wrote it, when it matches no listed township (then
    # township_id is empty): kept, shown as "not matched", and mapped once by the office.
    township_text = db.Column(db.String(60), index=True)
    address = db.Column(db.String(200))
    contact_name = db.Column(db.String(60))
    contact_phone = db.Column(db.String(30))
    employees = db.Column(db.Integer)
    revenue_wan = db.Column(Money)
    assets_wan = db.Column(Money)
    size_class = db.Column(db.String(10), nullable=False, default="unknown", index=True)

    # A code that fails the check digits can still be registered, with a recorded reason.
    code_override_reason = db.Column(db.String(200))
    code_override_by_id = db.Column(db.ForeignKey("user_account.id"))
    code_override_at = db.Column(UTCDateTime)

    registered_by_org_id = db.Column(db.ForeignKey("organisation.id"), index=True)
    version = db.Column(db.Integer, nullable=False, default=1)

    township = db.relationship("Township", lazy="joined")
    registered_by_org = db.relationship("Organisation", lazy="raise_on_sql")
    code_override_by = db.relationship("User", lazy="raise_on_sql")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint("employees IS NULL OR employees >= 0", name="employees"),
        db.CheckConstraint(
            "size_class IN ('micro', 'small', 'medium', 'large', 'unknown')", name="size_class"
        ),
    )

    def __repr__(self):
        return f"<Enterprise {self.credit_code} {self.name}>"
