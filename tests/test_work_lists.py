"""The record of advisor work: the visit log and the pipeline (scope per role, filters, keyset
pages, a fixed number of queries, the exports), the institution view and the liaison's home."""

from __future__ import annotations

import html as html_lib
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from advisors import clock
from advisors.audit import acting_as
from advisors.services import referrals as svc
from models import FinancingApplication, Referral, Visit, db

ASSIGNED_ON = date(2026, 3, 2)
TODAY = date(2026, 3, 18)


# ------------------------------------------------------------------ helpers
@pytest.fixture
def people(make):
    bank_a = make.org("bank", code="BKA", name="江州甲银行")
    bank_b = make.org("bank", code="BKB", name="江州乙银行")
    return {
        "bank_a": bank_a,
        "bank_b": bank_b,
        "bureau": make.user("bureau", org=make.org("bureau", code="GXJ", name="工信局")),
        "office": make.user("finance_office"),
        "pboc": make.user("pboc"),
        "admin": make.user("admin"),
        "a1": make.user("advisor", org=bank_a, username="adv_a1"),
        "a2": make.user("advisor", org=bank_a, username="adv_a2"),
        "b1": make.user("advisor", org=bank_b, username="adv_b1"),
        "liaison_a": make.user("liaison", org=bank_a, username="lly_a"),
        "liaison_b": make.user("liaison", org=bank_b, username="lly_b"),
    }


def new_case(make, people, advisor=None, name: str | None = None) -> int:
    bureau = people["bureau"]
    data = {
        "credit_code": make.credit_code(),
        "name": name or f"江州测试企业{make.n()}有限公司",
        "industry": "industry",
        "needs": ["financing"],
        "amount_wan": "300",
    }
    with acting_as(bureau):
        (result,) = svc.submit(bureau, [data], source="form")
    db.session.commit()
    assert result.status == "created", result.errors
    if advisor is not None:
        assign(people, result.referral_id, advisor)
    return result.referral_id


def assign(people, rid: int, advisor) -> None:
    with acting_as(people["office"]):
        svc.assign(people["office"], [rid], advisor.username)
    db.session.commit()


def visit(advisor, rid: int, on: date, summary: str = "走访了解融资需求", **values) -> int:
    referral = db.session.get(Referral, rid)
    roles = values.pop("roles", ("policy",))
    with acting_as(advisor):
        v = Visit(
            referral_id=rid,
            enterprise_id=referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            visited_on=on,
            mode=values.pop("mode", "onsite"),
            summary=summary,
            **{f"role_{r}": True for r in roles},
            **values,
        )
        db.session.add(v)
        db.session.commit()
    return v.id


def application(advisor, rid: int, applied_on: date, amount: str = "100", **values) -> int:
    referral = db.session.get(Referral, rid)
    with acting_as(advisor):
        a = FinancingApplication(
            referral_id=rid,
            enterprise_id=referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            amount_wan=Decimal(amount),
            applied_on=applied_on,
            **values,
        )
        db.session.add(a)
        db.session.commit()
    return a.id


def text_of(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def visit_ids(response) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="visit-(\d+)"', response.get_data(as_text=True))]


def application_ids(response) -> list[int]:
    html = response.get_data(as_text=True)
    return [int(x) for x in re.findall(r'<tr id="application-(\d+)"', html)]


def next_url(response) -> str | None:
    match = re.search(r'href="([^"]+)" data-testid="next-page"', response.get_data(as_text=True))
    return html_lib.unescape(match.group(1)) if match else None


def workbook(response):
    assert response.status_code == 200, response.status_code
    assert response.mimetype.endswith("spreadsheetml.sheet")
    return load_workbook(io.BytesIO(response.data))


def sheet_rows(wb, index: int = 0) -> list[tuple]:
    return list(wb.worksheets[index].iter_rows(values_only=True))


def figures_of(page: str, key: str, attr: str = "data-advisor") -> dict[str, str]:
    """The figure cells of one row of the institution page, tags stripped."""
    row = page.split(f'{attr}="{key}"', 1)[1].split("</tr>", 1)[0]
    return {
        name: re.sub(r"<[^>]+>", "", value).strip()
        for name, value in re.findall(r'data-figure="(\w+)">(.*?)</td>', row, re.S)
    }


@pytest.fixture
def work(make, people):
    """Visits across two banks: a1's own case, a case moved from a2 to a1, a2's case, b1's."""
    p = people
    c1 = new_case(make, p, p["a1"], name="甲一精密机械有限公司")
    c3 = new_case(make, p, p["a2"], name="甲三食品有限公司")
    c4 = new_case(make, p, p["a2"], name="甲四物流有限公司")
    c2 = new_case(make, p, p["b1"], name="乙二电子有限公司")
    ids = {
        "v1": visit(p["a1"], c1, date(2026, 3, 5), mode="phone", roles=("financing",)),
        "v3": visit(p["a2"], c3, date(2026, 3, 6), roles=("policy", "guidance")),
        "v4": visit(p["a2"], c4, date(2026, 3, 7), mode="online", roles=("information",)),
        "v2": visit(p["b1"], c2, date(2026, 3, 8)),
    }
    assign(p, c3, p["a1"])  # reassigned: a1 now reads its history
    ids.update(
        {
            "p1": application(p["a1"], c1, date(2026, 3, 5), "200", first_loan=True),
            "p3": application(p["a2"], c3, date(2026, 3, 6), "80", unsecured=True),
            "p4": application(p["a2"], c4, date(2026, 3, 7), "60"),
            "p2": application(p["b1"], c2, date(2026, 3, 8), "500"),
        }
    )
    ids.update({"c1": c1, "c2": c2, "c3": c3, "c4": c4})
    return ids


# ------------------------------------------------------------------ scope
def test_visit_log_scope_per_role(client, login, people, work):
    w = work
    expected = {
        "a1": {w["v1"], w["v3"]},  # own work + the case now assigned to them
        "a2": {w["v3"], w["v4"]},  # own work, also on the case that moved away
        "b1": {w["v2"]},
        "liaison_a": {w["v1"], w["v3"], w["v4"]},
        "liaison_b": {w["v2"]},
        "office": {w["v1"], w["v2"], w["v3"], w["v4"]},
        "pboc": {w["v1"], w["v2"], w["v3"], w["v4"]},
        "admin": {w["v1"], w["v2"], w["v3"], w["v4"]},
    }
    for role, ids in expected.items():
        login(people[role])
        r = client.get("/work/visits")
        assert r.status_code == 200, role
        assert set(visit_ids(r)) == ids, role
        page = text_of(r)
        if role == "liaison_a":
            assert "乙二电子有限公司" not in page and "江州乙银行" not in page
    login(people["bureau"])
    for url in (
        "/work/visits",
        "/work/pipeline",
        "/work/institution",
        "/work/visits.xlsx",
        "/work/pipeline.xlsx",
    ):
        assert client.get(url).status_code == 403, url


def test_pipeline_scope_per_role(client, login, people, work):
    w = work
    expected = {
        "a1": {w["p1"], w["p3"]},
        "a2": {w["p3"], w["p4"]},
        "liaison_a": {w["p1"], w["p3"], w["p4"]},
        "liaison_b": {w["p2"]},
        "office": {w["p1"], w["p2"], w["p3"], w["p4"]},
    }
    for role, ids in expected.items():
        login(people[role])
        r = client.get("/work/pipeline")
        assert r.status_code == 200, role
        assert set(application_ids(r)) == ids, role


def test_case_links_only_where_the_case_is_in_scope(client, login, people, work):
    login(people["a2"])
    page = client.get("/work/visits").get_data(as_text=True)
    v3_row = page.split(f'id="visit-{work["v3"]}"')[1].split("</tr>")[0]
    v4_row = page.split(f'id="visit-{work["v4"]}"')[1].split("</tr>")[0]
    assert f"/referrals/{work['c3']}" not in v3_row  # the case moved to a1
    assert f"/referrals/{work['c4']}" in v4_row
    assert f"/visits/{work['v3']}" in v3_row


def test_advisor_filter_and_institution_filter_per_role(client, login, people, work):
    w = work
    login(people["office"])
    assert set(visit_ids(client.get("/work/visits?advisor=adv_a2"))) == {w["v3"], w["v4"]}
    assert set(visit_ids(client.get("/work/visits?institution=bkb"))) == {w["v2"]}
    assert set(application_ids(client.get("/work/pipeline?institution=BKA"))) == {
        w["p1"],
        w["p3"],
        w["p4"],
    }
    r = client.get("/work/visits?institution=GXJ")  # a bureau is not an institution
    assert r.status_code == 422 and "Institution" in text_of(r)

    login(people["liaison_a"])
    assert set(visit_ids(client.get("/work/visits?advisor=adv_a1"))) == {w["v1"]}
    # Another bank's advisor is not one of the liaison's choices: refused, nothing shown.
    r = client.get("/work/visits?advisor=adv_b1")
    assert r.status_code == 422 and visit_ids(r) == []
    assert "Advisor: choose a value from the list." in text_of(r)
    # A liaison has no institution filter: its list stays its institution's.
    assert set(visit_ids(client.get("/work/visits?institution=BKB"))) == {
        w["v1"],
        w["v3"],
        w["v4"],
    }

    login(people["a1"])  # an advisor's list is their own: no advisor filter
    assert set(visit_ids(client.get("/work/visits?advisor=adv_b1"))) == {w["v1"], w["v3"]}


# ------------------------------------------------------------------ filters
def test_visit_filters(client, login, people, work):
    w = work
    login(people["office"])
    cases = {
        "date_from=2026-03-06": {w["v3"], w["v4"], w["v2"]},
        "date_from=2026-03-06&date_to=2026-03-07": {w["v3"], w["v4"]},
        "role=financing": {w["v1"]},
        "role=guidance": {w["v3"]},
        "mode=online": {w["v4"]},
        "mode=onsite&role=policy": {w["v3"], w["v2"]},
        "q=精密": {w["v1"]},
        "q=%25": set(),  # a LIKE wildcard is taken literally
        "q=有限公司&advisor=adv_b1": {w["v2"]},
    }
    for query, ids in cases.items():
        r = client.get(f"/work/visits?{query}")
        assert r.status_code == 200, query
        assert set(visit_ids(r)) == ids, query


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("date_from=2026-13-01", "date_from", "Visited from is not a real date."),
        ("date_from=yesterday", "date_from", "Visited from must be a date written YYYY-MM-DD."),
        ("date_to=2026-02-30", "date_to", "Visited to is not a real date."),
        ("date_from=2026-03-08&date_to=2026-03-01", "date_to", "Visited to is before"),
        ("role=banker", "role", "Role: choose a value from the list."),
        ("mode=carrier-pigeon", "mode", "Mode: choose a value from the list."),
        ("advisor=nobody", "advisor", "Advisor: choose a value from the list."),
        ("institution=NOPE", "institution", "Institution: choose a value from the list."),
        ("q=" + "长" * 101, "q", "Firm name contains must be at most 100 characters."),
        ("date_from=0001-01-01", "date_from", "Visited from is out of range."),
    ],
)
def test_bad_visit_filters_are_422_naming_the_field(
    client, login, people, work, query, field, message
):
    login(people["office"])
    for url in (f"/work/visits?{query}", f"/work/visits.xlsx?{query}"):
        r = client.get(url)
        assert r.status_code == 422, url
        page = text_of(r)
        assert message in page, url
        assert f'data-error="{field}"' in page
        assert visit_ids(r) == []


def test_pipeline_filters_and_totals(client, login, people, work):
    w = work
    p = people
    with acting_as(p["a1"]):
        db.session.execute(
            update(FinancingApplication)
            .where(FinancingApplication.id == w["p1"])
            .values(
                stage="disbursed",
                approved_on=date(2026, 3, 9),
                approved_amount_wan=Decimal("180"),
                disbursed_on=date(2026, 3, 10),
                disbursed_amount_wan=Decimal("150.5"),
            )
        )
        db.session.commit()
    login(p["office"])
    cases = {
        "stage=disbursed": {w["p1"]},
        "stage=applied": {w["p2"], w["p3"], w["p4"]},
        "first_loan=1": {w["p1"]},
        "first_loan=0": {w["p2"], w["p3"], w["p4"]},
        "unsecured=1": {w["p3"]},
        "date_from=2026-03-06&date_to=2026-03-07": {w["p3"], w["p4"]},
        "advisor=adv_a2": {w["p3"], w["p4"]},
        "q=乙二": {w["p2"]},
    }
    for query, ids in cases.items():
        r = client.get(f"/work/pipeline?{query}")
        assert r.status_code == 200, query
        assert set(application_ids(r)) == ids, query

    page = text_of(client.get("/work/pipeline?institution=BKA"))
    totals = page.split('data-testid="stage-totals"')[1].split("</table>")[0]

    def total(stage):
        row = totals.split(f'data-stage="{stage}"')[1].split("</tr>")[0]
        count = re.search(r"data-count>(\d+)<", row).group(1)
        amount = re.search(r"data-amount>([^<]+)<", row).group(1)
        return int(count), amount

    assert total("applied") == (2, "140.00")
    assert total("disbursed") == (1, "200.00")
    assert total("declined") == (0, "0.00")
    assert total("all") == (3, "340.00")
    row = page.split(f'id="application-{w["p1"]}"')[1].split("</tr>")[0]
    assert "150.50" in row and "180.00" in row and "2026-03-10" in row
    assert 'data-flag="first_loan"' in row
    assert f"/visits/financing/{w['p1']}" in row


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("first_loan=maybe", "First-time borrower (首贷户): choose a value from the list."),
        ("unsecured=yes", "Unsecured loan (信用贷款): choose a value from the list."),
        ("stage=pending", "Stage: choose a value from the list."),
        ("date_from=2026-3-1", "Applied from must be a date written YYYY-MM-DD."),
        ("date_to=2026-04-31", "Applied to is not a real date."),
    ],
)
def test_bad_pipeline_filters_are_422(client, login, people, work, query, message):
    login(people["liaison_a"])
    for url in (f"/work/pipeline?{query}", f"/work/pipeline.xlsx?{query}"):
        r = client.get(url)
        assert r.status_code == 422, url
        assert message in text_of(r)
        assert application_ids(r) == []


def test_odd_input_is_never_a_server_error(client, login, people, work):
    login(people["office"])
    for url in (
        "/work/visits?cursor=garbage",
        "/work/visits?cursor=2026-02-30_5",
        "/work/visits?cursor=2026-03-01_99999999999",
        "/work/visits?limit=-3&cursor=",
        "/work/visits?q=%00x",
        "/work/pipeline?limit=999999999&cursor=x_y",
        "/work/institution?org=%00",
        "/work/institution?org=" + "x" * 500,
    ):
        # a list with a bad cursor or filter is its first page; an institution no one has is 404
        expected = 404 if url.startswith("/work/institution") else 200
        assert client.get(url).status_code == expected, url


# ------------------------------------------------------------------ keyset pages
def test_visit_log_keyset_pages(client, login, make, people):
    rid = new_case(make, people, people["a1"])
    days = [date(2026, 3, d) for d in (1, 3, 3, 3, 5, 2, 5, 4)]
    ids = [visit(people["a1"], rid, d) for d in days]
    expected = [i for _d, i in sorted(zip(days, ids, strict=True), reverse=True)]
    login(people["liaison_a"])
    seen = []
    url = "/work/visits?limit=3"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        seen += visit_ids(r)
        url = next_url(r)
        pages += 1
    assert pages == 3
    assert seen == expected
    # A filter stays on the next pages.
    r = client.get("/work/visits?limit=2&date_to=2026-03-03")
    assert "date_to=2026-03-03" in next_url(r)
    second = client.get(next_url(r))
    assert (
        visit_ids(r) + visit_ids(second)
        == [
            i for d, i in sorted(zip(days, ids, strict=True), reverse=True) if d <= date(2026, 3, 3)
        ][:4]
    )


def test_pipeline_keyset_pages(client, login, make, people):
    rid = new_case(make, people, people["b1"])
    days = [date(2026, 2, d) for d in (9, 9, 1, 20, 9, 3)]
    ids = [application(people["b1"], rid, d) for d in days]
    expected = [i for _d, i in sorted(zip(days, ids, strict=True), reverse=True)]
    login(people["office"])
    seen, url = [], "/work/pipeline?limit=4"
    while url:
        r = client.get(url)
        seen += application_ids(r)
        url = next_url(r)
    assert seen == expected


# ------------------------------------------------------------------ a fixed number of queries
def _many(make, people, n: int = 12):
    for advisor in (people["a1"], people["b1"]):
        rid = new_case(make, people, advisor)
        for i in range(n):
            visit(advisor, rid, date(2026, 3, 1 + i % 20))
            application(advisor, rid, date(2026, 3, 1 + i % 20), str(10 + i))


@pytest.mark.parametrize("role", ["office", "liaison_a", "a1", "admin"])
@pytest.mark.parametrize("path", ["/work/visits", "/work/pipeline"])
def test_list_pages_run_a_fixed_number_of_queries(
    client, login, make, people, count_queries, role, path
):
    _many(make, people)
    login(people[role])
    client.get(path)  # warm up
    counts, sizes = {}, {}
    ids_of = visit_ids if path.endswith("visits") else application_ids
    for limit in (3, 50):
        with count_queries() as q:
            r = client.get(f"{path}?limit={limit}&date_from=2026-01-01&q=公司")
        assert r.status_code == 200
        counts[limit], sizes[limit] = q.count, len(ids_of(r))
    assert sizes[3] == 3 and sizes[50] > 3, sizes
    assert counts[3] == counts[50], counts
    assert counts[50] <= 12, counts


def test_institution_page_runs_a_fixed_number_of_queries(
    client, login, make, people, count_queries
):
    login(people["liaison_a"])
    client.get("/work/institution")
    with count_queries() as q:
        assert client.get("/work/institution").status_code == 200
    few = q.count
    for i in range(4):  # more advisors, each with cases, visits and applications
        advisor = make.user("advisor", org=people["bank_a"], username=f"adv_more{i}")
        rid = new_case(make, people, advisor)
        visit(advisor, rid, date(2026, 3, 2))
        application(advisor, rid, date(2026, 3, 2))
    _many(make, people, 3)
    with count_queries() as q:
        r = client.get("/work/institution")
    assert r.status_code == 200
    assert 'data-advisor="adv_more3"' in r.get_data(as_text=True)
    assert q.count == few

    login(people["office"])
    client.get("/work/institution")
    with count_queries() as q:
        client.get("/work/institution")
    overview = q.count
    make.org("insurer", code="INS9")
    with count_queries() as q:
        r = client.get("/work/institution")
    assert 'data-org="INS9"' in r.get_data(as_text=True)
    assert q.count == overview


# ------------------------------------------------------------------ exports
def test_visit_export_has_the_filtered_rows_and_escapes_formulas(client, login, make, people, work):
    rid = work["c1"]
    evil = visit(people["a1"], rid, date(2026, 3, 9), summary="=1+1", roles=("policy", "guidance"))
    login(people["office"])
    wb = workbook(client.get("/work/visits.xlsx?institution=BKA&date_from=2026-03-05"))
    rows = sheet_rows(wb)
    header, body = rows[0], rows[1:]
    assert header[0] == "Visit" and "Summary" in header
    assert [r[0] for r in body] == [evil, work["v4"], work["v3"], work["v1"]]  # newest first
    evil_row = body[0]
    summary = evil_row[header.index("Summary")]
    assert summary == "'=1+1"  # text, not a formula
    cell = wb.worksheets[0].cell(row=2, column=header.index("Summary") + 1)
    assert cell.data_type == "s"
    assert evil_row[header.index("Roles")] == "Policy promoter、Development guide"
    assert evil_row[header.index("Institution")] == "江州甲银行"
    filters = dict((r[0], r[1]) for r in sheet_rows(wb, 1)[1:])
    assert filters["Institution"] == "江州甲银行 (BKA)"
    assert filters["Visited from"] == "2026-03-05"
    assert filters["Rows"] == 4

    login(people["liaison_b"])  # the liaison's export is its institution's only
    body = sheet_rows(workbook(client.get("/work/visits.xlsx")))[1:]
    assert [r[0] for r in body] == [work["v2"]]


def test_pipeline_export_money_as_numbers(client, login, people, work):
    login(people["liaison_a"])
    wb = workbook(client.get("/work/pipeline.xlsx?first_loan=0"))
    rows = sheet_rows(wb)
    header, body = rows[0], rows[1:]
    assert {r[0] for r in body} == {work["p3"], work["p4"]}
    amounts = {r[0]: r[header.index("Amount applied (万元)")] for r in body}
    assert amounts == {work["p3"]: 80, work["p4"]: 60}
    assert all(isinstance(v, int | float) for v in amounts.values())
    flags = {r[0]: r[header.index("Unsecured loan (信用贷款)")] for r in body}
    assert flags == {work["p3"]: "Yes", work["p4"]: "No"}
    totals = {r[0]: r[1:] for r in sheet_rows(wb, 1)[1:]}
    assert totals["Applied"][:2] == (2, 140)
    assert totals["All stages"][0] == 2
    notes = dict((r[0], r[1]) for r in sheet_rows(wb, 2)[1:])
    assert notes["First-time borrower (首贷户)"] == "No"
    assert notes["Rows"] == 2


def test_export_cap_is_said_in_the_filters_sheet(client, login, make, people, monkeypatch):
    from advisors.services import work_queries

    rid = new_case(make, people, people["a1"])
    for d in (1, 2, 3):
        visit(people["a1"], rid, date(2026, 3, d))
    monkeypatch.setattr(work_queries, "EXPORT_CAP", 2)  # what the export's notes say
    monkeypatch.setattr(work_queries.shared, "EXPORT_CAP", 2)  # what the export takes
    login(people["a1"])
    wb = workbook(client.get("/work/visits.xlsx"))
    assert len(sheet_rows(wb)) == 3  # header + 2
    notes = dict((r[0], r[1]) for r in sheet_rows(wb, 1)[1:])
    assert notes["Rows"] == 2
    assert "Only the first 2 rows are included." in notes["Note"]


# ------------------------------------------------------------------ the institution view
@pytest.fixture
def month(make, people, travel):
    """Bank A's March 2026, with figures known in advance; bank B's work alongside."""
    p = people
    travel(ASSIGNED_ON)
    late = new_case(make, p, p["a1"], name="逾期未联系有限公司")  # first contact overdue
    contacted = new_case(make, p, p["a1"], name="已联系有限公司")
    with acting_as(p["a1"]):
        svc.record_first_contact(p["a1"], db.session.get(Referral, contacted), date(2026, 3, 3))
    db.session.commit()
    a2_case = new_case(make, p, p["a2"], name="乙顾问企业有限公司")
    with acting_as(p["a2"]):
        svc.record_first_contact(p["a2"], db.session.get(Referral, a2_case), date(2026, 3, 4))
    db.session.commit()
    not_yet_due = new_case(make, p, p["a2"], name="未到期有限公司")
    b_case = new_case(make, p, p["b1"], name="乙行逾期有限公司")  # bank B, overdue too
    closed = new_case(make, p, p["a1"], name="已撤回有限公司")
    db.session.execute(update(Referral).where(Referral.id == closed).values(status="closed"))
    db.session.execute(
        update(Referral)
        .where(Referral.id == not_yet_due)
        .values(first_contact_due=date(2026, 3, 20))
    )
    db.session.commit()
    travel(TODAY)

    visit(p["a1"], contacted, date(2026, 2, 27))  # last month
    visit(p["a1"], contacted, date(2026, 3, 2))
    visit(p["a1"], contacted, date(2026, 3, 18), summary="三月十八日回访")
    visit(p["a2"], a2_case, date(2026, 3, 1))
    visit(p["b1"], b_case, date(2026, 3, 10), summary="乙行的走访")
    application(p["a1"], contacted, date(2026, 3, 2), "100")  # applied: in progress
    application(
        p["a1"],
        contacted,
        date(2026, 3, 2),
        "90",
        stage="approved",
        approved_on=date(2026, 3, 10),
        approved_amount_wan=Decimal("85"),
    )
    application(
        p["a1"],
        contacted,
        date(2026, 2, 1),
        "130",
        stage="disbursed",
        approved_on=date(2026, 3, 1),
        approved_amount_wan=Decimal("125"),
        disbursed_on=date(2026, 3, 5),
        disbursed_amount_wan=Decimal("120.5"),
    )
    application(
        p["a1"],
        contacted,
        date(2026, 1, 5),
        "50",
        stage="disbursed",
        disbursed_on=date(2026, 2, 20),
        disbursed_amount_wan=Decimal("50"),
    )
    application(p["a2"], a2_case, date(2026, 3, 3), "40", stage="declined", declined_on=TODAY)
    application(
        p["a2"],
        a2_case,
        date(2026, 3, 3),
        "30",
        stage="disbursed",
        disbursed_on=date(2026, 3, 31),
        disbursed_amount_wan=Decimal("30"),
    )
    application(
        p["b1"],
        b_case,
        date(2026, 3, 3),
        "999",
        stage="disbursed",
        disbursed_on=date(2026, 3, 4),
        disbursed_amount_wan=Decimal("999"),
    )
    return {"late": late, "b_case": b_case}


def test_institution_page_figures_are_exact(client, login, people, month):
    login(people["liaison_a"])
    r = client.get("/work/institution")
    assert r.status_code == 200
    page = text_of(r)
    assert figures_of(page, "adv_a1") == {
        "open_cases": "2",  # the closed case is not open
        "overdue": "1",
        "visits_month": "2",
        "in_progress": "2",
        "disbursed_month_wan": "120.50",
        "last_visit": "2026-03-18",
    }
    assert figures_of(page, "adv_a2") == {
        "open_cases": "2",
        "overdue": "0",  # due on the 20th: not yet
        "visits_month": "1",
        "in_progress": "0",
        "disbursed_month_wan": "30.00",  # the 31st is still March
        "last_visit": "2026-03-01",
    }
    assert figures_of(page, "total") == {
        "open_cases": "4",
        "overdue": "1",
        "visits_month": "3",
        "in_progress": "2",
        "disbursed_month_wan": "150.50",
        "last_visit": "2026-03-18",
    }
    overdue = page.split('data-testid="overdue-list"')[1].split("</div>\n</div>")[0]
    assert re.findall(r'data-referral="(\d+)"', overdue) == [str(month["late"])]
    assert "逾期未联系有限公司" in overdue
    recent = page.split('data-testid="recent-visits"')[1]
    assert "三月十八日回访" in recent
    assert "乙行" not in page and "adv_b1" not in page and "999" not in page
    pipeline = page.split('data-testid="pipeline-summary"')[1].split("</table>")[0]
    counts = dict(re.findall(r'data-stage="(\w+)">.*?data-count>(\d+)<', pipeline, re.S))
    assert counts == {"applied": "1", "approved": "1", "disbursed": "3", "declined": "1"}


def test_liaison_sees_no_other_institution(client, login, people, month):
    login(people["liaison_a"])
    assert client.get("/work/institution?org=BKB").status_code == 404
    assert client.get("/work/institution?org=NOSUCH").status_code == 404
    assert client.get("/work/institution?org=bka").status_code == 200
    login(people["a1"])
    assert client.get("/work/institution").status_code == 403


def test_office_opens_any_institution(client, login, people, month):
    login(people["office"])
    r = client.get("/work/institution")
    assert r.status_code == 200
    page = text_of(r)
    assert 'href="/work/institution?org=BKA"' in page and 'href="/work/institution?org=BKB"' in page
    bkb = page.split('data-org="BKB"')[1].split("</tr>")[0]
    assert "江州乙银行" in bkb and "999.00" in bkb
    r = client.get("/work/institution?org=BKB")
    assert r.status_code == 200
    page = text_of(r)
    assert figures_of(page, "adv_b1")["overdue"] == "1"
    assert figures_of(page, "adv_b1")["disbursed_month_wan"] == "999.00"
    assert figures_of(page, "total")["visits_month"] == "1"  # bank B's work only
    assert 'data-advisor="others"' not in page and "adv_a1" not in page
    assert "/work/visits?institution=BKB" in page
    assert client.get("/work/institution?org=GXJ").status_code == 404  # a bureau
    login(people["pboc"])
    assert client.get("/work/institution?org=BKA").status_code == 200


def test_work_by_an_advisor_who_left_stays_with_the_institution(client, login, make, people):
    rid = new_case(make, people, people["a2"])
    visit(people["a2"], rid, clock.today())
    assign(people, rid, people["a1"])
    from advisors.services.users import update_user

    a2 = people["a2"]
    with acting_as(people["admin"]):
        update_user(
            a2,
            display_name=a2.display_name,
            role="advisor",
            org=people["bank_b"],
            phone=None,
            email=None,
            active=True,
        )
    db.session.commit()
    login(people["liaison_a"])
    page = text_of(client.get("/work/institution"))
    assert 'data-advisor="adv_a2"' not in page
    assert figures_of(page, "others")["visits_month"] == "1"
    assert figures_of(page, "total")["visits_month"] == "1"


def test_liaison_home_shows_the_key_figures(client, login, people, month):
    login(people["liaison_a"])
    page = text_of(client.get("/"))
    block = page.split('data-testid="liaison-figures"')[1].split('<h2 class="h5">')[0]
    stats = re.findall(r'<div class="stat">\s*([^<]+?)\s*</div>', block)
    assert stats[:6] == ["4", "1", "3", "2", "150.50", "2026-03-18"]
    links = page.split('data-testid="liaison-links"')[1].split("</div>")[0]
    for href in ("/work/institution", "/work/visits", "/work/pipeline", "/referrals/"):
        assert f'href="{href}"' in links
    assert "/work/visits?date_from=2026-03-01" in block
