"""Risk reports: the finance office's risk queue (acknowledge, follow up, close)."""

from __future__ import annotations

from flask import Blueprint

from advisors.permissions import allow_blueprint

bp = Blueprint("risks", __name__, url_prefix="/risks")
allow_blueprint(bp, "admin", "finance_office", "pboc", "advisor")
