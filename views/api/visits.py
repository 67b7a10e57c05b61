"""API: visit logs — ``POST /api/v1/visits`` (the assigned advisor) and the scoped reads.

The same service as the web form (:mod:`advisors.services.visits`). A list costs a fixed number
of queries: the visits with their policies, then one query each for the authors, the
financing steps recorded on them and the risk reports the caller may see.
"""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from advisors.dbutil import chunks
from advisors.params import MAX_ID, parse_id
from advisors.permissions import allow, scoped
from advisors.services import visits as service
from models import FinancingApplication, FinancingStep, Organisation, RiskReport, User, Visit, db

from .._http import api_error
from . import bad_request, bp
from .referrals import _body, _iso, _money, _not_found, _unicode_ok

READERS = ("admin", "finance_office", "pboc", "advisor", "liaison")


def serialise(user: User, visits: list[Visit]) -> list[dict]:
    if not visits:
        return []
    ids = [v.id for v in visits]
    people: dict[int, tuple[str, str | None]] = {}
    for part in chunks(sorted({v.advisor_id for v in visits})):
        for uid, username, code in db.session.execute(
            select(User.id, User.username, Organisation.code)
            .outerjoin(Organisation, Organisation.id == User.org_id)
            .where(User.id.in_(part))
        ):
            people[uid] = (username, code)
    steps: dict[int, list[dict]] = {i: [] for i in ids}
    risks: dict[int, list[dict]] = {i: [] for i in ids}
    for part in chunks(ids):
        for step, app in db.session.execute(
            select(FinancingStep, FinancingApplication)
            .join(FinancingApplication, FinancingApplication.id == FinancingStep.application_id)
            .where(FinancingStep.visit_id.in_(part))
            .order_by(FinancingStep.id)
        ):
            steps[step.visit_id].append(
                {
                    "application_id": app.id,
                    "stage": step.stage,
                    "on": step.stage_on.isoformat(),
                    "amount_wan": _money(step.amount_wan),
                    "first_loan": app.first_loan,
                    "unsecured": app.unsecured,
                }
            )
        # Risk reports only for those who may see them (reporter, office roles, admin).
        for report in db.session.execute(
            scoped(RiskReport, user).where(RiskReport.visit_id.in_(part))
        ).scalars():
            risks[report.visit_id].append(
                {"id": report.id, "risk_type": report.risk_type, "status": report.status}
            )
    out = []
    for v in visits:
        username, institution = people.get(v.advisor_id, (None, None))
        information = None
        if v.role_information:
            information = {
                "note": v.information_note,
                "risk_signal": bool(risks[v.id]),
                "risk_reports": risks[v.id],
            }
        out.append(
            {
                "id": v.id,
                "referral_id": v.referral_id,
                "visited_on": v.visited_on.isoformat(),
                "mode": v.mode,
                "roles": v.roles,
                "summary": v.summary,
                "advisor": username,
                "institution": institution,
                "policies": [{"id": t.id, "code": t.code, "name": t.name} for t in v.policies],
                "policy_note": v.policy_note,
                "guidance_topic": v.guidance_topic,
                "guidance_advice": v.guidance_advice,
                "information": information,
                "financing": steps[v.id],
                "next_visit_on": v.next_visit_on.isoformat() if v.next_visit_on else None,
                "created_at": _iso(v.created_at),
                "updated_at": _iso(v.updated_at),
                "corrected_at": _iso(v.corrected_at),
                "correction_reason": v.correction_reason,
                "version": v.version,
            }
        )
    return out


@bp.route("/visits", methods=["POST"])
@allow("advisor")
def log_visit():
    body = _body()
    if not isinstance(body, dict):
        return bad_request({"visit": _("Send the visit as a JSON object.")})
    if not _unicode_ok(body):
        return bad_request(
            {"visit": _("The visit contains characters that are not valid Unicode.")}
        )
    try:
        visit = service.log_visit(current_user._get_current_object(), body)
        db.session.commit()
    except (IntegrityError, StaleDataError):
        db.session.rollback()
        return api_error(
            409, "conflict", _("The case was changed at the same moment; send the visit again.")
        )
    response = jsonify({"id": visit.id})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/visits/{visit.id}"
    return response


@bp.route("/visits", methods=["GET"])
@allow(*READERS)
def list_visits():
    referral_id = parse_id(request.args.get("referral_id"))
    if referral_id is None:
        return bad_request({"referral_id": _("Give the case id (referral_id) as a number.")})
    user = current_user._get_current_object()
    visits = service.list_for_api(user, referral_id)
    return jsonify({"items": serialise(user, visits)})


@bp.route("/visits/<int:visit_id>")
@allow(*READERS)
def get_visit(visit_id: int):
    user = current_user._get_current_object()
    if not 0 < visit_id <= MAX_ID:
        return _not_found()
    visit = db.session.execute(
        scoped(Visit, user).where(Visit.id == visit_id).options(selectinload(Visit.policies))
    ).scalar_one_or_none()
    if visit is None:
        return _not_found()
    return jsonify(serialise(user, [visit])[0])
