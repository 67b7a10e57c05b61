"""(being written)"""

from flask import Blueprint

from advisors.permissions import allow_blueprint

bp = Blueprint("audit", __name__, url_prefix="/audit")
allow_blueprint(bp, "admin")
