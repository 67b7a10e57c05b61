"""Role x route access matrix, built from ``app.url_map`` and checked against a hand-kept table.

``tests/access_table.py`` says, for every endpoint, which roles (and whether anonymous visitors)
may use it, written from the product's rules and not from the gate's code. Each role then calls
every route and the gate must admit or refuse exactly as the table says: a refused role gets 403
(anonymous: the login page, or 401 on the API), an admitted one never does. A route the table
lacks, or a table row whose route is gone, fails. A record outside the caller's scope is a 404.
The navigation links each role to exactly the pages the table lets it open.
"""

from __future__ import annotations

import re

import pytest

from advisors.permissions import rule_for
from models import ROLES, PolicyTool, db
from tests.access_table import ACCESS, CALLERS, may

ANON = "anonymous"


@pytest.fixture
def world(make):
    """One record of every kind a route names, each reachable by the role that owns it."""
    users, bureau_org, bank = _people(make)
    firm = make.firm(actor=users["bureau"])
    tool = PolicyTool(code="matrix_tool", name="矩阵测试工具", description="", eligible_types=[])
    db.session.add(tool)
    db.session.commit()
    note_id = _notification(users["advisor"])
    referral_id = _referral(make, users["bureau"])
    upload_id = _upload(users["bureau"], bureau_org)
    work = _work_records(users, referral_id)
    town_ids = _township(make)
    tokens = {role: make.token(u) for role, u in users.items()}
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
            "referral_id": referral_id,
            "upload_id": upload_id,
            **town_ids,
            **work,
        },
        "own_token_id": _own_token_ids(users),
    }


def _people(make):
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
    return users, bureau_org, bank


def _notification(advisor) -> int:
    from advisors.services.notifications import notify
    from models import Notification

    notify([advisor.id], "assigned", params={"firm": "x", "advisor": "y"})
    db.session.commit()
    return db.session.query(Notification.id).scalar()


def _referral(make, bureau) -> int:
    from advisors.audit import acting_as
    from advisors.services import referrals as referral_service

    item = {
        "credit_code": make.credit_code(),
        "name": "矩阵测试企业有限公司",
        "industry": "retail",
        "needs": ["policy"],
    }
    with acting_as(bureau):
        result = referral_service.submit(bureau, [item], source="form")[0]
    db.session.commit()
    assert result.status == "created", result.errors
    return result.referral_id


def _upload(bureau, bureau_org) -> int:
    from models import ReferralUpload

    upload = ReferralUpload(
        org_id=bureau_org.id, user_id=bureau.id, filename="名单.xlsx", sha256="0" * 64
    )
    db.session.add(upload)
    db.session.commit()
    return upload.id


def _township(make) -> dict:
    from models import TownshipAlias

    town = make.township(name="矩阵镇")
    alias = TownshipAlias(text="矩阵乡", township_id=town.id)
    db.session.add(alias)
    db.session.commit()
    return {"township_id": town.id, "alias_id": alias.id}


def _own_token_ids(users) -> dict:
    from models import ApiToken

    return {
        role: db.session.query(ApiToken.id).filter(ApiToken.user_id == u.id).scalar()
        for role, u in users.items()
    }


def _work_records(users, referral_id) -> dict:
    """The world's case assigned to its advisor, with a visit, a financing application, a risk
    report and a feedback link (the route arguments of the advisor-work pages)."""
    from advisors.audit import acting_as
    from advisors.services import referrals as referral_service

    advisor = users["advisor"]
    with acting_as(users["finance_office"]):
        referral_service.assign(users["finance_office"], [referral_id], advisor.username)
    db.session.commit()
    with acting_as(advisor):
        ids = _advisor_work(advisor, referral_id)
    return {
        **ids,
        "token": "not-a-valid-token",
        "period": "2026-10",
        "year": 2026,
        "job_id": "housekeeping",
        "rubric_id": 1,
        "adjustment_id": 1,
    }


def _advisor_work(advisor, referral_id) -> dict:
    from datetime import date, timedelta
    from decimal import Decimal

    from models import FeedbackLink, FinancingApplication, Referral, RiskReport, Visit, utcnow

    referral = db.session.get(Referral, referral_id)
    on_case = {
        "referral_id": referral_id,
        "enterprise_id": referral.enterprise_id,
        "org_id": advisor.org_id,
    }
    visit = Visit(
        **on_case,
        advisor_id=advisor.id,
        visited_on=date.today(),
        mode="onsite",
        role_financing=True,
        role_information=True,
        summary="矩阵走访",
    )
    db.session.add(visit)
    db.session.flush()
    application = FinancingApplication(
        **on_case,
        advisor_id=advisor.id,
        visit_id=visit.id,
        amount_wan=Decimal("50"),
        applied_on=date.today(),
    )
    risk = RiskReport(
        **on_case, visit_id=visit.id, reporter_id=advisor.id, risk_type="fraud", note="矩阵风险"
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


def test_the_table_has_a_column_for_every_role():
    assert set(CALLERS) == {*ROLES, ANON}, "a role was added or renamed: add its column"


def test_the_table_lists_every_endpoint(app):
    missing = [endpoint for endpoint, _rule in _endpoints(app) if endpoint not in ACCESS]
    assert not missing, (
        f"routes the access table lacks (add them to tests/access_table.py): {missing}"
    )


def test_the_table_names_only_existing_endpoints(app):
    existing = {endpoint for endpoint, _rule in _endpoints(app)}
    gone = sorted(set(ACCESS) - existing)
    assert not gone, f"access table rows with no such route (renamed or removed?): {gone}"


def test_the_gate_rules_agree_with_the_table(app):
    """The rules as declared (``allow`` / ``allow_blueprint``), read without a request: each
    disagreement is named here; :func:`test_matrix` then checks what the gate does."""
    from types import SimpleNamespace

    from advisors.permissions import may_access

    anonymous = SimpleNamespace(is_authenticated=False, role=None)
    callers = {role: SimpleNamespace(is_authenticated=True, role=role) for role in ROLES}
    callers[ANON] = anonymous
    wrong = [
        f"{endpoint} {caller}: the table says {'admit' if may(endpoint, caller) else 'refuse'}"
        for endpoint, _rule in _endpoints(app)
        if endpoint in ACCESS
        for caller, user in callers.items()
        if may_access(rule_for(app, endpoint) or frozenset(), user) != may(endpoint, caller)
    ]
    assert not wrong, "\n".join(wrong)


def _call(app, web, world, role, rule, args):
    """Call ``rule`` as ``role``: GET when the route has it, else POST (or its one other
    method, such as PUT) without a body (so an admitted browser POST stops at the CSRF check,
    400, and changes nothing; an admitted API write at its input check, 422)."""
    writes = sorted(rule.methods - {"GET", "HEAD", "OPTIONS", "POST"})  # PUT, PATCH, DELETE
    method = "GET" if "GET" in rule.methods else "POST" if "POST" in rule.methods else writes[0]
    with app.test_request_context():
        url = _url(rule, args)
    is_api = url.startswith("/api/")
    headers = {}
    if is_api and role != ANON:
        headers["Authorization"] = f"Bearer {world['tokens'][role]}"
    client = app.test_client() if is_api else web
    return method, url, is_api, client.open(url, method=method, headers=headers)


def _refusal_problem(role, is_api, response) -> str | None:
    status = response.status_code
    if role == ANON and not is_api:
        location = response.headers.get("Location", "")
        return (
            None if status == 302 and "/login" in location else f"got {status}, not the login page"
        )
    expected = 401 if (is_api and role == ANON) else 403
    return None if status == expected else f"got {status}, not {expected}"


def _admission_problem(response) -> str | None:
    """An admitted call may fail on its (missing) input, never on access: no 401, no login
    page, no 403 (a browser POST without a form stops at the CSRF check after the gate)."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    if status == 401 or (status == 302 and "/login" in response.headers.get("Location", "")):
        return f"sent to sign in ({status})"
    if status == 403:
        return "got 403"
    return None


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
        if endpoint not in ACCESS:
            problems.append(f"{endpoint}: not in tests/access_table.py (add it to the table)")
            continue
        method, url, is_api, response = _call(app, web, world, role, rule, args)
        if may(endpoint, role):
            problem = _admission_problem(response)
            verdict = "admitted by the table"
        else:
            problem = _refusal_problem(role, is_api, response)
            verdict = "refused by the table"
        if problem:
            problems.append(f"{role} {method} {url} ({endpoint}): {verdict}, but {problem}")
    assert not problems, "\n".join(problems)


# The pages the navigation links to: it shows each one exactly to the roles the table admits.
NAV_ENDPOINTS = (
    "main.home",
    "firms.index",
    "referrals.index",
    "referrals.dashboard",
    "work.institution",
    "work.visits",
    "work.pipeline",
    "assessments.index",
    "risks.index",
    "policies.index",
    "admin.users",
    "admin.orgs",
    "townships.index",
    "indicators.targets",
    "jobs.index",
    "audit.index",
    "throttling.index",
    "notifications.index",
    "account.profile",
    "auth.change_password",
)


@pytest.mark.parametrize("role", ROLES)
def test_navigation_links_what_the_role_may_open(app, world, role):
    from tests.conftest import AuthActions

    client = app.test_client()
    AuthActions(client).login(world["users"][role].username)
    html = client.get("/").get_data(as_text=True)
    nav = re.search(r"<nav.*?</nav>", html, re.S).group(0)
    adapter = app.url_map.bind("localhost")
    linked = {adapter.match(href)[0] for href in re.findall(r'href="(/[^"]*)"', nav)}
    expected = {endpoint for endpoint in NAV_ENDPOINTS if may(endpoint, role)}
    assert linked == expected, (sorted(linked - expected), sorted(expected - linked))


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
