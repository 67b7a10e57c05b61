"""API: assessments — compile (or recompile a draft), publish, read as the caller may see it;
plus the list of periods, adjustments and an advisor's breakdown (extensions of the contract).

Thin routes: parse the body -> :mod:`advisors.services.assessments` -> commit once -> JSON.
Domain errors become the contract's error JSON (422 with ``fields``, 404, 409, 403).
"""

from __future__ import annotations

from flask import current_app, jsonify
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from advisors.params import MAX_ID
from advisors.permissions import allow
from advisors.services import assessments as service
from models import User, db

from .._http import api_error
from . import bad_request, bp
from .referrals import _body, _not_found, _unicode_ok

READERS = ("admin", "finance_office", "pboc", "advisor", "liaison")
PERIOD_MAX = 16


def _user() -> User:
    return current_user._get_current_object()


def _conflict():
    db.session.rollback()
    return api_error(
        409, "conflict", _("The assessment was changed at the same moment; try again.")
    )


def _object_body(field: str):
    """The JSON body as a dict, or a 422 response naming ``field``."""
    body = _body()
    if not isinstance(body, dict):
        return None, bad_request({field: _("Send a JSON object.")})
    if not _unicode_ok(body):
        return None, bad_request({field: _("The request contains text that is not valid.")})
    return body, None


def _period_arg(period: str) -> str | None:
    return period if isinstance(period, str) and len(period) <= PERIOD_MAX else None


@bp.route("/assessments", methods=["GET"])
@allow(*READERS)
def list_assessments():
    return jsonify({"items": service.periods_to_api(service.periods(_user()))})


@bp.route("/assessments", methods=["POST"])
@allow("finance_office")
def compile_assessment():
    body, error = _object_body("period")
    if error is not None:
        return error
    period = body.get("period")
    if not isinstance(period, str) or not period.strip():
        return bad_request({"period": _("Give the period, such as 2026-07, 2026-Q3 or 2026.")})
    user = _user()
    try:
        assessment = service.compile_period(period, user)
        db.session.commit()
    except (IntegrityError, StaleDataError, OperationalError):
        return _conflict()
    return jsonify(service.to_api(service.get_view(user, assessment.period)))


@bp.route("/assessments/<period>", methods=["GET"])
@allow(*READERS)
def get_assessment(period: str):
    if _period_arg(period) is None:
        return _not_found()
    view = service.get_view(_user(), period)
    return jsonify(service.to_api(view))


@bp.route("/assessments/<period>/publish", methods=["POST"])
@allow("finance_office")
def publish_assessment(period: str):
    if _period_arg(period) is None:
        return _not_found()
    body = _body()
    version = doc_number = None
    if isinstance(body, dict) and body.get("version") is not None:
        version = body["version"]
        if isinstance(version, bool) or not isinstance(version, int) or not 0 < version <= MAX_ID:
            return bad_request({"version": _("The version must be a whole number.")})
    if isinstance(body, dict):
        doc_number = body.get("doc_number")
    user = _user()
    try:
        assessment = service.publish(
            user,
            period,
            expected_version=version,
            doc_number=doc_number,
            doc_prefix=current_app.config.get("NOTICE_DOC_PREFIX", ""),
        )
        db.session.commit()
    except (IntegrityError, StaleDataError, OperationalError):
        return _conflict()
    return jsonify(service.to_api(service.get_view(user, assessment.period)))


@bp.route("/assessments/<period>/adjustments", methods=["POST"])
@allow("finance_office")
def adjust_assessment(period: str):
    if _period_arg(period) is None:
        return _not_found()
    body, error = _object_body("adjustment")
    if error is not None:
        return error
    username = body.get("advisor")
    if not isinstance(username, str) or not username.strip():
        return bad_request({"advisor": _("Give the advisor's username.")})
    advisor = None
    if username.isprintable():  # (a NUL byte would not even reach a PostgreSQL comparison)
        advisor = db.session.execute(
            select(User.id).where(User.username == username.strip(), User.role == "advisor")
        ).scalar_one_or_none()
    user = _user()
    if advisor is None:
        return bad_request({"advisor": _("No advisor with this username.")})
    try:
        service.add_adjustment(user, period, advisor, body.get("points"), body.get("reason"))
        db.session.commit()
    except (IntegrityError, StaleDataError, OperationalError):
        return _conflict()
    return jsonify(service.to_api(service.get_view(user, period)))


@bp.route("/assessments/<period>/adjustments/<int:adjustment_id>/withdraw", methods=["POST"])
@allow("finance_office")
def withdraw_adjustment(period: str, adjustment_id: int):
    if _period_arg(period) is None or not 0 < adjustment_id <= MAX_ID:
        return _not_found()
    user = _user()
    try:
        service.withdraw_adjustment(user, period, adjustment_id)
        db.session.commit()
    except (IntegrityError, StaleDataError, OperationalError):
        return _conflict()
    return jsonify(service.to_api(service.get_view(user, period)))


@bp.route("/assessments/<period>/advisors/<int:user_id>")
@allow(*READERS)
def assessment_breakdown(period: str, user_id: int):
    if _period_arg(period) is None or not 0 < user_id <= MAX_ID:
        return _not_found()
    items = service.breakdown(_user(), period, user_id)
    key = service.parse_period(period).key
    return jsonify({"period": key, "metrics": service.breakdown_to_api(items)})
