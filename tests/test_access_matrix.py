"""Role x route access matrix, built from ``app.url_map``.

Every endpoint must carry an access rule; a new route without one fails here (and the gate
refuses it at run time). Each role then calls every route: roles outside the rule get 403
(anonymous: the login page, or 401 on the API), roles inside it never do. A record outside
the caller's scope is a 404.
"""

from __future__ import annotations

import pytest

from advisors.permissions import PUBLIC, SIGNED_IN, rule_for
from models import ROLES, PolicyTool, db

ANON = "anonymous"


@pytest.fixture
def world(make):
    bureau_org = make.org("bureau", code="B1")
    bank = make.org("bank", code="K1")
    users = {
        "admin": make.user("admin"),
        "finance_office": make.user("finance_office"),
        "pboc": make.user("pboc"),
        "bureau": make.user("bureau", org=bureau_org),
        "advisor": make.user("advisor", org=bank),
        "liaison": make.user("liaison", org=bank),
    }
    firm = make.firm(actor=users["bureau"])
    tool = PolicyTool(code="matrix_tool", name="矩阵测试工具", description="", eligible_types=[])
    db.session.add(tool)
    db.session.commit()
    from advisors.services.notifications import notify
    from models import Notification

    notify([users["advisor"].id], "assigned", params={"firm": "x", "advisor": "y"})
    db.session.commit()
    note_id = db.session.query(Notification.id).scalar()
    from advisors.audit import acting_as
    from advisors.services import referrals as referral_service

    with acting_as(users["bureau"]):
        result = referral_service.submit(
            users["bureau"],
            [
                {
                    "credit_code": make.credit_code(),
                    "name": "矩阵测试企业有限公司",
                    "industry": "retail",
                    "needs": ["policy"],
                }
            ],
            source="form",
        )[0]
    db.session.commit()
    assert result.status == "created", result.errors
    from models import ReferralUpload

    upload = ReferralUpload(
        org_id=bureau_org.id, user_id=users["bureau"].id, filename="名单.xlsx", sha256="0" * 64
    )
    db.session.add(upload)
    db.session.commit()
    work = _work_records(users, result.referral_id)
    from models import TownshipAlias

    town = make.township(name="矩阵镇")
    alias = TownshipAlias(text="矩阵乡", township_id=town.id)
    db.session.add(alias)
    db.session.commit()
    tokens = {role: make.token(u) for role, u in users.items()}
    own_token_id = {}
    from models import ApiToken

    for role, u in users.items():
        own_token_id[role] = db.session.query(ApiToken.id).filter(ApiToken.user_id == u.id).scalar()
    return {
        "users": users,
        "tokens": tokens,
        "args": {
            "user_id": users["advisor"].id,
            "org_id": bank.id,
            "firm_id": firm.id,
            "tool_id": tool.id,
            "code": firm.credit_code,
            "token_id": None,  # filled per role: the caller's own token
            "note_id": note_id,
            "referral_id": result.referral_id,
            "upload_id": upload.id,
            "township_id": town.id,
            "alias_id": alias.id,
            **work,
        },
        "own_token_id": own_token_id,
    }


def _work_records(users, referral_id) -> dict:
    """The world's case assigned to its advisor, with a visit, a financing application, a risk
    report and a feedback link (the route arguments of the advisor-work pages)."""
    from datetime import date, timedelta
    from decimal import Decimal

    from advisors.audit import acting_as
    from advisors.services import referrals as referral_service
    from models import FeedbackLink, FinancingApplication, Referral, RiskReport, Visit, utcnow

    advisor = users["advisor"]
    with acting_as(users["finance_office"]):
        referral_service.assign(users["finance_office"], [referral_id], advisor.username)
    db.session.commit()
    referral = db.session.get(Referral, referral_id)
    with acting_as(advisor):
        visit = Visit(
            referral_id=referral_id,
            enterprise_id=referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            visited_on=date.today(),
            mode="onsite",
            role_financing=True,
            role_information=True,
            summary="矩阵走访",
        )
        db.session.add(visit)
        db.session.flush()
        application = FinancingApplication(
            referral_id=referral_id,
            enterprise_id=referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            visit_id=visit.id,
            amount_wan=Decimal("50"),
            applied_on=date.today(),
        )
        risk = RiskReport(
            visit_id=visit.id,
            referral_id=referral_id,
            enterprise_id=referral.enterprise_id,
            reporter_id=advisor.id,
            org_id=advisor.org_id,
            risk_type="fraud",
            note="矩阵风险",
        )
        link = FeedbackLink(
            referral_id=referral_id,
            advisor_id=advisor.id,
            token_hash="f" * 64,
            created_by_id=advisor.id,
            expires_at=utcnow() + timedelta(days=7),
        )
        db.session.add_all([application, risk, link])
        db.session.commit()
    return {
        "visit_id": visit.id,
        "application_id": application.id,
        "risk_id": risk.id,
        "link_id": link.id,
        "token": "not-a-valid-token",
        "period": "2026-10",
        "job_id": "housekeeping",
        "rubric_id": 1,
        "adjustment_id": 1,
    }


def _endpoints(app):
    seen = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        seen.setdefault(rule.endpoint, rule)
    return sorted(seen.items())


def test_every_route_has_an_access_rule(app):
    missing = [ep for ep, _rule in _endpoints(app) if rule_for(app, ep) is None]
    assert not missing, f"routes without an access rule: {missing}"


def test_route_without_rule_is_refused(app, make):
    """The gate fails closed. A separate app, so the shared one keeps its routes."""
    from flask import Blueprint

    from advisors import create_app
    from tests.conftest import AuthActions, IsolatedClient

    other = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]})
    other.test_client_class = IsolatedClient
    bp = Blueprint("forgotten", __name__)

    @bp.route("/forgotten-route")
    def forgotten():
        return "leak"

    other.register_blueprint(bp)
    user = make.user("admin")
    client = other.test_client()
    AuthActions(client).login(user.username)
    assert client.get("/").status_code == 200
    assert client.get("/forgotten-route").status_code == 403


def _url(rule, args):
    missing = set(rule.arguments) - set(args)
    assert not missing, f"add a value for {missing} ({rule.endpoint}) to the matrix world"
    values = {name: args[name] for name in rule.arguments}
    if rule.endpoint == "main.set_language":
        values["code"] = "en"
    from flask import url_for

    return url_for(rule.endpoint, **values)


@pytest.mark.parametrize("role", (*ROLES, ANON))
def test_matrix(app, make, world, role):
    from tests.conftest import AuthActions

    web = app.test_client()
    if role != ANON:
        AuthActions(web).login(world["users"][role].username)
    args = dict(world["args"])
    args["token_id"] = world["own_token_id"].get(role) or 999_999
    problems = []
    for endpoint, rule in _endpoints(app):
        allowed_roles = rule_for(app, endpoint)
        allowed = PUBLIC in allowed_roles or (
            role != ANON and (SIGNED_IN in allowed_roles or role in allowed_roles)
        )
        method = "GET" if "GET" in rule.methods else "POST"
        with app.test_request_context():
            url = _url(rule, args)
        is_api = url.startswith("/api/")
        headers = {}
        if is_api and role != ANON:
            headers["Authorization"] = f"Bearer {world['tokens'][role]}"
        client = app.test_client() if is_api else web
        response = client.open(url, method=method, headers=headers)
        status = response.status_code
        to_login = status == 302 and "/login" in response.headers.get("Location", "")
        if allowed:
            if status in (401,) or to_login or (method == "GET" and status == 403):
                problems.append(f"{role} {method} {url} ({endpoint}): allowed but got {status}")
            if status >= 500:
                problems.append(f"{role} {method} {url}: server error {status}")
        else:
            expected = (401,) if (is_api and role == ANON) else (403,)
            if role == ANON and not is_api:
                ok = to_login
            else:
                ok = status in expected
            if not ok:
                problems.append(
                    f"{role} {method} {url} ({endpoint}): refused expected, got {status}"
                )
    assert not problems, "\n".join(problems)


# (role of the caller, endpoint, kwargs builder): records that exist but are outside the scope.
def test_out_of_scope_records_are_404(app, make, world):
    from tests.conftest import AuthActions

    other_bureau = make.user("bureau", org=make.org("bureau", code="B2"))
    other_advisor = make.user("advisor", org=world["users"]["advisor"].org)
    other_bank_liaison = make.user("liaison", org=make.org("bank", code="K2"))
    firm_id = world["args"]["firm_id"]
    advisor_id = world["users"]["advisor"].id
    cases = [
        (other_bureau, f"/firms/{firm_id}"),
        (other_bureau, f"/firms/{firm_id}/edit"),
        (other_advisor, f"/admin/advisors/{advisor_id}/profile"),
        (other_bank_liaison, f"/admin/advisors/{advisor_id}/profile"),
        # Advisor work: another advisor of the same bank, another bank's liaison.
        (other_advisor, f"/visits/{world['args']['visit_id']}"),
        (other_advisor, f"/visits/{world['args']['visit_id']}/edit"),
        (other_advisor, f"/visits/financing/{world['args']['application_id']}"),
        (other_advisor, f"/visits/new?referral_id={world['args']['referral_id']}"),
        (other_advisor, f"/referrals/{world['args']['referral_id']}"),
        (other_bank_liaison, f"/visits/{world['args']['visit_id']}"),
        (other_bank_liaison, f"/visits/financing/{world['args']['application_id']}"),
        # Risk reports: only the reporter and the office roles.
        (other_advisor, f"/risks/{world['args']['risk_id']}"),
        (other_advisor, f"/feedback/case/{world['args']['referral_id']}"),
        # Feedback links: a bureau only on the cases it referred.
        (other_bureau, f"/feedback/case/{world['args']['referral_id']}"),
    ]
    for user, url in cases:
        client = app.test_client()
        AuthActions(client).login(user.username)
        assert client.get(url).status_code == 404, (user.role, url)
    token = make.token(other_bureau)
    r = app.test_client().get(
        f"/api/v1/enterprises/{world['args']['code']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 404
    assert r.get_json()["error"]["code"] == "not_found"
