"""The referral rule set: one firm one case, co-referral, duplicates, and every status
transition with who may make it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from advisors.audit import acting_as
from advisors.errors import Conflict, NotFound, ValidationFailed
from advisors.services import referrals as svc
from models import AuditLog, Enterprise, Referral, ReferralBureau, ReferralEvent, db


def item(make, **values):
    data = {
        "credit_code": make.credit_code(),
        "name": f"江州市测试企业{make.n()}有限公司",
        "industry": "industry",
        "employees": 30,
        "revenue_wan": "500",
        "needs": ["financing", "policy"],
        "amount_wan": "200",
    }
    data.update(values)
    return data


def submit(user, items):
    with acting_as(user):
        results = svc.submit(user, items, source="form")
    db.session.commit()
    return results


@pytest.fixture
def people(make):
    bank = make.org("bank", code="ABC")
    return {
        "bureau": make.user("bureau", org=make.org("bureau", code="GXJ")),
        "bureau2": make.user("bureau", org=make.org("bureau", code="SWJ")),
        "office": make.user("finance_office"),
        "pboc": make.user("pboc"),
        "advisor": make.user("advisor", org=bank, username="adv_li"),
        "advisor2": make.user("advisor", org=bank, username="adv_wang"),
        "liaison": make.user("liaison", org=bank),
        "admin": make.user("admin"),
    }


def test_created_merged_duplicate_rejected(make, people):
    first = item(make)
    results = submit(people["bureau"], [first, item(make, credit_code="91310115MA1H8R7C6D")])
    assert [r.status for r in results] == ["created", "rejected"]
    assert "credit_code" in results[1].errors
    case_id = results[0].referral_id

    again = submit(people["bureau"], [dict(first)])
    assert again[0].status == "duplicate" and again[0].referral_id == case_id

    other = submit(people["bureau2"], [dict(first, name="新名称有限公司", employees=40)])
    assert other[0].status == "merged" and other[0].referral_id == case_id
    orgs = (
        db.session.execute(
            select(ReferralBureau.org_id).where(ReferralBureau.referral_id == case_id)
        )
        .scalars()
        .all()
    )
    assert sorted(orgs) == sorted([people["bureau"].org_id, people["bureau2"].org_id])
    # The registry is never forked, and another bureau's push does not overwrite what the
    # first bureau registered: the differing values wait for the finance office.
    assert db.session.scalar(select(func.count()).select_from(Enterprise)) == 1
    firm = db.session.execute(select(Enterprise)).scalar_one()
    assert firm.name == first["name"] and firm.employees == 30
    link = db.session.get(ReferralBureau, (case_id, people["bureau2"].org_id))
    assert link.proposed == {"name": "新名称有限公司", "employees": 40}
    with acting_as(people["office"]):
        svc.settle_proposal(people["office"], case_id, "SWJ", "name", accept=True)
        svc.settle_proposal(people["office"], case_id, "SWJ", "employees", accept=False)
    db.session.commit()
    db.session.refresh(firm)
    assert firm.name == "新名称有限公司" and firm.employees == 30
    assert db.session.get(ReferralBureau, (case_id, people["bureau2"].org_id)).proposed is None
    assert db.session.execute(
        select(AuditLog).where(AuditLog.table_name == "enterprise", AuditLog.action == "update")
    ).first()


def test_duplicates_inside_one_batch(make, people):
    one = item(make)
    results = submit(people["bureau"], [one, dict(one)])
    assert [r.status for r in results] == ["created", "duplicate"]
    assert "1" in results[1].errors["credit_code"]


def test_item_validation_messages(make, people):
    cases = {
        "needs": item(make, needs=[]),
        "amount_wan": item(make, needs=["financing"], amount_wan=None),
        "industry": item(make, industry="mining"),
        "name": item(make, name=""),
    }
    results = submit(people["bureau"], list(cases.values()))
    for (field, _data), result in zip(cases.items(), results, strict=True):
        assert result.status == "rejected"
        assert field in result.errors, (field, result.errors)


def test_json_float_amount_is_exact(make, people):
    results = submit(people["bureau"], [item(make, amount_wan=100.1)])
    case = db.session.get(Referral, results[0].referral_id)
    assert case.amount_wan == Decimal("100.1")


def test_only_bureaus_submit(make, people):
    with pytest.raises(ValidationFailed):
        svc.submit(people["office"], [item(make)])


def _case(make, people):
    return submit(people["bureau"], [item(make)])[0].referral_id


def _assign(people, case_id, who="office", advisor="adv_li"):
    with acting_as(people[who]):
        svc.assign(people[who], [case_id], advisor)
    db.session.commit()


def test_full_lifecycle_and_timeline(make, people, travel):
    travel(date(2026, 9, 29))
    case_id = _case(make, people)
    _assign(people, case_id)
    case = db.session.get(Referral, case_id)
    assert case.status == "assigned" and case.advisor_id == people["advisor"].id
    assert case.first_contact_due == date(2026, 10, 12)  # across National Day, make-up Saturday
    _assign(people, case_id, advisor="adv_wang")  # reassignment keeps history
    adv2 = people["advisor2"]
    with acting_as(adv2):
        svc.record_first_contact(adv2, case, date(2026, 10, 9))
        svc.record_outcome(adv2, case, "financed", Decimal("150"), "授信150万元")
    db.session.commit()
    with acting_as(people["bureau"]):
        svc.confirm_outcome(people["bureau"], case_id, 5, "很满意")
    db.session.commit()
    case = db.session.get(Referral, case_id)
    assert case.status == "closed" and case.satisfaction == 5
    kinds = (
        db.session.execute(
            select(ReferralEvent.kind)
            .where(ReferralEvent.referral_id == case_id)
            .order_by(ReferralEvent.id)
        )
        .scalars()
        .all()
    )
    assert kinds == ["created", "assigned", "reassigned", "first_contact", "resolved", "closed"]


# Who may make each move: (status reached before, action, role, expected outcome)
def _reach(make, people, status):
    case_id = _case(make, people)
    if status in ("assigned", "in_service", "resolved"):
        _assign(people, case_id)
    case = db.session.get(Referral, case_id)
    adv = people["advisor"]
    if status in ("in_service", "resolved"):
        with acting_as(adv):
            svc.record_first_contact(adv, case, date(2026, 11, 2))
    if status == "resolved":
        with acting_as(adv):
            svc.record_outcome(adv, case, "policy_delivered", None, None)
    db.session.commit()
    return case_id


ACTIONS = {
    "assign": lambda p, role, cid: svc.assign(p[role], [cid], "adv_wang"),
    "reject": lambda p, role, cid: svc.reject(p[role], cid, "不属于服务范围"),
    "withdraw": lambda p, role, cid: svc.withdraw(p[role], cid),
    "confirm": lambda p, role, cid: svc.confirm_outcome(p[role], cid, 4, None),
}
ALLOWED = {
    ("submitted", "assign", "office"),
    ("assigned", "assign", "office"),
    ("in_service", "assign", "office"),
    ("submitted", "reject", "office"),
    ("submitted", "withdraw", "bureau"),
    ("resolved", "confirm", "bureau"),
}


@pytest.mark.parametrize("status", ["submitted", "assigned", "in_service", "resolved"])
@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", ["office", "pboc", "bureau", "bureau2", "advisor", "admin"])
def test_transition_matrix(make, people, status, action, role):
    case_id = _reach(make, people, status)
    before = db.session.get(Referral, case_id).status
    try:
        with acting_as(people[role]):
            ACTIONS[action](people, role, case_id)
        db.session.commit()
        outcome = "ok"
    except (Conflict, NotFound, ValidationFailed):
        db.session.rollback()
        outcome = "refused"
    expected = "ok" if (status, action, role) in ALLOWED else "refused"
    assert outcome == expected, (status, action, role)
    if outcome == "refused":
        db.session.expire_all()
        assert db.session.get(Referral, case_id).status == before


def test_first_contact_only_by_assigned_advisor(make, people):
    case_id = _reach(make, people, "assigned")
    case = db.session.get(Referral, case_id)
    with pytest.raises(NotFound):
        svc.record_first_contact(people["advisor2"], case, date(2026, 11, 2))


def test_outcome_rules(make, people):
    case = db.session.get(Referral, _reach(make, people, "in_service"))
    adv = people["advisor"]
    with pytest.raises(ValidationFailed) as exc:
        svc.record_outcome(adv, case, "financed", None, None)
    assert "amount_wan" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        svc.record_outcome(adv, case, "declined", None, "")
    assert "note" in exc.value.fields


def test_withdraw_with_co_referrer_keeps_case_open(make, people):
    data = item(make)
    case_id = submit(people["bureau"], [data])[0].referral_id
    submit(people["bureau2"], [dict(data)])
    with acting_as(people["bureau"]):
        svc.withdraw(people["bureau"], case_id)
    db.session.commit()
    case = db.session.get(Referral, case_id)
    assert case.status == "submitted" and case.org_id == people["bureau2"].org_id
    with pytest.raises(NotFound):
        svc.get_for(people["bureau"], case_id)


def test_new_case_after_closing(make, people):
    data = item(make)
    case_id = submit(people["bureau"], [data])[0].referral_id
    with acting_as(people["office"]):
        svc.reject(people["office"], case_id, "重复推荐")
    db.session.commit()
    again = submit(people["bureau"], [dict(data)])
    assert again[0].status == "created" and again[0].referral_id != case_id


def test_reject_needs_reason(make, people):
    case_id = _case(make, people)
    with pytest.raises(ValidationFailed):
        svc.reject(people["office"], case_id, " ")
