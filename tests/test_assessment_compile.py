"""Compiling an assessment: each metric's raw value from a small hand-built city (exact
Decimals), Asia/Shanghai period boundaries, points and ranks, identical results on
recompilation, a published period refusing a compile, adjustments, rubric versions, and two
compilers at once producing one result (two connections, on SQLite and on PostgreSQL)."""

from __future__ import annotations

import decimal
import itertools
import json
import re
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from advisors.audit import acting_as
from advisors.bulk import copy_stored
from advisors.dbutil import custom_plans
from advisors.errors import Conflict, Forbidden, NotFound, ValidationFailed
from advisors.i18n import SHANGHAI
from advisors.scoring import DEFAULT_RUBRIC, best_values, score_row, total
from advisors.services import assessments as svc
from models import (
    Assessment,
    AssessmentAdjustment,
    AssessmentInstitution,
    AssessmentRow,
    AuditLog,
    Enterprise,
    FeedbackLink,
    FinancingApplication,
    Notification,
    PolicyTool,
    Referral,
    RiskReport,
    RubricVersion,
    User,
    Visit,
    VisitPolicy,
    db,
)

_seq = itertools.count(1)


def sh(y, mo, d, h=12, mi=0) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


# ----------------------------------------------------------------------------- the little city
class City:
    """Builds records directly (the services that normally write them are tested elsewhere),
    so every date and flag is exactly what the test says."""

    def __init__(self, make):
        self.make = make
        self.bureau_org = make.org("bureau", code="GXJ")
        self.bureau = make.user("bureau", org=self.bureau_org)
        self.tool = PolicyTool(
            code="zhixiao", name="支农支小再贷款", description="", eligible_types=[]
        )
        db.session.add(self.tool)
        db.session.commit()

    def advisor(self, org, username: str, active: bool = True) -> User:
        user = User(
            username=username,
            display_name=f"顾问{username}",
            password_hash="x",
            role="advisor",
            org_id=org.id,
            active=active,
        )
        db.session.add(user)
        db.session.commit()
        return user

    def firm(self) -> Enterprise:
        n = next(_seq)
        firm = Enterprise(
            credit_code=self.make.credit_code(), name=f"测试企业{n}有限公司", industry="retail"
        )
        db.session.add(firm)
        db.session.flush()
        return firm

    def case(self, advisor, assigned_at, *, due=None, contact=None, status="in_service", **kw):
        firm = self.firm()
        referral = Referral(
            enterprise_id=firm.id,
            status=status,
            org_id=self.bureau_org.id,
            created_by_id=self.bureau.id,
            advisor_id=advisor.id,
            assigned_at=assigned_at,
            first_contact_due=due,
            first_contact_on=contact,
            need_policy=True,
            **kw,
        )
        db.session.add(referral)
        db.session.commit()
        return referral

    def visit(self, advisor, referral, on: date, roles=("guidance",), delay=0, tool=False):
        visit = Visit(
            referral_id=referral.id,
            enterprise_id=referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            visited_on=on,
            mode="onsite",
            summary="走访",
            log_delay_days=delay,
            **{f"role_{r}": True for r in roles},
        )
        db.session.add(visit)
        db.session.flush()
        if tool:
            db.session.add(VisitPolicy(visit_id=visit.id, policy_tool_id=self.tool.id))
        db.session.commit()
        return visit

    def loan(self, advisor, referral, on, amount, first_loan=False, firm_id=None):
        app = FinancingApplication(
            referral_id=referral.id,
            enterprise_id=firm_id or referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            amount_wan=Decimal(amount),
            applied_on=date(2026, 6, 1),
            stage="disbursed" if on else "approved",
            disbursed_on=on,
            disbursed_amount_wan=Decimal(amount) if on else None,
            first_loan=first_loan,
        )
        db.session.add(app)
        db.session.commit()
        return app

    def risk(self, advisor, referral, at):
        report = RiskReport(
            referral_id=referral.id,
            enterprise_id=referral.enterprise_id,
            reporter_id=advisor.id,
            org_id=advisor.org_id,
            risk_type="fraud",
            note="线索",
            reported_at=at,
        )
        db.session.add(report)
        db.session.commit()
        return report

    def rating(self, advisor, referral, at, rating):
        link = FeedbackLink(
            referral_id=referral.id,
            advisor_id=advisor.id,
            token_hash=f"{next(_seq):064d}",
            created_by_id=advisor.id,
            created_at=sh(2026, 6, 1),
            expires_at=sh(2026, 12, 31),
            used_at=at,
            rating=rating,
        )
        db.session.add(link)
        db.session.commit()
        return link


def build_city(make) -> dict:
    """Two banks, four advisors assessed (one inactive with work in July), one inactive
    without work (not assessed), records either side of every July boundary."""
    city = City(make)
    k1 = make.org("bank", code="ABC", name="农业银行江州分行")
    k2 = make.org("bank", code="ICBC", name="工商银行江州分行")
    a1 = city.advisor(k1, "adv_a1")
    a2 = city.advisor(k1, "adv_a2")
    a3 = city.advisor(k2, "adv_a3")
    gone = city.advisor(k2, "adv_gone", active=False)
    city.advisor(k1, "adv_idle", active=False)

    # a1's cases. Coverage on 31 July: r1 r2 r3 r8 visited, r4 r5 not; r6 assigned in August,
    # r7 withdrawn. First contact due in July: r2 on time, r3 late.
    r1 = city.case(a1, sh(2026, 6, 10), due=date(2026, 6, 15), contact=date(2026, 6, 14))
    r2 = city.case(a1, sh(2026, 7, 1, 9), due=date(2026, 7, 6), contact=date(2026, 7, 5))
    r3 = city.case(a1, sh(2026, 7, 20), due=date(2026, 7, 24), contact=date(2026, 7, 28))
    city.case(a1, sh(2026, 7, 29), due=date(2026, 8, 3), status="assigned")
    city.case(a1, sh(2026, 7, 31, 23, 30), due=date(2026, 8, 5), status="assigned")  # July
    city.case(a1, sh(2026, 8, 1, 0, 10), due=date(2026, 8, 6), status="assigned")  # August
    city.case(a1, sh(2026, 7, 2), due=date(2026, 7, 7), status="withdrawn")
    city.case(
        a1,
        sh(2026, 6, 1),
        due=date(2026, 6, 5),
        contact=date(2026, 6, 3),
        status="closed",
        closed_at=sh(2026, 7, 15),
        satisfaction=4,
    )
    # a1's visits: three in July (6 role-visits, two policy visits, two information visits,
    # two of three logged on time), one each side of July.
    city.visit(a1, r2, date(2026, 7, 5), roles=("policy", "financing"), delay=0, tool=True)
    city.visit(a1, r3, date(2026, 7, 28), roles=("information",), delay=5)
    city.visit(
        a1, r3, date(2026, 7, 31), roles=("policy", "guidance", "information"), delay=1, tool=True
    )
    city.visit(a1, r1, date(2026, 6, 30), roles=("guidance",))
    city.visit(a1, r3, date(2026, 8, 1), roles=("guidance",))
    # Risk reports: 1 July 00:00 and 31 July 23:30 count; 1 August 00:10 does not.
    city.risk(a1, r2, sh(2026, 7, 1, 0, 0))
    city.risk(a1, r2, sh(2026, 7, 31, 23, 30))
    city.risk(a1, r3, sh(2026, 8, 1, 0, 10))
    # Financing: two loans to one firm and one to another in July (two first loans), one in
    # August, one only approved.
    second_firm = city.firm()
    db.session.commit()
    city.loan(a1, r2, date(2026, 7, 10), "120.5", first_loan=True)
    city.loan(a1, r2, date(2026, 7, 20), "30")
    city.loan(a1, r3, date(2026, 7, 31), "200.25", first_loan=True, firm_id=second_firm.id)
    city.loan(a1, r3, date(2026, 8, 1), "500")
    city.loan(a1, r1, None, "80")
    # Ratings: 5 and 3 in July (+ the bureau's 4 on r8), 1 in August.
    city.rating(a1, r2, sh(2026, 7, 10), 5)
    city.rating(a1, r3, sh(2026, 7, 31, 23, 30), 3)
    city.rating(a1, r1, sh(2026, 8, 1, 0, 10), 1)

    # a2: one financing visit logged on time and the month's biggest disbursement.
    r21 = city.case(a2, sh(2026, 5, 5), due=date(2026, 5, 8), contact=date(2026, 5, 6))
    city.visit(a2, r21, date(2026, 7, 3), roles=("financing",))
    city.loan(a2, r21, date(2026, 7, 3), "701.5")
    # gone (inactive): one late visit in July, so still assessed.
    r_gone = city.case(gone, sh(2026, 5, 5), due=date(2026, 5, 8), contact=date(2026, 5, 6))
    city.visit(gone, r_gone, date(2026, 7, 9), roles=("guidance",), delay=4)

    office = make.user("finance_office")
    return {
        "city": city,
        "k1": k1,
        "k2": k2,
        "a1": a1,
        "a2": a2,
        "a3": a3,
        "gone": gone,
        "office": office,
        "r3": r3,
    }


@pytest.fixture
def world(make):
    return build_city(make)


def compile_(key, actor=None):
    with acting_as(actor, label="test"):
        assessment = svc.compile_period(key, actor)
    db.session.commit()
    return assessment


def metrics_of(key: str) -> dict[str, dict[str, svc.MetricValue]]:
    """Each advisor's stored metric results in a period (the row's ``metrics``)."""
    return {
        username: svc.metric_values(metrics)
        for username, metrics in db.session.execute(
            select(User.username, AssessmentRow.metrics)
            .join(User, User.id == AssessmentRow.advisor_id)
            .join(Assessment, Assessment.id == AssessmentRow.assessment_id)
            .where(Assessment.period == key)
        )
    }


def raws_of(key: str) -> dict[str, dict[str, Decimal | None]]:
    return {u: {k: m.raw for k, m in ms.items()} for u, ms in metrics_of(key).items()}


def rows_of(key: str) -> dict[str, AssessmentRow]:
    db.session.expire_all()
    return {
        username: row
        for row, username in db.session.execute(
            select(AssessmentRow, User.username)
            .join(User, User.id == AssessmentRow.advisor_id)
            .join(Assessment, Assessment.id == AssessmentRow.assessment_id)
            .where(Assessment.period == key)
        )
    }


def snapshot(key: str) -> dict:
    """Every stored value of a period's result (ids included)."""
    aid = db.session.scalar(select(Assessment.id).where(Assessment.period == key))
    out = {}
    for name in ("assessment_row", "assessment_institution"):
        out[name] = [
            tuple(r)
            for r in db.session.execute(
                text(f"SELECT * FROM {name} WHERE assessment_id = :a ORDER BY id"),  # noqa: S608
                {"a": aid},
            )
        ]
    return out


D = Decimal


# ----------------------------------------------------------------------------- raw values
def test_each_metric_raw_value_for_july(world):
    compile_("2026-07")
    raws = raws_of("2026-07")
    assert set(raws) == {"adv_a1", "adv_a2", "adv_a3", "adv_gone"}  # not the idle inactive one
    assert raws["adv_a1"] == {
        "visit_coverage": D("0.666667"),  # 4 of 6 cases visited by 31 July
        "first_contact_on_time": D("0.5"),  # 1 of the 2 due in July
        "visits_logged": D(6),  # 2 + 1 + 3 roles
        "policy_promotion": D(2),  # the two visits in the policy role
        "firms_financed": D(2),  # two loans to one firm count once
        "amount_disbursed": D("350.75"),
        "first_loans": D(2),
        "info_reports": D(4),  # 2 information visits + 2 risk reports in July
        "satisfaction": D(4),  # (5 + 3 + 4) / 3: two link ratings and the bureau's
        "logs_on_time": D("0.666667"),  # 2 of 3 within 3 days
    }
    assert raws["adv_a2"]["visit_coverage"] == D(1)
    assert raws["adv_a2"]["first_contact_on_time"] is None  # nothing due in July
    assert raws["adv_a2"]["amount_disbursed"] == D("701.5")
    assert raws["adv_a2"]["satisfaction"] is None
    assert raws["adv_a3"] == {
        "visit_coverage": None,
        "first_contact_on_time": None,
        "visits_logged": D(0),
        "policy_promotion": D(0),
        "firms_financed": D(0),
        "amount_disbursed": D(0),
        "first_loans": D(0),
        "info_reports": D(0),
        "satisfaction": None,
        "logs_on_time": None,
    }
    assert raws["adv_gone"]["logs_on_time"] == D(0)


def test_august_takes_what_july_leaves(world):
    """Dates are Shanghai dates: 1 August 00:10 Shanghai is 31 July 16:10 UTC, in August."""
    compile_("2026-08")
    raws = raws_of("2026-08")["adv_a1"]
    assert raws["visits_logged"] == D(1)  # the visit dated 1 August
    assert raws["info_reports"] == D(1)  # the risk report at 00:10 on 1 August
    assert raws["satisfaction"] == D(1)  # the rating at 00:10 on 1 August
    assert raws["amount_disbursed"] == D(500)
    # Cases assigned by 31 August: r1-r6 and r8 (r7 withdrawn); visited: r1 r2 r3 r8.
    assert raws["visit_coverage"] == D("0.571429")
    # Due in August: r4 (3rd), r5 (5th) and r6 (6th), none visited.
    assert raws["first_contact_on_time"] == D(0)


def test_quarter_and_year_sum_their_months_and_scale_targets(world):
    compile_("2026-Q3")
    compile_("2026")
    q3 = raws_of("2026-Q3")["adv_a1"]
    year = raws_of("2026")["adv_a1"]
    assert q3["visits_logged"] == D(7)  # July 6 + August 1
    assert year["visits_logged"] == D(8)  # + the June visit
    assert q3["amount_disbursed"] == D("850.75")
    assert q3["info_reports"] == D(5)
    points = {k: m.points for k, m in metrics_of("2026-Q3")["adv_a1"].items()}
    assert points["visits_logged"] == D("1.46")  # 7 of a quarter's 48 (x3) -> 10 x 7/48
    assert points["info_reports"] == D("2.50")  # 5 of 12 -> 6 x 5/12


def test_points_ranks_and_institutions(world):
    assessment = compile_("2026-07")
    rows = rows_of("2026-07")
    raws = raws_of("2026-07")
    bests = best_values(DEFAULT_RUBRIC, raws.values())
    metrics = metrics_of("2026-07")
    for username, row in rows.items():
        expected = score_row(DEFAULT_RUBRIC, raws[username], bests, "month")
        stored = {k: m.points for k, m in metrics[username].items()}
        assert stored == expected, username
        assert list(stored) == [m.key for m in DEFAULT_RUBRIC.metrics]  # the rubric's order
        assert row.computed == total(expected) and row.score == row.computed
    a1 = rows["adv_a1"]
    assert a1.computed == D("48.92")
    # a2 has nothing due and no rating: first contact (10) and satisfaction (20) do not apply,
    # their 30 points spread over the other metrics (x 100/70): coverage 15 -> 21.43,
    # visits 0.625 -> 0.89, firms financed 4 -> 5.71, amount 10 -> 14.29, logs 7 -> 10.00.
    assert rows["adv_a2"].computed == D("52.32")
    assert rows["adv_gone"].computed == D("22.32")  # coverage 21.43 + visits 0.89 (x 100/70)
    assert rows["adv_a3"].computed == D("0.00")
    assert {u: (r.rank, r.institution_rank) for u, r in rows.items()} == {
        "adv_a2": (1, 1),
        "adv_a1": (2, 2),
        "adv_gone": (3, 1),
        "adv_a3": (4, 2),
    }
    inst = {
        i.org_id: i
        for i in db.session.execute(
            select(AssessmentInstitution).where(
                AssessmentInstitution.assessment_id == assessment.id
            )
        ).scalars()
    }
    k1, k2 = inst[world["k1"].id], inst[world["k2"].id]
    assert (k1.advisors, k1.total, k1.average, k1.rank) == (2, D("101.24"), D("50.62"), 1)
    assert (k2.advisors, k2.total, k2.average, k2.rank) == (
        2,
        D("22.32"),
        D("11.16"),
        2,
    )
    assert assessment.status == "draft" and assessment.compile_count == 1
    assert assessment.kind == "month"
    assert (assessment.starts_on, assessment.ends_on) == (date(2026, 7, 1), date(2026, 7, 31))
    audit = db.session.execute(
        select(AuditLog).where(AuditLog.table_name == "assessment")
    ).scalar_one()
    assert audit.action == "insert"


def test_equal_scores_share_a_rank(world, make):
    city = world["city"]
    twin = city.advisor(world["k2"], "adv_twin")  # no work: 0 points, like adv_a3
    compile_("2026-07")
    rows = rows_of("2026-07")
    assert rows["adv_a3"].rank == rows["adv_twin"].rank == 4
    assert rows["adv_a3"].institution_rank == rows["adv_twin"].institution_rank == 2
    assert twin.id


# ----------------------------------------------------------------------------- recompile
def test_recompiling_gives_identical_rows(world):
    compile_("2026-07")
    before = snapshot("2026-07")
    assert len(before["assessment_row"]) == 4
    assert sum(len(m) for m in metrics_of("2026-07").values()) == 40
    again = compile_("2026-07", world["office"])
    assert snapshot("2026-07") == before
    assert again.compile_count == 2 and again.compiled_by_id == world["office"].id


def test_metrics_are_stored_on_the_row_as_exact_strings(world):
    compile_("2026-07")
    a1 = db.session.scalar(select(User.id).where(User.username == "adv_a1"))
    stored = json.loads(
        db.session.scalar(
            text("SELECT CAST(metrics AS TEXT) FROM assessment_row WHERE advisor_id = :a"),
            {"a": a1},
        )
    )
    assert list(stored) == [m.key for m in DEFAULT_RUBRIC.metrics]
    for key, value in stored.items():
        assert isinstance(value, list) and len(value) == 2, key  # [raw, points]
        raw, points = value
        assert re.fullmatch(r"-?\d+\.\d{2}", points), value
        assert raw is None or re.fullmatch(r"-?\d+\.\d{2,6}", raw), value
    assert stored["visits_logged"] == ["6.00", "3.75"]  # 6 of the target 16: 10 x 6/16
    assert svc.raw_text(D("850.750000")) == "850.75" and svc.raw_text(D(1000)) == "1000.00"
    assert svc.raw_text(D("0.8333333")) == "0.833333" and svc.raw_text(None) is None
    assert svc.points_text(D("-0.001")) == "0.00" and svc.points_text(D("7.5")) == "7.50"


def test_a_recompile_rewrites_only_rows_that_differ(world, monkeypatch):
    compile_("2026-07")
    a1 = db.session.scalar(select(User.id).where(User.username == "adv_a1"))
    before = snapshot("2026-07")
    written: list[list[int]] = []
    real = svc.compiling._upsert
    monkeypatch.setattr(
        svc.compiling, "_upsert", lambda rows: (written.append([r[1] for r in rows]), real(rows))
    )
    compile_("2026-07")
    assert written == [[]]  # the same data: nothing to write
    # Tamper with one stored row: the recompile finds it changed and restores it alone.
    db.session.execute(
        text("UPDATE assessment_row SET metrics = '{}', computed = 0 WHERE advisor_id = :a"),
        {"a": a1},
    )
    db.session.commit()
    compile_("2026-07")
    assert written[-1] == [a1]
    after = snapshot("2026-07")
    assert after["assessment_row"] == before["assessment_row"]


def test_recompile_follows_new_data_and_drops_advisors_no_longer_assessed(world):
    compile_("2026-07")
    ids = {u: r.id for u, r in rows_of("2026-07").items()}
    gone = world["gone"]
    db.session.execute(Visit.__table__.delete().where(Visit.advisor_id == gone.id))
    city = world["city"]
    city.visit(world["a3"], world["r3"], date(2026, 7, 12), roles=("guidance", "policy"), tool=True)
    db.session.commit()
    compile_("2026-07")
    rows = rows_of("2026-07")
    assert set(rows) == {"adv_a1", "adv_a2", "adv_a3"}
    assert {u: r.id for u, r in rows.items()} == {u: ids[u] for u in rows}  # same ids
    assert raws_of("2026-07")["adv_a3"]["visits_logged"] == D(2)
    assert gone.username not in metrics_of("2026-07")
    inst = db.session.execute(
        select(AssessmentInstitution.org_id, AssessmentInstitution.advisors)
    ).all()
    assert dict(inst) == {world["k1"].id: 2, world["k2"].id: 1}


def test_a_new_rubric_version_applies_to_drafts_not_to_published(world):
    compile_("2026-06")
    compile_("2026-07")
    svc.publish(world["office"], "2026-06")
    db.session.commit()
    data = DEFAULT_RUBRIC.to_dict()
    data["metrics"] = [m for m in data["metrics"] if m["key"] != "logs_on_time"]
    data["metrics"][0]["weight"] = "22"  # coverage takes the 7 points of logs on time
    with acting_as(world["office"]):
        version = svc.save_rubric(world["office"], data, "no more logs metric")
    db.session.commit()
    assert version.number == 2
    with pytest.raises(Conflict):
        compile_("2026-06")
    db.session.rollback()
    july = compile_("2026-07")
    assert db.session.get(RubricVersion, july.rubric_id).number == 2
    assert "logs_on_time" not in raws_of("2026-07")["adv_a1"]
    june = db.session.execute(select(Assessment).where(Assessment.period == "2026-06")).scalar_one()
    assert db.session.get(RubricVersion, june.rubric_id).number == 1


def test_save_rubric_names_bad_fields_and_is_for_the_finance_office(world, make):
    data = DEFAULT_RUBRIC.to_dict()
    data["metrics"][2]["weight"] = "-1"
    with pytest.raises(ValidationFailed) as exc:
        svc.save_rubric(world["office"], data, None)
    assert "metrics.2.weight" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        svc.save_rubric(world["office"], {"metrics": "nope"}, None)
    assert "metrics" in exc.value.fields
    with pytest.raises(Forbidden):
        svc.save_rubric(make.user("pboc"), DEFAULT_RUBRIC.to_dict(), None)
    first = svc.current_rubric()
    assert first.number == 1 and svc.current_rubric().id == first.id


# ----------------------------------------------------------------------------- refusals
def test_bad_or_future_period_names_the_field(world):
    for key in ("2026-13", "2026/07", "", "26-07", None, "2027-01"):
        with pytest.raises(ValidationFailed) as exc:
            svc.compile_period(key, None)
        assert "period" in exc.value.fields, key
    with pytest.raises(Forbidden):
        svc.compile_period("2026-07", world["a1"])


def test_published_period_refuses_compilation_and_stays_unchanged(world):
    compile_("2026-07")
    with acting_as(world["office"]):
        published = svc.publish(world["office"], "2026-07")
    db.session.commit()
    assert published.status == "published" and published.published_by_id == world["office"].id
    before = snapshot("2026-07")
    # New work after publication changes nothing.
    world["city"].visit(world["a3"], world["r3"], date(2026, 7, 12), roles=("guidance",))
    with pytest.raises(Conflict):
        svc.compile_period("2026-07", world["office"])
    db.session.rollback()
    assert snapshot("2026-07") == before
    a = db.session.execute(select(Assessment).where(Assessment.period == "2026-07")).scalar_one()
    assert a.compile_count == 1 and a.status == "published"
    with pytest.raises(Conflict):
        svc.publish(world["office"], "2026-07")
    db.session.rollback()
    with pytest.raises(NotFound):
        svc.publish(world["office"], "2026-05")


def test_publish_notifies_advisors_and_their_liaisons(world, make):
    liaison = make.user("liaison", org=world["k1"])
    other_bank_liaison = make.user("liaison", org=make.org("bank", code="BOC"))
    compile_("2026-07")
    with pytest.raises(Conflict):
        svc.publish(world["office"], "2026-07", expected_version=99)
    db.session.rollback()
    svc.publish(world["office"], "2026-07", expected_version=1)
    db.session.commit()
    notified = set(
        db.session.execute(
            select(Notification.user_id).where(Notification.kind == "assessment_published")
        ).scalars()
    )
    expected = {world[k].id for k in ("a1", "a2", "a3", "gone")} | {liaison.id}
    assert notified == expected
    assert other_bank_liaison.id not in notified
    note = db.session.execute(
        select(Notification).where(Notification.user_id == liaison.id)
    ).scalar_one()
    from advisors.services.notifications import render

    assert "2026-07" in render(note)


# ----------------------------------------------------------------------------- adjustments
def test_adjustment_needs_a_reason_and_valid_points(world):
    compile_("2026-07")
    office, a3 = world["office"], world["a3"]
    with pytest.raises(ValidationFailed) as exc:
        svc.add_adjustment(office, "2026-07", a3.id, "5", "  ")
    assert set(exc.value.fields) == {"reason"}
    db.session.rollback()
    for bad in ("0", "100.5", "-101", "1.234", "abc", None, True, "NaN", float("inf")):
        with pytest.raises(ValidationFailed) as exc:
            svc.add_adjustment(office, "2026-07", a3.id, bad, "重大贡献")
        assert set(exc.value.fields) == {"points"}, bad
        db.session.rollback()
    with pytest.raises(Forbidden):
        svc.add_adjustment(world["a1"], "2026-07", a3.id, "5", "x")
    with pytest.raises(NotFound):
        svc.add_adjustment(office, "2026-07", 999_999, "5", "x")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AssessmentAdjustment)) == 0


def test_adjustment_moves_score_and_ranks_and_survives_recompile(world):
    office, a3 = world["office"], world["a3"]
    # The default rubric bounds adjustments at 10 points; this city's allows 40.
    with acting_as(office):
        svc.save_rubric(office, {**DEFAULT_RUBRIC.to_dict(), "adjustment_bound": "40"})
    db.session.commit()
    compile_("2026-07")
    with acting_as(office):
        adj = svc.add_adjustment(office, "2026-07", a3.id, "30.5", "牵头完成银企对接会")
        svc.add_adjustment(office, "2026-07", a3.id, Decimal("-0.25"), "台账补录")
    db.session.commit()
    assert adj.points == D("30.50")
    rows = rows_of("2026-07")
    assert (rows["adv_a3"].adjustment, rows["adv_a3"].score) == (D("30.25"), D("30.25"))
    assert (rows["adv_a3"].rank, rows["adv_a3"].institution_rank) == (3, 1)
    assert (rows["adv_a2"].rank, rows["adv_gone"].rank) == (1, 4)
    assert rows["adv_gone"].institution_rank == 2
    k2 = db.session.execute(
        select(AssessmentInstitution).where(AssessmentInstitution.org_id == world["k2"].id)
    ).scalar_one()
    assert (k2.total, k2.average) == (D("52.57"), D("26.29"))  # (30.25 + 22.32) / 2 half up
    audited = db.session.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.table_name == "assessment_adjustment")
    )
    assert audited == 2
    before = snapshot("2026-07")
    compile_("2026-07")
    assert snapshot("2026-07") == before  # adjustments re-applied, nothing else moves
    svc.publish(office, "2026-07")
    db.session.commit()
    with pytest.raises(Conflict):
        svc.add_adjustment(office, "2026-07", a3.id, "1", "late")


def test_comments_on_drafts_only(world, make):
    pboc = make.user("pboc")
    compile_("2026-07")
    with acting_as(pboc):
        comment = svc.add_comment(pboc, "2026-07", "覆盖率口径请说明", advisor_id=world["a1"].id)
    db.session.commit()
    assert comment.id and comment.author_id == pboc.id
    with pytest.raises(ValidationFailed) as exc:
        svc.add_comment(pboc, "2026-07", " ")
    assert "body" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        svc.add_comment(pboc, "2026-07", "x", advisor_id=999_999)
    assert "advisor_id" in exc.value.fields
    with pytest.raises(Forbidden):
        svc.add_comment(world["a1"], "2026-07", "x")
    svc.publish(world["office"], "2026-07")
    db.session.commit()
    with pytest.raises(Conflict):
        svc.add_comment(pboc, "2026-07", "too late")


# ----------------------------------------------------------------------------- concurrency
def _in_thread(app, fn, results, name):
    def run():
        with app.app_context():
            try:
                results[name] = fn()
            except Exception as exc:  # noqa: BLE001 (reported by the test)
                results[name] = exc
                db.session.rollback()
            finally:
                db.session.remove()

    return threading.Thread(target=run, name=name)


def test_the_lock_makes_a_second_compiler_wait(app, world, monkeypatch):
    """A transaction holding the period's lock (and nothing else: on PostgreSQL only the
    advisory lock) keeps a compiler of the period waiting until it commits."""
    compile_("2026-07")
    period = svc.parse_period("2026-07")
    locked, events, results = threading.Event(), {}, {}
    real = svc._aggregates

    def spy(p, *rule):
        events.setdefault("compiler_in", time.monotonic())
        return real(p, *rule)

    monkeypatch.setattr(svc.compiling, "_aggregates", spy)

    def holder():
        svc._lock(period)
        locked.set()
        time.sleep(0.6)
        events["released"] = time.monotonic()
        db.session.commit()
        return "held"

    def compiler():
        assert locked.wait(10)
        a = svc.compile_period("2026-07", None)
        db.session.commit()
        return a.compile_count

    threads = [_in_thread(app, holder, results, "h"), _in_thread(app, compiler, results, "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {"h": "held", "c": 2}, results
    assert events["compiler_in"] >= events["released"]


def test_two_compiles_at_once_produce_one_result(app, world, monkeypatch):
    real = svc._aggregates
    barrier = threading.Barrier(2)
    spans: dict[str, list[float]] = {}

    def slow(p, *rule):
        spans[threading.current_thread().name] = [time.monotonic()]
        result = real(p, *rule)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(svc.compiling, "_aggregates", slow)

    def compiler():
        barrier.wait(10)
        a = svc.compile_period("2026-07", None)
        spans[threading.current_thread().name].append(time.monotonic())
        db.session.commit()
        return a.id

    results: dict = {}
    threads = [_in_thread(app, compiler, results, f"c{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(v, int) for v in results.values()), results
    assert results["c0"] == results["c1"]
    first, second = sorted(spans.values())
    assert second[0] >= first[1], "the compiles overlapped"
    db.session.expire_all()
    a = db.session.execute(select(Assessment)).scalar_one()
    assert a.compile_count == 2
    assert db.session.scalar(select(func.count()).select_from(AssessmentRow)) == 4
    assert sum(len(m) for m in metrics_of("2026-07").values()) == 40
    assert db.session.scalar(select(func.count()).select_from(RubricVersion)) == 1


def test_shares_round_half_up_exactly_in_integers():
    context = decimal.Context(prec=40)
    for part, whole in [(1, 3), (2, 3), (1, 6), (5, 8), (1, 2_000_000), (3, 2_000_000)] + [
        (p, w) for w in range(1, 40) for p in range(0, w + 1)
    ]:
        exact = context.divide(D(part), D(whole)).quantize(D("0.000001"), decimal.ROUND_HALF_UP)
        assert svc._share(part, whole) == int(exact.scaleb(6)), (part, whole)
    assert svc._share(0, 0) is None and svc._share(3, 0) is None


def test_millionths_text_is_raw_text_of_the_decimal():
    for n in [0, 1, 10, 500_000, 833_333, 1_000_000, 12_000_000, 1_234_500_000, 7, -1_500_000]:
        assert svc.millionths_text(n) == svc.raw_text(D(n).scaleb(-6)), n
    assert svc.millionths_text(833_333) == "0.833333" and svc.millionths_text(0) == "0.00"


def test_score_forms_equal_sums_once_and_scores_them_alike():
    works = [svc._Work(cases=3, covered=2, role_visits=6), svc._Work(cases=6, covered=4)]
    works.append(svc._Work(cases=3, covered=2, role_visits=6))
    computed, texts = svc._score(DEFAULT_RUBRIC, "month", works)
    assert texts[0] == texts[2] and computed[0] == computed[2]
    first, second = json.loads(texts[0]), json.loads(texts[1])
    coverage = score_row(DEFAULT_RUBRIC, {"visit_coverage": D("0.666667")})["visit_coverage"]
    assert first["visit_coverage"] == second["visit_coverage"] == ["0.666667", str(coverage)]
    assert first["satisfaction"] == [None, None]  # no rating: not applicable
    assert first["logs_on_time"] == [None, "0.00"]  # no visit logged: 0 points
    assert computed[0] == sum(
        int(D(points).scaleb(2)) for _raw, points in first.values() if points is not None
    )
    assert svc._score(DEFAULT_RUBRIC, "month", []) == ([], [])


def test_aggregates_are_planned_for_their_bounds_and_the_setting_does_not_leak(world):
    if db.engine.dialect.name != "postgresql":
        with custom_plans():
            assert db.session.scalar(text("SELECT 1")) == 1  # nothing to set on SQLite
        return
    mode = "SELECT current_setting('plan_cache_mode')"
    assert db.session.scalar(text(mode)) == "auto"
    with custom_plans():
        assert db.session.scalar(text(mode)) == "force_custom_plan"
    assert db.session.scalar(text(mode)) == "auto"
    seen = []
    original = svc._aggregates

    def spy(period, *rule):
        seen.append(db.session.scalar(text(mode)))
        return original(period, *rule)

    svc.compiling._aggregates = spy
    try:
        with acting_as(None, label="test"):
            svc.compile_period("2026-07")
        after = db.session.scalar(text(mode))  # the same transaction, after the writes
    finally:
        svc.compiling._aggregates = original
    # Custom plans while aggregating; the cached plans (foreign-key checks) for the writes.
    assert seen == ["force_custom_plan"] and after == "auto"
    db.session.commit()


def test_copy_stored_writes_rows_as_stored_and_checks_keys(world):
    if db.engine.dialect.name != "postgresql":
        with pytest.raises(RuntimeError):
            copy_stored(AssessmentRow.__table__, ("advisor_id",), [(1,)])
        return
    assessment = compile_("2026-07")
    columns = ("assessment_id", "advisor_id", "org_id", "computed", "adjustment", "score")
    copy_stored(
        AssessmentRow.__table__,
        (*columns, "metrics"),
        [(assessment.id, 999_999, None, 1250, -50, 1200, '{"visits_logged": ["1.00", "0.63"]}')],
    )
    row = db.session.execute(
        select(AssessmentRow).where(AssessmentRow.advisor_id == 999_999)
    ).scalar_one()
    assert (row.computed, row.adjustment, row.score) == (D("12.50"), D("-0.50"), D("12.00"))
    assert row.metrics == {"visits_logged": ["1.00", "0.63"]}
    with pytest.raises(IntegrityError):  # the unique (assessment, advisor) still holds
        copy_stored(
            AssessmentRow.__table__,
            (*columns, "metrics"),
            [(assessment.id, 999_999, None, 0, 0, 0, "{}")],
        )
    db.session.rollback()


def test_utc_bounds_are_shanghai_midnights():
    period = svc.parse_period("2026-07")
    start, end = period.utc_bounds()
    assert start == datetime(2026, 6, 30, 16, tzinfo=UTC)
    assert end == datetime(2026, 7, 31, 16, tzinfo=UTC)
    assert sh(2026, 7, 31, 23, 30) < end <= sh(2026, 8, 1, 0, 10)


def test_quarter_and_year_ends_in_shanghai(make, travel):
    """30 Sep 23:30 is Q3 and 1 Oct 00:10 Q4; 31 Dec 23:30 is 2026 and 1 Jan 00:10 is 2027
    (16:10 UTC on 31 December); dates likewise."""
    travel(date(2027, 2, 1))
    city = City(make)
    bank = make.org("bank", code="ABC")
    adv = city.advisor(bank, "adv_edge")
    case = city.case(adv, sh(2026, 6, 1), due=date(2026, 6, 5), contact=date(2026, 6, 2))
    for at in (sh(2026, 9, 30, 23, 30), sh(2026, 10, 1, 0, 10)):
        city.risk(adv, case, at)
    for at in (sh(2026, 12, 31, 23, 30), sh(2027, 1, 1, 0, 10)):
        city.risk(adv, case, at)
    for on in (date(2026, 9, 30), date(2026, 10, 1), date(2026, 12, 31), date(2027, 1, 1)):
        city.visit(adv, case, on, roles=("guidance",))
    for key in ("2026-Q3", "2026-Q4", "2026-12", "2026", "2027-01", "2027-Q1", "2027"):
        compile_(key)
    counts = {
        key: (raws_of(key)["adv_edge"]["info_reports"], raws_of(key)["adv_edge"]["visits_logged"])
        for key in ("2026-Q3", "2026-Q4", "2026-12", "2026", "2027-01", "2027-Q1", "2027")
    }
    assert counts == {
        "2026-Q3": (D(1), D(1)),
        "2026-Q4": (D(2), D(2)),
        "2026-12": (D(1), D(1)),
        "2026": (D(3), D(3)),
        "2027-01": (D(1), D(1)),
        "2027-Q1": (D(1), D(1)),
        "2027": (D(1), D(1)),
    }
    with pytest.raises(ValidationFailed):
        svc.compile_period("2027-03", None)  # not started on 1 February
