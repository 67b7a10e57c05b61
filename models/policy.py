"""The policy-tool catalogue that policy promoters explain (maintained by the central bank)."""

from sqlalchemy import JSON

from .base import TimestampMixin, db

FIRM_TYPES = ("enterprise", "individual_business", "cooperative", "farmer")


class PolicyTool(TimestampMixin, db.Model):
    __tablename__ = "policy_tool"
    __audited__ = True

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(40), nullable=False, unique=True)
    name = db.Column(db.String(120), nullable=False)
    description = db.Column(db.Text, nullable=False, default="")
    valid_from = db.Column(db.Date)
    valid_to = db.Column(db.Date)
    eligible_types = db.Column(JSON, nullable=False, default=list)
    active = db.Column(db.Boolean, nullable=False, default=True)
    version = db.Column(db.Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self):
        return f"<PolicyTool {self.code}>"
