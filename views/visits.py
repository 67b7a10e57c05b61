"""Visit logs (the four roles), the financing pipeline of a case, and the case outcome."""

from __future__ import annotations

from flask import Blueprint

from advisors.permissions import allow_blueprint

bp = Blueprint("visits", __name__, url_prefix="/visits")
allow_blueprint(bp, "admin", "finance_office", "pboc", "advisor", "liaison")
