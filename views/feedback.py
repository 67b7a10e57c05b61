"""Firm feedback without an account: one-time links (and QR codes) and the public rating page."""

from __future__ import annotations

from flask import Blueprint

from advisors.permissions import allow_blueprint

bp = Blueprint("feedback", __name__, url_prefix="/feedback")
allow_blueprint(bp, "admin", "finance_office", "advisor")
