"""Issue 5's browser story: the finance office compiles this month, opens an advisor's
breakdown, adds an adjustment, publishes, and downloads the ranking notice; on a phone the
ranking page fits 375 px (its tables scroll inside their own box)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from advisors import periods as periods_module
from advisors.audit import acting_as
from advisors.clock import today
from advisors.services import referrals as referral_service
from advisors.services import visits as visit_service
from models import Assessment, AssessmentAdjustment, db
from tests.browser.conftest import DESKTOP, PASSWORD, PHONE, _new_page, sign_in
from tests.test_assessment_compile import compile_

pytestmark = pytest.mark.browser


def _city(make) -> dict:
    """A bureau's two referrals, assigned to two advisors of two banks, each visited today
    through the services (one with a loan disbursed to a first-time borrower)."""
    bureau = make.user(
        "bureau",
        org=make.org("bureau", code="GXJ", name="市工业和信息化局"),
        username="gxj_assess",
        password=PASSWORD,
    )
    office = make.user("finance_office", username="jrb_assess", password=PASSWORD)
    bank_a = make.org("bank", code="ABC", name="农业银行江州分行")
    bank_b = make.org("bank", code="ICBC", name="工商银行江州分行")
    star = make.user("advisor", org=bank_a, username="adv_star", password=PASSWORD)
    quiet = make.user("advisor", org=bank_b, username="adv_quiet", password=PASSWORD)
    star.display_name, quiet.display_name = "张伟", "李娜"
    db.session.commit()
    items = [
        {
            "credit_code": make.credit_code(),
            "name": f"江州考核测试{i}号有限公司",
            "industry": "industry",
            "needs": ["financing", "policy"],
            "amount_wan": "200",
        }
        for i in range(2)
    ]
    with acting_as(bureau):
        results = referral_service.submit(bureau, items, source="form")
    db.session.commit()
    assert all(r.status == "created" for r in results), [r.errors for r in results]
    ids = [r.referral_id for r in results]
    with acting_as(office):
        referral_service.assign(office, [ids[0]], star.username)
        referral_service.assign(office, [ids[1]], quiet.username)
    db.session.commit()
    with acting_as(star):
        visit_service.log_visit(
            star,
            {
                "referral_id": ids[0],
                "visited_on": today().isoformat(),
                "mode": "onsite",
                "roles": ["financing", "information"],
                "summary": "实地走访，落实首笔贷款",
                "financing": {
                    "stage": "disbursed",
                    "amount_wan": "150",
                    "institution": "ABC",
                    "first_loan": True,
                    "unsecured": False,
                },
                "information": {"note": "经营正常", "risk_signal": False},
            },
        )
    db.session.commit()
    with acting_as(quiet):
        visit_service.log_visit(
            quiet,
            {
                "referral_id": ids[1],
                "visited_on": today().isoformat(),
                "mode": "phone",
                "roles": ["guidance"],
                "summary": "电话沟通经营情况",
                "guidance_topic": "财务规范",
            },
        )
    db.session.commit()
    return {"office": office, "star": star, "quiet": quiet}


def test_compile_review_adjust_publish_and_download_the_notice(
    app, browser, live_server, make, tmp_path
):
    people = _city(make)
    period = periods_module.month_of(today()).key
    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "jrb_assess")
        page.goto("/assessments/")
        expect(page.locator("[data-testid=assessments-heading]")).to_be_visible()
        page.locator("[data-testid=compile-form] input[name=period]").fill(period)
        page.locator("[data-testid=compile-form] [type=submit]").click()
        expect(page.locator("[data-testid=ranking-heading]")).to_contain_text(period)
        expect(page.locator("[data-testid=assessment-status]")).to_have_attribute(
            "data-status", "draft"
        )
        rows = page.locator("[data-testid=ranking-table] tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-advisor", "adv_star")
        expect(page.locator("[data-testid=score-distribution] svg")).to_be_visible()

        # The breakdown: the visit and the loan behind the points.
        page.locator("[data-testid=advisor-link]", has_text=people["star"].display_name).click()
        expect(page.locator("[data-testid=breakdown-heading]")).to_contain_text(
            people["star"].display_name
        )
        visits = page.locator("[data-testid=records-visits_logged]")
        visits.locator("summary").click()
        expect(visits.locator("tr[data-kind=visit]")).to_have_count(1)
        loans = page.locator("[data-testid=records-first_loans]")
        loans.locator("summary").click()
        loan_link = loans.locator("tr[data-kind=financing] a")
        expect(loan_link).to_be_visible()
        assert loan_link.get_attribute("href").startswith("/visits/financing/")
        score_before = page.locator("[data-testid=final-score]").inner_text()

        # An adjustment: refused without a reason, recorded with one.
        form = page.locator("[data-testid=adjust-form]")
        form.locator("input[name=points]").fill("5")
        form.locator("[type=submit]").click()
        form = page.locator("[data-testid=adjust-form]")
        expect(form.locator("textarea[name=reason]")).to_have_class(re.compile("is-invalid"))
        expect(form.locator(".invalid-feedback")).to_be_visible()
        expect(form.locator("input[name=points]")).to_have_value("5")
        form.locator("textarea[name=reason]").fill("协助处置辖区风险事件")
        form.locator("[type=submit]").click()
        expect(page.locator("[data-testid=adjustments]")).to_contain_text("协助处置辖区风险事件")
        expect(page.locator("[data-testid=final-score]")).to_have_text(
            f"{Decimal(score_before) + 5:.2f}"
        )

        # Back on the ranking: the reason beside the score; then publish (confirming).
        page.goto(f"/assessments/{period}")
        star_row = page.locator("tr[data-advisor=adv_star]")
        expect(star_row.locator("[data-testid=adjustment]")).to_contain_text(
            "+5: 协助处置辖区风险事件"
        )
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("[data-testid=publish-form] [type=submit]").click()
        expect(page.locator("[data-testid=assessment-status]")).to_have_attribute(
            "data-status", "published"
        )
        expect(page.locator("[data-testid=publish-form]")).to_have_count(0)
        expect(page.locator("[data-testid=adjust-form]")).to_have_count(0)

        # The notice: the printable page, then the spreadsheet and the PDF.
        page.locator("[data-testid=notice-link]").click()
        # An official notice: its title names the month, its number was given on publishing.
        expect(page.locator("[data-testid=notice-title]")).to_contain_text(str(today().year))
        expect(page.locator("[data-testid=notice-number]")).to_contain_text(f"〔{today().year}〕1")
        expect(page.locator("[data-testid=notice-signature]")).to_be_visible()
        expect(page.locator("[data-testid=notice-draft]")).to_have_count(0)
        expect(page.locator("[data-testid=advisors-below]")).to_contain_text(
            people["quiet"].display_name
        )
        with page.expect_download() as info:
            page.locator("[data-testid=notice-xlsx]").click()
        path = tmp_path / "notice.xlsx"
        info.value.save_as(path)
        assert info.value.suggested_filename == f"notice-{period}.xlsx"
        sheet = load_workbook(path).worksheets[0]
        ranking = [list(r) for r in sheet.iter_rows(min_row=3, values_only=True)]  # the header
        assert [r[1] for r in ranking[1:]] == [
            people["star"].display_name,
            people["quiet"].display_name,
        ]
        assert ranking[1][5] == "协助处置辖区风险事件（+5）"  # Chinese brackets in Chinese
        with page.expect_download() as info:
            page.locator("[data-testid=notice-pdf]").click()
        pdf = tmp_path / "notice.pdf"
        info.value.save_as(pdf)
        assert pdf.read_bytes().startswith(b"%PDF")

        assert all(url.startswith(live_server) for url in page.requested_urls), [
            u for u in page.requested_urls if not u.startswith(live_server)
        ]
    finally:
        context.close()

    db.session.expire_all()
    assert db.session.query(Assessment.status).scalar() == "published"
    assert db.session.query(AssessmentAdjustment.reason).scalar() == "协助处置辖区风险事件"


def test_ranking_page_fits_a_phone(app, browser, live_server, make):
    _city(make)
    period = periods_module.month_of(today()).key
    compile_(period)  # as the scheduler would
    context, page = _new_page(browser, live_server, viewport=PHONE, is_mobile=True)
    try:
        sign_in(page, "jrb_assess")
        page.goto(f"/assessments/{period}")
        expect(page.locator("[data-testid=ranking-heading]")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        table_box = page.locator("[data-testid=ranking-table]").locator("xpath=..")
        assert "table-responsive" in table_box.get_attribute("class")
        publish = page.locator("[data-testid=publish-form] [type=submit]")
        expect(publish).to_be_visible()
        box = publish.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["height"] >= 44  # big enough to tap
    finally:
        context.close()
