"""The audit trail: rows written by the listener, and the browser at /audit/."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from advisors.audit import acting_as
from advisors.services import audit_queries
from advisors.services.audit_queries import AuditFilters, parse_filters, search_audit
from models import AuditLog, Enterprise, Referral, Township, db

_ROW_RE = re.compile(r'data-audit-id="(\d+)"')


def _ids(response) -> list[int]:
    return [int(i) for i in _ROW_RE.findall(response.get_data(as_text=True))]


def _trail(table: str, record) -> list[AuditLog]:
    return list(
        db.session.execute(
            select(AuditLog)
            .where(AuditLog.table_name == table, AuditLog.record_id == str(record))
            .order_by(AuditLog.id)
        ).scalars()
    )


def _add_rows(n: int, **values) -> None:
    base = {
        "at": datetime.now(UTC),
        "actor_id": None,
        "actor_label": "bulk",
        "action": "update",
        "table_name": "township",
        "record_id": "1",
        "changes": {"name": ["旧名", "新名"]},
        "ip": None,
    }
    base.update(values)
    db.session.execute(insert(AuditLog), [dict(base) for _ in range(n)])
    db.session.commit()


# ------------------------------------------------------------------ the listener
def test_register_then_edit_writes_two_rows_with_actor(make):
    from advisors.services.firms import update_firm

    bureau = make.user("bureau", username="swj_editor")
    firm = make.firm(actor=bureau, employees=50, name="江州市恒达精密机械有限公司")
    data = {
        "credit_code": firm.credit_code,
        "name": firm.name,
        "industry": firm.industry,
        "employees": "80",
        "revenue_wan": "800",
    }
    with acting_as(bureau, ip="10.0.0.7"):
        update_firm(bureau, firm, data)
    db.session.commit()

    rows = _trail("enterprise", firm.id)
    assert [r.action for r in rows] == ["insert", "update"]
    assert {(r.actor_id, r.actor_label) for r in rows} == {(bureau.id, "swj_editor")}
    assert rows[0].changes["name"] == [None, "江州市恒达精密机械有限公司"]
    assert rows[1].changes["employees"] == [50, 80]
    assert "name" not in rows[1].changes  # unchanged fields are not listed
    assert rows[1].ip == "10.0.0.7"


def test_delete_writes_a_delete_row(make):
    admin = make.user("admin")
    town = make.township("临港镇")
    with acting_as(admin):
        db.session.delete(db.session.get(Township, town.id))
        db.session.flush()
    db.session.commit()
    rows = _trail("township", town.id)
    assert [r.action for r in rows] == ["insert", "delete"]
    assert rows[-1].actor_label == admin.username
    assert rows[-1].changes["name"] == ["临港镇", None]


def test_password_change_is_masked(make):
    from advisors.services.users import set_password

    user = make.user("finance_office")
    with acting_as(user):
        set_password(user, "Another-Pass-77")
    db.session.commit()
    last = _trail("user_account", user.id)[-1]
    assert last.changes["password_hash"] == ["***", "***"]


# ------------------------------------------------------------------ the query service
def test_parse_filters_rejects_bad_values_without_raising():
    cases = {
        "date_from": ["2026-13-01", "abc", "2026-02-30", "20260101", "0001-01-01", "9999-12-31"],
        "record": ["x\x00y", "a" * 61],
        "actor": ["\x07bell"],
        "table": ["no_such_table"],
        "action": ["explode"],
    }
    for key, values in cases.items():
        for value in values:
            filters, errors = parse_filters({key: value})
            assert key in errors, (key, value)
            assert not getattr(filters, key), (key, value)
    _, errors = parse_filters({"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert "date_to" in errors
    filters, errors = parse_filters({"table": "enterprise", "date_to": " 2026-05-01 "})
    assert not errors and filters.date_to == date(2026, 5, 1)


def test_parse_cursor():
    assert audit_queries.parse_cursor("120") == 120
    for bad in (None, "", "abc", "-3", "0", "1e3", "٣", "99999999999999999999"):
        assert audit_queries.parse_cursor(bad) is None, bad


def test_days_are_shanghai_days(app):
    # 2026-03-01 16:30 UTC is 2026-03-02 00:30 in Shanghai.
    _add_rows(1, at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC), actor_label="night")
    _add_rows(1, at=datetime(2026, 3, 1, 15, 59, tzinfo=UTC), actor_label="evening")

    def labels(**raw):
        filters, errors = parse_filters(raw)
        assert not errors
        return {r.actor_label for r in search_audit(filters)[0]}

    assert labels(date_from="2026-03-02", date_to="2026-03-02") == {"night"}
    assert labels(date_from="2026-03-01", date_to="2026-03-01") == {"evening"}
    assert labels(date_to="2026-03-01") == {"evening"}
    assert labels(date_from="2026-03-02") == {"night"}


def test_search_keyset_pages_do_not_overlap(app):
    _add_rows(7)
    seen = []
    cursor = None
    while True:
        rows, cursor = search_audit(AuditFilters(), cursor, limit=3)
        seen.extend(r.id for r in rows)
        if cursor is None:
            break
    assert len(seen) == 7 == len(set(seen))
    assert seen == sorted(seen, reverse=True)


def test_changes_are_rendered_compactly():
    entry = AuditLog(
        action="update",
        changes={"b": [None, True], "a": [["城东街道"], ["城东街道", "临港镇"]], "c": ["x", ""]},
    )
    items = audit_queries.changes_of(entry)
    assert [c.field for c in items] == ["a", "b", "c"]
    assert items[0].old == "城东街道" and items[0].new == "城东街道, 临港镇"
    assert items[1].old == "—"
    inserted = audit_queries.changes_of(AuditLog(action="insert", changes={"name": [None, "x"]}))
    assert inserted[0].old is None and inserted[0].new == "x"
    deleted = audit_queries.changes_of(AuditLog(action="delete", changes={"name": ["x", None]}))
    assert deleted[0].old == "x" and deleted[0].new is None
    long_value = audit_queries.format_value("长" * 500)
    assert len(long_value) == audit_queries.VALUE_CHARS and long_value.endswith("…")
    assert audit_queries.changes_of(AuditLog(action="update", changes="odd")) != []


# ------------------------------------------------------------------ the page
@pytest.fixture
def trail(make):
    """A small, known trail: a bureau user registers and edits a firm; an admin adds a
    township and deletes it."""
    from advisors.services.firms import update_firm

    office = make.user("finance_office", username="jrb_viewer")
    bureau = make.user("bureau", username="gxj_wang")
    admin = make.user("admin", username="admin_li")
    firm = make.firm(actor=bureau, employees=12)
    with acting_as(bureau):
        update_firm(
            bureau,
            firm,
            {
                "credit_code": firm.credit_code,
                "name": firm.name,
                "industry": "industry",
                "employees": "30",
                "revenue_wan": "800",
            },
        )
        db.session.commit()
    with acting_as(admin):
        town = Township(code="T-DEL", name="待删镇")
        db.session.add(town)
        db.session.flush()
        db.session.delete(town)
        db.session.commit()
    return {"office": office, "bureau": bureau, "admin": admin, "firm": firm, "town_id": town.id}


def _rows(**where) -> set[int]:
    stmt = select(AuditLog.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(AuditLog, key) == value)
    return set(db.session.execute(stmt).scalars())


def test_page_lists_everything_newest_first(client, auth, trail):
    auth.login("jrb_viewer")
    r = client.get("/audit/")
    assert r.status_code == 200
    ids = _ids(r)
    assert set(ids) == _rows()
    assert ids == sorted(ids, reverse=True)
    html = r.get_data(as_text=True)
    assert "gxj_wang" in html
    assert 'data-testid="audit-changes"' in html
    assert "→" in html  # old → new for the edit


def test_page_filters(client, auth, trail):
    auth.login("jrb_viewer")
    firm_id = str(trail["firm"].id)

    r = client.get("/audit/?table=enterprise")
    assert set(_ids(r)) == _rows(table_name="enterprise")

    r = client.get(f"/audit/?table=enterprise&record={firm_id}")
    assert set(_ids(r)) == _rows(table_name="enterprise", record_id=firm_id)
    assert len(_ids(r)) == 2

    r = client.get("/audit/?action=delete")
    assert set(_ids(r)) == _rows(action="delete") and len(_ids(r)) == 1

    for actor in ("gxj_wang", "gxj", "GXJ_W"):
        r = client.get("/audit/", query_string={"actor": actor})
        assert set(_ids(r)) == _rows(actor_label="gxj_wang"), actor
    r = client.get("/audit/?actor=nobody")
    assert _ids(r) == []

    today = datetime.now(UTC).astimezone(audit_queries.SHANGHAI).date()
    r = client.get(f"/audit/?date_from={today}&date_to={today}")
    assert set(_ids(r)) == _rows()
    r = client.get(f"/audit/?date_to={today - timedelta(days=1)}")
    assert _ids(r) == []
    r = client.get(f"/audit/?date_from={today + timedelta(days=1)}")
    assert _ids(r) == []


@pytest.mark.parametrize(
    "query",
    [
        "date_from=2026-13-45",
        "date_to=yesterday",
        "date_from=2026-05-02&date_to=2026-05-01",
        "table=%3Cscript%3E",
        "action=drop",
        "record=%00",
        "actor=" + "x" * 200,
    ],
)
def test_bad_filters_show_a_message(client, auth, trail, query):
    auth.login("jrb_viewer")
    r = client.get(f"/audit/?{query}")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'data-testid="filter-errors"' in html
    assert "is-invalid" in html
    assert "<script>" not in html
    assert "\x00" not in html


@pytest.mark.parametrize("before", ["abc", "-1", "0", "99999999999999999999", "1.5"])
def test_bad_cursor_is_the_first_page(client, auth, trail, before):
    auth.login("jrb_viewer")
    r = client.get(f"/audit/?before={before}")
    assert r.status_code == 200


@pytest.mark.parametrize("role", ["bureau", "advisor", "pboc", "liaison"])
def test_other_roles_are_refused(client, auth, make, role):
    user = make.user(role)
    auth.login(user.username)
    assert client.get("/audit/").status_code == 403


@pytest.mark.parametrize("role", ["admin", "finance_office"])
def test_admin_and_office_may_browse(client, auth, make, role):
    user = make.user(role)
    auth.login(user.username)
    assert client.get("/audit/").status_code == 200


def test_anonymous_is_sent_to_login(client):
    r = client.get("/audit/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_pages_and_query_count(client, auth, make, count_queries):
    user = make.user("admin", username="admin_pager")
    auth.login(user.username)
    client.get("/audit/")  # warm up: session row, templates

    _add_rows(10)
    with count_queries() as small:
        r = client.get("/audit/")
    assert r.status_code == 200 and len(_ids(r)) == len(_rows())

    _add_rows(50)
    with count_queries() as large:
        r = client.get("/audit/")
    assert r.status_code == 200
    assert small.count == large.count, large.statements

    first = _ids(r)
    assert len(first) == audit_queries.PAGE_SIZE
    match = re.search(r'href="([^"]*before=(\d+)[^"]*)"', r.get_data(as_text=True))
    assert match and int(match.group(2)) == first[-1]
    r = client.get(match.group(1).replace("&amp;", "&"))
    rest = _ids(r)
    assert set(first).isdisjoint(rest)
    assert set(first) | set(rest) == _rows()


def test_pager_keeps_the_filters(client, auth, make):
    user = make.user("admin", username="admin_filter")
    auth.login(user.username)
    _add_rows(55, table_name="enterprise", record_id="9")
    _add_rows(3, table_name="township", record_id="9")
    r = client.get("/audit/?table=enterprise&record=9")
    assert len(_ids(r)) == 50
    link = re.search(r'href="([^"]*before=\d+[^"]*)"', r.get_data(as_text=True)).group(1)
    assert "table=enterprise" in link and "record=9" in link
    r = client.get(link.replace("&amp;", "&"))
    assert len(_ids(r)) == 5


def test_masked_values_are_shown_masked(client, auth, make):
    from advisors.services.users import set_password

    user = make.user("admin", username="admin_mask")
    with acting_as(user):
        set_password(user, "Another-Pass-77")
    db.session.commit()
    auth.login(user.username, "Another-Pass-77")
    r = client.get("/audit/?table=user_account&action=update")
    html = r.get_data(as_text=True)
    assert "***" in html
    assert "argon2" not in html


# ------------------------------------------------------------------ readable entries
_NEW_RE = re.compile(r'<span data-testid="new">([^<]*)</span>')
_OLD_RE = re.compile(r'<span class="text-muted" data-testid="old">([^<]*)</span>')


@pytest.fixture
def readable_trail(make):
    """Audit rows that name a township, a user, an organisation, a firm and a case by id, with
    a coded status, booleans, money and an instant, written at a known UTC time."""
    bureau_org = make.org("bureau", code="GXJ-R", name="江州市工业和信息化局")
    bureau = make.user("bureau", org=bureau_org, username="gxj_reader")
    advisor = make.user("advisor", username="adv_reader")
    town = make.township(name="新港街道")
    firm = make.firm(actor=bureau, name="江州市恒达精密机械有限公司")
    make.user("admin", username="admin_reader")  # reads the trail (its own rows cleared)
    at = datetime(2026, 3, 1, 16, 30, 45, tzinfo=UTC)  # 2026-03-02 00:30 in Shanghai
    ids = {
        "town": town.id,
        "advisor": advisor.id,
        "org": bureau_org.id,
        "firm": firm.id,
        "bureau": bureau.id,
    }
    db.session.query(AuditLog).delete()
    db.session.commit()
    rows = [
        {
            "table_name": "enterprise",
            "record_id": str(firm.id),
            "changes": {
                "township_id": [None, town.id],
                "registered_by_org_id": [None, bureau_org.id],
                "revenue_wan": ["800", "1234.5"],
                "industry": ["retail", "industry"],
            },
        },
        {
            "table_name": "referral",
            "record_id": "987654",  # a case that no longer exists
            "changes": {
                "status": ["assigned", "in_service"],
                "advisor_id": [None, advisor.id],
                "enterprise_id": [None, firm.id],
                "need_financing": [False, True],
                "assigned_at": [None, "2026-03-01T16:30:45.123456+00:00"],
            },
        },
        {
            "table_name": "user_account",
            "record_id": str(advisor.id),
            "changes": {"org_id": [None, bureau_org.id], "role": ["bureau", "advisor"]},
        },
    ]
    for row in rows:
        _add_rows(1, at=at, actor_id=bureau.id, actor_label="gxj_reader", action="update", **row)
    return ids


def _change(html: str, field: str) -> str:
    found = re.search(rf'<li data-field="{field}">(.*?)</li>', html, re.S)
    assert found, field
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def test_page_shows_labels_and_names_in_english(client, auth, make, readable_trail):
    auth.login("admin_reader")
    with client.session_transaction() as s:
        s["lang"] = "en"
    html = client.get("/audit/").get_data(as_text=True)
    assert "Firm" in html and "User account" in html
    assert _change(html, "township_id") == "Township : — → 新港街道"
    assert "江州市工业和信息化局" in _change(html, "registered_by_org_id")
    assert _change(html, "status") == "Status : Assigned → In service"
    assert "advisor user" in _change(html, "advisor_id")  # the display name
    assert "江州市恒达精密机械有限公司" in _change(html, "enterprise_id")
    assert _change(html, "need_financing").endswith("no → yes")
    assert "1,234.50" in _change(html, "revenue_wan") and "万元" in _change(html, "revenue_wan")
    assert "Retail" in _change(html, "industry")
    assert "2026-03-02 00:30" in _change(html, "assigned_at")
    assert "Advisor" in _change(html, "role")  # a role as its label
    # The record's own name beside its id, and the actor's name beside the label written then.
    assert 'data-testid="audit-record">江州市恒达精密机械有限公司<' in html
    assert "bureau user" in html and "gxj_reader" in html


def test_page_shows_labels_in_chinese(client, auth, make, readable_trail):
    auth.login("admin_reader")
    html = client.get("/audit/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "企业" in html  # the record type
    assert _change(html, "township_id") == "乡镇（街道） : — → 新港街道"
    assert _change(html, "status") == "状态 : 已分派 → 服务中"
    assert _change(html, "need_financing").endswith("否 → 是")
    assert "万元" in _change(html, "revenue_wan")


def test_no_raw_ids_for_known_references(client, auth, make, readable_trail):
    auth.login("admin_reader")
    html = client.get("/audit/").get_data(as_text=True)
    shown = set(_NEW_RE.findall(html)) | set(_OLD_RE.findall(html))
    for key, record_id in readable_trail.items():
        assert str(record_id) not in shown, (key, record_id, shown)
        assert f"#{record_id}<" not in "".join(f"{v}<" for v in shown), key


def test_times_are_shanghai_to_the_minute(client, auth, make, readable_trail):
    auth.login("admin_reader")
    html = client.get("/audit/").get_data(as_text=True)
    times = re.findall(r'data-testid="audit-at">([^<]*)<', html)
    assert times and set(times) == {"2026-03-02 00:30"}


def test_throttle_clearing_and_unknown_actions_read_readably(client, auth, make):
    admin = make.user("admin", username="admin_thr")
    auth.login(admin.username)
    with client.session_transaction() as s:
        s["lang"] = "en"
    _add_rows(
        1,
        table_name="login_attempt",
        record_id="account:wang",
        action="update",
        changes={
            "scope": [None, "account"],
            "kind": [None, "sign_in"],
            "failures": [12, 0],
            "cleared_at": [None, "2026-03-01T16:30:00+00:00"],
        },
    )
    _add_rows(1, table_name="township", record_id="1", action="merge_into", changes={})
    html = client.get("/audit/").get_data(as_text=True)
    actions = re.findall(r'data-testid="audit-action">([^<]*)<', html)
    assert actions[:2] == ["Merge into", "Cleared"]
    assert "Sign-in throttle" in html
    assert _change(html, "scope").endswith("Account, from any address")
    assert _change(html, "kind").endswith("Sign-in")
    assert _change(html, "cleared_at").endswith("2026-03-02 00:30")


def test_every_audited_table_has_a_label():
    from advisors.services import audit_labels

    audited = {
        mapper.local_table.name
        for mapper in db.Model.registry.mappers
        if getattr(mapper.class_, "__audited__", False)
    }
    missing = audited - set(audit_labels.spec())
    assert not missing, f"add these tables to audit_labels: {sorted(missing)}"
    for name, table in audit_labels.spec().items():
        model = next(
            (m.class_ for m in db.Model.registry.mappers if m.local_table.name == name), None
        )
        if model is None or name not in audited:
            continue
        columns = {c.key for c in model.__table__.columns} - {
            "id",
            "created_at",
            "updated_at",
            "version",
            "token_hash",
        }
        unknown = columns - set(table.fields)
        assert not unknown, f"{name}: no label for {sorted(unknown)}"


def test_query_count_is_fixed_with_names_for_1_and_50_rows(
    client, auth, make, count_queries, readable_trail
):
    auth.login("admin_reader")
    client.get("/audit/")  # warm up
    row = db.session.execute(select(AuditLog).order_by(AuditLog.id)).scalars().first()
    base = {
        "at": row.at,
        "actor_id": row.actor_id,
        "actor_label": row.actor_label,
        "action": "update",
        "table_name": "referral",
        "changes": {},
        "ip": None,
    }
    db.session.query(AuditLog).delete()
    db.session.commit()

    def add(n: int, offset: int) -> None:
        rows = []
        for i in range(n):
            rows.append(
                {
                    **base,
                    "record_id": str(offset + i),
                    "changes": {
                        "status": ["assigned", "in_service"],
                        "advisor_id": [None, readable_trail["advisor"]],
                        "org_id": [None, readable_trail["org"]],
                        "enterprise_id": [None, readable_trail["firm"]],
                        "upload_id": [None, offset + i],
                    },
                }
            )
            rows.append(
                {
                    **base,
                    "table_name": "enterprise",
                    "record_id": str(readable_trail["firm"]),
                    "changes": {"township_id": [None, readable_trail["town"]]},
                }
            )
        db.session.execute(insert(AuditLog), rows)
        db.session.commit()

    add(1, 1000)
    with count_queries() as one:
        r = client.get("/audit/")
    assert r.status_code == 200 and len(_ids(r)) == 2
    add(25, 2000)  # 50 rows more: a full page
    with count_queries() as fifty:
        r = client.get("/audit/")
    assert r.status_code == 200 and len(_ids(r)) == 50
    assert one.count == fifty.count, fifty.statements


def test_admin_home_latest_changes_are_readable(client, auth, make, readable_trail):
    auth.login("admin_reader")
    with client.session_transaction() as s:
        s["lang"] = "en"
    html = client.get("/").get_data(as_text=True)
    items = re.findall(r'data-testid="recent-change"[^>]*>(.*?)</li>', html, re.S)
    text = " ".join(re.sub(r"<[^>]+>", " ", i) for i in items)
    assert "Changed" in text and "Firm" in text and "Referral case" in text
    assert "新港街道" in text and "In service" in text and "bureau user" in text
    assert "2026-03-02 00:30" in text
    for raw in ("update", "enterprise ", "township_id"):
        assert raw not in text, raw


def test_every_reference_kind_reads_in_one_statement(app, make, count_queries):
    """Names of users, organisations, townships, firms, cases, visits, policy tools (by id and
    by the code a visit's policy list records), rubric versions, assessments and uploads: one
    statement for a page, on SQLite and PostgreSQL alike."""
    from advisors.services import audit_labels
    from models import PolicyTool, Visit
    from tests.test_feedback import new_case

    world = {
        "bureau": make.user("bureau", org=make.org("bureau")),
        "office": make.user("finance_office"),
        "advisor": make.user("advisor"),
    }
    case_id = new_case(make, world, status="in_service")
    visit = db.session.scalars(select(Visit).where(Visit.referral_id == case_id)).one()
    tool = PolicyTool(code="audit_tool", name="再贷款审计测试", description="", eligible_types=[])
    db.session.add(tool)
    db.session.commit()
    rows = [
        AuditLog(
            id=1,
            at=datetime.now(UTC),
            actor_id=world["advisor"].id,
            actor_label="x",
            action="update",
            table_name="financing_application",
            record_id="1",
            changes={
                "visit_id": [None, visit.id],
                "referral_id": [None, case_id],
                "lender_id": [None, world["advisor"].org_id],
            },
        ),
        AuditLog(
            id=2,
            at=datetime.now(UTC),
            actor_id=None,
            actor_label="job:sla_overdue_sweep",
            action="update",
            table_name="visit",
            record_id=str(visit.id),
            changes={"policies": [[], [f"<PolicyTool {tool.code}>"]]},
        ),
        AuditLog(
            id=3,
            at=datetime.now(UTC),
            actor_id=None,
            actor_label="cli",
            action="update",
            table_name="assessment",
            record_id="424242",
            changes={"rubric_id": [1, 2], "status": ["draft", "published"]},
        ),
        AuditLog(
            id=4,
            at=datetime.now(UTC),
            actor_id=None,
            actor_label="demo",
            action="update",
            table_name="referral",
            record_id=str(case_id),
            changes={"upload_id": [None, 424242], "org_id": [None, world["bureau"].org_id]},
        ),
    ]
    from advisors.labels import labels

    with app.test_request_context(), count_queries() as q:
        entries = audit_labels.readable(rows)
        job = labels("job")["sla_overdue_sweep"]
    assert q.count == 1, q.statements
    changes = {(e.id, c.field): c.new for e in entries for c in e.changes}
    firm_name = db.session.scalar(
        select(Enterprise.name).join(Referral).where(Referral.id == case_id)
    )
    assert changes[(1, "referral_id")] == firm_name
    assert changes[(1, "visit_id")].startswith(firm_name + " · ")
    assert changes[(2, "policies")] == "再贷款审计测试"
    assert changes[(4, "upload_id")] == "#424242"  # gone: the id, marked as one
    assert entries[1].record_name.startswith(firm_name)
    assert entries[3].record_name == firm_name
    assert entries[2].actor_name != "cli" and entries[3].actor_name != "demo"
    assert entries[1].actor_name.endswith(job)  # a scheduled job by its name
