"""Issue 12, what real users hit on the assessment pages: (1) compiling the month not yet over
says the figures are unfinished; on an advisor's page of that draft an adjustment past the
rubric's bound (±10) is refused with the reason, a valid one counts, and withdrawing it strikes
it through and puts the score back; (9) the notice of a published period reads as an official
通报 — issuer, 文号 〔year〕N号, centred title, the Chinese date and the 落款 — and its PDF
embeds a font."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from advisors import periods as periods_module
from advisors.audit import acting_as
from advisors.clock import today
from advisors.i18n import local
from advisors.services import assessments as assessment_service
from advisors.services.notice import chinese_date
from models import Assessment, AssessmentAdjustment, db
from tests.browser.conftest import DESKTOP, _new_page, sign_in
from tests.browser.test_assessment_flow import _city
from tests.test_assessment_compile import compile_

pytestmark = pytest.mark.browser

ISSUER = "江州市地方金融管理局"


def test_unfinished_period_bound_adjustment_and_withdrawal(app, browser, live_server, make):
    people = _city(make)
    people["office"].locale = "en"
    db.session.commit()
    period = periods_module.month_of(today()).key
    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "jrb_assess")
        page.goto("/assessments/")
        page.locator("[data-testid=compile-form] input[name=period]").fill(period)
        page.locator("[data-testid=compile-form] [type=submit]").click()
        expect(page.locator("[data-testid=assessment-status]")).to_have_attribute(
            "data-status", "draft"
        )
        # This month is not over: the page says the figures will still change.
        notice = page.locator("[data-testid=in-progress]")
        expect(notice).to_contain_text(f"{period} is not over")
        expect(notice).to_contain_text(periods_module.month_of(today()).last_day.isoformat())

        page.locator("[data-testid=advisor-link]", has_text=people["star"].display_name).click()
        expect(page.locator("[data-testid=breakdown-heading]")).to_have_text(
            people["star"].display_name
        )
        expect(page.locator("[data-testid=in-progress]")).to_be_visible()
        expect(page.locator("[data-testid=adjustment-bound]")).to_contain_text("at most 10 points")
        final = page.locator("[data-testid=final-score]")
        before = Decimal(final.inner_text())

        # Past the bound: refused, the field names the bound, nothing recorded.
        form = page.locator("[data-testid=adjust-form]")
        form.locator("input[name=points]").fill("11")
        form.locator("textarea[name=reason]").fill("牵头完成全市首贷续贷专项行动")
        form.locator("[type=submit]").click()
        points = page.locator("[data-testid=adjust-form] input[name=points]")
        expect(points).to_have_class(re.compile("is-invalid"))
        expect(points).to_have_value("11")
        expect(page.locator("[data-testid=adjust-form] .invalid-feedback").first).to_contain_text(
            "an adjustment is at most 10 points either way"
        )
        expect(final).to_have_text(f"{before:.2f}")
        assert db.session.query(AssessmentAdjustment).count() == 0

        # Within it: counted.
        form.locator("input[name=points]").fill("-4")
        form.locator("textarea[name=reason]").fill("走访记录不完整，经核实扣分")
        form.locator("[type=submit]").click()
        expect(page.locator(".alert-success")).to_contain_text("Adjustment recorded")
        expect(final).to_have_text(f"{before - 4:.2f}")
        entry = page.locator("[data-testid=adjustments] li[data-adjustment]")
        expect(entry).to_have_count(1)
        expect(entry).to_contain_text("-4 · 走访记录不完整，经核实扣分")
        expect(entry.locator("del")).to_have_count(0)

        # Withdrawn (after the confirmation): struck through, marked, the score back.
        page.once("dialog", lambda dialog: dialog.accept())
        entry.locator("[data-testid=withdraw-form] [type=submit]").click()
        expect(page.locator(".alert-success")).to_contain_text("Adjustment withdrawn")
        expect(entry).to_have_attribute("data-withdrawn", "true")
        expect(entry.locator("del")).to_contain_text("-4 · 走访记录不完整，经核实扣分")
        struck = entry.locator("del").evaluate("el => getComputedStyle(el).textDecorationLine")
        assert struck == "line-through"
        expect(entry).to_contain_text("Withdrawn")
        expect(entry.locator("[data-testid=withdrawn-by]")).to_be_visible()
        expect(entry.locator("[data-testid=withdraw-form]")).to_have_count(0)
        expect(final).to_have_text(f"{before:.2f}")
    finally:
        context.close()
    db.session.expire_all()
    adjustment = db.session.query(AssessmentAdjustment).one()
    assert adjustment.withdrawn_at is not None


def test_published_notice_is_an_official_document_with_an_embedded_font_pdf(
    app, browser, live_server, make, tmp_path
):
    make.org("finance_office", code="JRB", name=ISSUER)  # the first: the notice's issuer
    people = _city(make)
    period = periods_module.month_of(today()).key
    compile_(period)
    with acting_as(people["office"]):
        assessment_service.publish(people["office"], period, doc_number=7)
    db.session.commit()
    published = db.session.query(Assessment).one()
    year = local(published.published_at).year
    issued = chinese_date(local(published.published_at).date())

    context, page = _new_page(browser, live_server, viewport=DESKTOP)  # Chinese, the default
    try:
        sign_in(page, "jrb_assess")
        page.goto(f"/assessments/{period}")
        page.locator("[data-testid=notice-link]").click()
        expect(page).to_have_url(f"{live_server}/assessments/{period}/notice")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

        issuer = page.locator("[data-testid=notice-issuer]")
        expect(issuer).to_have_text(ISSUER)
        number = page.locator("[data-testid=notice-number]")
        expect(number).to_have_text(f"〔{year}〕7号")
        expect(page.locator("[data-testid=notice-draft]")).to_have_count(0)

        title = page.locator("[data-testid=notice-title]")
        expect(title).to_contain_text("通报")
        expect(title).to_contain_text(f"{year}年")
        for part in (issuer, number, title):
            assert part.evaluate("el => getComputedStyle(el).textAlign") == "center"
        # Centred on the page, not merely a centred text: its box is symmetric in the article.
        article = page.locator("[data-testid=notice]").bounding_box()
        box = title.bounding_box()
        left = box["x"] - article["x"]
        right = article["x"] + article["width"] - (box["x"] + box["width"])
        assert abs(left - right) < 2, (left, right)

        # The 落款: the issuer over the date in Chinese numerals, at the end, to the right.
        signature = page.locator("[data-testid=notice-signature]")
        expect(signature.locator("[data-testid=signature-issuer]")).to_have_text(ISSUER)
        expect(signature.locator("[data-testid=notice-date]")).to_have_text(issued)
        assert re.fullmatch(
            r"[〇一二三四五六七八九]{4}年[一二三四五六七八九十]+月[一二三四五六七八九十]+日", issued
        )
        sig = signature.bounding_box()
        assert sig["x"] > article["x"] + article["width"] / 2  # right of the middle
        ranking = page.locator("[data-testid=notice-ranking]").bounding_box()
        assert sig["y"] > ranking["y"] + ranking["height"]  # after the body

        with page.expect_download() as info:
            page.locator("[data-testid=notice-pdf]").click()
        path = tmp_path / "notice.pdf"
        info.value.save_as(path)
        data = path.read_bytes()
        assert data.startswith(b"%PDF")
        assert b"/FontFile2" in data  # a TrueType font embedded, so the Chinese prints anywhere
    finally:
        context.close()
