"""Issue 10's browser story, "a real city starts without the demo": on an empty city the finance
office keeps its townships under More → Townships (one added with the form, a list imported with
a per-row report); a bureau refers a firm in a township the city has not listed and is warned;
the office finds the case by its "not matched" badge and filter, matches the name once, and the
case then shows the listed township. A second bureau's co-referral proposes a firm detail that
the office accepts on the case page, and the firm registry shows it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from advisors.audit import acting_as
from advisors.services import referrals as referral_service
from models import Enterprise, Referral, Township, db
from tests.browser.conftest import DESKTOP, PASSWORD, _new_page, sign_in

pytestmark = pytest.mark.browser

FIRM = "江州市新城精工机械有限公司"
OTHER = "江州市远郊农业发展有限公司"


def open_more(page) -> None:
    """Open the navigation's "More" menu once Bootstrap's script is bound to it (a click
    before the page's load event follows the bare ``href="#"`` instead)."""
    page.wait_for_load_state("load")
    page.locator("[data-testid=nav-more]").click()
    expect(page.locator("[data-testid=nav-more] + .dropdown-menu")).to_be_visible()


def _english(*users) -> None:
    for user in users:
        user.locale = "en"  # English labels (msgids), stable for the assertions
    db.session.commit()


def test_townships_kept_by_the_office_and_an_unlisted_name_matched_once(
    app, browser, live_server, make, tmp_path
):
    office = make.user(
        "finance_office",
        org=make.org("finance_office", code="JRB", name="江州市地方金融管理局"),
        username="jrb_city",
        password=PASSWORD,
    )
    bureau = make.user(
        "bureau",
        org=make.org("bureau", code="GXJ", name="江州市工业和信息化局"),
        username="gxj_city",
        password=PASSWORD,
    )
    _english(office, bureau)
    assert db.session.query(Township).count() == 0  # a real city: nothing but what we made

    # 1. The office adds a township with the form and imports a list with one bad row.
    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "jrb_city")
        open_more(page)
        page.locator("[data-testid=nav-townships]").click()
        expect(page).to_have_url(f"{live_server}/townships/")
        listing = page.locator("[data-testid=township-list] tbody")
        expect(listing).to_contain_text("No townships yet")

        add = page.locator("[data-testid=township-add]")
        add.locator("input[name=code]").fill("330102001")
        add.locator("input[name=name]").fill("城关街道")
        add.locator("[type=submit]").click()
        expect(page.locator(".alert-success")).to_contain_text("Township 城关街道 added.")
        expect(listing.locator("tr", has_text="城关街道")).to_contain_text("330102001")

        csv = tmp_path / "townships.csv"
        csv.write_text("code,name\n330102002,东门街道\n330102002,西门街道\n", encoding="utf-8")
        page.locator("[data-testid=township-import] input[type=file]").set_input_files(str(csv))
        page.locator("[data-testid=township-import] [type=submit]").click()
        summary = page.locator("[data-testid=import-summary]")
        expect(summary).to_contain_text("Added: 1")
        expect(summary).to_contain_text("Rows not saved: 1")
        problems = page.locator("[data-testid=import-problems] tbody tr")
        expect(problems).to_have_count(1)
        cells = problems.first.locator("td")
        expect(cells.nth(0)).to_have_text("3")  # the file's third row (the header is row 1)
        expect(cells.nth(1)).to_have_text("Code")
        expect(cells.nth(2)).to_contain_text("330102002 appears earlier in this file (row 2)")

        page.get_by_role("link", name="Back to the list").click()
        expect(listing.locator("tr", has_text="东门街道")).to_contain_text("330102002")
        expect(listing).not_to_contain_text("西门街道")
    finally:
        context.close()

    # 2. A bureau refers a firm with the form, typing a township the city has not listed.
    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "gxj_city")
        page.goto("/referrals/new")
        options = page.locator("datalist#township-options option")
        expect(options).to_have_count(2)
        assert sorted(o.get_attribute("value") for o in options.all()) == ["东门街道", "城关街道"]
        assert page.locator("#township").get_attribute("list") == "township-options"
        page.locator("#credit_code").fill(make.credit_code())
        page.locator("#name").fill(FIRM)
        page.locator("#industry").select_option("industry")
        page.locator("#township").fill("城关镇")
        page.locator("[data-testid=needs] input[value=financing]").check()
        page.locator("#amount_wan").fill("200")
        page.get_by_role("button", name="Refer the firm").click()
        expect(page.locator("[data-testid=case-firm]")).to_have_text(FIRM)
        warning = page.locator(".alert-warning", has_text="is not on the city's list")
        expect(warning).to_contain_text("Township 城关镇 is not on the city's list")
        expect(warning).to_contain_text("城关街道")  # the near match, suggested not guessed
        case_url = page.url
    finally:
        context.close()

    db.session.expire_all()
    firm = db.session.query(Enterprise).filter_by(name=FIRM).one()
    assert (firm.township_id, firm.township_text) == (None, "城关镇")
    # Meanwhile: the case is assigned (out of the inbox's default "new" view), and another firm
    # comes in with another name not on the list.
    advisor = make.user("advisor", org=make.org("bank", code="ABC"), username="adv_city")
    with acting_as(office):
        referral_service.assign(office, [int(case_url.rsplit("/", 1)[1])], advisor.username)
    db.session.commit()
    with acting_as(bureau):
        (other,) = referral_service.submit(
            bureau,
            [
                {
                    "credit_code": make.credit_code(),
                    "name": OTHER,
                    "industry": "agriculture",
                    "township": "西湖乡",
                    "needs": ["policy"],
                }
            ],
            source="form",
        )
    db.session.commit()
    assert other.status == "created", other.errors

    # 3. The office sees the badge and the filter, matches the name once.
    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "jrb_city")
        page.goto(case_url)
        township = page.locator("[data-testid=case-township]")
        expect(township).to_contain_text("城关镇")
        expect(township.locator("[data-township-unmatched]")).to_have_text("Township not matched")

        page.goto("/referrals/?status=")
        page.locator("#f-township").select_option("unmatched")
        page.locator("[data-testid=filters] [type=submit]").click()
        expect(page).to_have_url(re.compile(r"[?&]township=unmatched"))
        rows = page.locator("[data-testid=referral-list] tbody tr")
        expect(rows).to_have_count(2)
        mine = rows.filter(has_text=FIRM)
        expect(mine).to_have_count(1)
        expect(mine.locator("[data-township-unmatched]")).to_be_visible()
        expect(rows.filter(has_text=OTHER)).to_have_count(1)

        page.goto("/townships/unmatched")
        names = page.locator("[data-testid=unmatched-list] tbody tr")
        expect(names).to_have_count(2)
        row = names.filter(has_text="城关镇")
        expect(row).to_contain_text("Close to: 城关街道")
        # The firm count opens the cases of the firms written so (whatever their status).
        row.get_by_role("link", name="1", exact=True).click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(FIRM)
        page.go_back()
        row.locator("select[name=township]").select_option(label="城关街道（330102001）")
        row.get_by_role("button", name="Match").click()
        expect(page.locator(".alert-success")).to_contain_text(
            "“城关镇” now means 城关街道: 1 firm matched"
        )
        expect(names).to_have_count(1)
        expect(names.first).to_contain_text("西湖乡")  # the other name is still to match

        page.goto(case_url)
        expect(township).to_have_text("城关街道")
        expect(township.locator("[data-township-unmatched]")).to_have_count(0)
        page.goto("/referrals/?status=&township=unmatched")
        expect(page.locator("[data-testid=referral-list]")).not_to_contain_text(FIRM)
    finally:
        context.close()


def test_office_accepts_a_co_referring_bureaus_firm_detail(app, browser, live_server, make):
    office = make.user("finance_office", username="jrb_propose", password=PASSWORD)
    first = make.user(
        "bureau",
        org=make.org("bureau", code="GXJ", name="江州市工业和信息化局"),
        username="gxj_propose",
        password=PASSWORD,
    )
    second = make.user(
        "bureau",
        org=make.org("bureau", code="SWJ", name="江州市商务局"),
        username="swj_propose",
        password=PASSWORD,
    )
    _english(office)
    code = make.credit_code()
    item = {
        "credit_code": code,
        "name": FIRM,
        "industry": "industry",
        "contact_name": "王经理",
        "contact_phone": "0571-88880001",
        "needs": ["financing"],
        "amount_wan": "150",
    }
    with acting_as(first):
        (created,) = referral_service.submit(first, [item], source="form")
    db.session.commit()
    with acting_as(second):
        (merged,) = referral_service.submit(
            second,
            [{**item, "contact_phone": "13900001111", "needs": ["policy"], "amount_wan": None}],
            source="form",
        )
    db.session.commit()
    assert (created.status, merged.status) == ("created", "merged")
    assert merged.referral_id == created.referral_id

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "jrb_propose")
        page.goto(f"/referrals/{created.referral_id}")
        proposals = page.locator("[data-testid=proposals-SWJ]")
        expect(proposals).to_be_visible()
        expect(page.locator("[data-testid=proposals-GXJ]")).to_have_count(0)
        phone = proposals.locator("tr[data-proposal=contact_phone]")
        expect(phone.locator("td").nth(1)).to_have_text("0571-88880001")  # registered
        expect(phone.locator("td").nth(2)).to_have_text("13900001111")  # sent
        phone.get_by_role("button", name="Accept").click()
        expect(page.locator(".alert-success")).to_contain_text("The firm's registry was updated.")
        expect(page.locator("[data-testid=proposals-SWJ]")).to_have_count(0)

        firm_id = db.session.get(Referral, created.referral_id).enterprise_id
        page.goto(f"/firms/{firm_id}")
        contact = page.locator("dt", has_text="Contact phone").locator(
            "xpath=following-sibling::dd[1]"
        )
        expect(contact).to_have_text("13900001111")
    finally:
        context.close()
    db.session.expire_all()
    assert db.session.query(Enterprise.contact_phone).filter_by(credit_code=code).scalar() == (
        "13900001111"
    )
