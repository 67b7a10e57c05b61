"""Notifications for the hand-overs of a case, and the bell: list, unread badge, mark read,
open one (marks it read, goes to its case), and no reach into another user's notifications."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from advisors.audit import acting_as
from advisors.services import referrals as svc
from models import Notification, db


@pytest.fixture
def people(make):
    bank = make.org("bank", code="ABC")
    other_bank = make.org("bank", code="ICBC")
    gxj = make.org("bureau", code="GXJ")
    return {
        "bureau": make.user("bureau", org=gxj),
        "bureau_colleague": make.user("bureau", org=gxj),
        "bureau2": make.user("bureau", org=make.org("bureau", code="SWJ")),
        "bureau3": make.user("bureau", org=make.org("bureau", code="NYJ")),
        "office": make.user("finance_office"),
        "advisor": make.user("advisor", org=bank, username="adv_li"),
        "liaison": make.user("liaison", org=bank),
        "other_liaison": make.user("liaison", org=other_bank),
    }


def firm_item(make, name: str | None = None, code: str | None = None) -> dict:
    return {
        "credit_code": code or make.credit_code(),
        "name": name or f"江州市测试企业{make.n()}有限公司",
        "industry": "industry",
        "needs": ["financing"],
        "amount_wan": "300",
    }


def refer(user, item) -> int:
    with acting_as(user):
        (result,) = svc.submit(user, [item], source="form")
    db.session.commit()
    return result.referral_id


def notes_of(user, kind: str | None = None) -> list[Notification]:
    db.session.rollback()
    stmt = select(Notification).where(Notification.user_id == user.id)
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return list(db.session.execute(stmt.order_by(Notification.id)).scalars())


def assign(office, rid, username="adv_li"):
    with acting_as(office):
        svc.assign(office, [rid], username)
    db.session.commit()


# ----------------------------------------------------------------------------- hand-overs
def test_assignment_notifies_advisor_and_liaison(make, people):
    item = firm_item(make, name="江州市恒达精密机械有限公司")
    rid = refer(people["bureau"], item)
    assign(people["office"], rid)
    for role in ("advisor", "liaison"):
        (note,) = notes_of(people[role], "assigned")
        assert note.referral_id == rid
        assert note.params["firm"] == "江州市恒达精密机械有限公司"
        assert note.params["advisor"] == people["advisor"].display_name
        assert note.read_at is None
    assert notes_of(people["other_liaison"]) == []
    # The referring bureau hears of it too (the closed loop).
    assert [n.referral_id for n in notes_of(people["bureau"], "assigned")] == [rid]


def test_rejection_notifies_the_referring_bureaus_users(make, people):
    item = firm_item(make)
    rid = refer(people["bureau"], item)
    refer(people["bureau2"], dict(item))  # co-referral
    with acting_as(people["office"]):
        svc.reject(people["office"], rid, "不属于本市服务范围")
    db.session.commit()
    for role in ("bureau", "bureau_colleague", "bureau2"):
        (note,) = notes_of(people[role], "rejected")
        assert note.referral_id == rid
        assert note.params["reason"] == "不属于本市服务范围"
    for role in ("bureau3", "advisor", "liaison"):
        assert notes_of(people[role], "rejected") == []


# ----------------------------------------------------------------------------- the bell
BADGE = re.compile(r'data-testid="bell"[^>]*>[^<]*<span class="badge[^"]*">(\d+)</span>')


def badge(client) -> int:
    html = client.get("/notifications/").get_data(as_text=True)
    found = BADGE.search(html)
    return int(found.group(1)) if found else 0


def three_assignments(make, people) -> list[int]:
    ids = []
    for i in range(3):
        rid = refer(people["bureau"], firm_item(make, name=f"江州市铃铛测试{i}号有限公司"))
        assign(people["office"], rid)
        ids.append(rid)
    return ids


def test_bell_lists_notifications_with_unread_badge(client, auth, make, people):
    three_assignments(make, people)
    auth.login(people["advisor"].username)
    page = client.get("/notifications/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for i in range(3):
        assert f"江州市铃铛测试{i}号有限公司" in html
    assert badge(client) == 3
    # The badge is in the navigation of every page, not only the bell's.
    home = client.get("/").get_data(as_text=True)
    assert BADGE.search(home).group(1) == "3"
    # Newest first.
    assert html.index("铃铛测试2号") < html.index("铃铛测试0号")


def test_mark_all_read(client, auth, make, people):
    three_assignments(make, people)
    liaison_unread = len(notes_of(people["liaison"]))
    auth.login(people["advisor"].username)
    r = client.post("/notifications/read-all", data={"csrf_token": auth.csrf("/notifications/")})
    assert r.status_code == 302
    assert badge(client) == 0
    assert all(n.read_at is not None for n in notes_of(people["advisor"]))
    # Only the caller's own notifications.
    assert sum(n.read_at is None for n in notes_of(people["liaison"])) == liaison_unread


def test_mark_all_read_needs_csrf(client, auth, make, people):
    three_assignments(make, people)
    auth.login(people["advisor"].username)
    client.post("/notifications/read-all", data={})
    assert all(n.read_at is None for n in notes_of(people["advisor"]))


def test_opening_one_marks_it_read_and_goes_to_the_case(app, client, auth, make, people):
    ids = three_assignments(make, people)
    note = next(n for n in notes_of(people["advisor"]) if n.referral_id == ids[1])
    auth.login(people["advisor"].username)
    if "referrals.detail" not in app.view_functions:
        pytest.skip("the referrals.detail page is not registered yet")
    r = client.post(f"/notifications/{note.id}/open", data={"csrf_token": auth.csrf()})
    assert r.status_code == 302
    assert urlsplit(r.headers["Location"]).path == f"/referrals/{ids[1]}"
    unread = [n.id for n in notes_of(people["advisor"]) if n.read_at is None]
    assert note.id not in unread and len(unread) == 2
    assert badge(client) == 2


def test_opening_one_without_a_case_goes_back_to_the_bell(client, auth, make, people):
    refer(people["bureau"], firm_item(make))  # tells the finance office: no single case
    (note,) = notes_of(people["office"], "referrals_submitted")
    assert note.referral_id is None
    auth.login(people["office"].username)
    r = client.post(f"/notifications/{note.id}/open", data={"csrf_token": auth.csrf()})
    assert r.status_code == 302
    assert urlsplit(r.headers["Location"]).path == "/notifications/"
    assert notes_of(people["office"], "referrals_submitted")[0].read_at is not None


def test_another_users_notification_is_untouched(client, auth, make, people):
    three_assignments(make, people)
    theirs = notes_of(people["liaison"])[0]
    auth.login(people["advisor"].username)
    r = client.post(f"/notifications/{theirs.id}/open", data={"csrf_token": auth.csrf()})
    assert r.status_code == 302
    assert urlsplit(r.headers["Location"]).path == "/notifications/"
    assert all(n.read_at is None for n in notes_of(people["liaison"]))
    assert all(n.read_at is None for n in notes_of(people["advisor"]))  # nor the caller's
    r = client.post("/notifications/999999/open", data={"csrf_token": auth.csrf()})
    assert r.status_code == 302
    # Another user's notification never shows on the caller's page.
    html = client.get("/notifications/").get_data(as_text=True)
    assert f"/notifications/{theirs.id}/open" not in html
