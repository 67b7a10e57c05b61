"""The referral API of the contract: the bureau push, scoped lists with keyset pagination, the
detail shape, assignment, and no server error for any input."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from models import Notification, Referral, db

URL = "/api/v1/referrals"
REFERRAL_KEYS = {
    "id",
    "status",
    "enterprise",
    "referrers",
    "advisor",
    "needs",
    "amount_wan",
    "created_at",
    "timeline",
    "outcome",
}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def item(make, **values) -> dict:
    data = {
        "credit_code": make.credit_code(),
        "name": f"江州市测试企业{make.n()}有限公司",
        "industry": "industry",
        "employees": 30,
        "revenue_wan": 500,
        "needs": ["financing", "policy"],
        "amount_wan": "200",
    }
    data.update(values)
    return data


@pytest.fixture
def people(make):
    bank = make.org("bank", code="ABC")
    other_bank = make.org("bank", code="ICBC")
    users = {
        "bureau": make.user("bureau", org=make.org("bureau", code="GXJ")),
        "bureau2": make.user("bureau", org=make.org("bureau", code="SWJ")),
        "office": make.user("finance_office"),
        "pboc": make.user("pboc"),
        "admin": make.user("admin"),
        "advisor": make.user("advisor", org=bank, username="adv_li"),
        "advisor2": make.user("advisor", org=other_bank, username="adv_wang"),
        "liaison": make.user("liaison", org=bank),
        "liaison2": make.user("liaison", org=other_bank),
    }
    return users


@pytest.fixture
def tokens(make, people):
    return {role: make.token(user) for role, user in people.items()}


def push(client, token, items):
    return client.post(URL, json={"items": items}, headers=bearer(token))


def assign(client, token, referral_id, username):
    return client.post(
        f"{URL}/{referral_id}/assign", json={"advisor": username}, headers=bearer(token)
    )


# ----------------------------------------------------------------------------- auth
def test_missing_token_is_401(client, people):
    assert client.post(URL, json={"items": []}).status_code == 401
    assert client.get(URL).status_code == 401
    assert client.get(f"{URL}/1").status_code == 401
    assert client.post(f"{URL}/1/assign", json={"advisor": "x"}).status_code == 401
    r = client.get(URL, headers=bearer("not-a-token"))
    assert r.status_code == 401
    assert r.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("role", ["office", "pboc", "admin", "advisor", "liaison"])
def test_only_bureaus_push(client, make, tokens, role):
    r = push(client, tokens[role], [item(make)])
    assert r.status_code == 403
    assert r.get_json()["error"]["code"] == "forbidden"
    assert db.session.scalar(select(Referral.id)) is None


# ----------------------------------------------------------------------------- push
def test_created_merged_duplicate_rejected_in_one_call(client, make, people, tokens):
    firm_a, firm_b = item(make), item(make)
    first = push(client, tokens["bureau"], [firm_a, firm_b])
    assert first.status_code == 200
    case_a = first.get_json()["results"][0]["referral_id"]

    bad = item(make, credit_code="91310115MA1H8R7C6D", industry="mining", needs=[])
    r = push(client, tokens["bureau2"], [item(make), firm_a, bad, dict(firm_b, name="改名")])
    assert r.status_code == 200
    body = r.get_json()
    assert [x["index"] for x in body["results"]] == [0, 1, 2, 3]
    assert [x["status"] for x in body["results"]] == ["created", "merged", "rejected", "merged"]
    assert body["counts"] == {"created": 1, "merged": 2, "duplicate": 0, "rejected": 1}
    created, merged, rejected, _m = body["results"]
    assert created["errors"] == {} and isinstance(created["referral_id"], int)
    assert merged["referral_id"] == case_a and merged["errors"] == {}
    assert rejected["referral_id"] is None
    assert {"credit_code", "industry", "needs"} <= set(rejected["errors"])

    # The first bureau again: a duplicate, nothing new.
    again = push(client, tokens["bureau"], [firm_a]).get_json()
    assert again["results"][0]["status"] == "duplicate"
    assert again["results"][0]["referral_id"] == case_a
    assert "credit_code" in again["results"][0]["errors"]
    assert again["counts"] == {"created": 0, "merged": 0, "duplicate": 1, "rejected": 0}

    # Accepted items were saved though one was rejected: three cases in all.
    assert len(db.session.execute(select(Referral.id)).all()) == 3
    detail = client.get(f"{URL}/{case_a}", headers=bearer(tokens["bureau2"])).get_json()
    assert detail["referrers"] == ["GXJ", "SWJ"]


def test_duplicates_inside_one_call(client, make, tokens):
    firm = item(make)
    r = push(client, tokens["bureau"], [firm, item(make), dict(firm)]).get_json()
    assert [x["status"] for x in r["results"]] == ["created", "created", "duplicate"]
    assert "credit_code" in r["results"][2]["errors"]
    assert r["counts"] == {"created": 2, "merged": 0, "duplicate": 1, "rejected": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"items": "not a list"},
        {"items": {"0": {}}},
        {"things": []},
        [],
        "items",
        None,
        12,
    ],
)
def test_bad_envelope_is_422(client, tokens, body):
    r = client.post(URL, data=json.dumps(body), headers=bearer(tokens["bureau"]))
    assert r.status_code == 422
    assert "items" in r.get_json()["error"]["fields"]


def test_too_many_items_is_422(client, make, tokens):
    r = push(client, tokens["bureau"], [{"name": "x"}] * 1001)
    assert r.status_code == 422
    assert "items" in r.get_json()["error"]["fields"]
    assert db.session.scalar(select(Referral.id)) is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'items': []}", b"\xff\xfe\x00", b"[" * 100_000],
)
def test_bad_json_is_422(client, tokens, raw):
    r = client.post(
        URL, data=raw, headers={**bearer(tokens["bureau"]), "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert r.get_json()["error"]["code"] == "invalid"
    assert "items" in r.get_json()["error"]["fields"]


GARBAGE = [
    "a string",
    17,
    None,
    [1, 2, 3],
    {"credit_code": 91310115, "name": ["x"], "industry": {"a": 1}},
    {"credit_code": ["x"], "industry": 3, "township": 10**30, "needs": "financing"},
    {"credit_code": {"nested": {"deeper": [[[]]]}}, "township": {"x": 1}, "needs": [[["x"]]]},
    {"credit_code": "9131\x000115MA1H8R7C6D", "name": "NUL\x00名称", "industry": "indus\x00try"},
    {"township": -1, "employees": 10**40, "revenue_wan": 10**40, "amount_wan": -5},
    {"township": True, "employees": True, "amount_wan": True, "needs": True},
    {"amount_wan": 1e308, "revenue_wan": 1e-300, "assets_wan": "NaN", "employees": 1.5},
    {"amount_wan": "Infinity", "revenue_wan": "1e999999", "assets_wan": "-0"},
    {"amount_wan": float("inf"), "revenue_wan": float("nan"), "employees": float("-inf")},
    {"purpose": {"x": 1}, "note": ["a"] * 50, "contact_phone": 13800000000, "contact_name": 5},
    {"name": "x" * 100_000, "credit_code": "9" * 10_000, "needs": ["financing"] * 10_000},
]


def test_garbage_items_are_rejected_never_500(client, make, tokens):
    items = [*GARBAGE, item(make, township="no such township"), item(make)]
    r = push(client, tokens["bureau"], items)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    results = r.get_json()["results"]
    assert len(results) == len(items)
    assert [x["index"] for x in results] == list(range(len(items)))
    assert all(x["status"] == "rejected" and x["errors"] for x in results[:-2])
    # A township the city has not listed never rejects the firm: kept as written, with a warning.
    assert results[-2]["status"] == "created"
    assert "no such township" in results[-2]["warnings"]["township"]
    assert results[-1]["status"] == "created" and results[-1]["warnings"] == {}


@pytest.mark.parametrize("township", [10**30, 2**63, -(2**63) - 1, 2**31])
def test_numbers_as_townships_are_kept_as_text(client, make, tokens, township):
    """A number is read as the text of a code: no township has it, so it is kept as written
    (or refused when longer than a township name can be), never a 500."""
    r = push(client, tokens["bureau"], [item(make, township=township)])
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    result = r.get_json()["results"][0]
    assert result["status"] == "created"
    assert str(township) in result["warnings"]["township"]


def test_garbage_in_nested_values_of_an_otherwise_good_item(client, make, tokens):
    for values in (
        {"credit_code": 12345},
        {"credit_code": None},
        {"industry": ["industry"]},
        {"industry": 7},
        {"needs": {"financing": True}},
        {"amount_wan": [1]},
        {"amount_wan": {"v": 1}},
        {"name": ["江州市某某有限公司"]},
        {"name": True},
        {"contact_name": {"n": "张三"}},
        {"purpose": ["扩产"]},
        {"note": False},
    ):
        r = push(client, tokens["bureau"], [item(make, **values)])
        assert r.status_code == 200, (values, r.get_data(as_text=True)[:500])
        result = r.get_json()["results"][0]
        assert result["status"] == "rejected", values
        assert set(values) <= set(result["errors"]), (values, result["errors"])


@pytest.mark.parametrize(
    "field",
    ["name", "township", "address", "contact_name", "purpose", "note", "credit_code", "needs"],
)
def test_lone_surrogates_are_rejected_per_field(client, make, tokens, field):
    """JSON can spell "\\ud800"; no database stores it. The item is rejected, the rest saved."""
    value = ["policy", "\ud800"] if field == "needs" else "江州\ud800市"
    raw = json.dumps({"items": [item(make, **{field: value}), item(make)]})
    r = client.post(URL, data=raw, headers=bearer(tokens["bureau"]))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    first, second = r.get_json()["results"]
    assert first["status"] == "rejected" and field in first["errors"]
    assert second["status"] == "created"


def test_lone_surrogates_in_assign_are_422(client, make, tokens):
    rid = push(client, tokens["bureau"], [item(make)]).get_json()["results"][0]["referral_id"]
    for body, field in (
        ({"advisor": "adv\ud800"}, "advisor"),
        ({"advisor": "adv_li", "note": "\udfff"}, "note"),
    ):
        r = client.post(
            f"{URL}/{rid}/assign", data=json.dumps(body), headers=bearer(tokens["office"])
        )
        assert r.status_code == 422
        assert field in r.get_json()["error"]["fields"]


def test_numbers_in_text_fields_are_read_as_text(client, make, tokens):
    r = push(client, tokens["bureau"], [item(make, contact_phone=13800000000, contact_name=7)])
    result = r.get_json()["results"][0]
    assert result["status"] == "created", result


def test_float_amounts_keep_their_decimal_value(client, make, people, tokens):
    r = push(
        client, tokens["bureau"], [item(make, amount_wan=100.1), item(make, amount_wan=0.3)]
    ).get_json()
    ids = [x["referral_id"] for x in r["results"]]
    stored = dict(db.session.execute(select(Referral.id, Referral.amount_wan)).all())
    assert stored[ids[0]] == Decimal("100.1")
    assert stored[ids[1]] == Decimal("0.3")
    one = client.get(f"{URL}/{ids[0]}", headers=bearer(tokens["bureau"])).get_json()
    two = client.get(f"{URL}/{ids[1]}", headers=bearer(tokens["bureau"])).get_json()
    assert one["amount_wan"] == "100.1"
    assert two["amount_wan"] == "0.3"


def test_push_notifies_the_office(client, make, people, tokens):
    push(client, tokens["bureau"], [item(make), item(make)])
    notes = db.session.execute(select(Notification.user_id, Notification.kind)).all()
    assert (people["office"].id, "referrals_submitted") in notes
    assert (people["pboc"].id, "referrals_submitted") in notes


# ----------------------------------------------------------------------------- list
def _seed(client, make, people, tokens):
    """Cases from two bureaus, one co-referred; some assigned to either bank's advisor."""
    a = push(client, tokens["bureau"], [item(make) for _ in range(4)]).get_json()
    b = push(client, tokens["bureau2"], [item(make) for _ in range(3)]).get_json()
    ids_a = [x["referral_id"] for x in a["results"]]
    ids_b = [x["referral_id"] for x in b["results"]]
    assert assign(client, tokens["office"], ids_a[0], "adv_li").status_code == 200
    assert assign(client, tokens["office"], ids_b[0], "adv_li").status_code == 200
    assert assign(client, tokens["office"], ids_a[1], "adv_wang").status_code == 200
    return ids_a, ids_b


def _all_ids(client, token, **params):
    r = client.get(URL, query_string=params, headers=bearer(token))
    assert r.status_code == 200, r.get_data(as_text=True)
    return [x["id"] for x in r.get_json()["items"]]


def test_list_is_scoped_per_role(client, make, people, tokens):
    ids_a, ids_b = _seed(client, make, people, tokens)
    every = set(ids_a + ids_b)
    assert set(_all_ids(client, tokens["bureau"])) == set(ids_a)
    assert set(_all_ids(client, tokens["bureau2"])) == set(ids_b)
    assert set(_all_ids(client, tokens["advisor"])) == {ids_a[0], ids_b[0]}
    assert set(_all_ids(client, tokens["advisor2"])) == {ids_a[1]}
    assert set(_all_ids(client, tokens["liaison"])) == {ids_a[0], ids_b[0]}
    assert set(_all_ids(client, tokens["liaison2"])) == {ids_a[1]}
    for role in ("office", "pboc", "admin"):
        assert set(_all_ids(client, tokens[role])) == every, role
    # A co-referral brings the case into the second bureau's list.
    code = client.get(f"{URL}/{ids_a[3]}", headers=bearer(tokens["office"])).get_json()
    firm = item(make, credit_code=code["enterprise"]["credit_code"])
    assert push(client, tokens["bureau2"], [firm]).get_json()["results"][0]["status"] == "merged"
    assert ids_a[3] in _all_ids(client, tokens["bureau2"])


def test_list_filters_by_status_and_is_newest_first(client, make, people, tokens):
    ids_a, ids_b = _seed(client, make, people, tokens)
    assigned = _all_ids(client, tokens["office"], status="assigned")
    assert set(assigned) == {ids_a[0], ids_b[0], ids_a[1]}
    everything = _all_ids(client, tokens["office"])
    assert everything == sorted(everything, reverse=True)  # same-second inserts: id breaks ties
    r = client.get(URL, query_string={"status": "bogus"}, headers=bearer(tokens["office"]))
    assert r.status_code == 422
    assert "status" in r.get_json()["error"]["fields"]


def test_keyset_pagination_has_no_gaps_or_duplicates(client, make, people, tokens):
    ids = [
        x["referral_id"]
        for x in push(client, tokens["bureau"], [item(make) for _ in range(23)]).get_json()[
            "results"
        ]
    ]
    # Spread the creation times, with ties, so the cursor must use both created_at and id.
    base = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    for i, rid in enumerate(ids):
        db.session.execute(
            update(Referral)
            .where(Referral.id == rid)
            .values(created_at=base + timedelta(minutes=i // 3))
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = client.get(URL, query_string=params, headers=bearer(tokens["bureau"])).get_json()
        seen += [x["id"] for x in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    expected = sorted(ids, key=lambda rid: (ids.index(rid) // 3, rid), reverse=True)
    assert seen == expected


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "abc",
        base64.urlsafe_b64encode(b"no separator").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00|x").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00|5").decode(),  # no offset
        base64.urlsafe_b64encode(b"not a date|5").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|99999999999999999999").decode(),
        base64.urlsafe_b64encode(b"0001-01-01T00:00:00+14:00|1").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|1").decode(),
        "é",
        "\x00",
    ],
)
def test_bad_cursor_is_422(client, people, tokens, cursor):
    r = client.get(URL, query_string={"cursor": cursor}, headers=bearer(tokens["office"]))
    assert r.status_code == 422
    assert "cursor" in r.get_json()["error"]["fields"]


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", "9" * 50, "５"])
def test_bad_limit_is_422(client, people, tokens, limit):
    r = client.get(URL, query_string={"limit": limit}, headers=bearer(tokens["office"]))
    assert r.status_code == 422
    assert "limit" in r.get_json()["error"]["fields"]


def test_list_runs_a_fixed_number_of_queries(client, make, people, tokens, count_queries):
    ids_a, ids_b = _seed(client, make, people, tokens)
    for _ in range(6):
        push(client, tokens["bureau"], [item(make) for _ in range(10)])
    newest = db.session.scalars(select(Referral.id).order_by(Referral.id.desc()).limit(3)).all()
    for rid in newest:
        assert assign(client, tokens["office"], rid, "adv_wang").status_code == 200
    counts = {}
    for limit in (5, 50):
        with count_queries() as q:
            r = client.get(URL, query_string={"limit": limit}, headers=bearer(tokens["office"]))
        assert r.status_code == 200
        assert len(r.get_json()["items"]) == limit
        counts[limit] = q.count
    assert counts[5] == counts[50], counts
    assert counts[50] <= 10, counts


# ----------------------------------------------------------------------------- detail
def test_detail_has_the_contract_shape(client, make, people, tokens):
    r = push(client, tokens["bureau"], [item(make, amount_wan="250.5", purpose="扩产")])
    rid = r.get_json()["results"][0]["referral_id"]
    body = client.get(f"{URL}/{rid}", headers=bearer(tokens["bureau"])).get_json()
    assert REFERRAL_KEYS <= set(body)
    assert body["id"] == rid
    assert body["status"] == "submitted"
    assert set(body["enterprise"]) >= {"credit_code", "name", "industry", "size_class"}
    assert body["enterprise"]["size_class"] in ("micro", "small", "medium", "large", "unknown")
    assert body["referrers"] == ["GXJ"]
    assert body["advisor"] is None
    assert body["needs"] == ["financing", "policy"]
    assert body["amount_wan"] == "250.5"
    assert body["outcome"] is None
    created = datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() == timedelta(hours=8)
    assert [e["status"] for e in body["timeline"]] == ["submitted"]
    assert set(body["timeline"][0]) >= {"at", "status", "by", "note"}
    # A list item has the same shape as the detail.
    listed = client.get(URL, headers=bearer(tokens["bureau"])).get_json()["items"][0]
    assert listed == body


def test_detail_outside_scope_is_404(client, make, people, tokens):
    rid = push(client, tokens["bureau"], [item(make)]).get_json()["results"][0]["referral_id"]
    for role in ("bureau2", "advisor", "liaison"):
        r = client.get(f"{URL}/{rid}", headers=bearer(tokens[role]))
        assert r.status_code == 404, role
        assert r.get_json()["error"]["code"] == "not_found"
    for missing in (rid + 1000, 2**31, 10**30):
        r = client.get(f"{URL}/{missing}", headers=bearer(tokens["office"]))
        assert r.status_code == 404
        assert r.get_json()["error"]["code"] == "not_found"


# ----------------------------------------------------------------------------- assign
def test_finance_office_assigns(client, make, people, tokens):
    rid = push(client, tokens["bureau"], [item(make)]).get_json()["results"][0]["referral_id"]
    r = assign(client, tokens["office"], rid, "ADV_LI")
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert REFERRAL_KEYS <= set(body)
    assert body["status"] == "assigned"
    assert body["advisor"] == "adv_li"
    assert body["institution"] == "ABC"
    assert body["first_contact_due"]
    assert [e["status"] for e in body["timeline"]] == ["submitted", "assigned"]
    assert body["timeline"][1]["kind"] == "assigned"
    assert body["timeline"][1]["by"] == people["office"].display_name
    # The bureau now sees the advisor's username.
    seen = client.get(f"{URL}/{rid}", headers=bearer(tokens["bureau"])).get_json()
    assert seen["advisor"] == "adv_li"
    # Reassignment keeps history.
    again = assign(client, tokens["office"], rid, "adv_wang").get_json()
    assert again["advisor"] == "adv_wang"
    assert [e["kind"] for e in again["timeline"]] == ["created", "assigned", "reassigned"]


@pytest.mark.parametrize("role", ["bureau", "pboc", "admin", "advisor", "liaison"])
def test_assign_by_other_roles_is_403(client, make, people, tokens, role):
    rid = push(client, tokens["bureau"], [item(make)]).get_json()["results"][0]["referral_id"]
    r = assign(client, tokens[role], rid, "adv_li")
    assert r.status_code == 403
    assert db.session.get(Referral, rid).advisor_id is None


@pytest.mark.parametrize(
    "body",
    [
        {"advisor": "nobody"},
        {"advisor": "GXJ"},  # not an advisor
        {"advisor": ""},
        {"advisor": 5},
        {"advisor": ["adv_li"]},
        {"advisor": "adv\x00li"},
        {},
        [],
        "adv_li",
    ],
)
def test_assign_unknown_advisor_is_422(client, make, people, tokens, body):
    rid = push(client, tokens["bureau"], [item(make)]).get_json()["results"][0]["referral_id"]
    r = client.post(f"{URL}/{rid}/assign", data=json.dumps(body), headers=bearer(tokens["office"]))
    assert r.status_code == 422
    assert "advisor" in r.get_json()["error"]["fields"]


def test_assign_bad_json_and_missing_case(client, make, people, tokens):
    rid = push(client, tokens["bureau"], [item(make)]).get_json()["results"][0]["referral_id"]
    r = client.post(f"{URL}/{rid}/assign", data=b"{nope", headers=bearer(tokens["office"]))
    assert r.status_code == 422
    for missing in (rid + 1000, 2**40):
        r = assign(client, tokens["office"], missing, "adv_li")
        assert r.status_code == 404
        assert r.get_json()["error"]["code"] == "not_found"


def test_assigning_a_rejected_case_is_409(client, make, people, tokens):
    from advisors.audit import acting_as
    from advisors.services import referrals as svc

    rid = push(client, tokens["bureau"], [item(make)]).get_json()["results"][0]["referral_id"]
    with acting_as(people["office"]):
        svc.reject(people["office"], rid, "不属于服务范围")
    db.session.commit()
    r = assign(client, tokens["office"], rid, "adv_li")
    assert r.status_code == 409
    assert r.get_json()["error"]["code"] == "conflict"


def test_assign_with_stale_version_is_409(client, make, people, tokens):
    rid = push(client, tokens["bureau"], [item(make)]).get_json()["results"][0]["referral_id"]
    r = client.post(
        f"{URL}/{rid}/assign",
        json={"advisor": "adv_li", "version": 99},
        headers=bearer(tokens["office"]),
    )
    assert r.status_code == 409
