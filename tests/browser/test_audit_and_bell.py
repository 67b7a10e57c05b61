"""Issue 12, what real users hit: (6) the audit trail reads as labels — record types, field
names, the township's name rather than its id, a status label rather than its code, the
advisor's name — with times to the minute; (8) the bell groups the notifications of one kind
about one case into one line with a count, and the kind filter and "mark all read" work until
the bell shows nothing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from advisors.audit import acting_as
from advisors.i18n import local
from advisors.services import referrals as referral_service
from advisors.services import townships as township_service
from models import AuditLog, Notification, db
from tests.browser.conftest import DESKTOP, PASSWORD, _new_page, sign_in

pytestmark = pytest.mark.browser

MINUTE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def _submit(make, bureau, name: str, township: str | None = None) -> int:
    item = {
        "credit_code": make.credit_code(),
        "name": name,
        "industry": "industry",
        "needs": ["financing"],
        "amount_wan": "200",
    }
    if township:
        item["township"] = township
    with acting_as(bureau):
        (result,) = referral_service.submit(bureau, [item], source="form")
    db.session.commit()
    assert result.status == "created", result.errors
    return result.referral_id


def test_audit_trail_shows_labels_names_and_minutes(app, browser, live_server, make):
    office = make.user("finance_office", username="jrb_audit", password=PASSWORD)
    bureau = make.user("bureau", org=make.org("bureau", code="GXJ"), username="gxj_audit")
    advisor = make.user("advisor", org=make.org("bank", code="ABC"), username="adv_audit")
    advisor.display_name = "张伟"
    office.locale = "en"
    db.session.commit()
    with acting_as(office):
        township = township_service.create(office, "330102001", "城关街道")
    db.session.commit()
    referral_id = _submit(make, bureau, "江州市审计留痕有限公司", township="城关街道")
    with acting_as(office):
        referral_service.assign(office, [referral_id], advisor.username)
    db.session.commit()

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "jrb_audit")
        page.goto("/audit/")
        rows = page.locator("[data-testid=audit-row]")
        expect(rows.first).to_be_visible()
        # Every time to the minute, in Asia/Shanghai.
        times = page.locator("[data-testid=audit-at]")
        for i in range(times.count()):
            text = times.nth(i).inner_text().strip()
            assert MINUTE.fullmatch(text), text
        newest = db.session.query(AuditLog).order_by(AuditLog.id.desc()).first()
        assert times.first.inner_text().strip() == local(newest.at).strftime("%Y-%m-%d %H:%M")

        # The firm: its record type and the township by name, not by id.
        page.locator("#f-table").select_option(label="Firm")
        page.locator("[data-testid=audit-filters] [type=submit]").click()
        firm_row = page.locator("[data-testid=audit-row]", has_text="江州市审计留痕有限公司").first
        expect(firm_row.locator("[data-testid=audit-table]")).to_have_text("Firm")
        expect(firm_row.locator("[data-testid=audit-action]")).to_be_visible()
        change = firm_row.locator("li[data-field=township_id]")
        expect(change).to_contain_text("Township:")
        expect(change.locator("[data-testid=new]")).to_have_text("城关街道")
        assert str(township.id) != "城关街道"
        industry = firm_row.locator("li[data-field=industry] [data-testid=new]")
        expect(industry).not_to_have_text("industry")  # a label, not the code

        # The case: the status change as labels, the advisor by name.
        page.locator("#f-table").select_option(label="Referral case")
        page.locator("[data-testid=audit-filters] [type=submit]").click()
        update = page.locator("[data-testid=audit-row]", has=page.locator("li[data-field=status]"))
        assigned = update.filter(has_text="Assigned").first
        expect(assigned.locator("[data-testid=audit-table]")).to_have_text("Referral case")
        expect(assigned.locator("[data-testid=audit-record]")).to_contain_text(
            "江州市审计留痕有限公司"
        )
        status = assigned.locator("li[data-field=status]")
        expect(status).to_contain_text("Status:")
        expect(status.locator("[data-testid=old]")).to_have_text("Submitted")
        expect(status.locator("[data-testid=new]")).to_have_text("Assigned")
        expect(assigned.locator("li[data-field=advisor_id] [data-testid=new]")).to_have_text("张伟")
        expect(assigned.locator("li[data-field=advisor_id]")).to_contain_text("Advisor:")
        assigned_at = assigned.locator("li[data-field=assigned_at] [data-testid=new]")
        assert MINUTE.fullmatch(assigned_at.inner_text().strip())
        body = page.locator("[data-testid=audit-list]").inner_text()
        for code in ("in_service", "submitted", "advisor_id", "township_id"):
            assert code not in body, code
    finally:
        context.close()


def test_bell_groups_filters_and_marks_everything_read(app, browser, live_server, make):
    office = make.user("finance_office", username="jrb_bell", password=PASSWORD)
    bureau = make.user(
        "bureau", org=make.org("bureau", code="GXJ"), username="gxj_bell", password=PASSWORD
    )
    bank = make.org("bank", code="ABC")
    first = make.user("advisor", org=bank, username="adv_bell_1")
    second = make.user("advisor", org=bank, username="adv_bell_2")
    bureau.locale = "en"
    db.session.commit()
    busy = _submit(make, bureau, "江州市反复分派有限公司")
    once = _submit(make, bureau, "江州市一次分派有限公司")
    refused = _submit(make, bureau, "江州市退回推荐有限公司")
    with acting_as(office):
        # The same case assigned three times (two reassignments): three notices, one line.
        for advisor in (first, second, first):
            referral_service.assign(office, [busy], advisor.username)
            db.session.commit()
        referral_service.assign(office, [once], second.username)
        referral_service.reject(office, refused, "不属于小微企业")
    db.session.commit()
    mine = db.session.query(Notification).filter_by(user_id=bureau.id)
    assert mine.filter_by(kind="assigned", referral_id=busy).count() == 3
    unread = mine.filter(Notification.read_at.is_(None)).count()
    assert unread == 5

    context, page = _new_page(browser, live_server, viewport=DESKTOP)
    try:
        sign_in(page, "gxj_bell")
        bell = page.locator("[data-testid=bell] .badge")
        expect(bell).to_have_text(str(unread))
        page.locator("[data-testid=bell]").click()
        lines = page.locator("[data-testid=notification]")
        expect(lines).to_have_count(3)
        grouped = lines.filter(has_text="江州市反复分派有限公司")
        expect(grouped).to_have_count(1)
        expect(grouped).to_have_attribute("data-count", "3")
        expect(grouped.locator("[data-testid=line-count]")).to_have_text("3 times")
        expect(grouped.locator("[data-testid=line-unread]")).to_have_text("3 unread")
        expect(lines.filter(has_text="江州市一次分派有限公司")).to_have_attribute("data-count", "1")

        # The kind filter: the assignments only.
        page.locator("#f-kind").select_option(label="Assignments")
        page.locator("[data-testid=notification-filters] [type=submit]").click()
        expect(page).to_have_url(re.compile(r"[?&]kind=assigned"))
        expect(lines).to_have_count(2)
        for i in range(2):
            expect(lines.nth(i)).to_have_attribute("data-kind", "assigned")
        expect(page.locator("[data-testid=notifications]")).not_to_contain_text("rejected")

        # Mark the assignments read: only the rejection is left unread.
        read_kind = page.locator("[data-testid=read-all] [type=submit]")
        expect(read_kind).to_have_text("Mark all “Assignments” as read")
        read_kind.click()
        expect(page).to_have_url(re.compile(r"[?&]kind=assigned"))
        expect(lines.first).to_have_attribute("data-unread", "0")
        expect(lines.nth(1)).to_have_attribute("data-unread", "0")
        expect(bell).to_have_text("1")

        page.get_by_role("link", name="Clear filters").click()
        expect(lines).to_have_count(3)
        rejected = lines.filter(has_text="江州市退回推荐有限公司")
        expect(rejected).to_have_attribute("data-unread", "1")
        expect(rejected).to_have_attribute("data-kind", "rejected")
        page.locator("[data-testid=read-all] [type=submit]").click()
        expect(rejected).to_have_attribute("data-unread", "0")
        expect(page.locator("[data-testid=bell] .badge")).to_have_count(0)  # the bell at 0
        page.goto("/")
        expect(page.locator("[data-testid=bell] .badge")).to_have_count(0)
    finally:
        context.close()
    db.session.expire_all()
    assert (
        db.session.query(Notification)
        .filter_by(user_id=bureau.id)
        .filter(Notification.read_at.is_(None))
        .count()
        == 0
    )
