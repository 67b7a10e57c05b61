"""Issue 12, what real users hit on the case page: (4) the firm's feedback link is made on
PUBLIC_BASE_URL, not on the host the staff member happens to use, the referring bureau may make
it on its resolved case, and once the firm has rated and the bureau has confirmed, the case page
shows both ratings, each saying who gave it; (5) the advisor picker reads "name · institution ·
load/capacity", assigning an advisor at capacity is refused until "assign anyway" is ticked,
and the suggestions fold away once the case has an advisor."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from advisors.audit import acting_as
from advisors.clock import today
from advisors.services import referrals as referral_service
from advisors.services import visits as visit_service
from models import AdvisorProfile, FeedbackLink, Referral, db
from tests.browser.conftest import DESKTOP, PASSWORD, _new_page, sign_in

pytestmark = pytest.mark.browser

PUBLIC = "https://jrb.example.gov.cn"
FIRM = "江州市回访测评有限公司"


def _referral(make, bureau, name: str = FIRM) -> int:
    item = {
        "credit_code": make.credit_code(),
        "name": name,
        "industry": "industry",
        "needs": ["financing"],
        "amount_wan": "200",
    }
    with acting_as(bureau):
        (result,) = referral_service.submit(bureau, [item], source="form")
    db.session.commit()
    assert result.status == "created", result.errors
    return result.referral_id


def test_feedback_link_on_the_public_address_and_both_ratings_on_the_case(
    app, browser, live_server, make, monkeypatch
):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC + "/")
    bureau = make.user(
        "bureau",
        org=make.org("bureau", code="GXJ", name="江州市工业和信息化局"),
        username="gxj_feedback",
        password=PASSWORD,
    )
    office = make.user("finance_office", username="jrb_feedback", password=PASSWORD)
    advisor = make.user("advisor", org=make.org("bank", code="ABC"), username="adv_feedback")
    bureau.locale = "en"
    db.session.commit()
    referral_id = _referral(make, bureau)
    with acting_as(office):
        referral_service.assign(office, [referral_id], advisor.username)
    db.session.commit()
    with acting_as(advisor):
        visit_service.log_visit(
            advisor,
            {
                "referral_id": referral_id,
                "visited_on": today().isoformat(),
                "mode": "onsite",
                "roles": ["guidance"],
                "summary": "实地走访，了解经营情况",
                "guidance_topic": "财务规范",
            },
        )
        referral = db.session.get(Referral, referral_id)
        referral_service.record_outcome(advisor, referral, "financed", Decimal("150"), "首贷落地")
    db.session.commit()

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "gxj_feedback")
        page.goto(f"/referrals/{referral_id}")
        page.locator("[data-testid=feedback-links]").click()  # the referring bureau may
        page.locator("[data-testid=feedback-create]").click()
        url = page.locator("[data-testid=feedback-url]").input_value()
        assert url.startswith(PUBLIC + "/feedback/r/"), url
        assert not url.startswith(live_server)
        assert "127.0.0.1" not in url
        expect(page.locator("[data-testid=feedback-qr]")).to_be_visible()
    finally:
        context.close()

    # The firm opens the link (here on the live server: the public host is the same app).
    firm_context, firm = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        firm.goto(urlsplit(url).path)
        expect(firm.locator("[data-testid=feedback-firm]")).to_have_text(FIRM)
        firm.locator("label[for=rating-3]").click()  # the fourth of 1-5
        expect(firm.locator("input[name=rating][value='4']")).to_be_checked()
        firm.locator("textarea[name=comment]").fill("顾问很专业")
        firm.locator("[data-testid=feedback-form] [type=submit]").click()
        expect(firm).to_have_url(re.compile(r"/feedback/thanks$"))
    finally:
        firm_context.close()
    db.session.expire_all()
    assert db.session.query(FeedbackLink.rating).scalar() == 4

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "gxj_feedback")
        page.goto(f"/referrals/{referral_id}")
        confirm = page.locator("[data-testid=confirm]")
        confirm.locator("select[name=satisfaction]").select_option("5")
        confirm.locator("textarea[name=comment]").fill("企业表示满意")
        confirm.get_by_role("button", name="Confirm and close").click()
        expect(page.locator(".alert-success")).to_contain_text("the case is closed")

        service = page.locator("[data-testid=case-service]")
        satisfaction = service.locator("[data-testid=case-satisfaction]")
        rating = service.locator("[data-testid=case-firm-rating]")
        expect(satisfaction).to_contain_text("5 / 5")
        expect(satisfaction.locator("[data-testid=given-by]")).to_have_text(
            "Confirmed by the referring bureau when it closed the case"
        )
        expect(rating).to_contain_text("4 / 5")
        expect(rating).to_contain_text("顾问很专业")
        expect(rating.locator("[data-testid=given-by]")).to_contain_text(
            "Rated by the firm through a feedback link"
        )
        # Beside each other: the firm's rating is the entry right after the bureau's.
        assert rating.evaluate(
            "el => el.previousElementSibling.previousElementSibling"
            " === document.querySelector('[data-testid=case-satisfaction]')"
        )
    finally:
        context.close()


def test_picker_shows_load_and_capacity_and_past_capacity_needs_assign_anyway(
    app, browser, live_server, make
):
    bureau = make.user("bureau", org=make.org("bureau", code="GXJ"), password=PASSWORD)
    office = make.user("finance_office", username="jrb_picker", password=PASSWORD)
    busy = make.user(
        "advisor", org=make.org("bank", code="ABC", name="农业银行江州分行"), username="adv_busy"
    )
    free = make.user(
        "advisor", org=make.org("bank", code="ICBC", name="工商银行江州分行"), username="adv_free"
    )
    busy.display_name, free.display_name = "张伟", "李娜"
    office.locale = "en"
    db.session.get(AdvisorProfile, busy.id).capacity = 1
    db.session.commit()
    earlier = _referral(make, bureau, "江州市已有案件有限公司")
    with acting_as(office):
        referral_service.assign(office, [earlier], busy.username)
    db.session.commit()
    referral_id = _referral(make, bureau)

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "jrb_picker")
        page.goto(f"/referrals/{referral_id}")
        assign = page.locator("[data-testid=assign]")
        panel = assign.locator("[data-testid=suggestions-panel]")
        expect(panel).to_have_attribute("open", "")  # unassigned: the suggestions are open
        expect(panel.locator("[data-testid=suggestions]")).to_be_visible()

        picker = assign.locator("select#advisor")
        expect(picker.locator("option[value=adv_busy]")).to_have_text(
            "张伟 · 农业银行江州分行 · 1/1 · full"
        )
        expect(picker.locator("option[value=adv_free]")).to_have_text(
            "李娜 · 工商银行江州分行 · 0/15"
        )
        expect(assign.locator("[data-testid=assign-anyway]")).to_have_count(0)

        # The advisor at capacity: refused, with the reason and the box to go past it.
        picker.select_option("adv_busy")
        assign.get_by_role("button", name="Assign", exact=True).click()
        expect(assign.locator(".invalid-feedback").first).to_contain_text(
            "张伟 has 1 open cases and a capacity of 1: assigning 1 more makes 2, past capacity."
        )
        anyway = assign.locator("[data-testid=assign-anyway] input[type=checkbox]")
        expect(anyway).to_be_visible()
        expect(anyway).not_to_be_checked()
        expect(page.locator("[data-testid=case-advisor]")).to_have_text("—")
        expect(picker).to_have_value("adv_busy")

        anyway.check()
        assign.get_by_role("button", name="Assign", exact=True).click()
        expect(page.locator(".alert-success")).to_contain_text("Case assigned.")
        expect(page.locator("[data-testid=case-advisor]")).to_contain_text("张伟")

        # Assigned: the suggestions fold away (a closed <details>), still there to reassign.
        assign = page.locator("[data-testid=assign]")
        panel = assign.locator("[data-testid=suggestions-panel]")
        expect(panel).to_have_count(1)
        assert panel.evaluate("el => el.tagName") == "DETAILS"
        expect(panel).not_to_have_attribute("open", re.compile(".*"))
        expect(panel.locator("[data-testid=suggestions]")).to_be_hidden()
        expect(assign.locator("select#advisor option[value=adv_busy]")).to_contain_text("2/1")
        expect(assign.get_by_role("button", name="Reassign")).to_be_visible()
    finally:
        context.close()
    db.session.expire_all()
    assert db.session.get(Referral, referral_id).advisor_id == busy.id
