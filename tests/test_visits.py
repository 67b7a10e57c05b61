"""Visit logs and the financing pipeline: the rules (each role's fields only when ticked, dates,
amounts, stages never backwards, only the assigned advisor), the case moving on the first visit
and on the outcome, the edit window and the finance-office correction, and concurrent edits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from advisors.audit import acting_as
from advisors.errors import Forbidden
from advisors.services import referrals as referral_service
from advisors.services import visits as visit_service
from models import (
    AuditLog,
    FinancingApplication,
    FinancingStep,
    Notification,
    PolicyTool,
    Referral,
    RiskReport,
    Visit,
    db,
)
from tests.conftest import csrf_from

TODAY = date(2026, 11, 25)


@pytest.fixture
def case(make, travel):
    travel(TODAY)
    bank = make.org("bank", code="ABC")
    make.org("insurer", code="PICC")
    bureau = make.user("bureau", org=make.org("bureau", code="GXJ"))
    office = make.user("finance_office")
    advisor = make.user("advisor", org=bank, username="adv_wang")
    other = make.user("advisor", org=bank, username="adv_zhao")
    tool = PolicyTool(code="zhixiao", name="支农支小再贷款", description="", eligible_types=[])
    tool2 = PolicyTool(code="chuangye", name="创业担保贷款", description="", eligible_types=[])
    db.session.add_all([tool, tool2])
    db.session.commit()
    data = {
        "credit_code": make.credit_code(),
        "name": "江州市走访测试有限公司",
        "industry": "industry",
        "needs": ["financing", "policy"],
        "amount_wan": "300",
    }
    with acting_as(bureau):
        (result,) = referral_service.submit(bureau, [data], source="form")
    db.session.commit()
    # Referred a week ago, so visits may be dated back to then.
    db.session.execute(
        update(Referral)
        .where(Referral.id == result.referral_id)
        .values(created_at=datetime(2026, 11, 18, 2, 0, tzinfo=UTC))
    )
    db.session.commit()
    with acting_as(office):
        referral_service.assign(office, [result.referral_id], "adv_wang")
    db.session.commit()
    return {
        "id": result.referral_id,
        "bureau": bureau,
        "office": office,
        "advisor": advisor,
        "other": other,
        "tools": [tool, tool2],
        "tokens": {"advisor": make.token(advisor), "other": make.token(other)},
    }


def _post(client, token, body):
    return client.post("/api/v1/visits", json=body, headers={"Authorization": f"Bearer {token}"})


def _visit(case, **extra):
    body = {
        "referral_id": case["id"],
        "visited_on": "2026-11-24",
        "mode": "onsite",
        "roles": ["policy"],
        "summary": "走访企业，介绍政策。",
        "policies": ["zhixiao"],
    }
    body.update(extra)
    return body


def _status(rid):
    db.session.expire_all()
    return db.session.get(Referral, rid).status


# ------------------------------------------------------------------ role fields
@pytest.mark.parametrize(
    ("roles", "missing"),
    [
        (["policy"], "policies"),
        (["guidance"], "guidance_topic"),
        (["financing"], "financing"),
        (["information"], "information.note"),
    ],
)
def test_each_roles_fields_are_required_only_when_ticked(client, case, roles, missing):
    body = {
        "referral_id": case["id"],
        "visited_on": "2026-11-24",
        "mode": "phone",
        "roles": roles,
        "summary": "电话回访",
    }
    r = _post(client, case["tokens"]["advisor"], body)
    assert r.status_code == 422
    fields = r.get_json()["error"]["fields"]
    assert missing in fields or any(k.startswith(missing) for k in fields), fields
    # The other roles' fields are not asked for.
    others = {"policies", "guidance_topic", "financing", "information.note"} - {missing}
    assert not any(k in fields or k.startswith(o + ".") for o in others for k in [o])


def test_fields_of_unticked_roles_are_ignored(client, case):
    body = _visit(case, guidance_topic="x" * 500, financing="not an object")
    r = _post(client, case["tokens"]["advisor"], body)
    assert r.status_code == 201, r.get_json()
    visit = db.session.get(Visit, r.get_json()["id"])
    assert visit.guidance_topic is None
    assert db.session.scalar(select(func.count()).select_from(FinancingApplication)) == 0


def test_all_four_roles_in_one_visit(client, case):
    body = _visit(
        case,
        roles=["policy", "guidance", "financing", "information"],
        policies=[case["tools"][0].id, "chuangye"],
        guidance_topic="财务管理",
        guidance_advice="建立台账",
        financing={"stage": "applied", "amount_wan": "200", "institution": "ABC"},
        information={"note": "员工 40 人，营收增长", "risk_signal": False},
        next_visit_on="2026-12-10",
    )
    r = _post(client, case["tokens"]["advisor"], body)
    assert r.status_code == 201, r.get_json()
    got = client.get(
        f"/api/v1/visits/{r.get_json()['id']}",
        headers={"Authorization": f"Bearer {case['tokens']['advisor']}"},
    ).get_json()
    assert got["roles"] == ["policy", "guidance", "financing", "information"]
    assert [p["code"] for p in got["policies"]] == ["zhixiao", "chuangye"]
    assert got["financing"][0]["stage"] == "applied"
    assert got["financing"][0]["amount_wan"] == "200"
    assert got["information"]["risk_signal"] is False
    referral = db.session.get(Referral, case["id"])
    assert referral.next_visit_on == date(2026, 12, 10)
    assert referral.last_visit_on == date(2026, 11, 24)


# ------------------------------------------------------------------ dates and amounts
@pytest.mark.parametrize(
    ("visited_on", "expected"),
    [
        ("2026-11-26", "future"),
        ("2026-11-17", "before"),
        ("2026-02-30", "date"),
        ("", "required"),
    ],
)
def test_visit_dates(client, case, visited_on, expected):
    r = _post(client, case["tokens"]["advisor"], _visit(case, visited_on=visited_on))
    assert r.status_code == 422
    message = r.get_json()["error"]["fields"]["visited_on"]
    assert message


def test_visit_on_the_day_of_referral_and_today_are_fine(client, case):
    for day in ("2026-11-18", "2026-11-25"):
        r = _post(client, case["tokens"]["advisor"], _visit(case, visited_on=day))
        assert r.status_code == 201, r.get_json()


@pytest.mark.parametrize("amount", ["-5", "0", "100001", "abc", "1e400", True])
def test_negative_zero_absurd_or_bad_amounts(client, case, amount):
    body = _visit(
        case,
        roles=["financing"],
        financing={"stage": "applied", "amount_wan": amount, "institution": "ABC"},
    )
    r = _post(client, case["tokens"]["advisor"], body)
    assert r.status_code == 422
    assert "financing.amount_wan" in r.get_json()["error"]["fields"]


def test_unknown_lender_policy_mode_and_role(client, case):
    token = case["tokens"]["advisor"]
    r = _post(
        client,
        token,
        _visit(
            case,
            roles=["financing"],
            financing={"stage": "applied", "amount_wan": "1", "institution": "NOPE"},
        ),
    )
    assert "financing.institution" in r.get_json()["error"]["fields"]
    assert (
        "policies"
        in _post(client, token, _visit(case, policies=["nope"])).get_json()["error"]["fields"]
    )
    assert "mode" in _post(client, token, _visit(case, mode="fax")).get_json()["error"]["fields"]
    assert (
        "roles" in _post(client, token, _visit(case, roles=["boss"])).get_json()["error"]["fields"]
    )
    assert "roles" in _post(client, token, _visit(case, roles=[])).get_json()["error"]["fields"]


def test_garbage_bodies_never_500(client, case):
    token = case["tokens"]["advisor"]
    for body in (
        [],
        "x",
        {"referral_id": "abc"},
        {"referral_id": 10**20},
        {"referral_id": case["id"], "roles": "policy", "policies": {"a": 1}},
        {"referral_id": case["id"], "roles": ["information"], "information": [1]},
        {"referral_id": case["id"], "summary": ["x"], "visited_on": 5},
    ):
        r = _post(client, token, body)
        assert r.status_code == 422, (body, r.status_code)


# ------------------------------------------------------------------ who
def test_a_visit_by_an_advisor_not_assigned_is_404(client, case):
    r = _post(client, case["tokens"]["other"], _visit(case))
    assert r.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_only_advisors_log_visits(client, case, make):
    token = make.token(case["office"])
    assert _post(client, token, _visit(case)).status_code == 403


def test_the_visit_form_is_404_for_another_advisor(client, case, login):
    login(case["other"])
    assert client.get(f"/visits/new?referral_id={case['id']}").status_code == 404


# ------------------------------------------------------------------ the case moves
def test_first_visit_moves_the_case_to_in_service_and_outcome_resolves_it(
    client, case, login, make
):
    assert _status(case["id"]) == "assigned"
    r = _post(client, case["tokens"]["advisor"], _visit(case, visited_on="2026-11-20"))
    assert r.status_code == 201
    referral = db.session.get(Referral, case["id"])
    assert referral.status == "in_service"
    assert referral.first_contact_on == date(2026, 11, 20)
    # The bureau is told of the first contact.
    kinds = db.session.scalars(
        select(Notification.kind).where(Notification.user_id == case["bureau"].id)
    ).all()
    assert "first_contact" in kinds
    # A second visit keeps the case in service and the first contact date.
    assert _post(client, case["tokens"]["advisor"], _visit(case)).status_code == 201
    db.session.expire_all()
    referral = db.session.get(Referral, case["id"])
    assert (referral.status, referral.first_contact_on) == ("in_service", date(2026, 11, 20))
    # The outcome, through the web form.
    login(case["advisor"])
    page = client.get(f"/visits/case/{case['id']}/outcome")
    assert page.status_code == 200
    bad = client.post(
        f"/visits/case/{case['id']}/outcome",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "result": "financed",
            "amount_wan": "",
            "version": referral.version,
        },
    )
    assert bad.status_code == 422
    ok = client.post(
        f"/visits/case/{case['id']}/outcome",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "result": "financed",
            "amount_wan": "150",
            "note": "已放款",
            "version": referral.version,
        },
    )
    assert ok.status_code == 302
    db.session.expire_all()
    referral = db.session.get(Referral, case["id"])
    assert referral.status == "resolved"
    assert referral.outcome_amount_wan == Decimal("150")
    # The bureau sees the outcome through the API.
    bureau_token = make.token(case["bureau"])
    got = client.get(
        f"/api/v1/referrals/{case['id']}", headers={"Authorization": f"Bearer {bureau_token}"}
    ).get_json()
    assert got["status"] == "resolved"
    assert got["outcome"]["result"] == "financed"


# ------------------------------------------------------------------ financing pipeline
def _fin(case, stage, amount=None, **extra):
    financing = {"stage": stage, "institution": "ABC", **extra}
    if amount is not None:
        financing["amount_wan"] = amount
    return _visit(case, roles=["financing"], financing=financing)


def test_pipeline_applied_approved_disbursed_on_visits(client, case):
    token = case["tokens"]["advisor"]
    assert _post(client, token, _fin(case, "applied", "300", first_loan=True)).status_code == 201
    assert _post(client, token, _fin(case, "approved", "250")).status_code == 201
    r = _post(client, token, _fin(case, "disbursed", "250", unsecured=True))
    assert r.status_code == 201, r.get_json()
    apps = db.session.scalars(select(FinancingApplication)).all()
    assert len(apps) == 1
    app = apps[0]
    assert (app.stage, app.amount_wan, app.approved_amount_wan, app.disbursed_amount_wan) == (
        "disbursed",
        Decimal("300"),
        Decimal("250"),
        Decimal("250"),
    )
    assert app.first_loan and app.unsecured
    steps = db.session.scalars(select(FinancingStep.stage).order_by(FinancingStep.id)).all()
    assert steps == ["applied", "approved", "disbursed"]


def test_a_stage_that_goes_backwards_or_after_the_end_is_refused(client, case):
    token = case["tokens"]["advisor"]
    _post(client, token, _fin(case, "applied", "300"))
    _post(client, token, _fin(case, "approved", "250"))
    app_id = db.session.scalar(select(FinancingApplication.id))
    back = _post(client, token, _fin(case, "applied", "100", application_id=app_id))
    assert back.status_code == 422
    assert "financing.stage" in back.get_json()["error"]["fields"]
    same = _post(client, token, _fin(case, "approved", "100", application_id=app_id))
    assert same.status_code == 422
    over = _post(client, token, _fin(case, "disbursed", "260", application_id=app_id))
    assert "financing.amount_wan" in over.get_json()["error"]["fields"]
    assert _post(client, token, _fin(case, "declined", reason="风控未过")).status_code == 201
    after = _post(client, token, _fin(case, "disbursed", "100", application_id=app_id))
    assert "financing.stage" in after.get_json()["error"]["fields"]
    # Nothing was half-saved by the refused visits.
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 3


def test_declined_needs_a_reason(client, case):
    token = case["tokens"]["advisor"]
    _post(client, token, _fin(case, "applied", "300"))
    r = _post(client, token, _fin(case, "declined"))
    assert "financing.reason" in r.get_json()["error"]["fields"]


def test_stage_on_the_application_page(client, case, login):
    token = case["tokens"]["advisor"]
    _post(client, token, _fin(case, "applied", "300"))
    app = db.session.scalars(select(FinancingApplication)).one()
    login(case["advisor"])
    page = client.get(f"/visits/financing/{app.id}")
    assert page.status_code == 200
    future = client.post(
        f"/visits/financing/{app.id}/stage",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "stage": "approved",
            "on": "2026-11-26",
            "amount_wan": "200",
            "version": app.version,
        },
    )
    assert future.status_code == 422
    ok = client.post(
        f"/visits/financing/{app.id}/stage",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "stage": "disbursed",
            "on": "2026-11-25",
            "amount_wan": "200",
            "version": app.version,
        },
    )
    assert ok.status_code == 302
    db.session.expire_all()
    app = db.session.get(FinancingApplication, app.id)
    assert (app.stage, app.disbursed_amount_wan) == ("disbursed", Decimal("200"))
    # Another advisor of the same bank sees nothing of it.
    login(case["other"])
    assert client.get(f"/visits/financing/{app.id}").status_code == 404


# ------------------------------------------------------------------ risk signal
def test_risk_signal_goes_to_the_queue(client, case):
    body = _visit(
        case,
        roles=["information"],
        information={"note": "疑似非法集资宣传单", "risk_signal": True, "risk_type": "bad"},
    )
    r = _post(client, case["tokens"]["advisor"], body)
    assert "information.risk_type" in r.get_json()["error"]["fields"]
    body["information"]["risk_type"] = "illegal_fundraising"
    r = _post(client, case["tokens"]["advisor"], body)
    assert r.status_code == 201
    report = db.session.scalars(select(RiskReport)).one()
    assert (report.risk_type, report.reporter_id) == ("illegal_fundraising", case["advisor"].id)
    told = db.session.scalars(
        select(Notification.user_id).where(Notification.kind == "risk_reported")
    ).all()
    assert case["office"].id in told


# ------------------------------------------------------------------ editing
def _log(client, case, **extra) -> Visit:
    r = _post(client, case["tokens"]["advisor"], _visit(case, **extra))
    assert r.status_code == 201, r.get_json()
    return db.session.get(Visit, r.get_json()["id"])


def test_author_edits_within_the_window_audited(client, case, login):
    visit = _log(client, case)
    login(case["advisor"])
    page = client.get(f"/visits/{visit.id}/edit")
    assert page.status_code == 200
    r = client.post(
        f"/visits/{visit.id}/edit",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "visited_on": "2026-11-23",
            "mode": "phone",
            "roles": ["policy"],
            "policies": [str(case["tools"][1].id)],
            "summary": "改为电话沟通",
            "version": visit.version,
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    db.session.expire_all()
    visit = visit_service.load(visit.id)
    assert (visit.mode, visit.summary, [t.code for t in visit.policies]) == (
        "phone",
        "改为电话沟通",
        ["chuangye"],
    )
    audit = db.session.scalars(
        select(AuditLog).where(
            AuditLog.table_name == "visit",
            AuditLog.record_id == str(visit.id),
            AuditLog.action == "update",
        )
    ).all()
    assert any("summary" in a.changes for a in audit)
    assert any("policies" in a.changes for a in audit)


def test_editing_after_the_window_is_refused_and_the_office_corrects(client, case, login, app):
    visit = _log(client, case)
    old = datetime.now(UTC) - timedelta(days=app.config["VISIT_EDIT_DAYS"] + 1)
    db.session.execute(update(Visit).where(Visit.id == visit.id).values(created_at=old))
    db.session.commit()
    with acting_as(case["advisor"]):
        with pytest.raises(Forbidden):
            visit_service.update_visit(
                case["advisor"], visit.id, {"summary": "晚了"}, expected_version=visit.version
            )
    db.session.rollback()
    login(case["advisor"])
    assert client.get(f"/visits/{visit.id}/edit").status_code == 303
    # The finance office corrects, with a reason (required).
    login(case["office"])
    page = client.get(f"/visits/{visit.id}/edit")
    assert page.status_code == 200
    data = {
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "visited_on": "2026-11-24",
        "mode": "onsite",
        "roles": ["policy"],
        "policies": [str(case["tools"][0].id)],
        "summary": "更正：走访两家关联企业",
        "version": visit.version,
    }
    no_reason = client.post(f"/visits/{visit.id}/edit", data=data)
    assert no_reason.status_code == 422
    assert "更正：走访两家关联企业" in no_reason.get_data(as_text=True)
    data["reason"] = "台账口径统一"
    assert client.post(f"/visits/{visit.id}/edit", data=data).status_code == 302
    db.session.expire_all()
    visit = db.session.get(Visit, visit.id)
    assert visit.correction_reason == "台账口径统一"
    assert visit.corrected_by_id == case["office"].id
    kinds = db.session.scalars(
        select(Notification.kind).where(Notification.user_id == case["advisor"].id)
    ).all()
    assert "visit_corrected" in kinds


def test_concurrent_edit_gets_a_conflict_page_showing_what_changed(client, case, login, app):
    visit = _log(client, case)
    login(case["advisor"])
    page = client.get(f"/visits/{visit.id}/edit")
    seen_version = visit.version
    # Someone else (the finance office) saves first.
    office = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(office).login(case["office"].username)
    office_page = office.get(f"/visits/{visit.id}/edit")
    saved = office.post(
        f"/visits/{visit.id}/edit",
        data={
            "csrf_token": csrf_from(office_page.get_data(as_text=True)),
            "visited_on": "2026-11-24",
            "mode": "onsite",
            "roles": ["policy"],
            "policies": [str(case["tools"][0].id)],
            "summary": "办公室更正的摘要",
            "reason": "核对",
            "version": seen_version,
        },
    )
    assert saved.status_code == 302
    mine = client.post(
        f"/visits/{visit.id}/edit",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "visited_on": "2026-11-24",
            "mode": "onsite",
            "roles": ["policy"],
            "policies": [str(case["tools"][0].id)],
            "summary": "我自己的摘要",
            "version": seen_version,
        },
    )
    assert mine.status_code == 409
    html = mine.get_data(as_text=True)
    assert 'data-testid="conflict-changes"' in html
    assert "办公室更正的摘要" in html and "我自己的摘要" in html
    db.session.expire_all()
    assert db.session.get(Visit, visit.id).summary == "办公室更正的摘要"


def test_concurrent_application_edit_conflict(client, case, login):
    _post(client, case["tokens"]["advisor"], _fin(case, "applied", "300"))
    app_row = db.session.scalars(select(FinancingApplication)).one()
    login(case["advisor"])
    page = client.get(f"/visits/financing/{app_row.id}")
    seen = app_row.version
    data = {
        "details-csrf_token": csrf_from(page.get_data(as_text=True)),
        "details-institution": "ABC",
        "details-product": "科创贷",
        "details-amount_wan": "320",
        "details-term_months": "12",
        "details-version": seen,
    }
    assert client.post(f"/visits/financing/{app_row.id}/edit", data=data).status_code == 302
    data["details-product"] = "另一个产品"
    again = client.post(f"/visits/financing/{app_row.id}/edit", data=data)
    assert again.status_code == 409
    assert "科创贷" in again.get_data(as_text=True)
    assert "另一个产品" in again.get_data(as_text=True)


# ------------------------------------------------------------------ the form keeps long text
def test_long_text_survives_an_expired_csrf_token(client, case, login, app):
    login(case["advisor"])
    long_text = "今天走访企业，" * 400
    r = client.post(
        f"/visits/new?referral_id={case['id']}",
        data={
            "csrf_token": "expired",
            "visited_on": "2026-11-24",
            "mode": "onsite",
            "roles": ["policy"],
            "summary": long_text,
        },
    )
    assert r.status_code == 422
    assert long_text in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 0


def test_long_text_survives_an_expired_session(client, case, login, auth):
    login(case["advisor"])
    page = client.get(f"/visits/new?referral_id={case['id']}")
    token = csrf_from(page.get_data(as_text=True))
    with client.session_transaction() as sess:
        sess.clear()
    long_text = "企业反映订单增长、资金周转紧张。" * 200
    r = client.post(
        f"/visits/new?referral_id={case['id']}",
        data={
            "csrf_token": token,
            "visited_on": "2026-11-24",
            "mode": "onsite",
            "roles": ["policy"],
            "summary": long_text,
        },
    )
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert auth.login(case["advisor"].username).status_code == 302
    again = client.get(f"/visits/new?referral_id={case['id']}")
    assert long_text in again.get_data(as_text=True)


# ------------------------------------------------------------------ reading
def test_visit_pages_render_for_the_roles_in_scope(client, case, login, make):
    visit = _log(client, case)
    liaison = make.user("liaison", org=case["advisor"].org)
    for user, code in (
        (case["advisor"], 200),
        (case["office"], 200),
        (liaison, 200),
        (case["other"], 404),
    ):
        login(user)
        assert client.get(f"/visits/{visit.id}").status_code == code, user.role
    login(case["bureau"])
    assert client.get(f"/visits/{visit.id}").status_code == 403


def test_case_page_shows_visits_and_the_log_button(client, case, login):
    _log(client, case)
    login(case["advisor"])
    html = client.get(f"/referrals/{case['id']}").get_data(as_text=True)
    assert 'data-testid="case-visits"' in html
    assert 'data-testid="log-visit"' in html
    assert 'data-testid="record-outcome"' in html
    login(case["bureau"])
    html = client.get(f"/referrals/{case['id']}").get_data(as_text=True)
    assert 'data-testid="case-visits"' not in html


def test_api_list_for_a_case(client, case, make):
    _log(client, case)
    _log(client, case, visited_on="2026-11-20")
    r = client.get(
        f"/api/v1/visits?referral_id={case['id']}",
        headers={"Authorization": f"Bearer {case['tokens']['advisor']}"},
    )
    items = r.get_json()["items"]
    assert [i["visited_on"] for i in items] == ["2026-11-24", "2026-11-20"]
    other = client.get(
        f"/api/v1/visits?referral_id={case['id']}",
        headers={"Authorization": f"Bearer {case['tokens']['other']}"},
    )
    assert other.get_json()["items"] == []
    bureau = client.get(
        f"/api/v1/visits?referral_id={case['id']}",
        headers={"Authorization": f"Bearer {make.token(case['bureau'])}"},
    )
    assert bureau.status_code == 403
    bad = client.get(
        "/api/v1/visits?referral_id=x",
        headers={"Authorization": f"Bearer {case['tokens']['advisor']}"},
    )
    assert bad.status_code == 422
