"""Issue 12, what real users hit on the first days of a real city (10): a person an
administrator adds in the browser must choose their own password at first sign-in (every page
leads to the password page until then); the policy catalogue marks the deferral of principal
and interest, ended with 2022, as expired; an insurer's advisor logging a visit is offered banks,
never an insurer, as the lender."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from advisors.audit import acting_as
from advisors.labels import labels
from advisors.services import policies as policy_service
from advisors.services import referrals as referral_service
from models import User, db
from tests.browser.conftest import DESKTOP, PASSWORD, _new_page, sign_in
from tests.browser.test_real_city import open_more

pytestmark = pytest.mark.browser

GIVEN = "Jiangzhou-Temp-4471"
CHOSEN = "Lanting-Xu-Road-2086"


def test_a_user_added_by_the_admin_chooses_a_password_before_anything_else(
    app, browser, live_server, make
):
    admin = make.user("admin", username="admin_first", password=PASSWORD)
    admin.locale = "en"
    db.session.commit()
    office = make.org("finance_office", code="JRB", name="江州市地方金融管理局")

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "admin_first")
        open_more(page)
        page.get_by_role("link", name="People").click()
        page.get_by_role("link", name="Add a user").click()
        page.locator("#username").fill("chenjing")
        page.locator("#display_name").fill("陈静")
        page.locator("#role").select_option("finance_office")
        org = page.locator("#org")
        expect(org.locator(f"option[value='{office.id}']")).to_contain_text("江州市地方金融管理局")
        org.select_option(str(office.id))
        page.locator("#password").fill(GIVEN)
        page.locator("#confirm").fill(GIVEN)
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".alert-success")).to_contain_text(
            "They must choose their own password at first sign-in"
        )
    finally:
        context.close()
    db.session.expire_all()
    assert db.session.query(User.must_change_password).filter_by(username="chenjing").scalar()

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        page.goto("/login")
        page.locator("#username").fill("chenjing")
        page.locator("#password").fill(GIVEN)
        page.locator("form:has(#password) [type=submit]").click()
        expect(page).to_have_url(f"{live_server}/account/password")
        expect(page.locator(".alert-warning")).to_be_visible()
        # Every other page leads back here until the password is changed.
        for path in ("/", "/referrals/", "/policies/", "/notifications/", "/account/"):
            page.goto(path)
            expect(page).to_have_url(f"{live_server}/account/password")
            expect(page.locator("[data-testid=home-heading]")).to_have_count(0)

        page.locator("#current_password").fill(GIVEN)
        page.locator("#new_password").fill(CHOSEN)
        page.locator("#confirm").fill(CHOSEN)
        page.locator("form:has(#new_password) [type=submit]").click()
        expect(page).not_to_have_url(f"{live_server}/account/password")
        expect(page.locator(".alert-success").first).to_be_visible()

        page.goto("/")
        expect(page).to_have_url(f"{live_server}/")
        expect(page.locator("[data-testid=home-heading]")).to_be_visible()
        page.goto("/referrals/")
        expect(page.locator("[data-testid=referrals-heading]")).to_be_visible()
    finally:
        context.close()
    db.session.expire_all()
    assert not db.session.query(User.must_change_password).filter_by(username="chenjing").scalar()


def test_catalogue_marks_the_deferral_expired(app, browser, live_server, make):
    with acting_as(label="test"):
        assert policy_service.seed_catalogue() > 1
    db.session.commit()
    make.user("pboc", username="rhzh_tools", password=PASSWORD)

    context, page = _new_page(browser, live_server, viewport=DESKTOP)  # Chinese, the default
    try:
        sign_in(page, "rhzh_tools")
        open_more(page)
        page.get_by_role("link", name="政策工具", exact=True).click()
        tools = page.locator("[data-testid=tool-list] .list-group-item")
        deferral = tools.filter(has_text="普惠小微企业贷款延期还本付息")
        expect(deferral).to_have_count(1)
        badge = deferral.locator("[data-validity]")
        expect(badge).to_have_attribute("data-validity", "expired")
        expect(badge).to_have_text(labels("policy_validity")["expired"])
        expect(deferral).to_contain_text("2022-12-31")
        # The others still in force are not marked expired.
        assert page.locator("[data-validity=valid]").count() >= 1
    finally:
        context.close()


def test_an_insurers_advisor_is_offered_no_insurer_as_lender(app, browser, live_server, make):
    bureau = make.user("bureau", org=make.org("bureau", code="GXJ"))
    office = make.user("finance_office")
    insurer = make.org("insurer", code="PICC", name="人保财险江州分公司")
    make.org("insurer", code="CPIC", name="太平洋财险江州分公司")
    make.org("bank", code="ABC", name="农业银行江州分行")
    make.org("bank", code="ICBC", name="工商银行江州分行")
    advisor = make.user("advisor", org=insurer, username="adv_insurer", password=PASSWORD)
    item = {
        "credit_code": make.credit_code(),
        "name": "江州市保险顾问走访有限公司",
        "industry": "industry",
        "needs": ["financing", "insurance"],
        "amount_wan": "100",
    }
    with acting_as(bureau):
        (result,) = referral_service.submit(bureau, [item], source="form")
    db.session.commit()
    with acting_as(office):
        referral_service.assign(office, [result.referral_id], advisor.username)
    db.session.commit()

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "adv_insurer")
        page.goto(f"/referrals/{result.referral_id}")
        page.locator("[data-testid=log-visit]").click()
        expect(page.locator("[data-visit-form]")).to_be_visible()
        page.locator('input[name=roles][value="financing"]').check()
        lender = page.locator("#fin_institution")
        expect(lender).to_be_visible()
        values = [o.get_attribute("value") for o in lender.locator("option").all()]
        labels = lender.locator("option").all_inner_texts()
        assert sorted(v for v in values if v) == ["ABC", "ICBC"], values
        assert not any("财险" in label for label in labels), labels
        expect(lender).to_have_value("")  # nothing chosen for them: the insurer is no lender
    finally:
        context.close()
