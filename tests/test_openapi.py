"""The generated OpenAPI document tells the truth: real answers of every kind of endpoint
(push, list, detail, assign, visits, assessments, townships, the catalogue, errors) validate
against the response schema the document gives for their path, method and status; and a
schema that dumps the service's own JSON (assessments) drops nothing."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator

from advisors.audit import acting_as
from advisors.services import assessments as svc
from tests.test_assessment_api import world  # noqa: F401  (fixture)
from tests.test_referral_api import item, people, tokens  # noqa: F401  (fixtures)
from tests.test_visits import _visit, case  # noqa: F401  (fixture)

API = "/api/v1"


@pytest.fixture
def document(client):
    r = client.get(f"{API}/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"] == "3.1.0"
    Draft202012Validator.check_schema({"components": doc["components"]})
    return doc


def _template(doc: dict, url: str) -> str:
    """The document's path for a concrete URL (``/referrals/7`` -> ``/referrals/{referral_id}``)."""
    path = url.split("?", 1)[0]
    for template in doc["paths"]:
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return template
    raise AssertionError(f"{path} is not in the document")


def check(doc: dict, response, method: str, url: str) -> dict:
    """Validate ``response`` against the document; returns its JSON."""
    operation = doc["paths"][_template(doc, url)][method.lower()]
    documented = operation["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method} {url}: {status} not documented ({sorted(documented)})"
    body = response.get_json()
    schema = documented[status]["content"]["application/json"]["schema"]
    validator = Draft202012Validator(
        {**schema, "components": doc["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {url} {status}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )
    return body


def call(client, doc, token, method, url, body=None, raw=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if raw is not None:
        r = client.open(url, method=method, headers=headers, data=raw)
    else:
        r = client.open(url, method=method, headers=headers, json=body)
    return r, check(doc, r, method, url)


def test_referral_endpoints_answer_as_documented(client, make, people, tokens, document):  # noqa: F811
    bureau, office = tokens["bureau"], tokens["office"]
    firm = item(make, township="no such township")
    bad = item(make, credit_code=["x"], name={"a": 1}, industry="mining", township=True)
    r, pushed = call(client, document, bureau, "POST", f"{API}/referrals", {"items": [firm, bad]})
    assert r.status_code == 200 and [x["status"] for x in pushed["results"]] == [
        "created",
        "rejected",
    ]
    rid = pushed["results"][0]["referral_id"]
    r, again = call(
        client, document, tokens["bureau2"], "POST", f"{API}/referrals", {"items": [firm]}
    )
    assert again["results"][0]["status"] == "merged"
    r, assigned = call(
        client, document, office, "POST", f"{API}/referrals/{rid}/assign", {"advisor": "adv_li"}
    )
    assert r.status_code == 200 and assigned["advisor"] == "adv_li"
    assert assigned["enterprise"]["township"]["matched"] is False
    for who in ("bureau", "advisor", "liaison", "office"):
        r, page = call(client, document, tokens[who], "GET", f"{API}/referrals?limit=1")
        assert r.status_code == 200 and page["items"]
    r, detail = call(client, document, bureau, "GET", f"{API}/referrals/{rid}")
    assert detail["referrers"] == ["GXJ", "SWJ"] and detail["timeline"]
    # Errors: 401, 403, 404, 409 (a stale version), 422 in the contract's shape.
    for token, method, url, body, status in (
        (None, "GET", f"{API}/referrals", None, 401),
        (office, "POST", f"{API}/referrals", {"items": [firm]}, 403),
        (bureau, "GET", f"{API}/referrals/{rid + 1000}", None, 404),
        (
            office,
            "POST",
            f"{API}/referrals/{rid}/assign",
            {"advisor": "adv_li", "version": 99},
            409,
        ),
        (office, "POST", f"{API}/referrals/{rid}/assign", {"advisor": 5, "note": 3}, 422),
        (bureau, "POST", f"{API}/referrals", {"items": []}, 422),
        (bureau, "GET", f"{API}/referrals?status=nope&limit=0", None, 422),
    ):
        r, body_ = call(client, document, token, method, url, body)
        assert r.status_code == status, (url, r.get_json())
    r, body_ = call(client, document, bureau, "POST", f"{API}/referrals", raw=b"{nope")
    assert r.status_code == 422 and "items" in body_["error"]["fields"]


def test_core_endpoints_answer_as_documented(client, make, people, tokens, document):  # noqa: F811
    make.firm(actor=people["bureau"], name="江州市恒达精密机械有限公司")
    office = tokens["office"]
    for url in ("/me", "/enterprises?q=恒达", "/policy-tools", "/townships"):
        r, _body = call(client, document, office, "GET", f"{API}{url}")
        assert r.status_code == 200, url
    r, found = call(client, document, office, "GET", f"{API}/enterprises?q=恒达")
    code = found["items"][0]["credit_code"]
    call(client, document, office, "GET", f"{API}/enterprises/{code}")
    r, _body = call(client, document, tokens["advisor"], "GET", f"{API}/enterprises")
    assert r.status_code == 403
    r, _body = call(client, document, office, "GET", f"{API}/enterprises?limit=x")
    assert r.status_code == 422


def test_visit_endpoints_answer_as_documented(client, case, document):  # noqa: F811
    token = case["tokens"]["advisor"]
    body = _visit(
        case,
        roles=["policy", "financing", "information"],
        financing={"stage": "applied", "amount_wan": "100", "institution": "ABC"},
        information={"note": "听说有人集资", "risk_signal": True, "risk_type": "fraud"},
    )
    r, created = call(client, document, token, "POST", f"{API}/visits", body)
    assert r.status_code == 201, r.get_json()
    r, page = call(client, document, token, "GET", f"{API}/visits?referral_id={case['id']}")
    assert [v["id"] for v in page["items"]] == [created["id"]]
    assert page["items"][0]["financing"][0]["stage"] == "applied"
    call(client, document, token, "GET", f"{API}/visits/{created['id']}")
    for url, body_, status in (
        (f"{API}/visits", {"visit": 1}, 422),
        (f"{API}/visits", [], 422),
        (f"{API}/visits?referral_id=x", None, 422),
        (f"{API}/visits/{created['id'] + 100}", None, 404),
    ):
        method = "POST" if body_ is not None else "GET"
        r, _err = call(client, document, token, method, url, body_)
        assert r.status_code == status, url
    r, _err = call(client, document, case["tokens"]["other"], "POST", f"{API}/visits", body)
    assert r.status_code == 404


def test_assessment_endpoints_answer_as_documented(app, client, world, document):  # noqa: F811
    office = world["tokens"]["office"]
    r, compiled = call(
        client, document, office, "POST", f"{API}/assessments", {"period": "2026-07"}
    )
    assert r.status_code == 200
    # The schema dumps the service's JSON whole: not one key lost.
    with app.test_request_context(), acting_as(world["office"]):
        own = svc.to_api(svc.get_view(world["office"], "2026-07"))
    assert compiled == json.loads(json.dumps(own))
    adviser = compiled["rows"][0]["advisor"]
    r, adjusted = call(
        client,
        document,
        office,
        "POST",
        f"{API}/assessments/2026-07/adjustments",
        {"advisor": adviser, "points": "1.5", "reason": "表现突出"},
    )
    assert r.status_code == 200, adjusted
    line = next(row for row in adjusted["rows"] if row["advisor"] == adviser)["adjustments"][0]
    call(
        client,
        document,
        office,
        "POST",
        f"{API}/assessments/2026-07/adjustments/{line['id']}/withdraw",
    )
    call(client, document, office, "GET", f"{API}/assessments")
    call(client, document, office, "GET", f"{API}/assessments/2026-07")
    user_id = world["a1"].id
    r, breakdown = call(
        client, document, office, "GET", f"{API}/assessments/2026-07/advisors/{user_id}"
    )
    assert r.status_code == 200 and breakdown["metrics"]
    r, published = call(client, document, office, "POST", f"{API}/assessments/2026-07/publish", {})
    assert r.status_code == 200 and published["status"] == "published"
    for token, method, url, body, status in (
        (office, "POST", f"{API}/assessments", {"period": "2026-07"}, 409),
        (office, "POST", f"{API}/assessments", {"period": " "}, 422),
        (office, "POST", f"{API}/assessments", "2026-07", 422),
        (world["tokens"]["bureau"], "GET", f"{API}/assessments/2026-07", None, 403),
        (office, "GET", f"{API}/assessments/{'9' * 20}", None, 404),
    ):
        r, _err = call(client, document, token, method, url, body)
        assert r.status_code == status, (url, r.get_json())


def test_the_document_is_served_to_anyone_and_lists_the_single_sources(client, document):
    from advisors.sizing import INDUSTRIES
    from models import STATUSES

    item_ = document["components"]["schemas"]["ReferralItem"]
    assert item_["properties"]["industry"]["enum"] == list(INDUSTRIES)
    assert set(item_["required"]) == {"credit_code", "name", "industry", "needs"}
    referral = document["components"]["schemas"]["Referral"]
    assert referral["properties"]["status"]["enum"] == list(STATUSES)
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
