"""API: referrals — the bureau push, the scoped list and detail, assignment.

Every route is thin: read the body with its schema (:mod:`.schemas.referrals`) -> call the
referral rule set (the same one the web form and the list upload use) -> dump with the schema;
the unit of work commits. A list page costs a fixed number of queries whatever its size: the
referrals with their firm, then one query each for the referring bureaus, the advisors, the
timelines and the working-day calendar.
"""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from advisors import clock
from advisors.labels import labels, one_of
from advisors.params import MAX_ID, parse_int
from advisors.permissions import allow
from advisors.services import referral_queries, sla, users
from advisors.services import referrals as service
from advisors.services.firms import clean_text
from models import ROLES, STATUSES, Referral, User

from ._common import bad_request, bp, caller, conflicts, invalid, json_body, not_found
from .openapi import operation
from .schemas.referrals import (
    AssignSchema,
    ReferralListQuerySchema,
    ReferralPageSchema,
    ReferralPushResultSchema,
    ReferralPushSchema,
    ReferralSchema,
    push_items,
    shape_errors,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


# ----------------------------------------------------------------------------- REFERRAL
def _township(firm) -> dict | None:
    if firm.township is not None:
        return {"code": firm.township.code, "name": firm.township.name, "matched": True}
    if firm.township_text:
        return {"code": None, "name": firm.township_text, "matched": False}
    return None


def referral_rows(referrals: list[Referral]) -> list[dict]:
    """What :class:`ReferralSchema` dumps for a page of cases whose firm is loaded: the
    referrals themselves plus what a fixed number of queries finds about them."""
    if not referrals:
        return []
    ids = [r.id for r in referrals]
    bureaus = service.bureaus_of(ids)
    advisors = users.usernames_with_org(r.advisor_id for r in referrals)
    timelines = referral_queries.timelines_of(ids)
    cal, today = service.calendar(), clock.today()
    rows = []
    for r in referrals:
        username, institution = advisors.get(r.advisor_id, (None, None))
        rows.append(
            {
                **{key: getattr(r, key) for key in _REFERRAL_COLUMNS},
                "enterprise": {
                    **{key: getattr(r.enterprise, key) for key in _FIRM_COLUMNS},
                    "township": _township(r.enterprise),
                },
                "referrers": bureaus.get(r.id, []),
                "advisor": username,
                "institution": institution,
                "timeline": timelines[r.id],
                "outcome": _outcome(r),
                "sla": sla.flag(r.status, r.first_contact_due, r.first_contact_on, today, cal),
            }
        )
    return rows


_REFERRAL_COLUMNS = (
    "id",
    "status",
    "needs",
    "amount_wan",
    "created_at",
    "purpose",
    "note",
    "rejected_reason",
    "assigned_at",
    "first_contact_due",
    "first_contact_on",
    "version",
)
_FIRM_COLUMNS = ("credit_code", "name", "industry", "size_class")


def _outcome(r: Referral) -> dict | None:
    if r.outcome_result is None:
        return None
    return {"result": r.outcome_result, "amount_wan": r.outcome_amount_wan, "note": r.outcome_note}


def _one(user: User, referral_id: int) -> dict | None:
    found = referral_queries.referral_for_api(user, referral_id)
    return ReferralSchema().dump(referral_rows([found])[0]) if found is not None else None


# ----------------------------------------------------------------------------- routes
@bp.route("/referrals", methods=["POST"])
@allow("bureau")
@operation(
    "Push firms for the advisor team (bureau)",
    description="1 to 1000 items. Every item gets exactly one result; accepted items are "
    "saved even when others are rejected.",
    body=ReferralPushSchema,
    ok=ReferralPushResultSchema,
    errors=(401, 403, 409, 422),
)
@conflicts(
    # Another submission for the same firm committed first (one open case per firm), or
    # changed the firm's record while this batch was updating it.
    _l("Another submission for the same firm arrived at the same moment; send it again."),
    IntegrityError,
    StaleDataError,
)
def submit_referrals():
    try:
        items = push_items(json_body())
    except ValidationError as exc:
        return invalid(exc)
    # Items the rule set cannot read go in as None, which it rejects (keeping every index);
    # their result then names each bad field, plus whatever else is wrong with the item.
    unreadable = {i: errs for i, item in enumerate(items) if (errs := shape_errors(item))}
    readable = [None if i in unreadable else item for i, item in enumerate(items)]
    results = service.submit(caller(), readable, source="api")
    for result in results:
        if result.index in unreadable:
            errs = unreadable[result.index]
            rest = {k: v for k, v in items[result.index].items() if k not in errs}
            result.errors = {**service.clean_item(rest)[1], **errs}
        if result.status == "created":
            result.errors = {}
    return jsonify(
        ReferralPushResultSchema().dump({"results": results, "counts": service.counts(results)})
    )


@bp.route("/referrals", methods=["GET"])
@allow(*ROLES)  # every role has a referral scope (bureau, advisor, liaison narrower)
@operation(
    "Referrals in the caller's scope, newest first (keyset pagination)",
    query=ReferralListQuerySchema,
    ok=ReferralPageSchema,
    errors=(401, 422),
)
def list_referrals():
    """The same query module as the web list: scope, status filter and keyset."""
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        return bad_request({"status": one_of(_("Status"), labels("referral_status").values())})
    raw_limit = args.get("limit")
    limit = DEFAULT_LIMIT if raw_limit in (None, "") else parse_int(raw_limit, 1, MAX_LIMIT)
    if limit is None:
        return bad_request(
            {"limit": _("Limit must be a whole number from 1 to %(n)s.", n=MAX_LIMIT)}
        )
    cursor = args.get("cursor")
    after = referral_queries.decode_cursor(cursor) if cursor else None
    if cursor and after is None:
        return bad_request({"cursor": _("This cursor is not valid; start from the first page.")})
    page, next_cursor = referral_queries.referral_page(
        current_user._get_current_object(), status=status or "", cursor=after, limit=limit
    )
    return jsonify(
        ReferralPageSchema().dump({"items": referral_rows(page), "next_cursor": next_cursor})
    )


@bp.route("/referrals/<int:referral_id>")
@allow(*ROLES)
@operation("One referral (in scope)", ok=ReferralSchema, errors=(401, 404))
def referral_detail(referral_id: int):
    data = _one(caller(), referral_id)
    return jsonify(data) if data is not None else not_found()


@bp.route("/referrals/<int:referral_id>/assign", methods=["POST"])
@allow("finance_office")
@operation(
    "Assign or reassign the case to an advisor (finance office)",
    body=AssignSchema,
    ok=ReferralSchema,
    errors=(401, 403, 404, 409, 422),
)
@conflicts(_l("This case was changed by someone else since you opened it."), StaleDataError)
def assign_referral(referral_id: int):
    try:
        data = AssignSchema().read(json_body())
    except ValidationError as exc:
        return invalid(exc)
    if not 0 < referral_id <= MAX_ID:
        return not_found()
    actor = caller()
    service.assign(
        actor,
        [referral_id],
        clean_text(data["advisor"]),
        note=data.get("note"),
        expected_version=data.get("version"),
    )
    return jsonify(_one(actor, referral_id))
