"""(being written)"""

from flask import Blueprint

from advisors.permissions import allow_blueprint

bp = Blueprint("policies", __name__, url_prefix="/policies")
allow_blueprint(bp, "admin")
