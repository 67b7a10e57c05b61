"""API: who am I, the firm registry, the policy catalogue, the townships."""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _

from advisors.params import MAX_ID, parse_int
from advisors.permissions import SIGNED_IN, allow
from advisors.services import firms as firm_service
from advisors.services import policies as policy_service
from advisors.services import townships as township_service

from ._common import bad_request, bp, caller, not_found
from .openapi import operation
from .schemas.core import (
    EnterpriseListSchema,
    EnterpriseQuerySchema,
    EnterpriseSchema,
    MeSchema,
    PolicyToolListSchema,
    TownshipListSchema,
)


@bp.route("/me")
@allow(SIGNED_IN)
@operation("The token's user", ok=MeSchema)
def me():
    return jsonify(MeSchema().dump(caller()))


@bp.route("/enterprises")
@allow("admin", "finance_office", "pboc", "bureau")
@operation(
    "Search the firm registry by credit code or name (in scope)",
    query=EnterpriseQuerySchema,
    ok=EnterpriseListSchema,
    errors=(401, 403, 422),
)
def enterprises():
    q = (request.args.get("q") or "").strip()
    limit = parse_int(request.args.get("limit", "50"), -MAX_ID, MAX_ID)  # ASCII digits only
    if limit is None:
        return bad_request({"limit": _("Limit must be a whole number from 1 to 200.")})
    rows = firm_service.search(caller(), q, limit=min(max(limit, 1), 200))
    return jsonify(EnterpriseListSchema().dump({"items": rows}))


@bp.route("/enterprises/<code>")
@allow("admin", "finance_office", "pboc", "bureau")
@operation("One firm by credit code (in scope)", ok=EnterpriseSchema, errors=(401, 403, 404))
def enterprise(code: str):
    firm = firm_service.get_by_code(caller(), code)
    if firm is None:
        return not_found()
    return jsonify(EnterpriseSchema().dump(firm))


@bp.route("/policy-tools")
@allow(SIGNED_IN)
@operation("The policy-tool catalogue", ok=PolicyToolListSchema)
def policy_tools():
    return jsonify(PolicyToolListSchema().dump({"items": policy_service.catalogue()}))


@bp.route("/townships")
@allow(SIGNED_IN)
@operation("The city's townships and streets (active first, by code)", ok=TownshipListSchema)
def townships():
    return jsonify(TownshipListSchema().dump({"items": township_service.all_townships()}))
