"""Referral pages: the inbox and every role's list (scope, filters, keyset pages, a fixed number
of queries), the case page and the hand-overs made on it through the web, the bureau's closed
loop and dashboard, the unread count, suggestions and the export."""

from __future__ import annotations

import html as html_lib
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from advisors import clock
from advisors.audit import acting_as
from advisors.services import referral_queries as queries
from advisors.services import referrals as svc
from advisors.services.users import update_advisor_profile
from models import AdvisorProfile, Enterprise, Referral, ReferralEvent, db
from tests.conftest import csrf_from


# ------------------------------------------------------------------ helpers
def item(make, **values) -> dict:
    data = {
        "credit_code": make.credit_code(),
        "name": f"江州测试企业{make.n()}有限公司",
        "industry": "industry",
        "employees": 30,
        "revenue_wan": "500",
        "needs": ["financing", "policy"],
        "amount_wan": "200",
        "purpose": "购置设备",
    }
    data.update(values)
    return data


def submit(user, items) -> list[int]:
    with acting_as(user):
        results = svc.submit(user, items, source="form")
    db.session.commit()
    assert all(r.status in ("created", "merged") for r in results), [r.errors for r in results]
    return [r.referral_id for r in results]


def refer(make, user, **values) -> int:
    return submit(user, [item(make, **values)])[0]


def assign(office, ids, advisor) -> None:
    with acting_as(office):
        svc.assign(office, list(ids), advisor.username)
    db.session.commit()


def contact(advisor, rid, on: date | None = None) -> None:
    with acting_as(advisor):
        svc.record_first_contact(advisor, db.session.get(Referral, rid), on or clock.today())
    db.session.commit()


def resolve(advisor, rid, result="financed", amount="150", note=None) -> None:
    with acting_as(advisor):
        svc.record_outcome(
            advisor,
            db.session.get(Referral, rid),
            result,
            Decimal(amount) if amount else None,
            note,
        )
    db.session.commit()


def get(rid) -> Referral:
    db.session.expire_all()
    return db.session.get(Referral, rid)


def text_of(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def listed_ids(response) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="referral-(\d+)"', response.get_data(as_text=True))]


@pytest.fixture
def login(client, auth):
    """Sign in as ``user`` with the English interface (msgids, stable for assertions)."""

    signed_in = []

    def _login(user):
        if signed_in:
            auth.logout()
        assert auth.login(user.username).status_code == 302
        signed_in.append(user)
        with client.session_transaction() as s:
            s["lang"] = "en"
        return user

    return _login


def post(client, url, data, page="/referrals/"):
    body = dict(data)
    body["csrf_token"] = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data=body)


@pytest.fixture
def people(make):
    bank = make.org("bank", code="ABC", name="江州农商银行")
    insurer = make.org("insurer", code="PIC", name="江州人保财险")
    return {
        "bureau": make.user("bureau", org=make.org("bureau", code="GXJ", name="工信局")),
        "bureau2": make.user("bureau", org=make.org("bureau", code="SWJ", name="商务局")),
        "bureau3": make.user("bureau", org=make.org("bureau", code="NYJ", name="农业农村局")),
        "office": make.user("finance_office"),
        "pboc": make.user("pboc"),
        "admin": make.user("admin"),
        "advisor": make.user("advisor", org=bank, username="adv_li"),
        "advisor2": make.user("advisor", org=bank, username="adv_wang"),
        "advisor3": make.user("advisor", org=insurer, username="adv_zhao"),
        "liaison": make.user("liaison", org=bank),
        "liaison2": make.user("liaison", org=insurer),
    }


# ------------------------------------------------------------------ transitions through the web
def test_assign_then_reassign_keeps_history(client, login, make, people):
    rid = refer(make, people["bureau"])
    login(people["office"])
    r = post(
        client,
        f"/referrals/{rid}/assign",
        {"advisor": "adv_li", "note": "请尽快联系", "version": get(rid).version},
    )
    assert r.status_code == 302, text_of(r)[:2000]
    case = get(rid)
    assert case.status == "assigned" and case.advisor_id == people["advisor"].id
    assert case.first_contact_due is not None

    r = post(
        client,
        f"/referrals/{rid}/assign",
        {"advisor": "adv_wang", "note": "换人", "version": case.version},
    )
    assert r.status_code == 302, text_of(r)[:2000]
    assert get(rid).advisor_id == people["advisor2"].id
    kinds = (
        db.session.execute(
            select(ReferralEvent.kind)
            .where(ReferralEvent.referral_id == rid)
            .order_by(ReferralEvent.id)
        )
        .scalars()
        .all()
    )
    assert kinds == ["created", "assigned", "reassigned"]
    page = text_of(client.get(f"/referrals/{rid}"))
    timeline = page.split('data-testid="timeline"')[1]
    assert "Assigned" in timeline and "Reassigned" in timeline
    assert "adv_li" not in timeline  # names, not usernames
    assert timeline.index("请尽快联系") < timeline.index("换人")
    assert "advisor user" in timeline


def test_assign_validation_and_stale_version(client, login, make, people):
    rid = refer(make, people["bureau"])
    login(people["office"])
    r = post(client, f"/referrals/{rid}/assign", {"advisor": "nobody", "note": "x", "version": 1})
    assert r.status_code == 422
    assert "No active advisor with that username." in text_of(r)
    assert get(rid).status == "submitted"

    assign(people["office"], [rid], people["advisor"])  # someone else, meanwhile
    r = post(
        client,
        f"/referrals/{rid}/assign",
        {"advisor": "adv_wang", "note": "我的备注", "version": 1},
    )
    assert r.status_code == 409
    page = text_of(r)
    assert "changed by someone else" in page
    assert "我的备注" in page  # the input is kept
    assert f'name="version" type="hidden" value="{get(rid).version}"' in page
    assert get(rid).advisor_id == people["advisor"].id
    # Submitting again now, knowingly, applies.
    r = post(
        client,
        f"/referrals/{rid}/assign",
        {"advisor": "adv_wang", "note": "我的备注", "version": get(rid).version},
    )
    assert r.status_code == 302
    assert get(rid).advisor_id == people["advisor2"].id


@pytest.mark.parametrize("role", ["bureau", "pboc", "advisor", "liaison", "admin"])
def test_only_the_finance_office_assigns_or_rejects(client, login, make, people, role):
    rid = refer(make, people["bureau"])
    login(people[role])
    version = get(rid).version
    for url, data in (
        (f"/referrals/{rid}/assign", {"advisor": "adv_li", "version": version}),
        (f"/referrals/{rid}/reject", {"reason": "不符合条件", "version": version}),
        ("/referrals/assign", {"advisor": "adv_li", "ids": [rid]}),
    ):
        assert post(client, url, data).status_code == 403, url
    assert get(rid).status == "submitted"


def test_reject_needs_a_reason_the_bureau_sees(client, login, make, people):
    rid = refer(make, people["bureau"])
    login(people["office"])
    r = post(client, f"/referrals/{rid}/reject", {"reason": "", "version": 1})
    assert r.status_code == 422
    assert "Give the reason the bureau will see." in text_of(r)
    assert get(rid).status == "submitted"
    r = post(client, f"/referrals/{rid}/reject", {"reason": "企业已注销", "version": 1})
    assert r.status_code == 302
    assert get(rid).status == "rejected" and get(rid).rejected_reason == "企业已注销"
    # Only from submitted.
    r = post(client, f"/referrals/{rid}/reject", {"reason": "再次", "version": get(rid).version})
    assert r.status_code == 409
    login(people["bureau"])
    page = text_of(client.get("/referrals/"))
    assert "企业已注销" in page and 'data-status="rejected"' in page


def test_withdraw_only_while_submitted_and_only_by_a_referrer(client, login, make, people):
    open_id = refer(make, people["bureau"])
    taken_id = refer(make, people["bureau"])
    assign(people["office"], [taken_id], people["advisor"])

    login(people["bureau2"])  # not a referrer: the case does not exist for it
    assert post(client, f"/referrals/{open_id}/withdraw", {"version": 1}).status_code == 404
    login(people["office"])
    assert post(client, f"/referrals/{open_id}/withdraw", {"version": 1}).status_code == 403

    login(people["bureau"])
    page = text_of(client.get(f"/referrals/{taken_id}"))
    assert 'data-testid="withdraw"' not in page
    r = post(client, f"/referrals/{taken_id}/withdraw", {"version": get(taken_id).version})
    assert r.status_code == 409
    assert "withdrawn only before it is assigned" in text_of(r)
    assert get(taken_id).status == "assigned"

    assert 'data-testid="withdraw"' in text_of(client.get(f"/referrals/{open_id}"))
    r = post(client, f"/referrals/{open_id}/withdraw", {"version": get(open_id).version})
    assert r.status_code == 302
    assert get(open_id).status == "withdrawn"


def test_withdraw_of_a_co_referral_leaves_the_case_to_the_other_bureau(client, login, make, people):
    data = item(make)
    rid = submit(people["bureau"], [data])[0]
    assert submit(people["bureau2"], [dict(data)])[0] == rid
    login(people["bureau2"])
    r = post(client, f"/referrals/{rid}/withdraw", {"version": get(rid).version})
    assert r.status_code == 302 and r.headers["Location"].endswith("/referrals/")
    assert get(rid).status == "submitted"
    assert client.get(f"/referrals/{rid}").status_code == 404
    login(people["bureau"])
    assert client.get(f"/referrals/{rid}").status_code == 200


@pytest.mark.parametrize("bad", ["", "0", "6", "-1", "abc", "3.5", "99999999999"])
def test_confirm_rejects_bad_satisfaction(client, login, make, people, bad):
    rid = refer(make, people["bureau"])
    assign(people["office"], [rid], people["advisor"])
    contact(people["advisor"], rid)
    resolve(people["advisor"], rid)
    login(people["bureau"])
    r = post(
        client,
        f"/referrals/{rid}/confirm",
        {"satisfaction": bad, "comment": "很好", "version": get(rid).version},
    )
    assert r.status_code == 422
    assert "Satisfaction must be from 1 to 5." in text_of(r)
    assert "很好" in text_of(r)
    assert get(rid).status == "resolved"


def test_confirm_only_when_resolved_and_only_by_a_referrer(client, login, make, people):
    rid = refer(make, people["bureau"])
    assign(people["office"], [rid], people["advisor"])
    login(people["bureau"])
    assert 'data-testid="confirm"' not in text_of(client.get(f"/referrals/{rid}"))
    r = post(client, f"/referrals/{rid}/confirm", {"satisfaction": "5", "version": 2})
    assert r.status_code == 409
    contact(people["advisor"], rid)
    r = post(
        client, f"/referrals/{rid}/confirm", {"satisfaction": "5", "version": get(rid).version}
    )
    assert r.status_code == 409  # in service, not resolved yet
    resolve(people["advisor"], rid, "financed", "150")

    login(people["bureau2"])
    r = post(
        client, f"/referrals/{rid}/confirm", {"satisfaction": "5", "version": get(rid).version}
    )
    assert r.status_code == 404
    login(people["pboc"])
    r = post(
        client, f"/referrals/{rid}/confirm", {"satisfaction": "5", "version": get(rid).version}
    )
    assert r.status_code == 403

    login(people["bureau"])
    page = text_of(client.get(f"/referrals/{rid}"))
    assert 'data-testid="confirm"' in page and "Financed · 150.00" in page
    r = post(
        client,
        f"/referrals/{rid}/confirm",
        {"satisfaction": "4", "comment": "服务及时", "version": get(rid).version},
    )
    assert r.status_code == 302
    case = get(rid)
    assert case.status == "closed" and case.satisfaction == 4
    assert case.satisfaction_comment == "服务及时"
    page = text_of(client.get(f"/referrals/{rid}"))
    assert "4 / 5" in page and "服务及时" in page
    assert "Outcome confirmed, case closed" in page


def test_pboc_reads_but_has_no_actions(client, login, make, people):
    rid = refer(make, people["bureau"])
    login(people["pboc"])
    page = text_of(client.get(f"/referrals/{rid}"))
    for testid in ("assign", "reject", "withdraw", "confirm"):
        assert f'data-testid="{testid}"' not in page


def test_bulk_assign_from_the_inbox(client, login, make, people):
    ids = submit(people["bureau"], [item(make) for _ in range(3)])
    login(people["office"])
    page = text_of(client.get("/referrals/"))
    assert 'name="ids"' in page and 'data-testid="bulk-assign"' in page
    r = post(client, "/referrals/assign?industry=industry", {"advisor": "adv_li", "ids": ids[:2]})
    assert r.status_code == 302
    assert "industry=industry" in r.headers["Location"]
    assert [get(i).advisor_id for i in ids] == [people["advisor"].id] * 2 + [None]
    assert "2 cases assigned." in text_of(client.get(r.headers["Location"]))

    r = post(client, "/referrals/assign", {"advisor": "adv_li"})
    assert r.status_code == 422 and "Select at least one case." in text_of(r)
    r = post(client, "/referrals/assign", {"advisor": "", "ids": [ids[2]]})
    assert r.status_code == 422 and "No active advisor with that username." in text_of(r)
    assert f'value="{ids[2]}" checked' in text_of(r)  # the ticks are kept
    r = post(client, "/referrals/assign", {"advisor": "adv_wang", "ids": ["x1"]})
    assert r.status_code == 422
    r = post(client, "/referrals/assign", {"advisor": "adv_wang", "ids": ["999999"]})
    assert r.status_code == 422
    # Already assigned to that advisor: nothing of the batch is saved.
    r = post(client, "/referrals/assign", {"advisor": "adv_li", "ids": [ids[2], ids[0]]})
    assert r.status_code == 422 and "already assigned" in text_of(r)
    assert get(ids[2]).advisor_id is None
    # A case that can no longer be assigned: 409, and again nothing of the batch is saved.
    extra = refer(make, people["bureau"])
    with acting_as(people["office"]):
        svc.reject(people["office"], extra, "不符合条件")
    db.session.commit()
    r = post(client, "/referrals/assign", {"advisor": "adv_wang", "ids": [ids[2], extra]})
    assert r.status_code == 409 and "cannot be moved" in text_of(r)
    assert get(ids[2]).advisor_id is None


# ------------------------------------------------------------------ scope
def test_each_role_lists_only_its_scope(client, login, make, people):
    shared = item(make)
    mine = refer(make, people["bureau"])
    co = submit(people["bureau"], [shared])[0]
    assert submit(people["bureau2"], [dict(shared)])[0] == co
    theirs = refer(make, people["bureau2"])
    insured = refer(make, people["bureau3"], needs=["insurance"], amount_wan="")
    assign(people["office"], [mine], people["advisor"])
    assign(people["office"], [co], people["advisor2"])
    assign(people["office"], [insured], people["advisor3"])
    every = {mine, co, theirs, insured}

    expected = {
        "bureau": {mine, co},
        "bureau2": {co, theirs},
        "advisor": {mine},
        "advisor2": {co},
        "liaison": {mine, co},
        "liaison2": {insured},
        "office": every,
        "pboc": every,
        "admin": every,
    }
    for role, ids in expected.items():
        login(people[role])
        r = client.get("/referrals/?status=")
        assert r.status_code == 200
        assert set(listed_ids(r)) == ids, role
        for rid in every:
            status = client.get(f"/referrals/{rid}").status_code
            assert status == (200 if rid in ids else 404), (role, rid)
    login(people["bureau"])
    assert client.get("/referrals/2147483648").status_code == 404
    assert client.get("/referrals/99999").status_code == 404


def test_navigation_labels_per_role(client, login, make, people):
    for role, label in (
        ("office", "Referrals"),
        ("bureau", "Referrals"),
        ("advisor", "My cases"),
        ("liaison", "Our advisors' cases"),
    ):
        login(people[role])
        page = text_of(client.get("/referrals/"))
        nav = page.split('data-testid="nav-referrals">')[1].split("</a>")[0]
        assert nav.startswith(label), (role, nav)
        assert ('data-testid="nav-referral-dashboard"' in page) == (role == "bureau")


def test_inbox_unread_count_drops_after_opening(client, login, make, people):
    ids = submit(people["bureau"], [item(make) for _ in range(3)])
    login(people["office"])
    page = client.get("/").get_data(as_text=True)
    assert 'data-testid="inbox-count"' in page and ">3</span>" in page
    inbox = client.get("/referrals/").get_data(as_text=True)
    assert inbox.count('data-unread="1"') == 3
    assert client.get(f"/referrals/{ids[0]}").status_code == 200
    assert client.get(f"/referrals/{ids[0]}").status_code == 200  # idempotent
    inbox = client.get("/referrals/").get_data(as_text=True)
    assert inbox.count('data-unread="1"') == 2
    assert f'<tr id="referral-{ids[0]}">' in inbox
    assert ">2</span>" in inbox.split('data-testid="inbox-count"')[1][:200]
    # Per person: the central bank still has three unread.
    login(people["pboc"])
    page = client.get("/referrals/").get_data(as_text=True)
    assert ">3</span>" in page.split('data-testid="inbox-count"')[1][:200]
    # The inbox defaults to new referrals; assigned cases leave it.
    assign(people["office"], [ids[1]], people["advisor"])
    assert set(listed_ids(client.get("/referrals/"))) == {ids[0], ids[2]}
    assert set(listed_ids(client.get("/referrals/?status="))) == set(ids)


# ------------------------------------------------------------------ filters
@pytest.fixture
def spread(make, people):
    """Cases differing in one attribute each, for the filter tests."""
    t1, t2 = make.township("城关镇"), make.township("新港街道")
    ids = {}
    ids["retail"] = refer(
        make,
        people["bureau"],
        industry="retail",
        township=t1,
        amount_wan="50",
        name="零售甲有限公司",
        employees=5,
        revenue_wan="50",
    )
    ids["big"] = refer(
        make,
        people["bureau"],
        industry="industry",
        township=t2,
        amount_wan="5000",
        employees=2000,
        revenue_wan="50000",
        name="大型制造有限公司",
    )
    ids["policy"] = refer(
        make,
        people["bureau2"],
        needs=["policy"],
        amount_wan="",
        name="政策需求有限公司",
    )
    ids["assigned"] = refer(make, people["bureau2"], amount_wan="800", name="已分配有限公司")
    assign(people["office"], [ids["assigned"]], people["advisor"])
    old = refer(make, people["bureau3"], amount_wan="300", name="去年企业有限公司")
    db.session.execute(
        update(Referral)
        .where(Referral.id == old)
        .values(created_at=datetime(2024, 3, 1, 16, 30, tzinfo=UTC))  # 3月2日 00:30 上海
    )
    db.session.commit()
    ids["old"] = old
    ids["t1"], ids["t2"] = t1.id, t2.id
    return ids


def test_each_filter_narrows_the_list(client, login, people, spread):
    s = spread
    big_code = db.session.get(Enterprise, get(s["big"]).enterprise_id).credit_code
    cases = [
        ("bureau=SWJ", {s["policy"], s["assigned"]}),
        ("bureau=swj", {s["policy"], s["assigned"]}),
        ("bureau=NOPE", set()),
        ("industry=retail", {s["retail"]}),
        (f"township={s['t2']}", {s["big"]}),
        ("size=large", {s["big"]}),
        ("size=micro", {s["retail"]}),
        ("need=policy", set(s[k] for k in ("retail", "big", "policy", "assigned", "old"))),
        ("need=financing", set(s[k] for k in ("retail", "big", "assigned", "old"))),
        ("amount_min=300", {s["big"], s["assigned"], s["old"]}),
        ("amount_max=300", {s["retail"], s["old"]}),
        ("amount_min=100&amount_max=1000", {s["assigned"], s["old"]}),
        ("status=assigned", {s["assigned"]}),
        ("date_from=2024-03-02&date_to=2024-03-02", {s["old"]}),
        ("date_to=2024-03-01", set()),
        (
            f"date_from={date.today() - timedelta(days=2)}",
            set(s[k] for k in ("retail", "big", "policy", "assigned")),
        ),
        ("q=零售甲", {s["retail"]}),
        (f"q={big_code}", {s["big"]}),
        (f"q={big_code[:-1].lower()}", {s["big"]}),
        ("q=100%25", set()),
        ("status=&need=financing&industry=industry&amount_min=1000", {s["big"]}),
    ]
    login(people["office"])
    for query, expected in cases:
        if "status=" not in query:
            query += "&status="
        r = client.get(f"/referrals/?{query}")
        assert r.status_code == 200, (query, text_of(r)[:500])
        assert set(listed_ids(r)) == expected, query


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "industry=mining",
        "size=huge",
        "need=money",
        "township=abc",
        "amount_min=abc",
        "amount_min=-5",
        "amount_min=10&amount_max=5",
        "date_from=2024-13-01",
        "date_from=yesterday",
        "date_from=2024-05-02&date_to=2024-05-01",
        "q=" + "x" * 300,
        "bureau=" + "b" * 100,
    ],
)
def test_bad_filters_are_explained_not_500(client, login, people, query, spread):
    login(people["office"])
    r = client.get(f"/referrals/?{query}")
    assert r.status_code == 422
    assert "is-invalid" in r.get_data(as_text=True)
    assert client.get(f"/referrals/export.xlsx?{query}").status_code == 422


def test_absurd_paging_values_fall_back(client, login, people, spread):
    login(people["office"])
    for query in (
        "cursor=!!!",
        "cursor=" + "A" * 500,
        "cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk6MQ",
        "limit=0",
        "limit=-3",
        "limit=abc",
        "limit=100000000000",
        "cursor=%00&limit=%00",
        "endpoint=x&_scheme=javascript&_external=1&_anchor=x&_method=POST",
    ):
        assert client.get(f"/referrals/?status=&{query}").status_code == 200, query
    r = post(client, "/referrals/assign?endpoint=x&_scheme=javascript", {"advisor": "adv_li"})
    assert r.status_code == 422
    rid = spread["retail"]
    r = post(
        client, "/referrals/assign?endpoint=x&_scheme=js&q=a", {"advisor": "adv_li", "ids": rid}
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/referrals/?q=a")


# ------------------------------------------------------------------ keyset pages
def test_keyset_pages_have_no_duplicates_or_gaps(client, login, make, people):
    # A batch shares one created_at: the id breaks the tie.
    ids = submit(people["bureau"], [item(make) for _ in range(7)])
    ids += submit(people["bureau2"], [item(make) for _ in range(6)])
    ids += [refer(make, people["bureau3"]) for _ in range(4)]
    login(people["office"])
    seen = []
    url = "/referrals/?status=&limit=5"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        page_ids = listed_ids(r)
        assert 0 < len(page_ids) <= 5
        seen += page_ids
        pages += 1
        match = re.search(r'href="([^"]*cursor=[^"]*)"[^>]*>More', r.get_data(as_text=True))
        url = html_lib.unescape(match.group(1)) if match else None
        assert pages < 10
    assert len(seen) == len(set(seen)) == 17
    everything = (
        db.session.execute(
            select(Referral.id).order_by(Referral.created_at.desc(), Referral.id.desc())
        )
        .scalars()
        .all()
    )
    assert seen == everything
    assert pages == 4
    # The filters travel with the cursor; the limit is capped.
    r = client.get("/referrals/?status=&limit=500")
    assert len(listed_ids(r)) == 17


def test_cursor_round_trip():
    at = datetime(2026, 7, 1, 8, 30, 15, 123456, tzinfo=UTC)
    cursor = queries.decode_cursor(queries.encode_cursor(at, 42))
    assert cursor == queries.Cursor(at, 42)
    assert queries.decode_cursor("bm9wZQ") is None
    assert queries.decode_cursor(None) is None


# ------------------------------------------------------------------ a fixed number of queries
def _many_cases(make, people, n=60):
    t = make.township("城东街道")
    ids = submit(
        people["bureau"],
        [item(make, township=t, industry=("retail" if i % 2 else "industry")) for i in range(n)],
    )
    shared = [item(make) for _ in range(8)]
    ids += submit(people["bureau2"], shared)
    submit(people["bureau"], [dict(x) for x in shared])  # co-referrals
    assign(people["office"], ids[::3], people["advisor"])
    assign(people["office"], ids[1::3], people["advisor3"])
    for rid in ids[:12:3]:
        contact(people["advisor"], rid)
    resolve(people["advisor"], ids[0])
    return ids


@pytest.mark.parametrize("role", ["office", "pboc", "bureau", "advisor", "liaison", "admin"])
def test_list_runs_a_fixed_number_of_queries(client, login, make, people, count_queries, role):
    _many_cases(make, people)
    login(people[role])
    client.get("/referrals/?status=")  # warm up (first-request work)
    counts = {}
    sizes = {}
    for limit in (5, 50):
        with count_queries() as q:
            r = client.get(f"/referrals/?status=&limit={limit}")
        assert r.status_code == 200
        counts[limit] = q.count
        sizes[limit] = len(listed_ids(r))
    assert sizes[5] == 5 and sizes[50] > 5, sizes
    assert counts[5] == counts[50], counts
    assert counts[50] <= 14, counts


def test_inbox_with_filters_runs_a_fixed_number_of_queries(
    client, login, make, people, count_queries
):
    _many_cases(make, people)
    login(people["office"])
    client.get("/referrals/")
    counts = []
    for limit in (5, 50):
        with count_queries() as q:
            r = client.get(f"/referrals/?status=&bureau=GXJ&industry=retail&limit={limit}")
        assert r.status_code == 200
        counts.append(q.count)
    assert counts[0] == counts[1]


def test_dashboard_runs_a_fixed_number_of_queries(client, login, make, people, count_queries):
    login(people["bureau"])
    client.get("/referrals/dashboard")
    with count_queries() as q:
        client.get("/referrals/dashboard")
    few = q.count
    _many_cases(make, people)
    with count_queries() as q:
        r = client.get("/referrals/dashboard")
    assert r.status_code == 200
    assert q.count == few


# ------------------------------------------------------------------ the closed loop
def test_bureau_sees_the_advisor_and_the_outcome(client, login, make, people):
    rid = refer(make, people["bureau"])
    login(people["bureau"])
    page = text_of(client.get("/referrals/"))
    assert 'data-status="submitted"' in page
    assign(people["office"], [rid], people["advisor"])
    row = text_of(client.get("/referrals/")).split(f'id="referral-{rid}"')[1].split("</tr>")[0]
    assert "advisor user" in row and "江州农商银行" in row
    assert "due " in row
    contact(people["advisor"], rid, date(2026, 1, 5))
    row = text_of(client.get("/referrals/")).split(f'id="referral-{rid}"')[1].split("</tr>")[0]
    assert "2026-01-05" in row
    resolve(people["advisor"], rid, "declined", None, "企业暂不需要贷款")
    row = text_of(client.get("/referrals/")).split(f'id="referral-{rid}"')[1].split("</tr>")[0]
    assert "Declined by the firm" in row and "企业暂不需要贷款" in row
    detail = text_of(client.get(f"/referrals/{rid}"))
    assert "advisor user" in detail.split('data-testid="case-advisor"')[1][:200]


def test_bureau_dashboard_figures(client, login, make, people):
    ids = submit(people["bureau"], [item(make) for _ in range(6)])
    other = refer(make, people["bureau2"], amount_wan="999")
    assign(people["office"], ids[:4] + [other], people["advisor"])
    # First contact 2, 4 and 9 days after the referral day (Shanghai): median 4.
    db.session.execute(
        update(Referral)
        .where(Referral.id.in_(ids[:4]))
        .values(created_at=datetime(2026, 3, 1, 17, 0, tzinfo=UTC))  # 3月2日 01:00 上海
    )
    db.session.commit()
    for rid, day in zip(ids[:3], (4, 6, 11), strict=True):
        contact(people["advisor"], rid, date(2026, 3, day))
    contact(people["advisor"], other, date(2026, 3, 30))
    resolve(people["advisor"], ids[0], "financed", "120.5")
    resolve(people["advisor"], ids[1], "financed", "80")
    resolve(people["advisor"], ids[2], "no_need", None)
    resolve(people["advisor"], other, "financed", "1000")
    with acting_as(people["bureau"]):
        svc.confirm_outcome(people["bureau"], ids[0], 5, "好")
    db.session.commit()
    with acting_as(people["office"]):
        svc.reject(people["office"], ids[4], "重复")
    db.session.commit()
    login(people["bureau"])
    r = client.get("/referrals/dashboard")
    assert r.status_code == 200
    page = text_of(r)
    counts = page.split('data-testid="dashboard-counts"')[1].split(
        'data-testid="dashboard-figures"'
    )[0]
    found = dict(
        (label, int(n))
        for n, label in re.findall(
            r'class="stat">(\d+)</div>.*?class="stat-label">([^<]+)<', counts, re.S
        )
    )
    assert found == {
        "Referred": 6,
        "Submitted": 1,
        "Assigned": 1,
        "In service": 0,
        "Resolved": 2,
        "Closed": 1,
        "Rejected": 1,
        "Withdrawn": 0,
    }
    assert '<div class="stat" data-testid="median-days">4</div>' in page
    assert '<div class="stat" data-testid="financed">200.50</div>' in page
    latest = page.split('data-testid="latest-outcomes"')[1]
    assert "No financing need" in latest and "Financed · 120.50" in latest
    login(people["office"])
    assert client.get("/referrals/dashboard").status_code == 403


def test_sla_flags_in_the_list(client, login, make, people):
    late, soon, fine = (refer(make, people["bureau"]) for _ in range(3))
    assign(people["office"], [late, soon, fine], people["advisor"])
    today = clock.today()
    cal = svc.calendar()
    db.session.execute(
        update(Referral).where(Referral.id == late).values(first_contact_due=today - timedelta(1))
    )
    db.session.execute(update(Referral).where(Referral.id == soon).values(first_contact_due=today))
    db.session.execute(
        update(Referral)
        .where(Referral.id == fine)
        .values(first_contact_due=cal.add_workdays(today, 4))
    )
    db.session.commit()
    login(people["office"])
    page = client.get("/referrals/?status=").get_data(as_text=True)

    def row(rid):
        return page.split(f'id="referral-{rid}"')[1].split("</tr>")[0]

    assert 'data-sla="overdue"' in row(late) and "Overdue" in row(late)
    assert 'data-sla="due_soon"' in row(soon)
    assert "data-sla" not in row(fine)
    assert 'data-sla="overdue"' in client.get(f"/referrals/{late}").get_data(as_text=True)


# ------------------------------------------------------------------ suggestions
def test_suggestions_rank_fit_and_show_reasons(client, login, make, people):
    town = make.township("临江镇")
    with acting_as(people["admin"]):
        for user, specialties, towns in (
            (people["advisor"], ["industry"], [town.id]),
            (people["advisor2"], ["retail"], []),
        ):
            update_advisor_profile(
                db.session.get(AdvisorProfile, user.id),
                title=None,
                capacity=10,
                accepting=True,
                specialties=specialties,
                township_ids=towns,
            )
    db.session.commit()
    rid = refer(make, people["bureau"], industry="industry", township=town)
    login(people["office"])
    page = text_of(client.get(f"/referrals/{rid}"))
    block = page.split('data-testid="suggestions"')[1].split("</ol>")[0]
    order = re.findall(r'data-advisor="([^"]+)"', block)
    assert order.index("adv_li") < order.index("adv_wang")
    first = block.split('data-advisor="adv_li"')[1].split("</li>")[0]
    assert "Knows the industry" in first and "Serves 临江镇" in first
    assert "load 0 / 10" in first
    assert "Bank, for a financing need" in first
    # The best fit is preselected in the form.
    assert '<option selected value="adv_li">' in page


# ------------------------------------------------------------------ export
def test_export_applies_filters_and_escapes_formulas(client, login, make, people, spread):
    evil = refer(
        make,
        people["bureau"],
        name='=HYPERLINK("http://x")公司',
        purpose="+1+2",
        industry="retail",
    )
    login(people["office"])
    r = client.get("/referrals/export.xlsx?status=&industry=retail")
    assert r.status_code == 200
    assert r.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert header[0] == "Case" and "Referring bureaus" in header
    assert sorted(row[0] for row in body) == sorted([spread["retail"], evil])
    evil_row = next(row for row in body if row[0] == evil)
    assert evil_row[1].startswith("'=") and evil_row[9] == "'+1+2"
    assert evil_row[6] == "GXJ"
    notes = dict(wb.worksheets[1].iter_rows(min_row=2, values_only=True))
    assert notes["Industry"] == "Retail" and notes["Status"] == "All statuses"
    # The inbox default (new referrals) applies to the export as to the page.
    r = client.get("/referrals/export.xlsx")
    ids = [row[0] for row in list(load_workbook(io.BytesIO(r.data)).worksheets[0].values)[1:]]
    assert spread["assigned"] not in ids and spread["retail"] in ids
    # Scope applies: a bureau exports only its own cases.
    login(people["bureau2"])
    r = client.get("/referrals/export.xlsx")
    ids = {row[0] for row in list(load_workbook(io.BytesIO(r.data)).worksheets[0].values)[1:]}
    assert ids == {spread["policy"], spread["assigned"]}


def test_export_cap_adds_a_note(app, make, people):
    submit(people["bureau"], [item(make) for _ in range(4)])
    data = queries.export_rows(people["office"], queries.ReferralFilters(), cap=3)
    assert len(data.rows) == 3 and data.truncated


# ------------------------------------------------------------------ home widgets
def test_home_widgets(client, login, make, people):
    submit(people["bureau"], [item(make)])
    login(people["office"])
    page = text_of(client.get("/"))
    assert 'data-testid="inbox-widget"' in page
    assert "/referrals/" in page.split('data-testid="inbox-widget"')[1][:800]
    login(people["bureau"])
    page = text_of(client.get("/"))
    widget = page.split('data-testid="referral-widget"')[1][:800]
    assert "/referrals/dashboard" in widget and "Recommend a firm" in widget
