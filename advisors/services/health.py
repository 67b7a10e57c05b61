"""The health check's one question: does the database answer?"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from models import db


def database_answers() -> bool:
    """True if ``SELECT 1`` runs. Any driver error (refused, dropped, timed out) is logged and
    answers False; the failed transaction is left to the caller's unit of work, which rolls it
    back because the health check then answers 503 (on a dropped connection SQLAlchemy has
    already invalidated it, so that rollback has nothing to send and cannot fail)."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 (any driver error means the database is not usable)
        current_app.logger.exception("health check: database unavailable")
        return False
    return True
