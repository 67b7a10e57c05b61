"""Institution indicators, first slice: the catalogue (reference data after every upgrade), the
catalogue API per role, the yearly targets (versioned: API, page, command line, file import),
their checks (422 with the field named) and their audit rows."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from advisors.audit import acting_as
from advisors.reference import ensure_reference_data
from advisors.services.indicators import catalogue
from advisors.services.indicators import targets as service
from models import (
    AuditLog,
    Indicator,
    IndicatorTarget,
    IndicatorTargetVersion,
    Percent,
    db,
)
from tests.conftest import csrf_from

API = "/api/v1"
CODES = [
    "deposits",
    "loans",
    "premiums",
    "inclusive_sme_loans",
    "agri_loans",
    "manufacturing_mlt_loans",
    "credit_loans",
    "first_time_borrowers",
]


@pytest.fixture
def city(app, make):
    """The catalogue, a bank and an insurer, and one user per role with a token."""
    with acting_as(label="setup"):
        ensure_reference_data()
    db.session.commit()
    bank = make.org("bank", code="ABC", name="农业银行江州分行")
    insurer = make.org("insurer", code="PICC", name="人保财险江州分公司")
    users = {
        "admin": make.user("admin"),
        "finance_office": make.user("finance_office"),
        "pboc": make.user("pboc"),
        "bureau": make.user("bureau"),
        "advisor": make.user("advisor", org=bank),
        "liaison": make.user("liaison", org=bank),
    }
    tokens = {role: make.token(u) for role, u in users.items()}
    return {"bank": bank, "insurer": insurer, "users": users, "tokens": tokens}


def _api(client, token, method, path, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    return client.open(f"{API}{path}", method=method, headers=headers, json=body)


# ----------------------------------------------------------------------------- catalogue
def test_catalogue_is_added_by_upgrade_and_kept_as_edited(bare_app):
    upgrade()
    assert db.session.scalar(select(func.count()).select_from(Indicator)) == len(CODES)
    assert [i.code for i in catalogue.indicators()] == CODES
    loans = db.session.execute(select(Indicator).where(Indicator.code == "loans")).scalar_one()
    loans.name = "各项贷款余额"
    premiums = db.session.execute(
        select(Indicator).where(Indicator.code == "premiums")
    ).scalar_one()
    premiums.active = False
    ids = loans.id, premiums.id
    db.session.commit()
    assert ensure_reference_data()["indicators"] == 0  # safe to run again
    db.session.commit()
    upgrade()  # a later upgrade tops up, never undoes
    assert db.session.scalar(select(func.count()).select_from(Indicator)) == len(CODES)
    assert db.session.get(Indicator, ids[0]).name == "各项贷款余额"
    assert db.session.get(Indicator, ids[1]).active is False


def test_indicators_api_per_role(client, city):
    for role, token in city["tokens"].items():
        r = _api(client, token, "GET", "/indicators")
        if role == "bureau":
            assert r.status_code == 403
            continue
        assert r.status_code == 200, role
        items = r.get_json()["items"]
        assert [i["code"] for i in items] == CODES
    by_code = {i["code"]: i for i in items}
    assert by_code["deposits"] == {
        "code": "deposits",
        "name": "人民币存款余额",  # in the user's language: Chinese unless chosen otherwise
        "unit": "yi_yuan",
        "reported_by": ["bank"],
        "ranked_on": "growth",
    }
    assert by_code["premiums"]["reported_by"] == ["insurer"]
    assert by_code["first_time_borrowers"]["unit"] == "count"
    assert client.get(f"{API}/indicators").status_code == 401


def test_indicator_names_are_translated(app, city):
    from flask_babel import force_locale

    deposits = catalogue.by_code()["deposits"]
    with app.test_request_context(), force_locale("zh_CN"):
        assert catalogue.name_of(deposits) == "人民币存款余额"
        assert catalogue.name_of(catalogue.by_code()["first_time_borrowers"]) == "首贷户数"


# ----------------------------------------------------------------------------- the API
def test_put_and_get_targets_keep_every_version(client, city):
    office = city["tokens"]["finance_office"]
    body = {
        "targets": [
            {"indicator": "deposits", "growth_pct": "8.5", "institution": None},
            {"indicator": "loans", "growth_pct": 9},
            {"indicator": "premiums", "growth_pct": 10.25},
            {"indicator": "deposits", "growth_pct": "12", "institution": "ABC"},
        ],
        "note": "2026 年目标",
    }
    r = _api(client, office, "PUT", "/indicator-targets/2026", body)
    assert r.status_code == 200, r.get_json()
    saved = r.get_json()
    assert saved["year"] == 2026 and saved["version"] == 1 and saved["note"] == "2026 年目标"
    assert saved["targets"] == [
        {"indicator": "deposits", "growth_pct": "8.50", "institution": None},
        {"indicator": "deposits", "growth_pct": "12.00", "institution": "ABC"},
        {"indicator": "loans", "growth_pct": "9.00", "institution": None},
        {"indicator": "premiums", "growth_pct": "10.25", "institution": None},
    ]
    r = _api(client, office, "PUT", "/indicator-targets/2026", {"targets": body["targets"][:1]})
    assert r.get_json()["version"] == 2
    for role in ("finance_office", "pboc", "admin", "liaison"):
        r = _api(client, city["tokens"][role], "GET", "/indicator-targets/2026")
        assert r.status_code == 200, role
        assert r.get_json()["version"] == 2
        assert len(r.get_json()["targets"]) == 1
    for role in ("bureau", "advisor"):
        assert (
            _api(client, city["tokens"][role], "GET", "/indicator-targets/2026").status_code == 403
        )
    for role in ("admin", "pboc", "liaison", "bureau", "advisor"):
        r = _api(client, city["tokens"][role], "PUT", "/indicator-targets/2026", body)
        assert r.status_code == 403, role
    # Both versions are kept, with exact decimals.
    versions = service.versions(2026)
    assert [v.version for v in versions] == [2, 1]
    assert [line.growth_pct for line in service.lines(versions[1])] == [
        Decimal("8.50"),
        Decimal("12.00"),
        Decimal("9.00"),
        Decimal("10.25"),
    ]
    # A year without targets, and paths that are not a year.
    empty = _api(client, office, "GET", "/indicator-targets/2031").get_json()
    assert empty["version"] is None and empty["targets"] == []
    assert _api(client, office, "GET", "/indicator-targets/26").status_code == 404
    assert _api(client, office, "GET", "/indicator-targets/abcd").status_code == 404
    r = _api(client, office, "GET", "/indicator-targets/1999")
    assert r.status_code == 422 and "year" in r.get_json()["error"]["fields"]


def test_a_liaison_sees_the_city_targets_and_its_own(client, city, make):
    other = make.org("bank", code="ICBC")
    office = city["tokens"]["finance_office"]
    body = {
        "targets": [
            {"indicator": "loans", "growth_pct": "9"},
            {"indicator": "loans", "growth_pct": "11", "institution": "ABC"},
            {"indicator": "loans", "growth_pct": "7", "institution": other.code},
        ]
    }
    assert _api(client, office, "PUT", "/indicator-targets/2026", body).status_code == 200
    seen = _api(client, city["tokens"]["liaison"], "GET", "/indicator-targets/2026").get_json()
    assert [(t["institution"], t["growth_pct"]) for t in seen["targets"]] == [
        (None, "9.00"),
        ("ABC", "11.00"),
    ]


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"indicator": "savings", "growth_pct": "5"}, "targets.0.indicator"),
        ({"growth_pct": "5"}, "targets.0.indicator"),
        ({"indicator": "loans", "growth_pct": "8.555"}, "targets.0.growth_pct"),
        ({"indicator": "loans", "growth_pct": "-100"}, "targets.0.growth_pct"),
        ({"indicator": "loans", "growth_pct": "1000.01"}, "targets.0.growth_pct"),
        ({"indicator": "loans", "growth_pct": "abc"}, "targets.0.growth_pct"),
        ({"indicator": "loans", "growth_pct": True}, "targets.0.growth_pct"),
        ({"indicator": "loans"}, "targets.0.growth_pct"),
        ({"indicator": "loans", "growth_pct": "5", "institution": "NOPE"}, "targets.0.institution"),
        (
            {"indicator": "premiums", "growth_pct": "5", "institution": "ABC"},
            "targets.0.institution",
        ),
        ({"indicator": "loans", "growth_pct": "5", "institution": "PICC"}, "targets.0.institution"),
        ("loans=5", "targets.0"),
    ],
)
def test_bad_targets_are_refused_with_the_field_named(client, city, target, field):
    office = city["tokens"]["finance_office"]
    r = _api(client, office, "PUT", "/indicator-targets/2026", {"targets": [target]})
    assert r.status_code == 422
    assert field in r.get_json()["error"]["fields"], r.get_json()
    assert db.session.scalar(select(func.count()).select_from(IndicatorTargetVersion)) == 0


def test_bad_bodies_and_duplicates(client, city):
    office = city["tokens"]["finance_office"]
    for body, field in (
        ([], "targets"),
        ({}, "targets"),
        ({"targets": "loans"}, "targets"),
        ({"targets": [], "note": 5}, "note"),
        (
            {"targets": [{"indicator": "loans", "growth_pct": 5}] * 2},
            "targets.1.indicator",
        ),
    ):
        r = _api(client, office, "PUT", "/indicator-targets/2026", body)
        assert r.status_code == 422, body
        assert field in r.get_json()["error"]["fields"], (body, r.get_json())
    # Extreme but valid values; an empty set is a version with no targets.
    ok = [
        {"indicator": "loans", "growth_pct": "-99.99"},
        {"indicator": "deposits", "growth_pct": 1000},
    ]
    assert (
        _api(client, office, "PUT", "/indicator-targets/2026", {"targets": ok}).status_code == 200
    )
    r = _api(client, office, "PUT", "/indicator-targets/2026", {"targets": []})
    assert r.status_code == 200 and r.get_json()["targets"] == [] and r.get_json()["version"] == 2


def test_messages_are_in_the_users_language(client, city, make):
    body = {"targets": [{"indicator": "loans", "growth_pct": "8.555"}]}
    token = city["tokens"]["finance_office"]
    r = _api(client, token, "PUT", "/indicator-targets/2026", body)
    assert r.get_json()["error"]["fields"]["targets.0.growth_pct"] == "最多保留 2 位小数。"
    city["users"]["finance_office"].locale = "en"
    db.session.commit()
    r = _api(client, token, "PUT", "/indicator-targets/2026", body)
    assert r.get_json()["error"]["fields"]["targets.0.growth_pct"] == "At most 2 decimal places."
    r = _api(client, token, "GET", "/indicators")
    assert r.get_json()["items"][0]["name"] == "RMB deposit balance"


def test_saving_targets_is_audited(client, city):
    body = {"targets": [{"indicator": "loans", "growth_pct": "9"}]}
    _api(client, city["tokens"]["finance_office"], "PUT", "/indicator-targets/2026", body)
    rows = db.session.execute(
        select(AuditLog.table_name, AuditLog.action, AuditLog.actor_id).where(
            AuditLog.table_name.in_(("indicator_target_version", "indicator_target"))
        )
    ).all()
    office_id = city["users"]["finance_office"].id
    assert sorted(rows) == [
        ("indicator_target", "insert", office_id),
        ("indicator_target_version", "insert", office_id),
    ]


def test_percent_is_exact():
    column = Percent()
    assert column.process_bind_param(Decimal("8.55"), None) == 855
    assert column.process_result_value(-9999, None) == Decimal("-99.99")
    with pytest.raises(TypeError):
        column.process_bind_param(8.55, None)


def test_the_city_wide_target_is_unique_per_version(app, city):
    from sqlalchemy.exc import IntegrityError

    with acting_as(label="test"):
        version = service.save(None, 2026, [{"indicator": "loans", "growth_pct": "9"}])
        db.session.commit()
        loans = catalogue.by_code()["loans"]
        db.session.add(IndicatorTarget(version_id=version.id, indicator_id=loans.id, growth_pct=1))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


# ----------------------------------------------------------------------------- the page
def test_the_page_shows_and_saves_targets(client_as, city):
    office = client_as(city["users"]["finance_office"])
    r = office.get("/indicators/targets?year=2026")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "No targets saved for this year yet." in html and 'name="city.deposits"' in html
    form = {
        "csrf_token": csrf_from(html),
        "city.deposits": "8.5",
        "city.loans": "",
        "new_institution": "ABC",
        "new_indicator": "loans",
        "new_growth_pct": "11",
        "note": "初定",
    }
    r = office.post("/indicators/targets/2026", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)
    version = service.latest(2026)
    assert version.version == 1 and version.note == "初定"
    lines = [
        (li.indicator.code, li.institution and li.institution.code, li.growth_pct)
        for li in service.lines(version)
    ]
    assert lines == [("deposits", None, Decimal("8.50")), ("loans", "ABC", Decimal("11.00"))]
    html = office.get("/indicators/targets?year=2026").get_data(as_text=True)
    assert 'name="override.ABC.loans"' in html and 'value="11.00"' in html
    # Removing the override and a bad value: 422 with the message under its input.
    form = {"csrf_token": csrf_from(html), "city.deposits": "8.555", "override.ABC.loans": ""}
    r = office.post("/indicators/targets/2026", data=form)
    assert r.status_code == 422
    assert "At most 2 decimal places." in r.get_data(as_text=True)
    assert service.latest(2026).version == 1
    form["city.deposits"] = "9"
    assert office.post("/indicators/targets/2026", data=form).status_code == 302
    assert [li.institution for li in service.lines(service.latest(2026))] == [None]
    # The history, and an earlier version read only.
    html = office.get("/indicators/targets?year=2026&version=1").get_data(as_text=True)
    assert "An earlier version: read only" in html and 'data-testid="targets-form"' not in html
    assert office.get("/indicators/targets?year=2026&version=9").status_code == 404
    assert office.get("/indicators/targets?year=1999").status_code == 404
    assert office.post("/indicators/targets/1999", data=form).status_code == 404


def test_the_page_is_read_only_for_the_other_office_roles(client_as, city):
    with acting_as(label="test"):
        service.save(None, 2026, [{"indicator": "loans", "growth_pct": "9"}])
    db.session.commit()
    for role in ("pboc", "admin"):
        client = client_as(city["users"][role])
        r = client.get("/indicators/targets?year=2026")
        assert r.status_code == 200
        assert 'data-testid="targets-form"' not in r.get_data(as_text=True)
        assert "9.00" in r.get_data(as_text=True)
        csrf = csrf_from(client.get("/").get_data(as_text=True))
        r = client.post("/indicators/targets/2026", data={"csrf_token": csrf, "city.loans": "1"})
        assert r.status_code == 403
    for role in ("bureau", "advisor", "liaison"):
        assert client_as(city["users"][role]).get("/indicators/targets").status_code == 403
    assert service.latest(2026).version == 1


# ----------------------------------------------------------------------------- the CLI
def _cli(runner, *args):
    return runner.invoke(args=["indicators", *args])


def test_cli_sets_and_shows_targets(runner, city):
    r = _cli(runner, "targets", "2026", "--set", "deposits=8.5", "--set", "loans=9")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["2026\tversion 1", "deposits\tcity\t8.50", "loans\tcity\t9.00"]
    r = _cli(runner, "targets", "2026", "--institution", "ABC", "--set", "loans=11")
    assert r.exit_code == 0, r.output
    assert "loans\tABC\t11.00" in r.stdout and "deposits\tcity\t8.50" in r.stdout
    r = _cli(runner, "targets", "2026", "--set", "deposits=")  # removes it
    assert r.stdout.splitlines() == ["2026\tversion 3", "loans\tcity\t9.00", "loans\tABC\t11.00"]
    assert _cli(runner, "targets", "2026").stdout.splitlines()[0] == "2026\tversion 3"
    assert _cli(runner, "targets", "2027").stdout.splitlines() == ["2027\tno targets"]


@pytest.mark.parametrize(
    "args",
    [
        ("targets", "2026", "--set", "deposits=8.555"),
        ("targets", "2026", "--set", "savings=5"),
        ("targets", "2026", "--set", "deposits"),
        ("targets", "2026", "--institution", "PICC", "--set", "loans=5"),
        ("targets", "1999", "--set", "loans=5"),
    ],
)
def test_cli_refuses_bad_input_in_one_line(runner, city, args):
    r = _cli(runner, *args)
    assert r.exit_code != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert db.session.scalar(select(func.count()).select_from(IndicatorTargetVersion)) == 0


def _csv(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def test_cli_imports_a_file_whole_or_not_at_all(runner, city, tmp_path):
    good = tmp_path / "targets.csv"
    good.write_bytes(
        _csv(
            [
                ["指标", "目标增速", "机构"],
                ["deposits", "8.5", ""],
                ["人民币贷款余额", "9", ""],
                ["loans", "11", "ABC"],
            ]
        )
    )
    r = _cli(runner, "targets-import", "2026", str(good))
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "2026\tversion 1",
        "deposits\tcity\t8.50",
        "loans\tcity\t9.00",
        "loans\tABC\t11.00",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        _csv(
            [
                ["indicator", "growth_pct", "institution"],
                ["loans", "x", ""],
                ["premiums", "5", "ABC"],
            ]
        )
    )
    r = _cli(runner, "targets-import", "2026", str(bad))
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("row 2: growth_pct: ") and lines[1].startswith(
        "row 3: institution: "
    )
    assert len(lines) == 3  # and the one-line error
    assert service.latest(2026).version == 1
    headless = tmp_path / "headless.csv"
    headless.write_bytes(_csv([["a", "b"], ["loans", "5"]]))
    r = _cli(runner, "targets-import", "2026", str(headless))
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1


def test_indicator_endpoints_answer_as_documented(client, city):
    from tests.test_openapi import call

    document = client.get(f"{API}/openapi.json").get_json()
    office = city["tokens"]["finance_office"]
    call(client, document, office, "GET", f"{API}/indicators")
    call(client, document, city["tokens"]["bureau"], "GET", f"{API}/indicators")
    call(client, document, office, "GET", f"{API}/indicator-targets/2026")
    body = {"targets": [{"indicator": "loans", "growth_pct": "9", "institution": "ABC"}]}
    r, saved = call(client, document, office, "PUT", f"{API}/indicator-targets/2026", body)
    assert r.status_code == 200 and saved["version"] == 1
    r, _body = call(
        client, document, office, "PUT", f"{API}/indicator-targets/2026", {"targets": 1}
    )
    assert r.status_code == 422
    r, _body = call(client, document, office, "GET", f"{API}/indicator-targets/2026", None)
    assert r.status_code == 200
