"""Organisations: the finance office, the central-bank branch, bureaus, banks and insurers."""

from sqlalchemy import func

from .base import TimestampMixin, UTCDateTime, db, utcnow

ORG_TYPES = ("finance_office", "pboc", "bureau", "bank", "insurer")


class Organisation(TimestampMixin, db.Model):
    __tablename__ = "organisation"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(40), nullable=False, unique=True)
    name = db.Column(db.String(120), nullable=False)
    type = db.Column(db.String(20), nullable=False, index=True)
    short_name = db.Column(db.String(40))
    active = db.Column(db.Boolean, nullable=False, default=True)
    version = db.Column(db.Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        db.CheckConstraint(
            "type IN ('finance_office', 'pboc', 'bureau', 'bank', 'insurer')", name="type"
        ),
        db.Index("uq_organisation_code_lower", func.lower(code), unique=True),
    )

    @property
    def is_institution(self) -> bool:
        return self.type in ("bank", "insurer")

    def __repr__(self):
        return f"<Organisation {self.code}>"


class Township(db.Model):
    """A township or street (乡镇/街道) of the city: where firms are and advisors serve."""

    __tablename__ = "township"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(20), nullable=False, unique=True)
    name = db.Column(db.String(60), nullable=False, unique=True)
    active = db.Column(db.Boolean, nullable=False, default=True)
    # Set when the township was merged into another (it is then inactive, and its name is an
    # alias of the other).
    merged_into_id = db.Column(db.ForeignKey("township.id"))

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<Township {self.name}>"


class TownshipAlias(db.Model):
    """A township name as bureaus write it (exactly as written) that the finance office mapped to
    a listed township once: later firms sent with the same text are matched to it."""

    __tablename__ = "township_alias"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(60), nullable=False, unique=True)
    township_id = db.Column(
        db.ForeignKey("township.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id = db.Column(db.ForeignKey("user_account.id"))

    township = db.relationship("Township", lazy="joined")
