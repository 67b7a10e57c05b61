"""In-app notifications (the bell)."""

from sqlalchemy import JSON

from .base import UTCDateTime, db, utcnow


class Notification(db.Model):
    __tablename__ = "notification"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    kind = db.Column(db.String(30), nullable=False)
    referral_id = db.Column(db.ForeignKey("referral.id", ondelete="CASCADE"))
    params = db.Column(JSON, nullable=False, default=dict)
    created_at = db.Column(UTCDateTime, nullable=False, default=utcnow)
    read_at = db.Column(UTCDateTime)
    # Makes a repeated job run harmless: e.g. "overdue:<referral>:<date>".
    dedupe_key = db.Column(db.String(80))

    __table_args__ = (
        db.Index("ix_notification_user_unread", "user_id", "read_at", "id"),
        db.UniqueConstraint("user_id", "dedupe_key", name="uq_notification_user_dedupe"),
    )
