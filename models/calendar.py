"""Working-day overrides: the finance office records holidays and make-up working days for
years the bundled Chinese calendar does not cover yet (the State Council publishes each year's
schedule late in the year before)."""

from .base import TimestampMixin, db


class WorkdayOverride(TimestampMixin, db.Model):
    __tablename__ = "workday_override"
    __audited__ = True

    day = db.Column(db.Date, primary_key=True)
    is_workday = db.Column(db.Boolean, nullable=False)
    note = db.Column(db.String(100))
