"""(being written)"""

from flask import Blueprint

from advisors.permissions import allow_blueprint

bp = Blueprint("firms", __name__, url_prefix="/firms")
allow_blueprint(bp, "admin")
