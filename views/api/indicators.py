"""API: institution indicators — the catalogue and the yearly growth targets.

Thin routes: read the body (:mod:`.schemas.indicators`) -> :mod:`advisors.services.indicators`
-> dump; the unit of work commits. Every save of the targets is a new version of the year's.
"""

from __future__ import annotations

import re

from flask import jsonify
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from advisors.permissions import allow
from advisors.services.indicators import catalogue
from advisors.services.indicators import targets as target_service

from ._common import bp, caller, conflicts, invalid, json_body, not_found
from .openapi import operation
from .schemas.indicators import IndicatorListSchema, TargetsBodySchema, TargetsSchema

_YEAR = re.compile(r"^[0-9]{4}$")
_YEAR_PARAM = {"schema": {"type": "string", "pattern": r"^[0-9]{4}$"}, "description": "2026"}
TARGET_READERS = ("admin", "finance_office", "pboc", "liaison")
_RACED = _l("The targets were saved by someone else at the same moment; read them and try again.")


@bp.route("/indicators")
@allow("admin", "finance_office", "pboc", "advisor", "liaison")
@operation(
    "The indicator catalogue (any role but bureau)", ok=IndicatorListSchema, errors=(401, 403)
)
def indicators():
    items = [catalogue.to_api(i) for i in catalogue.indicators()]
    return jsonify(IndicatorListSchema().dump({"items": items}))


def _year(text: str) -> int | None:
    return int(text) if _YEAR.match(text) else None


@bp.route("/indicator-targets/<year>", methods=["GET"])
@allow(*TARGET_READERS)
@operation(
    "A year's indicator targets in force (the newest version)",
    description="A liaison sees the city-wide targets and its own institution's.",
    ok=TargetsSchema,
    errors=(401, 403, 404, 422),
    params={"year": _YEAR_PARAM},
)
def get_targets(year: str):
    number = _year(year)
    if number is None:
        return not_found()
    number = target_service.check_year(number)
    data = target_service.to_api(number, target_service.latest(number), caller())
    return jsonify(TargetsSchema().dump(data))


@bp.route("/indicator-targets/<year>", methods=["PUT"])
@allow("finance_office")
@operation(
    "Save a year's indicator targets as a new version (finance office)",
    description="The whole set: a target with an institution overrides the city-wide one for "
    "that institution; a target left out has none from this version on. 422 names each wrong "
    "field as targets.N.indicator, targets.N.growth_pct or targets.N.institution.",
    body=TargetsBodySchema,
    ok=TargetsSchema,
    errors=(401, 403, 404, 409, 422),
    params={"year": _YEAR_PARAM},
)
@conflicts(_RACED)
def put_targets(year: str):
    number = _year(year)
    if number is None:
        return not_found()
    try:
        data = TargetsBodySchema().read(json_body())
    except ValidationError as exc:
        return invalid(exc)
    user = caller()
    version = target_service.save(user, number, data.get("targets"), data.get("note"))
    return jsonify(TargetsSchema().dump(target_service.to_api(number, version, user)))
