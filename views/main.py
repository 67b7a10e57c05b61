"""Home page per role, language switch, health check."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from advisors.dashboard import home_for
from advisors.permissions import PUBLIC, SIGNED_IN, allow
from advisors.services import health

bp = Blueprint("main", __name__)


@bp.route("/")
@allow(SIGNED_IN)
def home():
    panel = home_for(current_user._get_current_object())
    return render_template(f"main/home_{current_user.role}.html", panel=panel)


@bp.route("/lang/<code>", methods=["POST"])
@allow(PUBLIC)
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("main.home")
    return redirect(target)


@bp.route("/healthz")
@allow(PUBLIC)
def healthz():
    # A 503 rolls the failed transaction back (views/_uow.py): no rollback of its own needed.
    if not health.database_answers():
        return jsonify({"status": "error", "db": "unavailable"}), 503
    return jsonify({"status": "ok", "db": "ok"})
