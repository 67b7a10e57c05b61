"""A real city, started without the demo: an empty database, `db upgrade`, and everything else
through the contract's CLI and API (no factories, no demo seed). Referrals with listed, unlisted
and near-miss townships, the office mapping a name once, a policy visit, a compiled month."""

from __future__ import annotations

import json
from datetime import datetime

from flask_migrate import upgrade
from sqlalchemy import func, select

from advisors.i18n import SHANGHAI
from advisors.services.policies import CATALOGUE
from models import PolicyTool, RubricVersion, db

PASSWORD = "Jiangzhou-City-2026"


def _cli(app, *args, ok=True):
    result = app.test_cli_runner().invoke(args=list(args))
    if ok:
        assert result.exit_code == 0, (args, result.output)
    return result


def _api(client, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is None:
        return getattr(client, method)(path, headers=headers)
    return getattr(client, method)(path, headers=headers, json=body)


def _token(app, username) -> str:
    return _cli(app, "users", "token", username).stdout.strip()


def _item(code: str, name: str, township) -> dict:
    return {
        "credit_code": code,
        "name": name,
        "industry": "retail",
        "township": township,
        "needs": ["policy"],
    }


CODES = [
    "91110000600037341L",
    "91110000101623741K",
    "911101066976941872",
    "91350100M000100Y43",
]


def test_reference_data_exists_after_upgrade_and_survives_edits(bare_app):
    upgrade()
    assert db.session.scalar(select(func.count()).select_from(PolicyTool)) == len(CATALOGUE)
    assert db.session.scalar(select(func.count()).select_from(RubricVersion)) == 1
    tool = db.session.execute(select(PolicyTool).where(PolicyTool.code == "deferral")).scalar_one()
    tool.name, tool.active = "延期还本付息（已到期）", False
    db.session.commit()
    # Running it again (another upgrade, or `setup`) adds nothing and undoes no edit.
    upgrade()
    result = _cli(bare_app, "setup")
    assert "policy tools added 0" in result.stdout
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(PolicyTool)) == len(CATALOGUE)
    assert db.session.scalar(select(func.count()).select_from(RubricVersion)) == 1
    tool = db.session.execute(select(PolicyTool).where(PolicyTool.code == "deferral")).scalar_one()
    assert (tool.name, tool.active) == ("延期还本付息（已到期）", False)


def test_a_city_built_through_the_cli(bare_app, tmp_path):
    upgrade()
    client = bare_app.test_client()
    for code, name, type_ in (
        ("JRB", "江州市地方金融管理局", "finance_office"),
        ("GXJ", "江州市工业和信息化局", "bureau"),
        ("ABC", "农业银行江州分行", "bank"),
    ):
        _cli(bare_app, "orgs", "create", "--code", code, "--name", name, "--type", type_)
    for username, role, org in (
        ("admin", "admin", None),
        ("jrb", "finance_office", "JRB"),
        ("gxj", "bureau", "GXJ"),
        ("lixia", "advisor", "ABC"),
    ):
        args = ["users", "create", "--username", username, "--password", PASSWORD]
        args += ["--role", role] + (["--org", org] if org else [])
        _cli(bare_app, *args)

    # Townships from the city's file: the good rows are saved, the bad ones reported per row.
    towns = tmp_path / "townships.csv"
    towns.write_text(
        "代码,名称\n"
        "330102001,城关镇\n"
        "330102002,东城街道\n"
        "330102001,重复的代码\n"  # row 4: code used twice
        "330102003,\n"  # row 5: empty name
        "33-01,坏代码镇\n",  # row 6: bad characters
        encoding="gbk",
    )
    result = _cli(bare_app, "townships", "import", str(towns), ok=False)
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == (
        "created 2, updated 0, unchanged 0, rejected 3"
    )
    problems = result.stderr.strip().splitlines()
    assert [p.split(":")[0] for p in problems] == ["row 4", "row 5", "row 6"]
    assert problems[0].startswith("row 4: code:") and problems[1].startswith("row 5: name:")
    _cli(bare_app, "townships", "create", "--code", "330102004", "--name", "西湖乡")
    assert _cli(bare_app, "townships", "create", "--code", "330102004", "--name", "x", ok=False)
    listed = _api(client, "get", "/api/v1/townships", _token(bare_app, "gxj")).get_json()
    assert [t["name"] for t in listed["items"]] == ["城关镇", "东城街道", "西湖乡"]

    # The catalogue is there without the demo.
    bureau, office, advisor = (_token(bare_app, u) for u in ("gxj", "jrb", "lixia"))
    tools = _api(client, "get", "/api/v1/policy-tools", advisor).get_json()["items"]
    assert {t["code"] for t in tools} == {entry["code"] for entry in CATALOGUE}
    assert set(tools[0]) >= {"code", "name", "valid_from", "valid_to", "active"}

    # Pushes with a listed name, a listed code, a name the city has not listed and near misses.
    r = _api(
        client,
        "post",
        "/api/v1/referrals",
        bureau,
        {
            "items": [
                _item(CODES[0], "江州市甲商贸有限公司", "城关镇"),
                _item(CODES[1], "江州市乙商贸有限公司", "330102002"),
                _item(CODES[2], "江州市丙商贸有限公司", "城关街道"),
                _item(CODES[3], "江州市丁商贸有限公司", "东城街道 "),
            ]
        },
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["created"] * 4
    assert results[0]["warnings"] == {} and results[1]["warnings"] == {}
    assert "城关街道" in results[2]["warnings"]["township"]
    assert "城关镇" in results[2]["warnings"]["township"]  # suggested, not guessed
    assert "东城街道" in results[3]["warnings"]["township"]
    case = _api(client, "get", f"/api/v1/referrals/{results[2]['referral_id']}", office)
    assert case.get_json()["enterprise"]["township"] == {
        "code": None,
        "name": "城关街道",
        "matched": False,
    }
    case = _api(client, "get", f"/api/v1/referrals/{results[1]['referral_id']}", office)
    assert case.get_json()["enterprise"]["township"] == {
        "code": "330102002",
        "name": "东城街道",
        "matched": True,
    }

    # The office maps the written name once (in the browser, as a user would) …
    from tests.conftest import AuthActions

    auth = AuthActions(client)
    assert auth.login("jrb", PASSWORD).status_code == 302
    page = client.get("/townships/unmatched").get_data(as_text=True)
    assert "城关街道" in page and "东城街道 " in page
    town_id = next(t["code"] for t in listed["items"] if t["name"] == "城关镇")
    from models import Township

    town = db.session.execute(select(Township).where(Township.code == town_id)).scalar_one()
    r = client.post(
        "/townships/unmatched/map",
        data={
            "csrf_token": auth.csrf("/townships/unmatched"),
            "text": "城关街道",
            "township": town.id,
        },
    )
    assert r.status_code == 302
    case = _api(client, "get", f"/api/v1/referrals/{results[2]['referral_id']}", office)
    assert case.get_json()["enterprise"]["township"]["matched"] is True
    # … and a later push with the same name matches it without a warning.
    later = _api(
        client,
        "post",
        "/api/v1/referrals",
        bureau,
        {"items": [_item("91310115MA1H8R7C6D", "x", "城关街道")]},
    ).get_json()["results"][0]
    assert later["status"] == "rejected"  # that code fails its check: another firm, then
    later = _api(
        client,
        "post",
        "/api/v1/referrals",
        bureau,
        {"items": [_item(_valid_code(), "江州市戊商贸有限公司", "城关街道")]},
    ).get_json()["results"][0]
    assert later["status"] == "created" and later["warnings"] == {}

    # Assign, log a policy visit with a catalogue tool, compile this month.
    case_id = results[0]["referral_id"]
    r = _api(client, "post", f"/api/v1/referrals/{case_id}/assign", office, {"advisor": "lixia"})
    assert r.status_code == 200, r.get_data(as_text=True)
    today = datetime.now(SHANGHAI).date()
    r = _api(
        client,
        "post",
        "/api/v1/visits",
        advisor,
        {
            "referral_id": case_id,
            "visited_on": today.isoformat(),
            "mode": "onsite",
            "roles": ["policy"],
            "summary": "走访企业，讲解支农支小再贷款",
            "policies": ["relending_agri_small"],
        },
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    period = today.strftime("%Y-%m")
    result = _cli(bare_app, "assessments", "compile", period)
    assert result.stdout.startswith(period) and "advisors=1" in result.stdout
    body = _api(client, "get", f"/api/v1/assessments/{period}", office).get_json()
    assert [row["advisor"] for row in body["rows"]] == ["lixia"]
    assert json.dumps(body)  # serialisable end to end


def _valid_code() -> str:
    from advisors.credit_code import make_code

    return make_code("9", "1", "330102", "MA2H7Q4K")
