"""The record of advisor work: visit logs and financing pipelines by advisor and institution,
the liaison's view of its institution, and their exports."""

from __future__ import annotations

from flask import Blueprint

from advisors.permissions import allow_blueprint

bp = Blueprint("work", __name__, url_prefix="/work")
allow_blueprint(bp, "admin", "finance_office", "pboc", "advisor", "liaison")
