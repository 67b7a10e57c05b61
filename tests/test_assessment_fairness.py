"""Fair scores (issue 12, point 1): what "no data" means per metric (not applicable: its weight
spread over the others, so the total is still out of 100; or 0 points), the rubric's bound on
adjustments (service, API 422, page), withdrawing an adjustment while the period is a draft
(audited, shown with who and when, 409 once published), one rating per case for satisfaction,
and the notice on a period compiled before it ended."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from advisors import periods as periods_module
from advisors.audit import acting_as
from advisors.clock import today
from advisors.errors import Conflict, ValidationFailed
from advisors.scoring import (
    DEFAULT_RUBRIC,
    NOT_APPLICABLE,
    ZERO_POINTS,
    RubricSpec,
    load_rubric,
    score_row,
    total,
    validate_rubric,
)
from advisors.security import hash_password
from advisors.services import assessments as svc
from models import AssessmentAdjustment, AuditLog, db
from tests.conftest import PASSWORD, csrf_from
from tests.test_assessment_compile import City, build_city, compile_, raws_of, rows_of, sh

D = Decimal

FULL = {
    "visit_coverage": D(1),
    "first_contact_on_time": D(1),
    "visits_logged": D(16),
    "policy_promotion": D(6),
    "firms_financed": D(3),
    "amount_disbursed": D(500),
    "first_loans": D(2),
    "info_reports": D(4),
    "satisfaction": D(5),
    "logs_on_time": D(1),
}
BESTS = {"amount_disbursed": D(500)}


def _with(spec: RubricSpec, key: str, no_data: str) -> RubricSpec:
    data = spec.to_dict()
    for m in data["metrics"]:
        if m["key"] == key:
            m["no_data"] = no_data
    return RubricSpec.from_dict(data)


# ----------------------------------------------------------------------------- scoring
def test_a_metric_without_data_spreads_its_weight_and_the_total_stays_out_of_100():
    no_rating = {**FULL, "satisfaction": None}
    points = score_row(DEFAULT_RUBRIC, no_rating, BESTS)
    assert points["satisfaction"] is None  # not applicable, never 0
    # Satisfaction's 20 points spread over the other 80 in proportion (x 100/80).
    assert points["visit_coverage"] == D("18.75")  # 15 x 1.25
    assert points["first_contact_on_time"] == D("12.50")
    assert points["logs_on_time"] == D("8.75")
    assert total(points) == D("100.00")
    assert total(score_row(DEFAULT_RUBRIC, FULL, BESTS)) == D("100.00")  # comparable: both 100

    # Half the work: the same share of 100 whether or not the firms rated the advisor.
    half = {**FULL, "visits_logged": D(8), "policy_promotion": D(3), "info_reports": D(2)}
    rated = score_row(DEFAULT_RUBRIC, {**half, "satisfaction": D(5)}, BESTS)
    unrated = score_row(DEFAULT_RUBRIC, {**half, "satisfaction": None}, BESTS)
    lost = D(100) - total(rated)  # 12 points below full marks, out of the 80 that apply
    assert lost == D("12.00")
    assert total(unrated) == D("85.00")  # 100 - 12 x 100/80


def test_the_zero_setting_scores_no_data_as_0():
    spec = _with(DEFAULT_RUBRIC, "satisfaction", ZERO_POINTS)
    points = score_row(spec, {**FULL, "satisfaction": None}, BESTS)
    assert points["satisfaction"] == D("0.00")
    assert points["visit_coverage"] == D("15.00")  # nothing spread
    assert total(points) == D("80.00")


def test_default_settings_per_metric():
    no_data = {m.key: m.no_data for m in DEFAULT_RUBRIC.metrics}
    assert no_data["satisfaction"] == NOT_APPLICABLE
    assert no_data["visit_coverage"] == NOT_APPLICABLE  # no firms assigned
    assert no_data["first_contact_on_time"] == NOT_APPLICABLE  # nothing due
    assert no_data["logs_on_time"] == ZERO_POINTS  # no visit logged is the advisor's doing
    assert DEFAULT_RUBRIC.adjustment_bound == D(10) and DEFAULT_RUBRIC.case_rating == "firm_first"
    # Nothing at all: every count 0, the shares not applicable -> 0 of 100, not an error.
    assert total(score_row(DEFAULT_RUBRIC, {}, {})) == D("0.00")


def test_the_settings_are_versioned_in_the_rubric_json():
    data = DEFAULT_RUBRIC.to_dict()
    assert data["adjustment_bound"] == "10" and data["case_rating"] == "firm_first"
    assert {m["key"]: m["no_data"] for m in data["metrics"]}["satisfaction"] == "not_applicable"
    assert RubricSpec.from_dict(data) == DEFAULT_RUBRIC
    # A version stored before the settings existed reads them as the defaults.
    old = {k: v for k, v in data.items() if k not in ("adjustment_bound", "case_rating")}
    old["metrics"] = [{k: v for k, v in m.items() if k != "no_data"} for m in data["metrics"]]
    spec, errors = load_rubric(old)
    assert errors == {} and spec == DEFAULT_RUBRIC


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"adjustment_bound": "0"}, "adjustment_bound"),
        ({"adjustment_bound": "101"}, "adjustment_bound"),
        ({"adjustment_bound": "2.555"}, "adjustment_bound"),
        ({"case_rating": "bureau_only"}, "case_rating"),
    ],
)
def test_bad_settings_are_named(change, field):
    spec, errors = load_rubric({**DEFAULT_RUBRIC.to_dict(), **change})
    assert spec is None and field in errors


def test_a_bad_no_data_setting_is_named():
    assert "metrics.8.no_data" in validate_rubric(_with(DEFAULT_RUBRIC, "satisfaction", "blank"))


# ----------------------------------------------------------------------------- the compile
@pytest.fixture
def world(make):
    w = build_city(make)
    w["office"].password_hash = hash_password(PASSWORD)
    db.session.commit()
    return w


def _points(username: str, key: str = "2026-07") -> dict:
    from tests.test_assessment_compile import metrics_of

    return {k: m.points for k, m in metrics_of(key)[username].items()}


def test_the_compile_stores_not_applicable_and_the_zero_setting_follows_the_rubric(world):
    compile_("2026-07")
    a2 = _points("adv_a2")  # nothing due in July and no rating
    assert a2["satisfaction"] is None and a2["first_contact_on_time"] is None
    assert rows_of("2026-07")["adv_a2"].computed == D("52.32")
    spec = _with(DEFAULT_RUBRIC, "satisfaction", ZERO_POINTS)
    with acting_as(world["office"]):
        svc.save_rubric(world["office"], spec.to_dict(), "满意度无评价按0分")
    db.session.commit()
    compile_("2026-07")  # the draft takes the new version
    a2 = _points("adv_a2")
    assert a2["satisfaction"] == D("0.00") and a2["first_contact_on_time"] is None
    # Only first contact (10) is spread now: x 100/90.
    assert a2["visit_coverage"] == D("16.67") and a2["logs_on_time"] == D("7.78")


def test_the_breakdown_page_says_not_applicable(client, world, login):
    compile_("2026-07")
    login(world["office"])
    r = client.get(f"/assessments/2026-07/advisors/{world['a2'].id}")
    html = r.get_data(as_text=True)
    row = re.search(r'<tr data-metric="satisfaction"[^>]*>.*?</tr>', html, re.S)[0]
    assert 'data-applicable="false"' in row and "not applicable" in row
    assert 'data-testid="not-applicable-why"' in row
    coverage = re.search(r'<tr data-metric="visit_coverage"[^>]*>.*?</tr>', html, re.S)[0]
    assert "→ 21.43" in html_lib.unescape(coverage)  # its weight with the others' spread
    items = {m["key"]: m for m in svc.breakdown(world["office"], "2026-07", world["a2"].id)}
    assert items["satisfaction"]["applicable"] is False
    assert items["visit_coverage"]["effective_weight"] == D("21.43")
    ranking = client.get("/assessments/2026-07").get_data(as_text=True)
    a2_row = re.search(r'<tr data-advisor="adv_a2">.*?</tr>', ranking, re.S)[0]
    assert ">n/a<" in a2_row


# ----------------------------------------------------------------------------- adjustments
def test_the_bound_on_adjustments(world):
    compile_("2026-07")
    office, a3 = world["office"], world["a3"]
    for bad in ("10.01", "-10.5", "50"):
        with pytest.raises(ValidationFailed) as exc:
            svc.add_adjustment(office, "2026-07", a3.id, bad, "表彰")
        assert set(exc.value.fields) == {"points"} and "10" in exc.value.fields["points"]
        db.session.rollback()
    with acting_as(office):
        svc.add_adjustment(office, "2026-07", a3.id, "10", "表彰")
        svc.add_adjustment(office, "2026-07", a3.id, "-3", "台账迟报")
    db.session.commit()
    # The sum stays within the bound too: 7 + 4 = 11 is refused, 7 + 3 = 10 is not.
    with pytest.raises(ValidationFailed) as exc:
        svc.add_adjustment(office, "2026-07", a3.id, "4", "再次表彰")
    assert "11" in exc.value.fields["points"] and "10" in exc.value.fields["points"]
    db.session.rollback()
    with acting_as(office):
        svc.add_adjustment(office, "2026-07", a3.id, "3", "再次表彰")
    db.session.commit()
    assert rows_of("2026-07")["adv_a3"].score == D("10.00")


def test_the_bound_is_the_rubrics_setting(world):
    with acting_as(world["office"]):
        svc.save_rubric(world["office"], {**DEFAULT_RUBRIC.to_dict(), "adjustment_bound": "5"})
    db.session.commit()
    compile_("2026-07")
    with pytest.raises(ValidationFailed) as exc:
        svc.add_adjustment(world["office"], "2026-07", world["a3"].id, "6", "表彰")
    assert "5" in exc.value.fields["points"]


def test_the_page_refuses_an_adjustment_beyond_the_bound(client, world, login):
    compile_("2026-07")
    login(world["office"])
    page = "/assessments/2026-07"
    token = csrf_from(client.get(page).get_data(as_text=True))
    r = client.post(
        "/assessments/2026-07/adjustments",
        data={
            "csrf_token": token,
            "advisor": str(world["a3"].id),
            "points": "12",
            "reason": "表彰",
            "origin": "ranking",
        },
    )
    assert r.status_code == 422
    text = html_lib.unescape(r.get_data(as_text=True))
    points = re.search(r'<input [^>]*name="points"[^>]*>', text)[0]
    assert "is-invalid" in points
    assert "at most 10 points either way" in text
    assert db.session.scalar(select(func.count()).select_from(AssessmentAdjustment)) == 0


def test_withdrawing_an_adjustment(client, world, login, make):
    compile_("2026-07")
    office, a3 = world["office"], world["a3"]
    with acting_as(office):
        kept = svc.add_adjustment(office, "2026-07", a3.id, "2", "协助处置风险")
        gone = svc.add_adjustment(office, "2026-07", a3.id, "5", "重复录入")
    db.session.commit()
    assert rows_of("2026-07")["adv_a3"].score == D("7.00")

    login(office)
    url = f"/assessments/2026-07/advisors/{a3.id}"
    html = client.get(url).get_data(as_text=True)
    assert html.count('data-testid="withdraw-form"') == 2
    token = csrf_from(html)
    r = client.post(
        f"/assessments/2026-07/adjustments/{gone.id}/withdraw",
        data={"csrf_token": token, "origin": "advisor"},
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"{url}#adjustments")
    row = rows_of("2026-07")["adv_a3"]
    assert (row.adjustment, row.score) == (D("2.00"), D("2.00"))  # recomputed
    # Audited: who withdrew it and when.
    audit = db.session.execute(
        select(AuditLog).where(
            AuditLog.table_name == "assessment_adjustment",
            AuditLog.action == "update",
        )
    ).scalar_one()
    assert "withdrawn_at" in str(audit.changes) and audit.actor_id == office.id
    page = html_lib.unescape(client.get(url).get_data(as_text=True))
    withdrawn = re.search(r'<li [^>]*data-withdrawn="true".*?</li>', page, re.S)[0]
    assert "重复录入" in withdrawn and f"Withdrawn by {office.display_name}" in withdrawn
    assert page.count('data-testid="withdraw-form"') == 1  # only the one still counting
    ranking = html_lib.unescape(client.get("/assessments/2026-07").get_data(as_text=True))
    assert "重复录入" not in re.search(r'<tr data-advisor="adv_a3">.*?</tr>', ranking, re.S)[0]
    # Twice: refused. The API answers with the assessment, and 409 once published.
    with pytest.raises(Conflict):
        svc.withdraw_adjustment(office, "2026-07", gone.id)
    db.session.rollback()
    compile_("2026-07")  # a recompile keeps the withdrawal
    assert rows_of("2026-07")["adv_a3"].score == D("2.00")
    token = make.token(office)
    headers = {"Authorization": f"Bearer {token}"}
    api = f"/api/v1/assessments/2026-07/adjustments/{gone.id}/withdraw"
    r = client.post(api, headers=headers)
    assert r.status_code == 409
    r = client.post("/api/v1/assessments/2026-07/adjustments/999999/withdraw", headers=headers)
    assert r.status_code == 404
    body = client.get("/api/v1/assessments/2026-07", headers=headers).get_json()
    lines = next(x for x in body["rows"] if x["advisor"] == "adv_a3")["adjustments"]
    assert [(a["reason"], a["withdrawn_by"] is not None) for a in lines] == [
        ("协助处置风险", False),
        ("重复录入", True),
    ]
    with acting_as(office):
        svc.publish(office, "2026-07")
    db.session.commit()
    r = client.post(f"/api/v1/assessments/2026-07/adjustments/{kept.id}/withdraw", headers=headers)
    assert r.status_code == 409
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="withdraw-form"' not in page


def test_withdrawing_through_the_api(client, world, make):
    compile_("2026-07")
    office = world["office"]
    with acting_as(office):
        adj = svc.add_adjustment(office, "2026-07", world["a1"].id, "-4", "投诉属实")
    db.session.commit()
    headers = {"Authorization": f"Bearer {make.token(office)}"}
    r = client.post(f"/api/v1/assessments/2026-07/adjustments/{adj.id}/withdraw", headers=headers)
    assert r.status_code == 200
    row = next(x for x in r.get_json()["rows"] if x["advisor"] == "adv_a1")
    assert row["adjustment"] == "0" and row["score"] == "48.92"
    assert row["adjustments"][0]["withdrawn_at"].endswith("+08:00")
    liaison = make.user("liaison", org=world["k1"])
    r = client.post(
        f"/api/v1/assessments/2026-07/adjustments/{adj.id}/withdraw",
        headers={"Authorization": f"Bearer {make.token(liaison)}"},
    )
    assert r.status_code == 403


# ----------------------------------------------------------------------------- one rating per case
@pytest.fixture
def rated(make):
    """One advisor; case A rated by the firm (5) and by the bureau (3) in July; case B rated by
    the firm twice in July (2, then 4); case C rated by the firm in July and closed by the bureau
    with 1 in August; case D closed by the bureau (4) in July only."""
    city = City(make)
    bank = make.org("bank", code="BOC", name="中国银行江州分行")
    adv = city.advisor(bank, "adv_r")
    a = city.case(adv, sh(2026, 6, 1), status="closed", closed_at=sh(2026, 7, 20), satisfaction=3)
    city.rating(adv, a, sh(2026, 7, 10), 5)
    b = city.case(adv, sh(2026, 6, 1))
    city.rating(adv, b, sh(2026, 7, 3), 2)
    city.rating(adv, b, sh(2026, 7, 25), 4)
    c = city.case(adv, sh(2026, 6, 1), status="closed", closed_at=sh(2026, 8, 5), satisfaction=1)
    city.rating(adv, c, sh(2026, 7, 12), 5)
    city.case(adv, sh(2026, 6, 1), status="closed", closed_at=sh(2026, 7, 22), satisfaction=4)
    office = make.user("finance_office")
    return {"adv": adv, "office": office, "a": a, "c": c}


def test_a_case_rated_by_the_firm_and_the_bureau_counts_once(rated):
    compile_("2026-07")
    # firm_first: A 5 (not the bureau's 3), B 4 (the latest), C 5, D 4 -> 18 / 4 cases.
    assert raws_of("2026-07")["adv_r"]["satisfaction"] == D("4.5")
    compile_("2026-08")
    # August: C was rated by the firm in July, so the bureau's 1 does not count again.
    assert raws_of("2026-08")["adv_r"]["satisfaction"] is None


def test_the_average_rule(rated):
    office = rated["office"]
    with acting_as(office):
        svc.save_rubric(office, {**DEFAULT_RUBRIC.to_dict(), "case_rating": "average"})
    db.session.commit()
    compile_("2026-07")
    # A (5 + 3) / 2 = 4, B 4, C 5 (the bureau closes it in August), D 4 -> 17 / 4.
    assert raws_of("2026-07")["adv_r"]["satisfaction"] == D("4.25")
    compile_("2026-08")
    # August: C closed by the bureau with 1, averaged with the firm's 5 of July: 3.
    assert raws_of("2026-08")["adv_r"]["satisfaction"] == D(3)


def test_the_breakdown_says_which_rating_counted(rated):
    compile_("2026-07")
    with force_locale("en"):  # the notes asserted in English
        breakdown = svc.breakdown(rated["office"], "2026-07", rated["adv"].id)
    items = {m["key"]: m for m in breakdown}
    records = items["satisfaction"]["records"]
    assert items["satisfaction"]["total"] == len(records) == 6  # 4 firm ratings, 2 closings
    counted = sorted(r["value"] for r in records if r["counted"])
    assert counted == [4, 4, 5, 5]
    bureau_a = next(r for r in records if r["kind"] == "referral" and r["id"] == rated["a"].id)
    assert not bureau_a["counted"] and "the firm's own rating counts" in bureau_a["note"]
    early_b = next(r for r in records if r["kind"] == "rating" and r["value"] == 2)
    assert not early_b["counted"]


# ----------------------------------------------------------------------------- unfinished period
def test_compiling_the_current_period_says_it_is_not_final(client, world, login, runner, make):
    current = periods_module.month_of(today()).key
    compile_("2026-07")
    headers = {"Authorization": f"Bearer {make.token(world['office'])}"}
    body = client.get("/api/v1/assessments/2026-07", headers=headers).get_json()
    assert body["in_progress"] is False
    r = client.post("/api/v1/assessments", json={"period": current}, headers=headers)
    assert r.status_code == 200 and r.get_json()["in_progress"] is True
    assert r.get_json()["ends_on"] == periods_module.parse(current).last_day.isoformat()
    login(world["office"])
    page = html_lib.unescape(client.get(f"/assessments/{current}").get_data(as_text=True))
    assert 'data-testid="in-progress"' in page and "these figures will change" in page
    assert "in-progress" not in client.get("/assessments/2026-07").get_data(as_text=True)
    notice = client.get(f"/assessments/{current}/notice").get_data(as_text=True)
    assert 'data-testid="in-progress"' in notice
    result = runner.invoke(args=["assessments", "compile", current])
    assert result.exit_code == 0, result.output
    last = periods_module.parse(current).last_day.isoformat()
    assert result.stdout.strip().endswith(f"in_progress=until {last}")
    assert svc.compiled_in_progress(svc.compile_period("2026-07")) is False
    db.session.rollback()
    assert date.fromisoformat(last) >= today()


# ----------------------------------------------------------------------------- the rubric editor
def test_the_editor_sets_the_bound_what_no_data_means_and_the_case_rule(client, world, login):
    from models import RubricVersion
    from tests.test_assessment_pages import _editor_data, _row, post

    login(world["office"])
    html = client.get("/assessments/rubric").get_data(as_text=True)
    assert re.search(r'<input [^>]*name="adjustment_bound"[^>]*value="10"', html)
    data = _editor_data(html)
    satisfaction, visits = _row(data, "satisfaction"), _row(data, "visits_logged")
    assert data[f"{satisfaction}-no_data"] == "not_applicable"
    assert f'name="{visits}-no_data"' not in html  # a count always has a value
    assert data["case_rating"] == "firm_first"
    data.update(
        {
            f"{satisfaction}-no_data": "zero",
            "adjustment_bound": "abc",
            "case_rating": "average",
            "note": "满意度无评价按0分；调整分上限5分",
        }
    )
    r = post(client, "/assessments/rubric", data)
    assert r.status_code == 422
    bound = re.search(r'<input [^>]*name="adjustment_bound"[^>]*>', r.get_data(as_text=True))[0]
    assert "is-invalid" in bound
    r = post(client, "/assessments/rubric", {**data, "adjustment_bound": "5"})
    assert r.status_code == 302
    newest = db.session.scalar(select(RubricVersion).order_by(RubricVersion.number.desc()))
    spec = svc.rubric_spec(newest)
    assert newest.number == 2 and spec.adjustment_bound == D(5)
    assert spec.case_rating == "average"
    assert spec.metric("satisfaction").no_data == ZERO_POINTS
    assert spec.metric("visit_coverage").no_data == NOT_APPLICABLE  # untouched
    page = html_lib.unescape(client.get(f"/assessments/rubric/{newest.id}").get_data(as_text=True))
    assert "At most 5 points either way" in page
    assert "the average of the firm's and the bureau's ratings" in page
