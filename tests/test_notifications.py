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
    assert "referrals.detail" in app.view_functions, "the referrals.detail page is missing"
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


# ----------------------------------------------------------------------------- grouped lines
_LINE_RE = re.compile(
    r'data-testid="notification" data-kind="([a-z_]+)" data-count="(\d+)" data-unread="(\d+)"'
)


def lines_of(client, query: str = "") -> list[tuple[str, int, int]]:
    html = client.get(f"/notifications/{query}").get_data(as_text=True)
    return [(k, int(c), int(u)) for k, c, u in _LINE_RE.findall(html)]


def put(user, kind: str, referral_id=None, *, at=None, read=False, **params) -> int:
    """One notification as the services write them, at a chosen time."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    at = at or datetime.now(UTC)
    row = {
        "user_id": user.id,
        "kind": kind,
        "referral_id": referral_id,
        "params": params,
        "created_at": at,
        "read_at": at if read else None,
    }
    new_id = db.session.execute(insert(Notification).values(**row)).inserted_primary_key[0]
    db.session.commit()
    return new_id


@pytest.fixture
def inbox(make, people):
    """The advisor's notifications: five daily overdue reminders for one case, one for
    another, an assignment of the first, and two about no case."""
    from datetime import UTC, datetime, timedelta

    a = refer(people["bureau"], firm_item(make, name="江州市甲企业有限公司"))
    b = refer(people["bureau"], firm_item(make, name="江州市乙企业有限公司"))
    db.session.query(Notification).delete()
    db.session.commit()
    advisor = people["advisor"]
    day = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    put(advisor, "assigned", a, at=day - timedelta(days=6), read=True, firm="江州市甲企业有限公司")

    def overdue_a(i: int) -> None:
        firm = "江州市甲企业有限公司"
        put(advisor, "overdue", a, at=day + timedelta(days=i), firm=firm, due=f"2026-02-2{i}")

    # In the order they happen (ids grow with time).
    overdue_a(0)
    overdue_a(1)
    put(advisor, "overdue", b, at=day + timedelta(days=1), firm="江州市乙企业有限公司", due="x")
    put(advisor, "assessment_published", at=day + timedelta(days=2), period="2026-01")
    overdue_a(2)
    put(advisor, "assessment_published", at=day + timedelta(days=3), period="2026-02")
    overdue_a(3)
    overdue_a(4)
    return {"a": a, "b": b, "advisor": advisor}


def test_one_line_per_kind_and_case_with_count_and_latest_time(client, auth, inbox):
    auth.login(inbox["advisor"].username)
    with client.session_transaction() as s:
        s["lang"] = "en"
    html = client.get("/notifications/").get_data(as_text=True)
    assert lines_of(client) == [
        ("overdue", 5, 5),  # case A's five reminders: latest 2026-03-05
        ("assessment_published", 1, 1),  # no case: each its own line
        ("assessment_published", 1, 1),
        ("overdue", 1, 1),  # case B
        ("assigned", 1, 0),
    ]
    first = html[html.index('data-testid="notification"') :]
    first = first[: first.index("</form>")]
    assert "2026-03-05 08:30" in first  # the latest time, in Shanghai
    assert "2026-02-24" in first  # the latest reminder's text
    assert "5 times" in first and "5 unread" in first
    assert badge(client) == 8  # the bell counts notifications, not lines


def test_opening_a_line_marks_its_notifications_read(client, auth, inbox):
    auth.login(inbox["advisor"].username)
    latest = db.session.scalar(
        select(Notification.id)
        .where(Notification.referral_id == inbox["a"], Notification.kind == "overdue")
        .order_by(Notification.id.desc())
    )
    # A sixth reminder arrives after the page was shown: it stays unread.
    put(inbox["advisor"], "overdue", inbox["a"], firm="江州市甲企业有限公司")
    r = client.post(f"/notifications/{latest}/open", data={"csrf_token": auth.csrf()})
    assert urlsplit(r.headers["Location"]).path == f"/referrals/{inbox['a']}"
    unread = notes_of(inbox["advisor"])
    overdue_a = [n for n in unread if n.kind == "overdue" and n.referral_id == inbox["a"]]
    assert sum(n.read_at is None for n in overdue_a) == 1
    # Case B's reminder and the other kinds are untouched.
    assert all(n.read_at is None for n in unread if n.referral_id == inbox["b"])
    assert badge(client) == 4
    assert lines_of(client)[0] == ("overdue", 6, 1)


def test_opening_one_about_no_case_marks_only_it(client, auth, inbox):
    auth.login(inbox["advisor"].username)
    first = min(n.id for n in notes_of(inbox["advisor"], "assessment_published"))
    client.post(f"/notifications/{first}/open", data={"csrf_token": auth.csrf()})
    published = notes_of(inbox["advisor"], "assessment_published")
    assert [n.read_at is None for n in published] == [False, True]


def test_filters_by_kind_and_unread(client, auth, inbox):
    auth.login(inbox["advisor"].username)
    assert [line[0] for line in lines_of(client, "?kind=overdue")] == ["overdue", "overdue"]
    assert "assigned" not in {line[0] for line in lines_of(client, "?unread=1")}
    assert lines_of(client, "?kind=assigned&unread=1") == []
    assert lines_of(client, "?kind=assigned") == [("assigned", 1, 0)]
    # An unknown kind or a bad flag is ignored: the whole list.
    for query in ("?kind=nope", "?kind=%00", "?unread=yes", "?kind=" + "x" * 500):
        r = client.get(f"/notifications/{query}")
        assert r.status_code == 200 and len(lines_of(client, query)) == 5, query
    # The kind choices are the kinds this user has.
    html = client.get("/notifications/").get_data(as_text=True)
    options = re.findall(r'<option value="([a-z_]+)"', html)
    assert options == ["assigned", "overdue", "assessment_published"]


def test_unread_filter_counts_only_the_unread(client, auth, inbox):
    put(inbox["advisor"], "overdue", inbox["a"], read=True, firm="江州市甲企业有限公司")
    auth.login(inbox["advisor"].username)
    assert lines_of(client, "?kind=overdue")[0] == ("overdue", 6, 5)
    assert lines_of(client, "?kind=overdue&unread=1")[0] == ("overdue", 5, 5)


def test_mark_all_read_of_one_kind_keeps_the_filter(client, auth, inbox):
    auth.login(inbox["advisor"].username)
    html = client.get("/notifications/?kind=overdue").get_data(as_text=True)
    r = client.post(
        "/notifications/read-all", data={"csrf_token": csrf_of(html), "kind": "overdue"}
    )
    assert r.status_code == 302 and "kind=overdue" in r.headers["Location"]
    notes = notes_of(inbox["advisor"])
    assert all(n.read_at is not None for n in notes if n.kind == "overdue")
    assert all(n.read_at is None for n in notes if n.kind == "assessment_published")
    assert badge(client) == 2
    client.post("/notifications/read-all", data={"csrf_token": auth.csrf("/notifications/")})
    assert badge(client) == 0


def csrf_of(html: str) -> str:
    from tests.conftest import csrf_from

    return csrf_from(html)


@pytest.mark.parametrize(
    "before", ["99999999999999999999", "2147483648", "abc", "-5", "0", "１２", "1e5", "", "9" * 400]
)
def test_bad_or_huge_before_is_the_first_page(client, auth, inbox, before):
    auth.login(inbox["advisor"].username)
    r = client.get("/notifications/", query_string={"before": before})
    assert r.status_code == 200
    assert len(lines_of(client, "?before=" + before)) == 5


def test_huge_note_id_to_open_is_no_error(client, auth, inbox):
    auth.login(inbox["advisor"].username)
    for note_id in ("99999999999999999999", "2147483648"):
        r = client.post(f"/notifications/{note_id}/open", data={"csrf_token": auth.csrf()})
        # An id no record can have does not match the route: not found, never a server error.
        assert r.status_code == 404, note_id
    assert all(n.read_at is None for n in notes_of(inbox["advisor"]) if n.kind == "overdue")


def test_lines_page_without_repeating_a_case(client, auth, make, people):
    from datetime import UTC, datetime, timedelta

    advisor = people["advisor"]
    case_id = refer(people["bureau"], firm_item(make))
    others = [refer(people["bureau"], firm_item(make)) for _ in range(3)]
    db.session.query(Notification).delete()
    db.session.commit()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    put(advisor, "overdue", case_id, at=start, firm="早")  # older than every other line
    for i in range(33):
        put(advisor, "first_contact", others[i % 3] if i < 3 else None, at=start, firm=f"{i}")
    put(advisor, "overdue", case_id, at=start + timedelta(days=1), firm="晚")
    auth.login(advisor.username)
    html = client.get("/notifications/").get_data(as_text=True)
    first = lines_of(client)
    assert len(first) == 30 and first[0] == ("overdue", 2, 2)
    link = re.search(r'href="([^"]*before=(\d+)[^"]*)"', html).group(1).replace("&amp;", "&")
    rest = client.get(link).get_data(as_text=True)
    second = [(k, int(c), int(u)) for k, c, u in _LINE_RE.findall(rest)]
    assert len(second) == 4 and ("overdue", 1, 1) not in second  # the case is not repeated
    assert 'data-testid="back-to-newest"' in rest
    assert 'data-testid="back-to-newest"' not in html


def test_list_query_count_is_fixed(client, auth, make, people, count_queries):
    advisor = people["advisor"]
    db.session.query(Notification).delete()
    db.session.commit()
    auth.login(advisor.username)
    client.get("/notifications/")  # warm up
    put(advisor, "assessment_published", period="2026-01")
    with count_queries() as one:
        client.get("/notifications/")
    for i in range(40):
        put(advisor, "assessment_published", period=f"{i}")
    with count_queries() as many:
        client.get("/notifications/")
    assert len(lines_of(client)) == 30
    assert one.count == many.count, many.statements


def test_bell_is_capped(client, auth, make, people):
    from sqlalchemy import insert

    advisor = people["advisor"]
    db.session.execute(
        insert(Notification),
        [{"user_id": advisor.id, "kind": "assessment_published", "params": {}}] * 120,
    )
    db.session.commit()
    auth.login(advisor.username)
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'data-testid="bell"[^>]*>[^<]*<span class="badge[^"]*">99\+</span>', html)
