"""Issue 4's browser story at phone width: an advisor opens the workbench, logs a visit in two
roles (policy promoter and financing servicer) opening a financing application, then records the
disbursement on the application page and the outcome of the case."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from advisors.audit import acting_as
from advisors.services import referrals as referral_service
from models import FinancingApplication, PolicyTool, Referral, db
from tests.browser.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.browser


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375 + 1, f"page is {width}px wide at 375px"


def test_advisor_logs_a_visit_with_financing_and_records_disbursement(app, phone_page, make):
    page = phone_page
    bank = make.org("bank", code="ABC", name="农业银行江州分行")
    bureau = make.user("bureau", org=make.org("bureau", code="GXJ"), password=PASSWORD)
    office = make.user("finance_office", password=PASSWORD)
    advisor = make.user("advisor", org=bank, username="adv_phone", password=PASSWORD)
    db.session.add(
        PolicyTool(code="zhixiao", name="支农支小再贷款", description="", eligible_types=[])
    )
    db.session.commit()
    item = {
        "credit_code": make.credit_code(),
        "name": "江州市手机走访有限公司",
        "industry": "industry",
        "needs": ["financing", "policy"],
        "amount_wan": "300",
    }
    with acting_as(bureau):
        (result,) = referral_service.submit(bureau, [item], source="form")
    db.session.commit()
    with acting_as(office):
        referral_service.assign(office, [result.referral_id], advisor.username)
    db.session.commit()

    sign_in(page, advisor.username)
    # The workbench lists the firm with a one-tap "log a visit".
    expect(page.get_by_text("江州市手机走访有限公司").first).to_be_visible()
    _no_sideways_scroll(page)
    page.goto(f"/referrals/{result.referral_id}")
    page.locator("[data-testid=log-visit]").click()

    # The visit: two roles; only their sections show.
    expect(page.locator("[data-visit-form]")).to_be_visible()
    _no_sideways_scroll(page)
    page.locator('input[name=roles][value="policy"]').check()
    page.locator('input[name=roles][value="financing"]').check()
    expect(page.locator('.role-section[data-role="guidance"]')).to_be_hidden()
    expect(page.locator('.role-section[data-role="financing"]')).to_be_visible()
    page.locator("#summary").fill("到企业车间走访，讲解支农支小再贷款，企业申请流动资金贷款。")
    page.locator('.role-section[data-role="policy"] input[name=policies]').first.check()
    page.locator("#fin_stage").select_option("applied")
    page.locator("#fin_amount").fill("300")
    page.locator("#fin_product").fill("科创贷")
    page.locator("#fin_first_loan").check()
    page.locator("[data-testid=save-visit]").click()
    expect(page.locator("[data-testid=visit-heading]")).to_be_visible()
    expect(page.locator("[data-testid=visit-financing]")).to_contain_text("300")

    db.session.expire_all()
    referral = db.session.get(Referral, result.referral_id)
    assert referral.status == "in_service"
    application = db.session.query(FinancingApplication).one()
    assert application.first_loan

    # Disbursement on the application page.
    page.locator("[data-testid=visit-financing] a").first.click()
    expect(page.locator("[data-testid=application-heading]")).to_be_visible()
    _no_sideways_scroll(page)
    page.locator("#stage").select_option("disbursed")
    page.locator("#amount_wan").fill("280")
    page.locator("[data-testid=save-stage]").click()
    expect(page.locator("[data-testid=disbursed]")).to_contain_text("280")

    # The outcome: financed, the amount prefilled from the disbursement.
    page.goto(f"/referrals/{result.referral_id}")
    page.locator("[data-testid=record-outcome]").click()
    expect(page.locator("#amount_wan")).to_have_value("280.00")
    page.locator("[data-testid=save-outcome]").click()
    expect(page.locator("[data-testid=case-outcome]")).to_contain_text("280")
    db.session.expire_all()
    assert db.session.get(Referral, result.referral_id).status == "resolved"
