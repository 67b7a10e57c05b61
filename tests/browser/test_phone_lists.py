"""Issue 12's lists on a phone and on a laptop: at 375 px the advisor's case list, visit log and
pipeline and the finance office's inbox and firm registry are stacks of cards (nothing scrolls
sideways, each row spans the width, its one action is a full-width button), and the advisor's
own list has no advisor column; at 1366 px the assessment ranking scrolls inside its box with
its first columns fixed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from advisors import periods as periods_module
from advisors.audit import acting_as
from advisors.clock import today
from advisors.services import referrals as referral_service
from advisors.services import visits as visit_service
from models import db
from tests.browser.conftest import PASSWORD, PHONE, _new_page, sign_in
from tests.test_assessment_compile import compile_

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 768}


def _cases(make) -> dict:
    """Five referrals with long names; three assigned to the advisor, one of them visited with
    a loan application."""
    bureau = make.user(
        "bureau", org=make.org("bureau", code="KJJ"), username="kjj_cards", password=PASSWORD
    )
    office = make.user("finance_office", username="jrb_cards", password=PASSWORD)
    advisor = make.user(
        "advisor",
        org=make.org("bank", code="NYYH", name="农业银行江州分行"),
        username="adv_cards",
        password=PASSWORD,
    )
    for user in (bureau, office, advisor):
        user.locale = "en"  # English labels (msgids), stable for the assertions
    items = [
        {
            "credit_code": make.credit_code(),
            "name": f"江州市高新技术产业开发区精密机械制造与智能装备研究{i}号有限责任公司",
            "industry": "industry",
            "township": "城关镇某某街道未登记社区",  # not on the list: the badge shows too
            "needs": ["financing", "policy"],
            "amount_wan": "1200.5",
        }
        for i in range(5)
    ]
    with acting_as(bureau):
        results = referral_service.submit(bureau, items, source="form")
    ids = [r.referral_id for r in results]
    with acting_as(office):
        referral_service.assign(office, ids[:3], advisor.username)
    with acting_as(advisor):
        visit_service.log_visit(
            advisor,
            {
                "referral_id": ids[0],
                "visited_on": today().isoformat(),
                "mode": "onsite",
                "roles": ["financing"],
                "summary": "实地走访企业，讲解再贷款政策，了解设备更新的融资需求。" * 4,
                "financing": {
                    "stage": "applied",
                    "amount_wan": "300",
                    "institution": "NYYH",
                    "first_loan": True,
                    "unsecured": False,
                },
            },
        )
    db.session.commit()
    return {"ids": ids, "advisor": advisor}


def _assert_cards(page, table_testid: str, rows: int) -> None:
    """The list at 375 px: no sideways scroll, the header hidden, every row a card across the
    width with its action a full-width button."""
    table = page.locator(f"[data-testid={table_testid}]")
    expect(table.locator("tbody tr")).to_have_count(rows)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    wrapper = table.locator("xpath=..")
    assert wrapper.evaluate("el => el.scrollWidth <= el.clientWidth")
    expect(table.locator("thead")).to_be_hidden()
    table_box = table.bounding_box()
    for i in range(rows):
        row = table.locator("tbody tr").nth(i)
        assert row.evaluate("el => getComputedStyle(el).display") == "grid"
        box = row.bounding_box()
        assert box["width"] >= PHONE["width"] - 40, box  # the page's padding only
        assert abs(box["x"] - table_box["x"]) < 1 and box["x"] + box["width"] <= PHONE["width"]
        action = row.locator("[data-testid=card-action]")
        expect(action).to_be_visible()
        button = action.bounding_box()
        assert button["width"] >= box["width"] - 30, (button, box)  # full width, less padding
        assert button["height"] >= 44  # big enough to tap
        assert (
            button["y"] >= box["y"]
            and button["y"] + button["height"] <= box["y"] + box["height"] + 1
        )


def test_case_lists_are_cards_on_a_phone(app, browser, live_server, make):
    made = _cases(make)
    context, page = _new_page(browser, live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        sign_in(page, "adv_cards")
        page.goto("/referrals/")
        _assert_cards(page, "referral-list", 3)
        first = page.locator(f"#referral-{made['ids'][0]}")
        # Name, status, due and the one action; not the advisor's own name.
        expect(first.locator("a").first).to_contain_text("精密机械制造")
        expect(first.locator("[data-status]")).to_be_visible()
        expect(first.locator("[data-label='First contact due']")).to_be_visible()
        expect(first.locator("[data-testid=card-action]")).to_have_text("Log a visit")
        for text in (made["advisor"].display_name, made["advisor"].org.name):
            assert text not in first.inner_text()
        assert first.locator("[data-label=Advisor]").count() == 0
        first.locator("[data-testid=card-action]").click()
        expect(page).to_have_url(f"{live_server}/visits/new?referral_id={made['ids'][0]}")

        page.goto("/work/visits")
        _assert_cards(page, "visit-list", 1)
        assert page.locator("[data-testid=visit-list] [data-label=Advisor]").count() == 0
        page.goto("/work/pipeline")
        _assert_cards(page, "application-list", 1)
        expect(page.locator("[data-testid=application-list] [data-label=Stage]")).to_be_visible()
    finally:
        context.close()

    context, page = _new_page(browser, live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        sign_in(page, "jrb_cards")
        page.goto("/referrals/?status=")
        _assert_cards(page, "referral-list", 5)
        new = page.locator(f"#referral-{made['ids'][4]}")
        expect(new.locator("[data-township-unmatched]")).to_be_visible()
        expect(new.locator("[data-label=Advisor]")).to_be_visible()  # the office sees who
        expect(new.locator("[data-testid=card-action]")).to_have_text("Open to assign")
        # The selection box sits in the card's corner, tappable, inside the card.
        box = new.locator("input[name=ids]").bounding_box()
        card = new.bounding_box()
        assert box["x"] + box["width"] <= card["x"] + card["width"]
        new.locator("input[name=ids]").check()
        expect(page.locator("#bulk-advisor")).to_contain_text(
            "advisor user · 农业银行江州分行 · 3/15"
        )
        page.goto("/firms/")
        _assert_cards(page, "firm-list", 5)
    finally:
        context.close()


def test_advisor_column_left_out_on_the_advisors_own_list(app, browser, live_server, make):
    _cases(make)
    context, page = _new_page(browser, live_server, viewport=LAPTOP)
    try:
        sign_in(page, "adv_cards")
        page.goto("/referrals/")
        table = page.locator("[data-testid=referral-list]")
        expect(table.locator("thead")).to_be_visible()
        assert "Advisor" not in table.locator("thead").inner_text()
        expect(table.locator("[data-testid=card-action]").first).to_be_hidden()
        assert table.locator("tbody tr").first.evaluate("el => getComputedStyle(el).display") == (
            "table-row"
        )
    finally:
        context.close()


def test_ranking_scrolls_inside_its_box_with_a_sticky_first_column(app, browser, live_server, make):
    from tests.browser.test_assessment_flow import _city

    _city(make)
    period = periods_module.month_of(today()).key
    compile_(period)
    context, page = _new_page(browser, live_server, viewport=LAPTOP)
    try:
        sign_in(page, "jrb_assess")
        page.goto(f"/assessments/{period}")
        table = page.locator("[data-testid=ranking-table]")
        expect(table).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
        wrapper = table.locator("xpath=..")
        assert "table-responsive" in wrapper.get_attribute("class")
        assert wrapper.evaluate("el => el.scrollWidth > el.clientWidth")  # the metric columns
        rank = table.locator("tbody tr").first.locator("td").first
        name = table.locator("tbody tr").first.locator("td").nth(1)
        metric = table.locator("tbody tr").first.locator("td").nth(8)
        for cell in (rank, name, table.locator("thead th").first):
            assert cell.evaluate("el => getComputedStyle(el).position") == "sticky"
        before = (rank.bounding_box()["x"], name.bounding_box()["x"], metric.bounding_box()["x"])
        wrapper.evaluate("el => { el.scrollLeft = 400; }")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=ranking-table]').parentElement"
            ".scrollLeft > 0"
        )
        after = (rank.bounding_box()["x"], name.bounding_box()["x"], metric.bounding_box()["x"])
        assert after[0] == pytest.approx(before[0], abs=1)  # fixed
        assert after[1] == pytest.approx(before[1], abs=1)  # fixed
        assert after[2] < before[2] - 100  # scrolled under them
        # The name stays readable: the sticky cells are opaque, on top of what scrolls.
        assert name.evaluate("el => getComputedStyle(el).backgroundColor") not in (
            "rgba(0, 0, 0, 0)",
            "transparent",
        )
    finally:
        context.close()
