"""API: visit logs — ``POST /api/v1/visits`` (the assigned advisor) and the scoped reads.

The same service as the web form (:mod:`advisors.services.visits`); shapes in
:mod:`.schemas.visits`. A list costs a fixed number of queries: the visits with their
policies, then one query each for the authors, the financing steps recorded on them and the
risk reports the caller may see (:mod:`advisors.services.visit_queries`).
"""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from advisors.params import parse_id
from advisors.permissions import allow
from advisors.services import users, visit_queries
from advisors.services import visits as service
from models import User, Visit

from ._common import bad_request, bp, caller, conflicts, invalid, json_body, not_found
from .openapi import operation
from .schemas.visits import (
    VisitCreatedSchema,
    VisitInSchema,
    VisitListQuerySchema,
    VisitPageSchema,
    VisitSchema,
)

READERS = ("admin", "finance_office", "pboc", "advisor", "liaison")

_VISIT_COLUMNS = (
    "id",
    "referral_id",
    "visited_on",
    "mode",
    "roles",
    "summary",
    "policies",
    "policy_note",
    "guidance_topic",
    "guidance_advice",
    "next_visit_on",
    "created_at",
    "updated_at",
    "corrected_at",
    "correction_reason",
    "version",
)


def _financing(steps) -> list[dict]:
    """The financing steps recorded on a visit, with their application's flags."""
    return [
        {
            "application_id": app.id,
            "stage": step.stage,
            "on": step.stage_on,
            "amount_wan": step.amount_wan,
            "first_loan": app.first_loan,
            "unsecured": app.unsecured,
        }
        for step, app in steps
    ]


def visit_rows(user: User, visits: list[Visit]) -> list[dict]:
    """What :class:`VisitSchema` dumps for ``visits`` as ``user`` may see them."""
    if not visits:
        return []
    ids = [v.id for v in visits]
    people = users.usernames_with_org(v.advisor_id for v in visits)
    steps, risks = visit_queries.steps_of(ids), visit_queries.risks_of(user, ids)
    rows = []
    for v in visits:
        username, institution = people.get(v.advisor_id, (None, None))
        information = None
        if v.role_information:
            information = {
                "note": v.information_note,
                "risk_signal": bool(risks[v.id]),
                "risk_reports": risks[v.id],
            }
        rows.append(
            {
                **{key: getattr(v, key) for key in _VISIT_COLUMNS},
                "advisor": username,
                "institution": institution,
                "information": information,
                "financing": _financing(steps[v.id]),
            }
        )
    return rows


@bp.route("/visits", methods=["POST"])
@allow("advisor")
@operation(
    "Log a visit (the advisor the case is assigned to)",
    body=VisitInSchema,
    ok=VisitCreatedSchema,
    status=201,
    errors=(401, 403, 404, 409, 422),
)
@conflicts(
    _l("The case was changed at the same moment; send the visit again."),
    IntegrityError,
    StaleDataError,
)
def log_visit():
    body = json_body()
    try:
        VisitInSchema().read(body)
    except ValidationError as exc:
        return invalid(exc)
    # The visit service reads the body itself (the web form's rules): the schema only
    # stopped what it cannot read.
    visit = service.log_visit(caller(), body)
    response = jsonify(VisitCreatedSchema().dump(visit))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/visits/{visit.id}"
    return response


@bp.route("/visits", methods=["GET"])
@allow(*READERS)
@operation(
    "A case's visits in the caller's scope, newest first",
    query=VisitListQuerySchema,
    ok=VisitPageSchema,
    errors=(401, 403, 422),
)
def list_visits():
    referral_id = parse_id(request.args.get("referral_id"))
    if referral_id is None:
        return bad_request({"referral_id": _("Give the case id (referral_id) as a number.")})
    user = caller()
    visits = service.list_for_api(user, referral_id)
    return jsonify(VisitPageSchema().dump({"items": visit_rows(user, visits)}))


@bp.route("/visits/<int:visit_id>")
@allow(*READERS)
@operation("One visit (in scope)", ok=VisitSchema, errors=(401, 403, 404))
def get_visit(visit_id: int):
    user = caller()
    visit = visit_queries.visit_for_api(user, visit_id)
    if visit is None:
        return not_found()
    return jsonify(VisitSchema().dump(visit_rows(user, [visit])[0]))
