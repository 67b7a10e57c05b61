"""The assessment pages: the periods and the compile form, the ranking with its review
(adjustments with and without a reason, comments, recompile, publish), who sees what, the
drill-down with its records, the ranking notice (page, .xlsx, PDF), the rubric editor, and the
SVG charts as pure functions."""

from __future__ import annotations

import html as html_lib
import io
import re
from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from advisors import charts
from advisors import periods as periods_module
from advisors.audit import acting_as
from advisors.clock import today
from advisors.security import hash_password
from advisors.services import assessments as svc
from models import (
    Assessment,
    AssessmentAdjustment,
    AssessmentComment,
    AuditLog,
    RubricVersion,
    User,
    db,
)
from tests.conftest import PASSWORD, csrf_from
from tests.test_assessment_compile import build_city, compile_

SVG = "{http://www.w3.org/2000/svg}"
EVIL = '=HYPERLINK("http://x","点我")'


# ------------------------------------------------------------------ the city
@pytest.fixture
def world(make):
    w = build_city(make)
    # The compile test's advisors cannot sign in; give them a password, and one a name that a
    # spreadsheet would run as a formula.
    for key in ("a1", "a2", "a3"):
        w[key].password_hash = hash_password(PASSWORD)
    w["a3"].display_name = EVIL
    db.session.commit()
    w["pboc"] = make.user("pboc")
    w["admin"] = make.user("admin")
    w["bureau"] = w["city"].bureau
    w["bureau"].password_hash = hash_password(PASSWORD)
    w["liaison"] = make.user("liaison", org=w["k1"])  # 农业银行: a1 and a2
    w["liaison2"] = make.user("liaison", org=w["k2"])  # 工商银行: a3 and gone
    db.session.commit()
    return w


def _svg(markup) -> ET.Element:
    """Parse an SVG the app itself drew (not untrusted input)."""
    return ET.fromstring(str(markup))  # noqa: S314


def text_of(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def field(response, name: str) -> dict[str, str]:
    """The attributes of the page's input named ``name`` (values unescaped)."""
    html = response.get_data(as_text=True) if hasattr(response, "get_data") else response
    for tag in re.findall(r"<input ([^>]*)>", html):
        attrs = {k: html_lib.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}
        if attrs.get("name") == name:
            return attrs
    raise AssertionError(f"no input named {name}")


def post(client, url: str, data: dict, page: str | None = None):
    token = csrf_from(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def publish_(key: str, actor) -> None:
    with acting_as(actor):
        svc.publish(actor, key)
    db.session.commit()


def adjust_(key: str, actor, advisor, points, reason) -> None:
    with acting_as(actor):
        svc.add_adjustment(actor, key, advisor.id, points, reason)
    db.session.commit()


# ------------------------------------------------------------------ periods and compiling
def test_periods_page_and_compile_form_default_to_the_previous_month(client, world, login):
    login(world["office"])
    r = client.get("/assessments/")
    assert r.status_code == 200
    page = text_of(r)
    assert "No period has been compiled yet." in page
    previous = periods_module.month_of(today()).previous().key
    assert field(r, "period")["value"] == previous

    r = post(client, "/assessments/compile", {"period": "2026-07"}, "/assessments/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/assessments/2026-07")
    assessment = db.session.scalar(select(Assessment).where(Assessment.period == "2026-07"))
    assert assessment.status == "draft" and assessment.compiled_by_id == world["office"].id
    listing = text_of(client.get("/assessments/"))
    assert 'data-period="2026-07"' in listing and "Draft" in listing


@pytest.mark.parametrize("bad", ["2026-13", "july", "", "2026/07", "2026-07" * 5, "2099-01"])
def test_compile_form_refuses_a_bad_period_naming_the_field(client, world, login, bad):
    login(world["office"])
    r = post(client, "/assessments/compile", {"period": bad}, "/assessments/")
    assert r.status_code == 422
    assert "is-invalid" in field(r, "period")["class"]
    assert db.session.scalar(select(func.count()).select_from(Assessment)) == 0


def test_only_the_finance_office_has_the_compile_form(client, world, login):
    for who in ("pboc", "admin"):
        login(world[who])
        r = client.get("/assessments/")
        assert r.status_code == 200
        assert 'data-testid="compile-form"' not in r.get_data(as_text=True)
        token = csrf_from(r.get_data(as_text=True))
        r = client.post("/assessments/compile", data={"period": "2026-07", "csrf_token": token})
        assert r.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Assessment)) == 0


def test_bureau_is_refused_every_assessment_page(client, world, login):
    compile_("2026-07", world["office"])
    login(world["bureau"])
    for url in (
        "/assessments/",
        "/assessments/2026-07",
        f"/assessments/2026-07/advisors/{world['a1'].id}",
        "/assessments/2026-07/notice",
        "/assessments/2026-07/notice.xlsx",
        "/assessments/2026-07/notice.pdf",
        "/assessments/rubric",
        "/assessments/rubric/1",
    ):
        assert client.get(url).status_code == 403, url


# ------------------------------------------------------------------ the ranking and its review
def test_draft_ranking_for_the_finance_office(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    r = client.get("/assessments/2026-07")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    page = text_of(r)
    assert 'data-status="draft"' in html
    order = re.findall(r'<tr data-advisor="([^"]+)"', html)
    assert order == ["adv_a2", "adv_a1", "adv_gone", "adv_a3"]  # a2: weight spread (no data)
    for testid in (
        "recompile-form",
        "publish-form",
        "adjust-form",
        "comment-form",
        "score-distribution",
        "institution-table",
    ):
        assert f'data-testid="{testid}"' in html, testid
    assert "data-confirm=" in html  # publishing asks first
    # Every metric's points are columns; the institution table has both banks.
    assert "Visit coverage of assigned firms" in page and "Firm satisfaction" in page
    assert "农业银行江州分行" in page and "工商银行江州分行" in page
    assert '<div class="table-responsive">' in html
    assert " style=" not in html and "<script>" not in html  # the CSP allows neither


def test_adjustment_needs_a_reason_then_shows_beside_the_score(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    a3 = world["a3"]
    r = post(
        client,
        "/assessments/2026-07/adjustments",
        {"advisor": str(a3.id), "points": "12.5", "reason": "  ", "origin": "ranking"},
        "/assessments/2026-07",
    )
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Give the reason for the adjustment." in text_of(r)
    assert field(html, "points")["value"] == "12.5"  # what was typed is kept
    assert db.session.scalar(select(func.count()).select_from(AssessmentAdjustment)) == 0

    r = post(
        client,
        "/assessments/2026-07/adjustments",
        {"advisor": str(a3.id), "points": "abc", "reason": "表彰", "origin": "ranking"},
        "/assessments/2026-07",
    )
    assert r.status_code == 422 and "Enter the points as a number" in text_of(r)

    r = post(
        client,
        "/assessments/2026-07/adjustments",
        {"advisor": "999999", "points": "1", "reason": "x", "origin": "ranking"},
        "/assessments/2026-07",
    )
    assert r.status_code == 422 and "Choose an advisor of this assessment." in text_of(r)

    r = post(
        client,
        "/assessments/2026-07/adjustments",
        {
            "advisor": str(a3.id),
            "points": "7.5",  # within the rubric's bound of 10
            "reason": "协助处置风险事件",
            "origin": "ranking",
        },
        "/assessments/2026-07",
    )
    assert r.status_code == 302
    adjustment = db.session.scalar(select(AssessmentAdjustment))
    assert adjustment.points == Decimal("7.5") and adjustment.created_by_id == world["office"].id
    assert db.session.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.table_name == "assessment_adjustment")
    )
    html = client.get("/assessments/2026-07").get_data(as_text=True)
    row = re.search(r'<tr data-advisor="adv_a3".*?</tr>', html, re.S).group(0)
    assert "+7.5: 协助处置风险事件" in html_lib.unescape(row)
    assert ">7.50<" in row  # the final score: 0 computed + 7.5


def test_adjustment_from_the_drill_down_returns_there(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    url = f"/assessments/2026-07/advisors/{world['a2'].id}"
    r = post(
        client,
        "/assessments/2026-07/adjustments",
        {"advisor": str(world["a2"].id), "points": "-3", "reason": "", "origin": "advisor"},
        url,
    )
    assert r.status_code == 422
    assert 'data-testid="breakdown-heading"' in r.get_data(as_text=True)
    r = post(
        client,
        "/assessments/2026-07/adjustments",
        {"advisor": str(world["a2"].id), "points": "-3", "reason": "台账迟报", "origin": "advisor"},
        url,
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"{url}#adjustments")
    section = re.search(
        r'data-testid="adjustments".*?</section>', client.get(url).get_data(as_text=True), re.S
    ).group(0)
    assert re.sub(r"<[^>]+>", "", section).count("-3 · 台账迟报") == 1


def test_publish_freezes_the_page_and_refuses_compiles_with_409(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    version = db.session.scalar(select(Assessment.version))
    r = post(
        client, "/assessments/2026-07/publish", {"version": str(version)}, "/assessments/2026-07"
    )
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(Assessment.status)) == "published"

    html = client.get("/assessments/2026-07").get_data(as_text=True)
    assert 'data-status="published"' in html
    for testid in ("recompile-form", "publish-form", "adjust-form", "comment-form"):
        assert f'data-testid="{testid}"' not in html, testid

    r = post(client, "/assessments/compile", {"period": "2026-07"}, "/assessments/")
    assert r.status_code == 409
    assert "is published; it can no longer be compiled" in text_of(r)
    token = csrf_from(html)
    r = client.post("/assessments/2026-07/compile", data={"csrf_token": token})
    assert r.status_code == 409 and "no longer be compiled" in text_of(r)
    r = client.post(
        "/assessments/2026-07/adjustments",
        data={"csrf_token": token, "advisor": str(world["a1"].id), "points": "1", "reason": "x"},
    )
    assert r.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(AssessmentAdjustment)) == 0


def test_publish_with_a_stale_version_is_409(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    page = client.get("/assessments/2026-07").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    adjust_("2026-07", world["office"], world["a1"], 1, "meanwhile")  # recomputes the ranks
    compile_("2026-07", world["office"])  # a recompile bumps the version
    r = client.post(
        "/assessments/2026-07/publish", data={"csrf_token": csrf_from(page), "version": version}
    )
    assert r.status_code == 409
    assert "changed since you opened it" in text_of(r)
    assert db.session.scalar(select(Assessment.status)) == "draft"


def test_recompile_through_the_form_keeps_the_result(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    before = client.get("/assessments/2026-07").get_data(as_text=True)
    r = post(client, "/assessments/2026-07/compile", {}, "/assessments/2026-07")
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(Assessment.compile_count)) == 2
    after = client.get("/assessments/2026-07").get_data(as_text=True)
    table = re.compile(r'<table[^>]*data-testid="ranking-table".*?</table>', re.S)
    assert table.search(before).group(0) == table.search(after).group(0)


def test_comments_by_the_central_bank_on_a_draft(client, world, login):
    compile_("2026-07", world["office"])
    login(world["pboc"])
    html = client.get("/assessments/2026-07").get_data(as_text=True)
    assert 'data-testid="comment-form"' in html and 'data-testid="adjust-form"' not in html
    assert 'data-testid="publish-form"' not in html
    r = post(
        client,
        "/assessments/2026-07/comments",
        {"body": " ", "origin": "ranking"},
        "/assessments/2026-07",
    )
    assert r.status_code == 422 and "Write the comment." in text_of(r)
    r = post(
        client,
        "/assessments/2026-07/comments",
        {"body": "工商银行得分偏低，请核实。", "origin": "ranking"},
        "/assessments/2026-07",
    )
    assert r.status_code == 302
    url = f"/assessments/2026-07/advisors/{world['a3'].id}"
    r = post(
        client,
        "/assessments/2026-07/comments",
        {"body": "请补充走访记录", "origin": "advisor", "advisor": str(world["a3"].id)},
        url,
    )
    assert r.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AssessmentComment)) == 2
    assert "工商银行得分偏低" in text_of(client.get("/assessments/2026-07"))
    assert "请补充走访记录" in text_of(client.get(url))
    token = csrf_from(html)
    r = client.post(
        "/assessments/2026-07/adjustments",
        data={"csrf_token": token, "advisor": str(world["a1"].id), "points": "1", "reason": "x"},
    )
    assert r.status_code == 403


# ------------------------------------------------------------------ who sees what
def test_advisors_see_only_their_own_published_row(client, world, login):
    compile_("2026-07", world["office"])
    login(world["a2"])
    assert client.get("/assessments/2026-07").status_code == 404  # a draft
    assert client.get(f"/assessments/2026-07/advisors/{world['a2'].id}").status_code == 404
    assert "No published assessment includes you yet." in text_of(client.get("/assessments/"))
    publish_("2026-07", world["office"])
    listing = client.get("/assessments/").get_data(as_text=True)
    assert 'data-period="2026-07"' in listing
    html = client.get("/assessments/2026-07").get_data(as_text=True)
    assert re.findall(r'<tr data-advisor="([^"]+)"', html) == ["adv_a2"]
    assert 'data-testid="score-distribution"' not in html  # a chart of one is no chart
    assert 'data-testid="comments"' not in html
    assert client.get(f"/assessments/2026-07/advisors/{world['a2'].id}").status_code == 200
    assert client.get(f"/assessments/2026-07/advisors/{world['a1'].id}").status_code == 404
    for url in ("notice", "notice.xlsx", "notice.pdf"):
        assert client.get(f"/assessments/2026-07/{url}").status_code == 403, url
    assert client.get("/assessments/rubric").status_code == 403


def test_liaisons_see_their_institutions_rows(client, world, login):
    compile_("2026-07", world["office"])
    publish_("2026-07", world["office"])
    login(world["liaison"])
    html = client.get("/assessments/2026-07").get_data(as_text=True)
    assert re.findall(r'<tr data-advisor="([^"]+)"', html) == ["adv_a2", "adv_a1"]
    assert re.findall(r'<tr data-org="([^"]+)"', html) == ["ABC"]
    assert client.get(f"/assessments/2026-07/advisors/{world['a1'].id}").status_code == 200
    assert client.get(f"/assessments/2026-07/advisors/{world['a3'].id}").status_code == 404
    for url in ("notice", "notice.xlsx", "notice.pdf"):
        assert client.get(f"/assessments/2026-07/{url}").status_code == 403, url


def test_unknown_and_malformed_periods_are_404(client, world, login):
    login(world["office"])
    for url in (
        "/assessments/2026-08",
        "/assessments/not-a-period",
        "/assessments/2026-13/notice",
        "/assessments/2026-08/notice.pdf",
        f"/assessments/2026-07/advisors/{world['a1'].id}",
        "/assessments/2026-07/advisors/99999999999",
    ):
        assert client.get(url).status_code == 404, url
    compile_("2026-07", world["office"])
    idle = db.session.scalar(select(User).where(User.username == "adv_idle"))
    assert client.get(f"/assessments/2026-07/advisors/{idle.id}").status_code == 404


# ------------------------------------------------------------------ the drill-down
def test_drill_down_lists_the_records_behind_each_metric(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    a1 = world["a1"]
    r = client.get(f"/assessments/2026-07/advisors/{a1.id}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    page = text_of(r)
    metric_rows = re.findall(r'<tr data-metric="([^"]+)"', html)
    assert metric_rows == list(svc.rubric_spec(svc.current_rubric()).keys)
    # Raw values as people read them, next to points and weights.
    coverage = re.search(r'<tr data-metric="visit_coverage">.*?</tr>', html, re.S).group(0)
    assert "66.7%" in coverage and ">15<" in coverage
    assert "350.75 万元" in page
    # The records: visits, cases, loans, risk reports and ratings, each linked.
    visits = re.search(r'data-testid="records-visits_logged".*?</details>', html, re.S).group(0)
    assert len(re.findall(r'<tr data-kind="visit"', visits)) == 3  # the three July visits
    assert "/visits/" in visits
    loans = re.search(r'data-testid="records-amount_disbursed".*?</details>', html, re.S).group(0)
    assert len(re.findall(r'href="/visits/financing/\d+"', loans)) == 3
    cases = re.search(r'data-testid="records-visit_coverage".*?</details>', html, re.S).group(0)
    assert re.search(r'href="/referrals/\d+"', cases)
    info = re.search(r'data-testid="records-info_reports".*?</details>', html, re.S).group(0)
    assert len(re.findall(r'href="/risks/\d+"', info)) == 2
    assert 'data-testid="advisor-trend"' in html
    assert 'data-testid="adjust-form"' in html


def test_the_advisor_sees_their_own_breakdown_and_trend(client, world, login):
    compile_("2026-06", world["office"])
    publish_("2026-06", world["office"])
    compile_("2026-07", world["office"])
    publish_("2026-07", world["office"])
    compile_("2026-08", world["office"])  # a draft: not in the advisor's trend
    login(world["a1"])
    r = client.get(f"/assessments/2026-07/advisors/{world['a1'].id}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'data-testid="adjust-form"' not in html and 'data-testid="comment-form"' not in html
    assert len(re.findall(r'<tr data-kind="visit"', html)) >= 3
    trend = re.search(r'<figure[^>]*data-testid="advisor-trend">(.*?)</figure>', html, re.S)
    svg = _svg(trend.group(1))
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "2026-06" in labels and "2026-07" in labels and "2026-08" not in labels
    assert len(list(svg.iter(f"{SVG}circle"))) == 2


# ------------------------------------------------------------------ the notice
def test_notice_page_names_who_is_below_target_with_the_gap(app, client, world, login):
    compile_("2026-07", world["office"])
    adjust_("2026-07", world["office"], world["a2"], "8", "超额完成首贷任务")
    login(world["office"])
    r = client.get("/assessments/2026-07/notice")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    page = text_of(r)
    assert "2026-07" in page and "Rubric version 1" in page
    assert 'data-testid="notice-draft"' in html
    advisors_below = re.search(r'data-testid="advisors-below".*?</table>', html, re.S).group(0)
    below = html_lib.unescape(advisors_below)
    # a2 reaches 60.32 with the adjustment; the others are below 60, each with the gap.
    assert "顾问adv_a2" not in below
    assert "顾问adv_a1" in below and "11.08" in below  # 60 - 48.92
    assert EVIL in below and "60.00" in below  # a3: 0 points
    institutions_below = html_lib.unescape(
        re.search(r'data-testid="institutions-below".*?</table>', html, re.S).group(0)
    )
    # 农业银行 (60.32 + 48.92) / 2 = 54.62, gap 5.38; 工商银行 (22.32 + 0) / 2 = 11.16, gap 48.84
    rows = re.findall(
        r"<tr><td>([^<]+)</td><td[^>]*>([^<]+)</td><td[^>]*>([^<]+)</td></tr>", institutions_below
    )
    assert rows == [("工商银行江州分行", "11.16", "48.84"), ("农业银行江州分行", "54.62", "5.38")]
    assert 'data-testid="institution-trend"' in html
    assert "+8: 超额完成首贷任务" in page
    assert "<nav" in html  # the site's menu is there on screen; the print CSS hides it

    app.config["ASSESSMENT_TARGET_SCORE"] = 10
    try:
        page = text_of(client.get("/assessments/2026-07/notice"))
    finally:
        app.config.pop("ASSESSMENT_TARGET_SCORE")
    assert "Target score: 10.00 points" in page


def test_notice_xlsx_has_the_rows_with_formula_escaped_names(client, world, login):
    compile_("2026-07", world["office"])
    adjust_("2026-07", world["office"], world["a2"], "-2.5", "=cmd|' /C calc'!A0")
    login(world["pboc"])
    r = client.get("/assessments/2026-07/notice.xlsx")
    assert r.status_code == 200
    assert r.mimetype.endswith("spreadsheetml.sheet")
    assert 'filename="notice-2026-07.xlsx"' in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    # Each sheet opens with the notice's title and its number line; the header is row 3.
    ranking = [list(row) for row in wb.worksheets[0].iter_rows(values_only=True)][2:]
    assert ranking[0][:8] == [
        "Rank",
        "Advisor",
        "Institution",
        "Computed",
        "Adjustment",
        "Adjustment reasons",
        "Final score",
        "Rank in institution",
    ]
    assert "Visit coverage of assigned firms" in ranking[0]
    assert [row[1] for row in ranking[1:]] == [
        "顾问adv_a2",
        "顾问adv_a1",
        "顾问adv_gone",
        "'" + EVIL,
    ]
    a2 = ranking[1]
    assert a2[0] == 1 and a2[4] == -2.5 and a2[5] == "'=cmd|' /C calc'!A0 (-2.5)"
    assert a2[6] == pytest.approx(49.82)  # 52.32 - 2.5
    institutions = [list(row) for row in wb.worksheets[1].iter_rows(values_only=True)][2:]
    assert [row[1] for row in institutions[1:]] == ["农业银行江州分行", "工商银行江州分行"]
    below = [list(row) for row in wb.worksheets[2].iter_rows(values_only=True)]
    assert ["Advisor", "'" + EVIL + " (工商银行江州分行)", 0, 60] in below
    about = dict(row[:2] for row in wb.worksheets[3].iter_rows(min_row=4, values_only=True))
    assert about["Period"] == "2026-07" and about["Rubric version"] == 1


def _pdf_text(data: bytes) -> str:
    """The text shown on the PDF's pages, as a reader extracts it (through the embedded font's
    ToUnicode map)."""
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_notice_pdf_renders_chinese_text(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    r = client.get("/assessments/2026-07/notice.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.data.startswith(b"%PDF")
    assert b"2026-07" in r.data  # the document's subject (a draft has no number yet)
    # A CJK TrueType font embedded (a subset), not a CID font the reader must have.
    assert b"/FontFile2" in r.data and b"STSong-Light" not in r.data
    text = _pdf_text(r.data)
    assert "2026-07" in text
    assert "农业银行江州分行" in text and "顾问adv_a1" in text
    assert "DRAFT" in text


def test_charts_on_the_pages_are_valid_svg(client, world, login):
    compile_("2026-07", world["office"])
    login(world["office"])
    html = client.get("/assessments/2026-07").get_data(as_text=True)
    for svg in re.findall(r"<svg .*?</svg>", html, re.S):
        root = _svg(svg)
        assert root.tag == f"{SVG}svg" and root.get("role") == "img"
        assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    histogram = re.search(r'data-testid="score-distribution">(.*?)</figure>', html, re.S)
    root = _svg(histogram.group(1))
    counts = [r.find(f"{SVG}title").text for r in root.iter(f"{SVG}rect")]
    # scores 52.32, 48.92, 22.32, 0
    assert counts[0].endswith(": 1 advisor(s)") and counts[4].endswith(": 1 advisor(s)")
    assert counts[9].endswith(": 0 advisor(s)")


# ------------------------------------------------------------------ the rubric editor
def _editor_data(html: str) -> dict:
    """The editor's fields as the page shows them (what a browser would submit)."""
    data = {}
    for m in re.finditer(r"<input ([^>]*)>", html):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        name = attrs.get("name", "")
        if not name.startswith("metrics-"):
            continue
        if attrs.get("type") == "checkbox":
            if "checked" in m.group(1):
                data[name] = "y"
        else:
            data[name] = html_lib.unescape(attrs.get("value", ""))
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(
            r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', m.group(2)
        )
        data[m.group(1)] = next(g for g in chosen.groups() if g is not None)
    return data


def _row(data: dict, key: str) -> str:
    prefix = next(k for k, v in data.items() if k.endswith("-key") and v == key)
    return prefix[: -len("-key")]


def test_rubric_editor_saves_version_2(client, world, login):
    login(world["office"])
    r = client.get("/assessments/rubric")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'data-testid="rubric-form"' in html
    data = _editor_data(html)
    assert len([k for k in data if k.endswith("-key")]) == len(
        svc.rubric_spec(svc.current_rubric()).keys
    )
    visits, satisfaction, tiers = (
        _row(data, "visits_logged"),
        _row(data, "satisfaction"),
        _row(data, "first_loans"),
    )
    data[f"{visits}-weight"] = "15"
    data[f"{visits}-target"] = "20"
    data[f"{satisfaction}-weight"] = "15"
    data[f"{tiers}-tiers"] = "1:3，2:5; 3:6"
    data["note"] = "提高走访权重"
    r = post(client, "/assessments/rubric", data)
    assert r.status_code == 302, text_of(r)[:2000]
    newest = db.session.scalar(select(RubricVersion).order_by(RubricVersion.number.desc()))
    assert newest.number == 2 and newest.note == "提高走访权重"
    assert newest.created_by_id == world["office"].id
    spec = svc.rubric_spec(newest)
    assert spec.metric("visits_logged").weight == 15
    assert spec.metric("visits_logged").params["target"] == 20
    assert spec.metric("satisfaction").weight == 15
    assert [tuple(t) for t in spec.metric("first_loans").params["tiers"]] == [
        (1, 3),
        (2, 5),
        (3, 6),
    ]
    page = text_of(client.get("/assessments/rubric"))
    assert "Version 2" in page and "提高走访权重" in page
    r = client.get(f"/assessments/rubric/{newest.id}")
    assert r.status_code == 200 and "Rubric version 2" in text_of(r)
    first = db.session.scalar(select(RubricVersion.id).where(RubricVersion.number == 1))
    old = client.get(f"/assessments/rubric/{first}")
    assert old.status_code == 200 and "Rubric version 1" in text_of(old)
    assert client.get("/assessments/rubric/999999").status_code == 404


def test_rubric_editor_refuses_a_bad_weight_sum_naming_the_field(client, world, login):
    login(world["office"])
    data = _editor_data(client.get("/assessments/rubric").get_data(as_text=True))
    visits = _row(data, "visits_logged")
    data[f"{visits}-weight"] = "30"
    data["note"] = "这会失败"
    r = post(client, "/assessments/rubric", data)
    assert r.status_code == 422
    page = text_of(r)
    html = r.get_data(as_text=True)
    error = re.search(r'data-testid="weights-error">([^<]+)<', html).group(1)
    assert "The weights add up to 120" in error and "they must add up to 100" in error
    assert re.search(r'data-testid="weights-total"><span class="fw-semibold">120</span>', html)
    assert field(html, f"{visits}-weight")["value"] == "30"  # input kept
    assert "这会失败" in page
    assert db.session.scalar(select(func.count()).select_from(RubricVersion)) == 1

    data[f"{visits}-weight"] = "-5"
    r = post(client, "/assessments/rubric", data)
    assert r.status_code == 422
    cell = re.search(
        rf'name="{visits}-weight"[^>]*>\s*<div class="invalid-feedback"[^>]*>([^<]+)',
        r.get_data(as_text=True),
    )
    assert cell and "more than 0" in cell.group(1)

    for key in [k for k in data if k.endswith("-include")]:
        del data[key]  # nothing counts
    r = post(client, "/assessments/rubric", data)
    assert r.status_code == 422
    assert "Add at least one metric." in text_of(r)
    assert db.session.scalar(select(func.count()).select_from(RubricVersion)) == 1


def test_rubric_editor_field_errors_for_params(client, world, login):
    login(world["office"])
    data = _editor_data(client.get("/assessments/rubric").get_data(as_text=True))
    tiers, coverage = _row(data, "firms_financed"), _row(data, "visit_coverage")
    data[f"{tiers}-tiers"] = "1-4, two"
    data[f"{coverage}-target"] = "1.5"
    r = post(client, "/assessments/rubric", data)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert re.search(
        rf'name="{tiers}-tiers"[^>]*>\s*<div class="invalid-feedback"[^>]*>Write the tiers', html
    )
    assert re.search(
        rf'name="{coverage}-target"[^>]*>\s*<div class="invalid-feedback"[^>]*>Must be at most',
        html,
    )
    assert field(html, f"{tiers}-tiers")["value"] == "1-4, two"


def test_rubric_is_read_only_for_the_central_bank_and_admins(client, world, login):
    for who in ("pboc", "admin"):
        login(world[who])
        r = client.get("/assessments/rubric")
        assert r.status_code == 200
        html = r.get_data(as_text=True)
        assert 'data-testid="rubric-form"' not in html and 'data-testid="rubric-metrics"' in html
        r = client.post("/assessments/rubric", data={"csrf_token": csrf_from(html)})
        assert r.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(RubricVersion)) == 1


# ------------------------------------------------------------------ charts as pure functions
def _parse(markup) -> ET.Element:
    root = _svg(str(markup))
    assert root.tag == f"{SVG}svg"
    assert not any("style" in el.attrib for el in root.iter())
    assert root.find(f"{SVG}style") is None and root.find(f"{SVG}script") is None
    return root


def test_histogram_bins_values_and_escapes_text():
    svg = charts.histogram(
        [0, 9.99, 10, Decimal("55.5"), 100, 120, -4, None],
        title='Scores <2026> & "more"',
        desc="d",
        id_prefix="h1",
    )
    root = _parse(svg)
    assert root.get("aria-labelledby") == "h1-title h1-desc"
    assert root.find(f"{SVG}title").text == 'Scores <2026> & "more"'
    bars = [r.find(f"{SVG}title").text for r in root.iter(f"{SVG}rect")]
    assert len(bars) == 10
    counts = [int(b.rsplit(": ", 1)[1]) for b in bars]
    assert counts == [3, 1, 0, 0, 0, 1, 0, 0, 0, 2]  # -4 in the first bin, 120 in the last
    heights = [float(r.get("height")) for r in root.iter(f"{SVG}rect")]
    assert heights[0] > heights[1] > 0 and heights[2] == 0


def test_histogram_of_nothing_and_bad_input():
    root = _parse(charts.histogram([], title="t", desc="d"))
    assert all(float(r.get("height")) == 0 for r in root.iter(f"{SVG}rect"))
    with pytest.raises(ValueError):
        charts.histogram([1], title="t", desc="d", low=10, high=10)
    with pytest.raises(TypeError):
        charts.histogram(["12"], title="t", desc="d")
    with pytest.raises(ValueError):
        charts.histogram([float("nan")], title="t", desc="d")


def test_line_chart_gaps_target_and_legend():
    root = _parse(
        charts.line_chart(
            ["2026-05", "2026-06", "2026-07", "2026-08"],
            [("甲<银行>", [60, 70, None, 80]), ("乙", [None, None, Decimal("55.25"), None])],
            title="t",
            desc="d",
            y_max=100,
            target=60,
            target_label="目标 60",
            id_prefix="trend",
        )
    )
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 1  # 甲: 60-70 joined; 80 alone after the gap; 乙 a single dot
    assert len(lines[0].get("points").split()) == 2
    circles = list(root.iter(f"{SVG}circle"))
    assert len(circles) == 4
    assert circles[-1].find(f"{SVG}title").text == "乙 · 2026-07: 55.25"
    texts = [t.text for t in root.iter(f"{SVG}text") if t.text]
    assert "目标 60" in texts and "2026-05" in texts
    legend = [
        t.find(f"{SVG}title").text
        for t in root.iter(f"{SVG}text")
        if t.find(f"{SVG}title") is not None
    ]
    assert legend == ["甲<银行>", "乙"]
    with pytest.raises(ValueError):
        charts.line_chart(["a"], [("s", [1, 2])], title="t", desc="d")


def test_number_helpers():
    assert charts.fmt(Decimal("12.50")) == "12.5" and charts.fmt(60) == "60"
    assert charts.fmt(None) == "—"
    assert charts.nice_ceiling(7) == 10 and charts.nice_ceiling(0) == 1
    assert charts.nice_ceiling(101) == 200 and charts.nice_ceiling(23) == 25
    assert charts.ticks(100) == [0, 20, 40, 60, 80, 100]


def test_page_queries_do_not_grow_with_the_advisors(client, world, login, make, count_queries):
    compile_("2026-07", world["office"])
    adjust_("2026-07", world["office"], world["a1"], 1, "一")
    login(world["office"])
    urls = ("/assessments/2026-07", "/assessments/2026-07/notice", "/assessments/")

    def counts():
        out = []
        for url in urls:
            with count_queries() as q:
                assert client.get(url).status_code == 200
            out.append(q.count)
        return out

    before = counts()
    more = [world["city"].advisor(world["k2" if i % 2 else "k1"], f"adv_more{i}") for i in range(6)]
    compile_("2026-07", world["office"])
    adjust_("2026-07", world["office"], more[-1], 2, "二")
    after = counts()
    assert after == before, (before, after)
    assert db.session.scalar(select(func.count()).select_from(AssessmentAdjustment)) == 2


def test_the_ranking_comes_in_pages_with_the_whole_distribution(client, world, login, monkeypatch):
    from advisors.services import notice as notice_service

    monkeypatch.setattr(notice_service, "PAGE_SIZE", 2)
    compile_("2026-07", world["office"])
    login(world["office"])
    first = client.get("/assessments/2026-07")
    html = first.get_data(as_text=True)
    assert re.findall(r'<tr data-advisor="([^"]+)"', html) == ["adv_a2", "adv_a1"]
    assert "Advisors 1–2 of 4" in text_of(first)
    options = re.findall(r'<option value="(\d+)"', html)
    assert options == [str(world["a2"].id), str(world["a1"].id)]  # this page's advisors
    next_url = html_lib.unescape(re.search(r'href="([^"]+)" data-testid="next-page"', html)[1])
    assert next_url == "/assessments/2026-07?offset=2#ranking"
    second = client.get(next_url.split("#")[0]).get_data(as_text=True)
    assert re.findall(r'<tr data-advisor="([^"]+)"', second) == ["adv_gone", "adv_a3"]
    assert 'data-testid="next-page"' not in second and 'data-testid="previous-page"' in second

    def bands(page):
        svg = re.search(r'data-testid="score-distribution">(.*?)</figure>', page, re.S)[1]
        return [r.find(f"{SVG}title").text for r in _svg(svg).iter(f"{SVG}rect")]

    assert bands(html) == bands(second)  # every advisor, whatever the page
    assert sum(int(t.rsplit(": ", 1)[1].split()[0]) for t in bands(html)) == 4
    assert client.get("/assessments/2026-07?offset=abc").status_code == 200
    beyond = client.get("/assessments/2026-07?offset=40").get_data(as_text=True)
    assert re.findall(r'<tr data-advisor="([^"]+)"', beyond) == []


def test_the_liaisons_distribution_counts_its_advisors_only(client, world, login):
    compile_("2026-07", world["office"])
    publish_("2026-07", world["office"])
    login(world["liaison2"])
    html = client.get("/assessments/2026-07").get_data(as_text=True)
    svg = re.search(r'data-testid="score-distribution">(.*?)</figure>', html, re.S)[1]
    counts = [
        int(r.find(f"{SVG}title").text.rsplit(": ", 1)[1].split()[0])
        for r in _svg(svg).iter(f"{SVG}rect")
    ]
    assert counts == [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]  # gone 22.32, a3 0


def test_the_printable_notice_lists_the_first_advisors_and_the_downloads_all(
    client, world, login, monkeypatch
):
    from advisors.services import notice as notice_service

    monkeypatch.setattr(notice_service, "NOTICE_ROWS", 1)
    compile_("2026-07", world["office"])
    login(world["office"])
    html = client.get("/assessments/2026-07/notice").get_data(as_text=True)
    ranking = re.search(r'data-testid="notice-ranking".*?</table>', html, re.S)[0]
    assert len(re.findall(r"<tr data-advisor-id=", ranking)) == 1
    assert "The first 1 of 4 advisors" in text_of(client.get("/assessments/2026-07/notice"))
    below = html_lib.unescape(re.search(r'data-testid="advisors-below".*?</table>', html, re.S)[0])
    assert EVIL in below and "顾问adv_a2" not in below  # the lowest first
    assert 'data-testid="below-more"' in html
    wb = load_workbook(io.BytesIO(client.get("/assessments/2026-07/notice.xlsx").data))
    assert wb.worksheets[0].max_row == 7  # the title, its number line, the header, every advisor


def test_an_adjustment_from_a_later_page_comes_back_to_it(client, world, login, monkeypatch):
    from advisors.services import notice as notice_service

    monkeypatch.setattr(notice_service, "PAGE_SIZE", 2)
    compile_("2026-07", world["office"])
    login(world["office"])
    page = "/assessments/2026-07?offset=2"
    html = client.get(page).get_data(as_text=True)
    assert field(html, "offset")["value"] == "2"
    a3 = str(world["a3"].id)
    data = {"advisor": a3, "points": "2", "reason": "", "origin": "ranking", "offset": "2"}
    r = post(client, "/assessments/2026-07/adjustments", data, page)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert re.findall(r'<tr data-advisor="([^"]+)"', html) == ["adv_gone", "adv_a3"]
    assert f'<option value="{a3}" selected>' in html
    r = post(client, "/assessments/2026-07/adjustments", {**data, "reason": "补录"}, page)
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/assessments/2026-07?offset=2#ranking")
