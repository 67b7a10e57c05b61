"""Assessments through the API and the CLI, and who sees what: the contract's JSON, 409 on a
published period, 422 on a bad one, the advisor's own published row only, the liaison's
institution, bureaus 403; the breakdown behind a score; a fixed number of queries for a view."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from advisors.audit import acting_as
from advisors.errors import Forbidden, NotFound
from advisors.scoring import DEFAULT_RUBRIC
from advisors.services import assessments as svc
from models import Assessment, AssessmentRow, User, db
from tests.test_assessment_compile import build_city, compile_


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def world(make):
    w = build_city(make)
    w["pboc"] = make.user("pboc")
    w["admin"] = make.user("admin")
    w["bureau"] = w["city"].bureau
    w["liaison"] = make.user("liaison", org=w["k1"])
    w["liaison2"] = make.user("liaison", org=w["k2"])
    w["liaison_none"] = make.user("liaison", org=make.org("bank", code="BOC"))
    w["tokens"] = {
        k: make.token(w[k])
        for k in ("office", "pboc", "admin", "bureau", "liaison", "liaison2", "a1", "a2")
    }
    return w


def api(client, world, who, method, url, json=None):
    return client.open(url, method=method, headers=bearer(world["tokens"][who]), json=json)


# ----------------------------------------------------------------------------- API
def test_compile_via_api_returns_the_contract_shape(client, world):
    r = api(client, world, "office", "POST", "/api/v1/assessments", {"period": "2026-07"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["period"] == "2026-07" and body["status"] == "draft"
    assert body["rubric_version"] == 1 and body["compile_count"] == 1
    assert body["compiled_at"].endswith("+08:00")
    # a2 leads: first contact and satisfaction have no data and do not apply (their weight is
    # spread over the other metrics), where they used to score 0.
    assert [row["advisor"] for row in body["rows"]] == ["adv_a2", "adv_a1", "adv_gone", "adv_a3"]
    assert body["in_progress"] is False and body["document_number"] is None
    top = body["rows"][0]
    assert top["not_applicable"] == ["first_contact_on_time", "satisfaction"]
    assert top["points"]["satisfaction"] is None and top["score"] == "52.32"
    a1 = body["rows"][1]
    assert {"advisor", "institution", "score", "rank", "institution_rank", "metrics"} <= set(a1)
    assert a1["institution"] == "ABC" and a1["rank"] == 2 and a1["institution_rank"] == 2
    assert a1["score"] == "48.92" and a1["computed"] == "48.92" and a1["adjustment"] == "0"
    assert a1["metrics"]["visit_coverage"] == "0.666667"
    assert a1["metrics"]["amount_disbursed"] == "350.75"
    assert a1["points"]["amount_disbursed"] == "5" and a1["not_applicable"] == []
    assert body["rows"][3]["metrics"]["satisfaction"] is None
    assert [i["institution"] for i in body["institutions"]] == ["ABC", "ICBC"]
    assert body["institutions"][0]["average"] == "50.62"
    again = api(client, world, "office", "POST", "/api/v1/assessments", {"period": "2026-07"})
    assert again.status_code == 200
    same = again.get_json()
    assert same["compile_count"] == 2
    assert same["rows"] == body["rows"] and same["institutions"] == body["institutions"]


@pytest.mark.parametrize(
    "payload",
    [{"period": "2026-13"}, {"period": "july"}, {"period": 202607}, {}, [], "x", {"period": ""}],
)
def test_bad_period_is_422_naming_the_field(client, world, payload):
    r = api(client, world, "office", "POST", "/api/v1/assessments", payload)
    assert r.status_code == 422, r.get_json()
    assert "period" in r.get_json()["error"]["fields"]


def test_published_period_refuses_compile_with_409(client, world):
    api(client, world, "office", "POST", "/api/v1/assessments", {"period": "2026-07"})
    r = api(client, world, "office", "POST", "/api/v1/assessments/2026-07/publish", {"version": 1})
    assert r.status_code == 200 and r.get_json()["status"] == "published"
    before = api(client, world, "office", "GET", "/api/v1/assessments/2026-07").get_json()
    r = api(client, world, "office", "POST", "/api/v1/assessments", {"period": "2026-07"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "conflict"
    assert api(client, world, "office", "GET", "/api/v1/assessments/2026-07").get_json() == before
    r = api(client, world, "office", "POST", "/api/v1/assessments/2026-07/publish")
    assert r.status_code == 409
    assert (
        api(client, world, "office", "POST", "/api/v1/assessments/2026-05/publish").status_code
        == 404
    )


def test_roles_on_the_write_endpoints(client, world):
    for who in ("pboc", "admin", "bureau", "liaison", "a1"):
        r = api(client, world, who, "POST", "/api/v1/assessments", {"period": "2026-07"})
        assert r.status_code == 403, who
    assert client.post("/api/v1/assessments", json={"period": "2026-07"}).status_code == 401
    assert db.session.scalar(select(func.count()).select_from(Assessment)) == 0


def test_adjustment_via_api(client, world):
    api(client, world, "office", "POST", "/api/v1/assessments", {"period": "2026-07"})
    url = "/api/v1/assessments/2026-07/adjustments"
    r = api(client, world, "office", "POST", url, {"advisor": "adv_a3", "points": 5})
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"reason"}
    r = api(client, world, "office", "POST", url, {"advisor": "nobody", "points": 5, "reason": "x"})
    assert r.status_code == 422 and "advisor" in r.get_json()["error"]["fields"]
    # Beyond the rubric's bound (10 points either way): refused, naming the field and the bound.
    r = api(
        client,
        world,
        "office",
        "POST",
        url,
        {"advisor": "adv_a3", "points": "20", "reason": "表彰"},
    )
    assert r.status_code == 422
    fields = r.get_json()["error"]["fields"]
    assert set(fields) == {"points"} and "10" in fields["points"]
    r = api(
        client,
        world,
        "office",
        "POST",
        url,
        {"advisor": "adv_a3", "points": "9.5", "reason": "表彰"},
    )
    assert r.status_code == 200
    row = next(x for x in r.get_json()["rows"] if x["advisor"] == "adv_a3")
    assert (row["score"], row["adjustment"], row["computed"], row["rank"]) == ("9.5", "9.5", "0", 4)
    assert row["adjustments"][0]["reason"] == "表彰"
    assert row["adjustments"][0]["withdrawn_at"] is None
    assert api(client, world, "a1", "POST", url, {"advisor": "adv_a3"}).status_code == 403


# ----------------------------------------------------------------------------- scope
def test_who_sees_what(client, world):
    compile_("2026-07")
    url = "/api/v1/assessments/2026-07"
    # A draft: office roles and admins see every row; advisors and liaisons nothing yet.
    for who in ("office", "pboc", "admin"):
        r = api(client, world, who, "GET", url)
        assert r.status_code == 200 and len(r.get_json()["rows"]) == 4, who
    for who in ("a1", "liaison"):
        assert api(client, world, who, "GET", url).status_code == 404, who
    assert api(client, world, "bureau", "GET", url).status_code == 403
    svc.publish(world["office"], "2026-07")
    db.session.commit()
    mine = api(client, world, "a1", "GET", url).get_json()
    assert [r["advisor"] for r in mine["rows"]] == ["adv_a1"]
    assert [i["institution"] for i in mine["institutions"]] == ["ABC"]
    assert mine["comments"] == []
    liaison = api(client, world, "liaison", "GET", url).get_json()
    assert {r["advisor"] for r in liaison["rows"]} == {"adv_a1", "adv_a2"}
    liaison2 = api(client, world, "liaison2", "GET", url).get_json()
    assert {r["advisor"] for r in liaison2["rows"]} == {"adv_a3", "adv_gone"}
    assert api(client, world, "bureau", "GET", url).status_code == 403
    with pytest.raises(NotFound):
        svc.get_view(world["liaison_none"], "2026-07")
    assert api(client, world, "office", "GET", "/api/v1/assessments/2026-08").status_code == 404
    assert api(client, world, "office", "GET", "/api/v1/assessments/2026-99").status_code == 422


def test_period_list_is_scoped(client, world):
    compile_("2026-06")
    compile_("2026-07")
    compile_("2026-Q3")
    svc.publish(world["office"], "2026-06")
    db.session.commit()
    office = api(client, world, "office", "GET", "/api/v1/assessments").get_json()["items"]
    assert [p["period"] for p in office] == ["2026-Q3", "2026-07", "2026-06"]
    assert office[2]["status"] == "published" and office[0]["rubric_version"] == 1
    adv = api(client, world, "a1", "GET", "/api/v1/assessments").get_json()["items"]
    assert [p["period"] for p in adv] == ["2026-06"]
    assert api(client, world, "bureau", "GET", "/api/v1/assessments").status_code == 403
    with pytest.raises(Forbidden):
        svc.periods(world["bureau"])


def test_get_view_costs_a_fixed_number_of_queries(world, count_queries):
    compile_("2026-07")
    office = world["office"]
    assert office.role == "finance_office"  # loaded before counting
    with count_queries() as small:
        view = svc.get_view(office, "2026-07")
    assert len(view.rows) == 4
    k1 = world["k1"]
    db.session.add_all(
        User(
            username=f"adv_bulk{i}",
            display_name="顾问",
            password_hash="x",
            role="advisor",
            org_id=k1.id,
        )
        for i in range(30)
    )
    db.session.commit()
    compile_("2026-07")
    with acting_as(world["office"]):
        svc.add_adjustment(world["office"], "2026-07", world["a2"].id, "1", "x")
        svc.add_comment(world["office"], "2026-07", "ok")
    db.session.commit()
    assert office.role == "finance_office"
    with count_queries() as big:
        view = svc.get_view(office, "2026-07")
    assert len(view.rows) == 34
    assert big.count == small.count <= 6, big.statements
    assert view.row_for(world["a2"].id).adjustments[0].reason == "x"
    assert view.comments[0].body == "ok"


# ----------------------------------------------------------------------------- breakdown
def test_breakdown_explains_each_metric(client, world):
    compile_("2026-07")
    a1 = world["a1"]
    items = {m["key"]: m for m in svc.breakdown(world["office"], "2026-07", a1.id)}
    assert list(items) == DEFAULT_RUBRIC.keys
    visits = items["visits_logged"]
    assert visits["raw"] == Decimal(6) and visits["total"] == 3
    assert [r["value"] for r in visits["records"]] == [2, 1, 3]
    policy = items["policy_promotion"]
    assert [r["value"] for r in policy["records"]] == [1, 1]  # tools explained
    coverage = items["visit_coverage"]
    assert coverage["total"] == 6 and sum(r["counted"] for r in coverage["records"]) == 4
    info = items["info_reports"]
    assert info["total"] == 4 and {r["kind"] for r in info["records"]} == {"visit", "risk_report"}
    sat = items["satisfaction"]
    assert sorted(r["value"] for r in sat["records"]) == [3, 4, 5]
    money = items["amount_disbursed"]
    assert sum(r["value"] for r in money["records"]) == money["raw"] == Decimal("350.75")
    assert items["first_loans"]["total"] == 2
    logs = items["logs_on_time"]
    assert [r["counted"] for r in logs["records"]] == [True, False, True]
    # The advisor: own row only, once published; the liaison: not the risk reports.
    with pytest.raises(NotFound):
        svc.breakdown(a1, "2026-07", a1.id)
    svc.publish(world["office"], "2026-07")
    db.session.commit()
    own = api(client, world, "a1", "GET", f"/api/v1/assessments/2026-07/advisors/{a1.id}")
    assert own.status_code == 200
    assert own.get_json()["metrics"][0]["key"] == "visit_coverage"
    other = f"/api/v1/assessments/2026-07/advisors/{world['a2'].id}"
    assert api(client, world, "a1", "GET", other).status_code == 404
    assert api(client, world, "liaison", "GET", other).status_code == 200
    by_liaison = {m["key"]: m for m in svc.breakdown(world["liaison"], "2026-07", a1.id)}
    assert by_liaison["info_reports"]["total"] == 2  # the visits; risk reports are not theirs
    assert api(client, world, "liaison2", "GET", other).status_code == 404
    assert api(client, world, "bureau", "GET", other).status_code == 403


# ----------------------------------------------------------------------------- CLI
def test_cli_compile_and_publish(runner, world):
    r = runner.invoke(args=["assessments", "compile", "2026-07"])
    assert r.exit_code == 0, r.output
    (line,) = r.stdout.strip().splitlines()
    assert line.split("\t") == ["2026-07", "draft", "advisors=4", "rubric=v1", "compile_count=1"]
    a = db.session.execute(select(Assessment)).scalar_one()
    assert a.compiled_by_id is None
    r = runner.invoke(args=["assessments", "compile", "2026-13"])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(args=["assessments", "publish", "2026-07", "--by", "nobody"])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(args=["assessments", "publish", "2026-07", "--by", world["a1"].username])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(args=["assessments", "publish", "2026-07", "--by", world["office"].username])
    assert r.exit_code == 0 and "\tpublished\t" in r.stdout
    r = runner.invoke(args=["assessments", "compile", "2026-07"])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1
    db.session.expire_all()
    assert db.session.execute(select(Assessment)).scalar_one().compile_count == 1
    assert db.session.scalar(select(func.count()).select_from(AssessmentRow)) == 4
    stored = db.session.execute(select(AssessmentRow.metrics)).scalars().all()
    assert sum(len(m) for m in stored) == 40
