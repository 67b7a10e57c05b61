"""API: who am I, the firm registry, the policy catalogue."""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from advisors.params import MAX_ID, parse_int
from advisors.permissions import SIGNED_IN, allow
from advisors.services import firms as firm_service
from advisors.services import townships as township_service
from models import Enterprise, PolicyTool, db

from .._http import api_error
from . import bp


def enterprise_json(firm: Enterprise) -> dict:
    return {
        "id": firm.id,
        "credit_code": firm.credit_code,
        "name": firm.name,
        "industry": firm.industry,
        "township": firm.township.name if firm.township else firm.township_text,
        "township_matched": firm.township is not None if firm.township_text is None else False,
        "employees": firm.employees,
        "revenue_wan": str(firm.revenue_wan) if firm.revenue_wan is not None else None,
        "assets_wan": str(firm.assets_wan) if firm.assets_wan is not None else None,
        "size_class": firm.size_class,
        "code_override_reason": firm.code_override_reason,
    }


@bp.route("/me")
@allow(SIGNED_IN)
def me():
    user = current_user
    return jsonify(
        {
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
            "org": user.org.code if user.org else None,
        }
    )


@bp.route("/enterprises")
@allow("admin", "finance_office", "pboc", "bureau")
def enterprises():
    q = (request.args.get("q") or "").strip()
    limit = parse_int(request.args.get("limit", "50"), -MAX_ID, MAX_ID)  # ASCII digits only
    if limit is None:
        return api_error(
            422,
            "invalid",
            _("Some fields are not valid."),
            {"limit": _("Limit must be a whole number from 1 to 200.")},
        )
    rows = firm_service.search(current_user._get_current_object(), q, limit=min(max(limit, 1), 200))
    return jsonify({"items": [enterprise_json(f) for f in rows]})


@bp.route("/enterprises/<code>")
@allow("admin", "finance_office", "pboc", "bureau")
def enterprise(code: str):
    firm = firm_service.get_by_code(current_user._get_current_object(), code)
    if firm is None:
        return api_error(404, "not_found", _("The page or record was not found."))
    return jsonify(enterprise_json(firm))


@bp.route("/policy-tools")
@allow(SIGNED_IN)
def policy_tools():
    rows = db.session.execute(select(PolicyTool).order_by(PolicyTool.code)).scalars()
    return jsonify(
        {
            "items": [
                {
                    "id": p.id,
                    "code": p.code,
                    "name": p.name,
                    "description": p.description,
                    "valid_from": p.valid_from.isoformat() if p.valid_from else None,
                    "valid_to": p.valid_to.isoformat() if p.valid_to else None,
                    "eligible_types": p.eligible_types,
                    "active": p.active,
                }
                for p in rows
            ]
        }
    )


@bp.route("/townships")
@allow(SIGNED_IN)
def townships():
    """The city's townships and streets (active first, by code)."""
    return jsonify(
        {
            "items": [
                {"code": t.code, "name": t.name, "active": t.active}
                for t in township_service.all_townships()
            ]
        }
    )
