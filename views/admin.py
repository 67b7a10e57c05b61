"""(being written)"""

from flask import Blueprint

from advisors.permissions import allow_blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
allow_blueprint(bp, "admin")
