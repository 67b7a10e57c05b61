"""HTTP layer: one blueprint per area. Routes are thin: validate -> call a service -> render,
redirect or JSON; each runs in one unit of work (``views/_uow.py``) that commits once."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from advisors.dashboard import nav_counts
from advisors.labels import label, labels
from advisors.sizing import INDUSTRIES

from ._http import init_http
from ._uow import wrap_views


def register_views(app: Flask) -> None:
    """The request plumbing, every blueprint, the unit of work around each view, and the
    names every template may use."""
    from . import (
        account,
        admin,
        assessments,
        audit,
        auth,
        feedback,
        firms,
        indicators,
        intake,
        jobs,
        main,
        notifications,
        policies,
        referrals,
        risks,
        throttling,
        townships,
        visits,
        work,
    )
    from .api import bp as api_bp

    init_http(app)
    for module in (
        main,
        auth,
        account,
        admin,
        firms,
        policies,
        audit,
        notifications,
        intake,
        referrals,
        visits,
        risks,
        feedback,
        work,
        jobs,
        assessments,
        townships,
        indicators,
        throttling,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(api_bp)
    wrap_views(app)
    app.context_processor(template_globals)
    # Every enumerated value's label: labels('role')[code], label('role', code).
    app.jinja_env.globals.update(labels=labels, label=label)


def template_globals() -> dict:
    """The names every template sees besides ``labels``/``label``: look-ups, the signed-in
    user, the navigation's counts and the colon that follows a label in the user's language."""
    return {
        "industry_label": lambda key: _(INDUSTRIES[key]) if key in INDUSTRIES else key,
        "industries": INDUSTRIES,
        "size_label": lambda key: labels("size").get(key, key),
        "current_path": request.full_path.rstrip("?") if request else "/",
        "me": current_user,
        # After a label: "：" in Chinese, ": " in English.
        "colon": "：" if str(get_locale()).startswith("zh") else ": ",
        "nav": nav_counts(current_user) if current_user.is_authenticated else {},
    }
