"""API: assessments — compile (or recompile a draft), publish, read as the caller may see it;
plus the list of periods, adjustments and an advisor's breakdown (extensions of the contract).

Thin routes: read the body with its schema (:mod:`.schemas.assessments`) ->
:mod:`advisors.services.assessments` -> dump; the unit of work commits. Domain errors become
the contract's error JSON (422 with ``fields``, 404, 409, 403).
"""

from __future__ import annotations

from flask import current_app, jsonify
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from advisors.params import MAX_ID
from advisors.permissions import allow
from advisors.services import assessments as service
from models import User

from ._common import bad_request, bp, caller, conflicts, invalid, json_body, not_found
from .openapi import operation
from .schemas.assessments import (
    AdjustmentSchema,
    AssessmentPeriodListSchema,
    AssessmentSchema,
    BreakdownSchema,
    CompileSchema,
    PublishSchema,
)

READERS = ("admin", "finance_office", "pboc", "advisor", "liaison")
PERIOD_MAX = 16
_PERIOD = {
    "schema": {"type": "string", "pattern": r"^[0-9]{4}(-[0-9]{2}|-[Qq][1-4])?$"},
    "description": "2026-07 (month), 2026-Q3 (quarter) or 2026 (year)",
}
# A compile, a publication or an adjustment raced another one (a row changed, a lock not had).
_RACED = (_l("The assessment was changed at the same moment; try again."),)
_RACES = (IntegrityError, StaleDataError, OperationalError)
_WRITES = (401, 403, 404, 409, 422)


def _period_ok(period: str) -> bool:
    return isinstance(period, str) and len(period) <= PERIOD_MAX


def _assessment(user: User, period: str):
    return jsonify(AssessmentSchema().dump(service.to_api(service.get_view(user, period))))


@bp.route("/assessments", methods=["GET"])
@allow(*READERS)
@operation(
    "The compiled periods the caller may open, latest first",
    ok=AssessmentPeriodListSchema,
    errors=(401, 403),
)
def list_assessments():
    items = service.periods_to_api(service.periods(caller()))
    return jsonify(AssessmentPeriodListSchema().dump({"items": items}))


@bp.route("/assessments", methods=["POST"])
@allow("finance_office")
@operation(
    "Compile a period, or recompile its draft (finance office)",
    description="Recompiling gives the same result for the same data; a published period is "
    "not changed (409).",
    body=CompileSchema,
    ok=AssessmentSchema,
    errors=(401, 403, 409, 422),
)
@conflicts(*_RACED, *_RACES)
def compile_assessment():
    try:
        data = CompileSchema().read(json_body())
    except ValidationError as exc:
        return invalid(exc)
    user = caller()
    assessment = service.compile_period(data["period"], user)
    return _assessment(user, assessment.period)


@bp.route("/assessments/<period>", methods=["GET"])
@allow(*READERS)
@operation(
    "A period's assessment as the caller may see it",
    description="Office roles and admins: every row, drafts too; an advisor: their own row of "
    "a published period; a liaison: its institution's rows; bureaus: 403.",
    ok=AssessmentSchema,
    errors=(401, 403, 404, 422),
    params={"period": _PERIOD},
)
def get_assessment(period: str):
    if not _period_ok(period):
        return not_found()
    return _assessment(caller(), period)


@bp.route("/assessments/<period>/publish", methods=["POST"])
@allow("finance_office")
@operation(
    "Publish a draft (finance office); it is frozen from then on",
    body=PublishSchema,
    body_required=False,
    ok=AssessmentSchema,
    errors=_WRITES,
    params={"period": _PERIOD},
)
@conflicts(*_RACED, *_RACES)
def publish_assessment(period: str):
    if not _period_ok(period):
        return not_found()
    body = json_body()
    try:
        data = PublishSchema().read(body if isinstance(body, dict) else {})
    except ValidationError as exc:
        return invalid(exc)
    user = caller()
    assessment = service.publish(
        user,
        period,
        expected_version=data.get("version"),
        doc_number=data.get("doc_number"),
        doc_prefix=current_app.config.get("NOTICE_DOC_PREFIX", ""),
    )
    return _assessment(user, assessment.period)


@bp.route("/assessments/<period>/adjustments", methods=["POST"])
@allow("finance_office")
@operation(
    "Adjust an advisor's score in a draft, with the reason (finance office)",
    body=AdjustmentSchema,
    ok=AssessmentSchema,
    errors=_WRITES,
    params={"period": _PERIOD},
)
@conflicts(*_RACED, *_RACES)
def adjust_assessment(period: str):
    if not _period_ok(period):
        return not_found()
    try:
        data = AdjustmentSchema().read(json_body())
    except ValidationError as exc:
        return invalid(exc)
    advisor = service.advisor_id_by_username(data["advisor"])
    if advisor is None:
        return bad_request({"advisor": _("No advisor with this username.")})
    user = caller()
    service.add_adjustment(user, period, advisor, data.get("points"), data.get("reason"))
    return _assessment(user, period)


@bp.route("/assessments/<period>/adjustments/<int:adjustment_id>/withdraw", methods=["POST"])
@allow("finance_office")
@operation(
    "Withdraw an adjustment while the period is a draft (finance office)",
    description="The adjustment is kept, marked with who withdrew it and when (audited), and "
    "no longer counts; 409 once the period is published or when it was already withdrawn.",
    ok=AssessmentSchema,
    errors=_WRITES,
    params={"period": _PERIOD},
)
@conflicts(*_RACED, *_RACES)
def withdraw_adjustment(period: str, adjustment_id: int):
    if not _period_ok(period) or not 0 < adjustment_id <= MAX_ID:
        return not_found()
    user = caller()
    service.withdraw_adjustment(user, period, adjustment_id)
    return _assessment(user, period)


@bp.route("/assessments/<period>/advisors/<int:user_id>")
@allow(*READERS)
@operation(
    "What produced each metric of one advisor's row (the breakdown)",
    ok=BreakdownSchema,
    errors=(401, 403, 404, 422),
    params={"period": _PERIOD, "user_id": {"description": "The advisor's user id"}},
)
def assessment_breakdown(period: str, user_id: int):
    if not _period_ok(period) or not 0 < user_id <= MAX_ID:
        return not_found()
    items = service.breakdown(caller(), period, user_id)
    key = service.parse_period(period).key
    return jsonify(
        BreakdownSchema().dump({"period": key, "metrics": service.breakdown_to_api(items)})
    )
