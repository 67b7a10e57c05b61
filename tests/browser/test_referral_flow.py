"""Issue 3's browser story: a bureau uploads a list with bad rows, downloads the error report,
fixes and re-uploads it; the finance office assigns a case; the bureau sees the advisor."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from playwright.sync_api import expect

from advisors.credit_code import make_code
from tests.browser.conftest import DESKTOP, PASSWORD, _new_page, sign_in

pytestmark = pytest.mark.browser

HEADERS = [
    "统一社会信用代码*",
    "企业名称*",
    "行业*",
    "从业人员",
    "营业收入（万元）",
    "需求*",
    "融资金额（万元）",
]


def _write(path: Path, rows: list[list]) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def _upload(page, path: Path) -> None:
    page.goto("/referrals/upload")
    page.locator("input[type=file]").set_input_files(str(path))
    page.locator("form[enctype] [type=submit]").click()
    expect(page.locator("[data-testid=counts]")).to_be_visible()


def test_upload_fix_reupload_assign_and_follow(app, browser, live_server, make, tmp_path):
    bureau = make.user(
        "bureau",
        org=make.org("bureau", code="GXJ", name="市工业和信息化局"),
        username="gxj_flow",
        password=PASSWORD,
    )
    make.user("finance_office", username="jrb_flow", password=PASSWORD)
    advisor = make.user(
        "advisor",
        org=make.org("bank", code="ABC", name="农业银行江州分行"),
        username="adv_flow",
        password=PASSWORD,
    )
    assert bureau.org.code == "GXJ"

    good = [
        [
            make_code("9", "1", "329001", f"7{i:07d}"),
            f"江州市良品{i}号有限公司",
            "工业",
            25,
            600,
            "融资、政策",
            120,
        ]
        for i in range(3)
    ]
    bad = [
        ["91310115MA1H8R7C6D", "江州市校验失败有限公司", "工业", 10, 50, "融资", 30],
        [make_code("9", "1", "329001", "80000001"), "", "零售业", 5, 40, "政策", None],
    ]
    first = _write(tmp_path / "推荐名单.xlsx", good + bad)

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "gxj_flow")
        _upload(page, first)
        expect(page.locator("[data-testid=count-created]")).to_contain_text("3")
        expect(page.locator("[data-testid=count-rejected]")).to_contain_text("2")
        rows = page.locator("[data-testid=rejected-rows] tbody tr")
        expect(rows).to_have_count(2)

        with page.expect_download() as info:
            page.locator("[data-testid=rejected-download]").click()
        report = tmp_path / "rejected.xlsx"
        info.value.save_as(report)
        ws = load_workbook(report).active
        values = [list(r) for r in ws.iter_rows(values_only=True)]
        assert values[0][: len(HEADERS)] == HEADERS
        assert len(values) == 3 and all(v[-1] for v in values[1:])  # a reason on each row

        fixed = [row[: len(HEADERS)] for row in values[1:]]
        fixed[0][0] = make_code("9", "1", "329001", "80000002")
        fixed[1][1] = "江州市补全名称有限公司"
        _upload(page, _write(tmp_path / "推荐名单-修正.xlsx", fixed))
        expect(page.locator("[data-testid=count-created]")).to_contain_text("2")
        expect(page.locator("[data-testid=count-rejected]")).to_contain_text("0")
    finally:
        context.close()

    office_context, office = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(office, "jrb_flow")
        office.goto("/referrals/")
        office.locator("[data-testid=referral-list] a:has-text('良品0号')").first.click()
        expect(office.locator("[data-testid=case-firm]")).to_contain_text("良品0号")
        case_url = office.url
        office.locator("[data-testid=assign] select").select_option(value="adv_flow")
        office.locator("[data-testid=assign] [type=submit]").click()
        expect(office.locator("[data-testid=case-advisor]")).to_contain_text(advisor.display_name)
    finally:
        office_context.close()

    bureau_context, mine = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(mine, "gxj_flow")
        mine.goto(case_url)
        expect(mine.locator("[data-testid=case-advisor]")).to_contain_text(advisor.display_name)
        expect(mine.locator("[data-testid=case-advisor]")).to_contain_text("农业银行江州分行")
        mine.goto("/referrals/")
        row = mine.locator("[data-testid=referral-list] tr:has-text('良品0号')")
        expect(row).to_contain_text(advisor.display_name)
    finally:
        bureau_context.close()
