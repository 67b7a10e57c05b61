"""The JSON API: bearer tokens, error shape, the OpenAPI document."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import ApiToken, db


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_missing_and_bad_token_are_401(client):
    for headers in ({}, bearer("nope"), {"Authorization": "Basic abc"}):
        r = client.get("/api/v1/me", headers=headers)
        assert r.status_code == 401
        body = r.get_json()
        assert body["error"]["code"] == "unauthorized"
        assert body["error"]["message"]


def test_token_identifies_user(client, make):
    user = make.user("bureau")
    r = client.get("/api/v1/me", headers=bearer(make.token(user)))
    assert r.status_code == 200
    assert r.get_json()["username"] == user.username
    assert r.get_json()["role"] == "bureau"


def test_token_is_hashed_at_rest(app, make):
    user = make.user("bureau")
    secret = make.token(user)
    row = db.session.execute(select(ApiToken)).scalar_one()
    assert secret not in (row.token_hash, row.prefix)
    assert len(row.token_hash) == 64


def test_session_cookie_does_not_authenticate_api(client, auth, make):
    user = make.user("finance_office")
    auth.login(user.username)
    assert client.get("/account/").status_code == 200
    assert client.get("/api/v1/me").status_code == 401


def test_revoked_token_is_401(client, auth, make):
    user = make.user("advisor")
    secret = make.token(user)
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    token_id = db.session.execute(select(ApiToken.id)).scalar_one()
    auth.login(user.username)
    csrf = auth.csrf("/account/")
    r = client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 302
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 401


def test_token_created_on_profile_page_works_and_is_listed(client, auth, make):
    user = make.user("bureau")
    auth.login(user.username)
    csrf = auth.csrf("/account/")
    r = client.post("/account/tokens", data={"name": "区系统对接", "csrf_token": csrf})
    html = r.get_data(as_text=True)
    secret = re.search(r'<code id="new-token"[^>]*>([^<]+)<', html).group(1).strip()
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    listing = client.get("/account/").get_data(as_text=True)
    assert "区系统对接" in listing
    assert secret not in listing  # shown once only


def test_role_not_allowed_is_403(client, make):
    user = make.user("advisor")
    r = client.get("/api/v1/enterprises", headers=bearer(make.token(user)))
    assert r.status_code == 403
    assert r.get_json()["error"]["code"] == "forbidden"


def test_enterprise_search_and_scope(client, make):
    bureau = make.user("bureau")
    firm = make.firm(actor=bureau, name="江州市恒达精密机械有限公司")
    other = make.user("bureau")
    token = make.token(bureau)
    r = client.get("/api/v1/enterprises?q=恒达", headers=bearer(token))
    assert [f["credit_code"] for f in r.get_json()["items"]] == [firm.credit_code]
    r = client.get(f"/api/v1/enterprises?q={firm.credit_code[:8]}", headers=bearer(token))
    assert firm.credit_code in [f["credit_code"] for f in r.get_json()["items"]]
    item = client.get(f"/api/v1/enterprises/{firm.credit_code}", headers=bearer(token)).get_json()
    assert item["size_class"] == "small"
    assert item["revenue_wan"] == "800.00"
    r = client.get(f"/api/v1/enterprises/{firm.credit_code}", headers=bearer(make.token(other)))
    assert r.status_code == 404


def test_bad_input_is_422_with_fields(client, make):
    token = make.token(make.user("finance_office"))
    r = client.get("/api/v1/enterprises?limit=abc", headers=bearer(token))
    assert r.status_code == 422
    assert "limit" in r.get_json()["error"]["fields"]


def test_unknown_api_route_is_json_404(client, make):
    token = make.token(make.user("finance_office"))
    r = client.get("/api/v1/no-such-thing", headers=bearer(token))
    assert r.status_code == 404
    assert r.get_json()["error"]["code"] == "not_found"


def test_deactivated_users_token_stops_working(client, make):
    from advisors.audit import acting_as
    from advisors.services.users import deactivate_user

    user = make.user("bureau")
    secret = make.token(user)
    with acting_as(label="test"):
        deactivate_user(user)
    db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 401


def test_openapi_matches_routes(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method))
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented routes that do not exist"
