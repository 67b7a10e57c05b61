"""The audit trail: who changed what, when, with old and new values."""

from sqlalchemy import JSON

from .base import UTCDateTime, db, utcnow


class AuditLog(db.Model):
    __tablename__ = "audit_log"

    id = db.Column(db.Integer, primary_key=True)
    at = db.Column(UTCDateTime, nullable=False, default=utcnow, index=True)
    actor_id = db.Column(db.Integer, index=True)  # no FK: the trail outlives deleted users
    actor_label = db.Column(db.String(80), nullable=False)
    action = db.Column(db.String(10), nullable=False)  # insert | update | delete
    table_name = db.Column(db.String(60), nullable=False)
    record_id = db.Column(db.String(60), nullable=False)
    changes = db.Column(JSON, nullable=False)  # {column: [old, new]}
    ip = db.Column(db.String(64))

    __table_args__ = (db.Index("ix_audit_log_table_record", "table_name", "record_id"),)
