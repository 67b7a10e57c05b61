"""Referrals coming in from the web: the one-firm form and the list upload (.xlsx / .csv), with
its report, the rejected-rows workbook, the templates, fingerprints and limits."""

from __future__ import annotations

import html as html_lib
import io
import re
from decimal import Decimal

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from advisors.credit_code import make_code
from advisors.services import referral_import
from models import AuditLog, Enterprise, Referral, ReferralBureau, ReferralUpload, db
from tests.conftest import csrf_from

HEADERS = [
    "统一社会信用代码*",
    "企业名称*",
    "行业*",
    "乡镇（街道）",
    "从业人员（人）",
    "营业收入（万元）",
    "资产总额（万元）",
    "联系人",
    "联系电话",
    "需求*",
    "融资金额（万元）",
    "资金用途",
    "备注",
]


# ------------------------------------------------------------------ helpers
@pytest.fixture
def login(client_as):
    """A fresh client signed in as ``user``, English interface (see conftest.client_as)."""
    return client_as


@pytest.fixture
def bureau(make):
    return make.user("bureau", org=make.org("bureau", code="BUR-A", name="商务局"))


@pytest.fixture
def town(make):
    return make.township(name="城关镇")


def _text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def _row(code, name="测试科技有限公司", **over) -> list:
    values = {
        "code": code,
        "name": name,
        "industry": "工业",
        "township": "城关镇",
        "employees": 50,
        "revenue": 800,
        "assets": 600,
        "contact": "张经理",
        "phone": "13800000000",
        "needs": "融资、政策",
        "amount": 300,
        "purpose": "设备",
        "note": "",
    }
    values.update(over)
    return list(values.values())


def _xlsx(rows, headers=HEADERS, leading_blank=0) -> bytes:
    wb = Workbook()
    ws = wb.active
    for _ in range(leading_blank):
        ws.append([])
    ws.append(headers)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _csv(rows, headers=HEADERS, encoding="utf-8-sig") -> bytes:
    import csv

    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def _upload(client, filename, data):
    token = csrf_from(client.get("/referrals/upload").get_data(as_text=True))
    return client.post(
        "/referrals/upload",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def _last_upload() -> ReferralUpload:
    db.session.expire_all()
    return db.session.execute(
        select(ReferralUpload).order_by(ReferralUpload.id.desc()).limit(1)
    ).scalar_one()


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _codes(n: int, make) -> list[str]:
    return [make.credit_code() for _ in range(n)]


def _form(code, **over) -> dict:
    data = {
        "credit_code": code,
        "name": "杭州测试制造有限公司",
        "industry": "industry",
        "township": "",
        "address": "",
        "employees": "50",
        "revenue_wan": "800",
        "assets_wan": "",
        "contact_name": "王经理",
        "contact_phone": "0571-88886666",
        "needs": ["financing", "policy"],
        "amount_wan": "500",
        "purpose": "流动资金",
        "note": "",
    }
    data.update(over)
    return data


def _post_form(client, data):
    token = csrf_from(client.get("/referrals/new").get_data(as_text=True))
    return client.post("/referrals/new", data={**data, "csrf_token": token})


def _bureaus_of(referral_id: int) -> set[int]:
    return set(
        db.session.execute(
            select(ReferralBureau.org_id).where(ReferralBureau.referral_id == referral_id)
        ).scalars()
    )


# ------------------------------------------------------------------ the form
def test_form_creates_a_referral_with_audit(login, bureau, make):
    client = login(bureau)
    assert client.get("/referrals/new").status_code == 200
    code = make.credit_code()
    r = _post_form(client, _form(code))
    assert r.status_code == 302, _text(r)[:2000]
    ref = db.session.execute(select(Referral)).scalar_one()
    assert r.headers["Location"].endswith(f"/referrals/{ref.id}")
    assert ref.source == "form" and ref.org_id == bureau.org_id
    assert ref.needs == ["financing", "policy"] and ref.amount_wan == Decimal("500")
    firm = db.session.get(Enterprise, ref.enterprise_id)
    assert firm.credit_code == code and firm.size_class == "small"
    logged = set(
        db.session.execute(
            select(AuditLog.table_name).where(
                AuditLog.action == "insert", AuditLog.actor_id == bureau.id
            )
        ).scalars()
    )
    assert {"enterprise", "referral"} <= logged


def test_form_rejected_keeps_values_and_marks_fields(login, bureau):
    client = login(bureau)
    data = _form(
        "91310115ma1h8r7c6d",
        name="",
        industry="",
        employees="-3",
        amount_wan="",
        purpose="我输入的用途",
        contact_name="李四",
    )
    r = _post_form(client, data)
    assert r.status_code == 422
    page = _text(r)
    assert "Use upper-case letters" in page
    assert "Firm name is required." in page
    assert "Industry must be one of the SME standard's industries." in page
    assert "Employees cannot be negative." in page
    assert "is required when financing is needed" in page
    # Everything typed comes back.
    for typed in ("91310115ma1h8r7c6d", "我输入的用途", "李四", 'value="-3"'):
        assert typed in page
    assert re.search(r'<input checked[^>]*value="financing"', page)
    assert not re.search(r'<input checked[^>]*value="guidance"', page)
    assert _count(Referral) == 0 and _count(Enterprise) == 0


def test_form_needs_at_least_one_need(login, bureau, make):
    client = login(bureau)
    data = _form(make.credit_code())
    data.pop("needs")
    r = _post_form(client, data)
    assert r.status_code == 422
    assert "Needs: choose at least one." in _text(r)


def test_form_co_referral_from_another_bureau(login, bureau, make):
    code = make.credit_code()
    assert _post_form(login(bureau), _form(code)).status_code == 302
    ref_id = db.session.scalar(select(Referral.id))
    other = make.user("bureau", org=make.org("bureau", code="BUR-B"))
    r = _post_form(login(other), _form(code, name="新名称有限公司", needs=["guidance"]))
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"/referrals/{ref_id}")
    assert _count(Referral) == 1
    assert _bureaus_of(ref_id) == {bureau.org_id, other.org_id}
    # Firm details sent later never fork the registry, nor overwrite what the first bureau
    # registered: they wait on the case for the finance office.
    db.session.expire_all()
    assert db.session.scalar(select(Enterprise.name)) != "新名称有限公司"
    link = db.session.get(ReferralBureau, (ref_id, other.org_id))
    assert link.proposed["name"] == "新名称有限公司"


def test_form_merged_flash(login, bureau, make):
    code = make.credit_code()
    _post_form(login(bureau), _form(code))
    other = login(make.user("bureau", org=make.org("bureau", code="BUR-C")))
    _post_form(other, _form(code))
    with other.session_transaction() as s:
        flashes = [m for _c, m in s.get("_flashes", [])]
    assert any("your bureau now follows it too" in m for m in flashes)


def test_form_duplicate_by_same_bureau_links_the_case(login, bureau, make):
    client = login(bureau)
    code = make.credit_code()
    assert _post_form(client, _form(code)).status_code == 302
    ref_id = db.session.scalar(select(Referral.id))
    r = _post_form(client, _form(code, note="第二次"))
    assert r.status_code == 200
    page = _text(r)
    assert f'href="/referrals/{ref_id}"' in page
    assert "nothing new was created" in page
    assert "第二次" in page  # the form stays filled
    assert _count(Referral) == 1


# ------------------------------------------------------------------ upload: valid rows
def test_upload_xlsx_valid_rows(login, bureau, make, town):
    client = login(bureau)
    codes = _codes(3, make)
    rows = [
        _row(codes[0]),
        _row(codes[1], industry="软件和信息技术服务业", needs="政策", amount=None),
        _row(codes[2], industry="wholesale", revenue=1234.5, needs="financing,guidance"),
    ]
    r = _upload(client, "名单.xlsx", _xlsx(rows, leading_blank=2))
    assert r.status_code == 302
    upload = _last_upload()
    assert r.headers["Location"].endswith(f"/referrals/uploads/{upload.id}")
    assert upload.counts == {"created": 3, "merged": 0, "duplicate": 0, "rejected": 0}
    assert upload.rows == 3 and upload.rejected == [] and upload.filename == "名单.xlsx"
    assert upload.headers == HEADERS
    refs = db.session.execute(select(Referral).order_by(Referral.id)).scalars().all()
    assert {r.source for r in refs} == {"upload"} and {r.upload_id for r in refs} == {upload.id}
    firms = {f.credit_code: f for f in db.session.execute(select(Enterprise)).scalars()}
    assert firms[codes[1]].industry == "software_it"
    assert firms[codes[2]].revenue_wan == Decimal("1234.5")
    assert firms[codes[0]].township_id == town.id
    page = _text(client.get(f"/referrals/uploads/{upload.id}"))
    assert "Every row was saved." in page
    listing = _text(client.get("/referrals/upload"))
    assert "名单.xlsx" in listing and f"/referrals/uploads/{upload.id}" in listing
    for table in ("referral", "enterprise"):
        logged = db.session.scalar(
            select(func.count()).where(
                AuditLog.table_name == table,
                AuditLog.action == "insert",
                AuditLog.actor_id == bureau.id,
            )
        )
        assert logged == 3, table


def test_upload_reports_every_kind_of_invalid_row(login, bureau, make, town):
    client = login(bureau)
    good, other = make.credit_code(), make.credit_code()
    bad_check = other[:17] + ("A" if other[17] != "A" else "B")
    # A code with a letter in it (a check character may be a digit: then lower case is no
    # change at all, and the row would be valid).
    lettered = next(c for c in iter(make.credit_code, None) if c != c.lower())
    rows = [
        _row(good),  # 2: fine
        _row(bad_check),  # 3: bad check character
        _row(lettered.lower()),  # 4: lower case
        _row(make.credit_code(), name=""),  # 5: missing name
        _row(make.credit_code(), industry="宇宙航行业"),  # 6: unknown industry
        _row(make.credit_code(), employees=-5),  # 7: negative employees
        _row(make.credit_code(), amount=None),  # 8: financing without amount
        _row(make.credit_code(), needs="融资、算命"),  # 9: unknown need
        _row(make.credit_code(), township="不存在镇"),  # 10: township not listed: kept
        _row(make.credit_code(), township=town.id),  # 11: digits that are only an id: kept
    ]
    r = _upload(client, "bad.xlsx", _xlsx(rows))
    assert r.status_code == 302
    upload = _last_upload()
    assert upload.counts == {"created": 3, "merged": 0, "duplicate": 0, "rejected": 7}
    by_row = {e["row"]: e for e in upload.rejected}
    expected = {
        3: ("统一社会信用代码*", "Check character"),
        4: ("统一社会信用代码*", "Use upper-case letters"),
        5: ("企业名称*", "Firm name is required."),
        6: ("行业*", "SME standard's industries"),
        7: ("从业人员（人）", "Employees cannot be negative."),
        8: ("融资金额（万元）", "required when financing is needed"),
        9: ("需求*", "must be one of: Financing, Policy, Guidance, Insurance"),
        10: ("乡镇（街道）", "Township 不存在镇 is not on the city's list"),
        11: ("乡镇（街道）", f"Township {town.id} is not on the city's list"),
    }
    assert set(by_row) == set(expected)
    for row, (column, message) in expected.items():
        entry = by_row[row]
        assert entry["status"] == ("warning" if row >= 10 else "rejected")
        assert any(e["column"] == column and message in e["message"] for e in entry["errors"]), (
            row,
            entry["errors"],
        )
        assert entry["values"]["企业名称*"] == ("" if row == 5 else "测试科技有限公司")
    page = _text(client.get(f"/referrals/uploads/{upload.id}"))
    assert 'id="row-9"' in page and "Township 不存在镇 is not on the city" in page
    assert "/rejected.xlsx" in page


def test_upload_without_amount_column_names_the_amount(login, bureau, make, town):
    client = login(bureau)
    headers = [h for h in HEADERS if not h.startswith("融资金额")]
    row = _row(make.credit_code())
    del row[10]
    _upload(client, "no-amount.xlsx", _xlsx([row], headers=headers))
    entry = _last_upload().rejected[0]
    assert entry["errors"][0]["column"] == "Amount needed (万元)"


# ------------------------------------------------------------------ duplicates, co-referral
def test_upload_duplicates_inside_the_file(login, bureau, make, town):
    client = login(bureau)
    a, b = _codes(2, make)
    rows = [_row(a), _row(b), _row(a, name="再次出现")]
    _upload(client, "dups.xlsx", _xlsx(rows))
    upload = _last_upload()
    assert upload.counts == {"created": 2, "merged": 0, "duplicate": 1, "rejected": 0}
    [entry] = upload.rejected
    assert entry["row"] == 4 and entry["status"] == "duplicate"
    assert entry["errors"][0]["column"] == "统一社会信用代码*"
    assert "earlier in this file (row 2)" in entry["errors"][0]["message"]


def test_upload_duplicates_across_chunks(login, bureau, make, town, monkeypatch):
    monkeypatch.setattr(referral_import, "CHUNK", 2)
    client = login(bureau)
    a, b, c = _codes(3, make)
    rows = [_row(a), _row(b), _row(c), _row(a), _row(c)]
    _upload(client, "chunks.xlsx", _xlsx(rows))
    upload = _last_upload()
    assert upload.counts == {"created": 3, "merged": 0, "duplicate": 2, "rejected": 0}
    messages = {e["row"]: e["errors"][0]["message"] for e in upload.rejected}
    assert "row 2" in messages[5] and "row 4" in messages[6]


def test_upload_duplicate_of_an_existing_case(login, bureau, make, town):
    client = login(bureau)
    code = make.credit_code()
    _post_form(client, _form(code))
    ref_id = db.session.scalar(select(Referral.id))
    _upload(client, "again.xlsx", _xlsx([_row(code)]))
    upload = _last_upload()
    assert upload.counts["duplicate"] == 1
    [entry] = upload.rejected
    assert entry["referral_id"] == ref_id
    assert "Your bureau already referred this firm" in entry["errors"][0]["message"]
    page = _text(client.get(f"/referrals/uploads/{upload.id}"))
    assert f'href="/referrals/{ref_id}"' in page


def test_upload_co_referral(login, bureau, make, town):
    code = make.credit_code()
    _post_form(login(bureau), _form(code))
    ref_id = db.session.scalar(select(Referral.id))
    other = make.user("bureau", org=make.org("bureau", code="BUR-D"))
    client = login(other)
    _upload(client, "co.xlsx", _xlsx([_row(code), _row(make.credit_code())]))
    upload = _last_upload()
    assert upload.counts == {"created": 1, "merged": 1, "duplicate": 0, "rejected": 0}
    assert _bureaus_of(ref_id) == {bureau.org_id, other.org_id}
    assert "Co-referrals" in _text(client.get(f"/referrals/uploads/{upload.id}"))


def test_reupload_of_the_same_file_creates_nothing(login, bureau, make, town):
    client = login(bureau)
    data = _xlsx([_row(c) for c in _codes(2, make)])
    first = _upload(client, "list.xlsx", data)
    upload = _last_upload()
    before = (_count(Referral), _count(Enterprise), _count(ReferralUpload), _count(AuditLog))
    second = _upload(client, "list-copy.xlsx", data)
    assert second.headers["Location"] == first.headers["Location"]
    assert before == (
        _count(Referral),
        _count(Enterprise),
        _count(ReferralUpload),
        _count(AuditLog),
    )
    page = _text(client.get(second.headers["Location"]))
    assert "This file was already uploaded on" in page and "nothing new was created" in page
    assert upload.created_at is not None


def test_same_file_from_another_bureau_is_its_own_upload(login, bureau, make, town):
    data = _xlsx([_row(make.credit_code())])
    _upload(login(bureau), "x.xlsx", data)
    other = make.user("bureau", org=make.org("bureau", code="BUR-E"))
    _upload(login(other), "x.xlsx", data)
    assert _count(ReferralUpload) == 2
    assert _last_upload().counts["merged"] == 1


# ------------------------------------------------------------------ the rejected-rows workbook
def test_rejected_rows_workbook(login, bureau, make, town):
    client = login(bureau)
    rows = [
        _row(make.credit_code()),
        _row("BAD", name='=HYPERLINK("http://evil","x")'),
        _row(make.credit_code(), needs="@SUM(1)"),
    ]
    _upload(client, "mixed.csv", _csv(rows))  # CSV: the formula-looking text arrives as text
    upload = _last_upload()
    r = client.get(f"/referrals/uploads/{upload.id}/rejected.xlsx")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    wb = load_workbook(io.BytesIO(r.data))
    ws = wb.worksheets[0]
    values = list(ws.values)
    assert list(values[0]) == [*HEADERS, "错误原因"]
    assert len(values) == 3
    assert values[1][1] == '\'=HYPERLINK("http://evil","x")'
    assert values[1][0] == "BAD" and "统一社会信用代码*" in values[1][-1]
    assert values[2][9] == "'@SUM(1)" and "需求*" in values[2][-1]
    # The fixed file is a new fingerprint and goes through.
    fixed = [list(v[:-1]) for v in values[1:]]
    fixed[0][0], fixed[0][1] = make.credit_code(), "修好的企业"
    fixed[1][9] = "融资"
    r = _upload(client, "fixed.xlsx", _xlsx(fixed, headers=[*HEADERS, "错误原因"]))
    assert _last_upload().counts == {"created": 2, "merged": 0, "duplicate": 0, "rejected": 0}


# ------------------------------------------------------------------ CSV and headers
@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_upload_csv_encodings(login, bureau, make, town, encoding):
    client = login(bureau)
    rows = [_row(c) for c in _codes(2, make)]
    r = _upload(client, "list.csv", _csv(rows, encoding=encoding))
    assert r.status_code == 302, _text(r)[:2000]
    upload = _last_upload()
    assert upload.counts["created"] == 2 and upload.headers == HEADERS
    assert db.session.scalar(select(Enterprise.industry).limit(1)) == "industry"


def test_a_stale_sheet_dimension_loses_no_row(login, bureau, make, town):
    """Some programs write a <dimension> smaller than the data: every row is still read."""
    import zipfile

    data = _xlsx([_row(c) for c in _codes(3, make)])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                stale = b'<dimension ref="A1:C2"/>'
                content = re.sub(rb'<dimension ref="[^"]*"\s*/>', stale, content)
            zout.writestr(item, content)
    _upload(login(bureau), "stale.xlsx", out.getvalue())
    assert _last_upload().counts == {"created": 3, "merged": 0, "duplicate": 0, "rejected": 0}


def test_header_synonyms_and_industry_aliases(login, bureau, make, town):
    client = login(bureau)
    headers = [
        " 信用代码 ",
        "名称",
        "所属行业",
        "街道",
        "员工人数",
        "营收(万元)",
        "总资产【万元】",
        "联系人",
        "手机",
        "需求类型",
        "金额（万元）",
        "用途",
        "备注",
    ]
    english = [
        "Credit_Code",
        "Name",
        "INDUSTRY",
        "township",
        "employees",
        "revenue",
        "assets",
        "contact",
        "phone",
        "needs",
        "amount",
        "purpose",
        "note",
    ]
    _upload(client, "syn.xlsx", _xlsx([_row(make.credit_code(), industry="制造业")], headers))
    assert _last_upload().counts["created"] == 1
    _upload(client, "en.csv", _csv([_row(make.credit_code(), industry="批发业")], english))
    assert _last_upload().counts["created"] == 1
    industries = set(db.session.execute(select(Enterprise.industry)).scalars())
    assert industries == {"industry", "wholesale"}


def test_numbers_from_openpyxl_never_go_through_float(login, bureau, make, town):
    client = login(bureau)
    code = make.credit_code()
    _upload(client, "n.xlsx", _xlsx([_row(code, revenue=0.1 + 0.2, amount=1e3, employees=12.0)]))
    firm = db.session.execute(select(Enterprise)).scalar_one()
    assert firm.revenue_wan == Decimal("0.3") and firm.employees == 12
    assert db.session.scalar(select(Referral.amount_wan)) == Decimal("1000")


# ------------------------------------------------------------------ files that cannot be used
@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("list.xlsx", b"this is not a zip at all", "not a readable .xlsx workbook"),
        ("list.xlsx", b"PK\x03\x04broken", "not a readable .xlsx workbook"),
        ("list.pdf", b"%PDF-1.4", "Only .xlsx and .csv files can be uploaded."),
        ("list.xls", b"\xd0\xcf\x11\xe0", "old .xls format"),
        ("list.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a CSV text file"),
        ("list.csv", b"", "The file is empty."),
        ("list.csv", "信用代码,名称\n".encode() + b"x" * 5000 + b"\x00,y\n", "no column for"),
        ("list.xlsx", b"PK\x05\x06" + b"\x00" * 18, "not a readable .xlsx workbook"),
        ("list.csv", "名称,行业\n".encode(), "no column for: 统一社会信用代码"),
    ],
)
def test_unusable_files_save_nothing(login, bureau, filename, data, message):
    client = login(bureau)
    r = _upload(client, filename, data)
    assert r.status_code == 422
    assert message in _text(r)
    assert _count(ReferralUpload) == 0 and _count(Referral) == 0


def test_missing_required_column_is_named(login, bureau, make, town):
    client = login(bureau)
    headers = [h for h in HEADERS if h != "需求*"]
    row = _row(make.credit_code())
    del row[9]
    r = _upload(client, "x.xlsx", _xlsx([row], headers=headers))
    assert r.status_code == 422
    page = _text(r)
    assert "no column for: 需求 (Needs)" in page
    assert "统一社会信用代码" not in page.split("no column for:")[1].split("Nothing")[0]
    assert _count(Referral) == 0 and _count(ReferralUpload) == 0


def test_too_many_rows(app, login, bureau, make, town):
    client = login(bureau)
    old = app.config["MAX_UPLOAD_ROWS"]
    app.config["MAX_UPLOAD_ROWS"] = 3
    try:
        r = _upload(client, "big.csv", _csv([_row(c) for c in _codes(4, make)]))
    finally:
        app.config["MAX_UPLOAD_ROWS"] = old
    assert r.status_code == 422
    assert "more than 3 data rows" in _text(r)
    assert _count(Referral) == 0 and _count(ReferralUpload) == 0


def test_oversized_body_is_413(app, login, bureau):
    client = login(bureau)
    token = csrf_from(client.get("/referrals/upload").get_data(as_text=True))
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 2000
    try:
        r = client.post(
            "/referrals/upload",
            data={"csrf_token": token, "file": (io.BytesIO(b"x" * 5000), "big.csv")},
            content_type="multipart/form-data",
        )
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert r.status_code == 413
    assert _count(ReferralUpload) == 0


def test_upload_without_a_file(login, bureau):
    client = login(bureau)
    token = csrf_from(client.get("/referrals/upload").get_data(as_text=True))
    r = client.post("/referrals/upload", data={"csrf_token": token})
    assert r.status_code == 422 and "Choose a file to upload." in _text(r)


# ------------------------------------------------------------------ access
def test_report_of_another_bureau_is_404(login, bureau, make, town):
    _upload(login(bureau), "a.xlsx", _xlsx([_row(make.credit_code())]))
    upload_id = _last_upload().id
    other = login(make.user("bureau", org=make.org("bureau", code="BUR-F")))
    assert other.get(f"/referrals/uploads/{upload_id}").status_code == 404
    assert other.get(f"/referrals/uploads/{upload_id}/rejected.xlsx").status_code == 404
    assert other.get("/referrals/uploads/99999999999").status_code == 404
    assert upload_id and "a.xlsx" not in _text(other.get("/referrals/upload"))


def test_anonymous_is_sent_to_sign_in(client):
    for url in ("/referrals/upload", "/referrals/new", "/referrals/uploads/1"):
        r = client.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


@pytest.mark.parametrize("role", ["finance_office", "advisor", "pboc", "liaison", "admin"])
def test_other_roles_may_not_refer(login, make, role):
    client = login(make.user(role))
    for url in ("/referrals/upload", "/referrals/new", "/referrals/template.xlsx"):
        assert client.get(url).status_code == 403, (role, url)


# ------------------------------------------------------------------ templates
def test_xlsx_template_has_drop_downs_and_an_example_that_never_becomes_a_firm(login, bureau, town):
    client = login(bureau)
    r = client.get("/referrals/template.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(r.data))
    data, sample, lookups = wb.worksheets
    header = [c.value for c in data[1]]
    assert header[0] == "统一社会信用代码*" and "需求*" in header
    assert data.max_row == 1  # the data area is empty: nothing to forget to delete
    assert data.freeze_panes == "A2" and data.column_dimensions["B"].width >= 20
    checked = {str(v.sqref).split(":")[0][:1] for v in data.data_validations.dataValidation}
    column = {h: chr(ord("A") + i) for i, h in enumerate(header)}
    assert checked == {column["行业*"], column["乡镇（街道）"], column["需求*"]}
    assert all(v.errorStyle == "warning" for v in data.data_validations.dataValidation)
    example = [c.value for c in sample[2]]
    from advisors.credit_code import is_valid

    assert is_valid(example[0]) and example[1].startswith("【示例】")
    values = list(lookups.values)
    assert "软件和信息技术服务业" in [row[0] for row in values]
    assert "融资" in [row[2] for row in values] and "城关镇" in [row[3] for row in values]
    # The example copied into the list is skipped; a real row beside it is saved.
    real = list(example)
    real[0], real[1] = make_code("9", "1", "330100", "MA2H7Q5K"), "江州市真实企业有限公司"
    _upload(client, "名单.xlsx", _xlsx([example, real], headers=header))
    counts = _last_upload().counts
    assert (counts["created"], counts.get("example")) == (1, 1)
    page = client.get(f"/referrals/uploads/{_last_upload().id}").get_data(as_text=True)
    assert "example row" in page


def test_csv_template_example_row_is_skipped(login, bureau, town):
    client = login(bureau)
    r = client.get("/referrals/template.csv")
    assert r.status_code == 200 and r.data.startswith(b"\xef\xbb\xbf")
    assert "统一社会信用代码*" in r.data.decode("utf-8-sig")
    _upload(client, "模板.csv", r.data)
    counts = _last_upload().counts
    assert counts["created"] == 0 and counts["example"] == 1
    assert _count(Enterprise) == 0


def test_rejected_rows_file_keeps_figures_as_numbers(login, bureau, make, town):
    client = login(bureau)
    _upload(client, "bad.xlsx", _xlsx([_row(make.credit_code(), industry="宇宙航行业")]))
    upload = _last_upload()
    r = client.get(f"/referrals/uploads/{upload.id}/rejected.xlsx")
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["需修改的行"]  # no empty sheets
    rows = list(wb.worksheets[0].values)
    header, row = rows[0], rows[1]
    assert isinstance(row[header.index("从业人员（人）")], int)
    assert isinstance(row[header.index("联系电话")], str)


def test_header_normalisation():
    norm = referral_import._norm_header
    assert norm(" 营业收入（万元）* ") == "营业收入"
    assert norm("乡镇（街道）") == "乡镇"
    assert norm("Credit_Code") == "creditcode"
    assert norm("资产总额\u3000[万元]") == "资产总额"


def test_make_code_helper_is_valid():
    assert make_code("9", "1", "330100", "MA2H7Q4K")


def test_import_runs_a_fixed_number_of_queries(app, bureau, make, town, count_queries):
    """No query per row: a longer list costs the same number of statements."""
    from advisors.audit import acting_as

    def queries(n: int) -> int:
        # Realistic lists: optional cells are filled on some rows and empty on others.
        rows = [
            _row(c, needs="政策", amount=None, note=None)
            if i % 3
            else _row(c, township=None, purpose=None)
            for i, c in enumerate(_codes(n, make))
        ]
        data = _xlsx(rows)
        with count_queries() as q, acting_as(bureau):
            upload = referral_import.import_file(bureau, f"{n}.xlsx", data)
        db.session.commit()
        assert upload.counts["created"] == n
        return q.count

    assert queries(40) == queries(5)


def test_garbage_collector_is_back_on_after_an_import(app, bureau, make, town):
    import gc

    from advisors.audit import acting_as
    from advisors.errors import ValidationFailed

    assert gc.isenabled()
    with acting_as(bureau):
        referral_import.import_file(bureau, "ok.xlsx", _xlsx([_row(make.credit_code())]))
        assert gc.isenabled()
        with pytest.raises(ValidationFailed):
            referral_import.import_file(bureau, "bad.xlsx", b"not a workbook")
    assert gc.isenabled()
    db.session.rollback()


# ------------------------------------------------------------------ bulk writes
def _import(bureau, filename: str, data: bytes):
    from advisors.audit import acting_as

    with acting_as(bureau):
        upload = referral_import.import_file(bureau, filename, data)
    db.session.commit()
    return upload


def test_bulk_written_rows_are_complete_and_audited(app, bureau, make, town):
    """New firms, cases, bureau links, timeline events and their audit entries, written in
    bulk (COPY on PostgreSQL), hold what the ORM would have written: who, when and what."""
    from models import ReferralEvent

    code = make.credit_code()
    _import(bureau, "full.xlsx", _xlsx([_row(code, revenue=1234.5, amount=300, note="重点")]))
    db.session.expire_all()
    firm = db.session.execute(select(Enterprise)).scalar_one()
    case = db.session.execute(select(Referral)).scalar_one()
    assert (firm.credit_code, firm.township_id, firm.revenue_wan) == (
        code,
        town.id,
        Decimal("1234.5"),
    )
    assert firm.registered_by_org_id == bureau.org_id and firm.version == 1
    assert firm.created_at.tzinfo is not None and firm.size_class == "small"
    assert (case.enterprise_id, case.status, case.need_financing, case.need_policy) == (
        firm.id,
        "submitted",
        True,
        True,
    )
    assert case.amount_wan == Decimal("300") and case.note == "重点" and case.source == "upload"
    link = db.session.execute(select(ReferralBureau)).scalar_one()
    assert (link.referral_id, link.org_id, link.needs) == (
        case.id,
        bureau.org_id,
        ["financing", "policy"],
    )
    event = db.session.execute(select(ReferralEvent)).scalar_one()
    assert (event.referral_id, event.kind, event.actor_id) == (case.id, "created", bureau.id)
    assert event.at == case.created_at
    entries = {
        e.table_name: e
        for e in db.session.execute(
            select(AuditLog).where(AuditLog.action == "insert", AuditLog.actor_id == bureau.id)
        ).scalars()
    }
    assert entries["enterprise"].record_id == str(firm.id)
    assert entries["enterprise"].actor_label == bureau.username
    assert entries["enterprise"].changes["credit_code"] == [None, code]
    assert entries["enterprise"].changes["revenue_wan"] == [None, "1234.5"]
    assert "created_at" not in entries["enterprise"].changes
    assert entries["referral"].record_id == str(case.id)
    assert entries["referral"].changes["amount_wan"] == [None, "300"]
    assert entries["referral"].changes["need_financing"] == [None, True]
    assert (
        "purpose" in entries["referral"].changes and "advisor_id" not in entries["referral"].changes
    )
    assert entries["referral_bureau"].record_id == f"{case.id}/{bureau.org_id}"
    assert entries["referral_bureau"].changes["org_id"] == [None, bureau.org_id]


def test_a_problem_found_late_in_the_file_saves_nothing(
    app, login, bureau, make, town, monkeypatch
):
    """Chunks are saved while the rest of the file is still being read: too many rows found
    further down takes back everything already written."""
    monkeypatch.setattr(referral_import, "CHUNK", 2)
    client = login(bureau)
    before = _count(AuditLog)
    old = app.config["MAX_UPLOAD_ROWS"]
    app.config["MAX_UPLOAD_ROWS"] = 5
    try:
        r = _upload(client, "long.xlsx", _xlsx([_row(c) for c in _codes(6, make)]))
    finally:
        app.config["MAX_UPLOAD_ROWS"] = old
    assert r.status_code == 422 and "more than 5 data rows" in _text(r)
    assert _count(ReferralUpload) == _count(Referral) == _count(Enterprise) == 0
    assert _count(AuditLog) == before
    # Called directly, the import leaves nothing of itself in the session either.
    from advisors.audit import acting_as
    from advisors.errors import ValidationFailed

    app.config["MAX_UPLOAD_ROWS"] = 5
    try:
        with acting_as(bureau), pytest.raises(ValidationFailed):
            referral_import.import_file(bureau, "l.xlsx", _xlsx([_row(c) for c in _codes(6, make)]))
        assert _count(ReferralUpload) == _count(Referral) == _count(Enterprise) == 0
        assert _count(AuditLog) == before and not db.session.new
    finally:
        app.config["MAX_UPLOAD_ROWS"] = old
        db.session.rollback()
    # The same bureau can upload the list once it is short enough.
    r = _upload(client, "short.xlsx", _xlsx([_row(c) for c in _codes(5, make)]))
    assert r.status_code == 302 and _last_upload().counts["created"] == 5


def _corrupt_after(data: bytes, rows_before: int) -> bytes:
    """The workbook with its sheet XML broken after ``rows_before`` data rows."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            content = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                at = content.index(f'<row r="{rows_before + 2}"'.encode())
                content = content[:at] + b"<row><c><<broken" + content[at:]
            zout.writestr(info, content)
    return out.getvalue()


def test_a_corrupt_sheet_part_found_late_saves_nothing(login, bureau, make, town, monkeypatch):
    monkeypatch.setattr(referral_import, "CHUNK", 2)
    client = login(bureau)
    data = _corrupt_after(_xlsx([_row(c) for c in _codes(6, make)]), rows_before=4)
    r = _upload(client, "corrupt.xlsx", data)
    assert r.status_code == 422
    assert "The first sheet of this workbook could not be read." in _text(r)
    assert _count(ReferralUpload) == _count(Referral) == _count(Enterprise) == 0


def test_too_many_rows_wins_over_a_missing_column(app, login, bureau, make, town):
    """With several problems the message is the one reading the whole file first gives."""
    client = login(bureau)
    headers = [h for h in HEADERS if h != "需求*"]
    rows = [_row(c)[:9] + _row(c)[10:] for c in _codes(4, make)]
    old = app.config["MAX_UPLOAD_ROWS"]
    app.config["MAX_UPLOAD_ROWS"] = 3
    try:
        r = _upload(client, "both.xlsx", _xlsx(rows, headers=headers))
    finally:
        app.config["MAX_UPLOAD_ROWS"] = old
    assert r.status_code == 422 and "more than 3 data rows" in _text(r)


def test_a_case_opened_meanwhile_stops_the_bulk_write(login, bureau, make, town, monkeypatch):
    """The one-open-case-per-firm index still guards the bulk path: a case opened for the same
    firm between the look-up and the write makes the upload fail as a conflict (409), and
    nothing of it is saved."""
    from sqlalchemy import insert

    from advisors import bulk
    from models import utcnow

    office = make.user("finance_office")
    firm = make.firm(office)
    real = bulk.insert_new_rows

    def meanwhile(table, rows, key, *where):
        if table is Referral.__table__:
            now = utcnow()
            db.session.execute(
                insert(Referral.__table__).values(
                    enterprise_id=firm.id,
                    status="submitted",
                    org_id=bureau.org_id,
                    created_by_id=bureau.id,
                    source="api",
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
        return real(table, rows, key, *where)

    monkeypatch.setattr(bulk, "insert_new_rows", meanwhile)
    client = login(bureau)
    r = _upload(client, "race.xlsx", _xlsx([_row(firm.credit_code), _row(make.credit_code())]))
    assert r.status_code == 409 and "at the same moment" in _text(r)
    assert _count(ReferralUpload) == _count(Referral) == 0 and _count(Enterprise) == 1


def test_township_cells_are_matched_with_one_read_of_the_list(
    app, bureau, make, town, count_queries
):
    """Cells go to the service as written; it reads the city's list once per call and matches
    every row against it (no query per row), keeping what is not listed as written."""
    from advisors.audit import acting_as
    from advisors.services import referrals as referral_service

    mapper = referral_import._RowMapper(["credit_code", "township"])
    assert mapper.item(("x", "城关镇"))["township"] == "城关镇"
    assert mapper.item(("x", "²"))["township"] == "²"  # a digit int() cannot read: no 500
    items = [
        {"credit_code": make.credit_code(), "name": "甲", "industry": "industry", "needs": "政策"}
        | {"township": mapper.item(("x", t))["township"]}
        for t in ("城关镇", "不存在镇", str(town.id), "²", None, town.code)
    ]
    with count_queries() as q, acting_as(bureau):
        results = referral_service.submit(bureau, items, source="upload", notify_office=False)
    assert [r.status for r in results] == ["created"] * 6
    assert [bool(r.warnings) for r in results] == [False, True, True, True, False, False]
    assert "不存在镇" in results[1].warnings["township"] and "²" in results[3].warnings["township"]
    # The list and its mapped names, read once for the whole call.
    assert len([s for s in q.statements if "FROM township" in s]) == 2
    db.session.rollback()


def test_bulk_writer_waits_before_the_session_is_used(app, bureau, make):
    """What a background batch writes is there for the next query; its error is raised there
    (as IntegrityError), and a rollback after it leaves a usable session."""
    from sqlalchemy.exc import IntegrityError

    from advisors.bulk import BulkWriter
    from models import utcnow

    def entry(record_id):
        return {
            "at": utcnow(),
            "actor_id": bureau.id,
            "actor_label": "bulk",
            "action": "insert",
            "table_name": "bulk_test",
            "record_id": record_id,
            "changes": {"n": [None, record_id]},
            "ip": None,
        }

    firm = make.firm()
    writer = BulkWriter()
    try:
        writer.start([(AuditLog.__table__, [entry(str(i)) for i in range(3000)])])
        count = db.session.scalar(select(func.count()).where(AuditLog.table_name == "bulk_test"))
        assert count == 3000
        rows = db.session.execute(
            select(AuditLog.changes).where(AuditLog.record_id == "2999")
        ).scalar_one()
        assert rows == {"n": [None, "2999"]}
        # A second firm with the same credit code: refused, at the latest by the next query
        # (elsewhere than on PostgreSQL the batch is written at once, so start raises).
        with pytest.raises(IntegrityError):
            writer.start([(Enterprise.__table__, [_firm_row(firm.credit_code, bureau)])])
            db.session.execute(select(func.count()).select_from(Enterprise)).scalar()
    finally:
        writer.close()
    db.session.rollback()
    assert _count(Enterprise) == 1
    assert db.session.scalar(select(func.count()).where(AuditLog.table_name == "bulk_test")) == 0


def _firm_row(code: str, bureau) -> dict:
    from models import utcnow

    now = utcnow()
    return {
        "credit_code": code,
        "name": "重复的企业",
        "industry": "industry",
        "size_class": "unknown",
        "registered_by_org_id": bureau.org_id,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def test_bulk_rows_are_stored_as_an_insert_stores_them(app, bureau, make):
    """append_rows (COPY on PostgreSQL, the sqlite3 driver's executemany on SQLite) binds
    every value as SQLAlchemy's INSERT does: the stored columns are the same, byte for byte."""
    from sqlalchemy import text

    from advisors.bulk import append_rows
    from models import utcnow

    firm_a, firm_b = make.firm(), make.firm()
    now = utcnow()

    def case(firm, note):
        return {
            "enterprise_id": firm.id,
            "status": "closed",
            "need_financing": True,
            "need_policy": False,
            "need_guidance": False,
            "need_insurance": True,
            "amount_wan": Decimal("1234.567891"),
            "purpose": None,
            "note": note,
            "org_id": bureau.org_id,
            "created_by_id": bureau.id,
            "source": "upload",
            "upload_id": None,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }

    def entry(record_id, changes):
        return {
            "at": now,
            "actor_id": bureau.id,
            "actor_label": "张三",
            "action": "insert",
            "table_name": "same_test",
            "record_id": record_id,
            "changes": changes,
            "ip": None,
        }

    changes = {"名称": [None, '测试\n"引号"\\'], "n": [None, 1.5], "ok": [True, None], "l": []}
    db.session.execute(Referral.__table__.insert(), [case(firm_a, "备注\t一")])
    append_rows(Referral.__table__, [case(firm_b, "备注\t一")])
    db.session.execute(AuditLog.__table__.insert(), [entry("a", changes)])
    append_rows(AuditLog.__table__, [entry("b", changes)])
    referrals = Referral.__table__
    ids = dict(db.session.execute(select(referrals.c.enterprise_id, referrals.c.id)).all())
    link = {
        "org_id": bureau.org_id,
        "created_at": now,
        "created_by_id": None,
        "needs": None,
        "amount_wan": None,
        "note": None,
    }
    db.session.execute(ReferralBureau.__table__.insert(), [{**link, "referral_id": ids[firm_a.id]}])
    append_rows(ReferralBureau.__table__, [{**link, "referral_id": ids[firm_b.id]}])

    pg = db.engine.dialect.name == "postgresql"

    def stored(table: str, columns: list[str], where: str, order: str = "id") -> list[tuple]:
        cols = ", ".join(f"{c}::text" if pg else c for c in columns)
        return db.session.execute(
            text(f"SELECT {cols} FROM {table} WHERE {where} ORDER BY {order}")  # noqa: S608
        ).all()

    def others(table, *leave_out: str) -> list[str]:
        return [c.name for c in table.columns if c.name not in ("id", *leave_out)]

    first, second = stored("referral", others(referrals, "enterprise_id"), "status = 'closed'")
    assert first == second
    first, second = stored(
        "audit_log", others(AuditLog.__table__, "record_id"), "table_name = 'same_test'"
    )
    assert first == second
    first, second = stored(
        "referral_bureau",
        others(ReferralBureau.__table__, "referral_id"),
        f"org_id = {int(bureau.org_id)}",
        "referral_id",
    )
    assert first == second
    db.session.rollback()


def test_the_import_look_ups_keep_one_statement_whatever_the_chunk(app, make, count_queries):
    """On PostgreSQL the look-up by credit code is one statement with one array parameter, so
    the prepared statement psycopg makes of it keeps a plan that uses the index (an IN list of
    hundreds of parameters gets a generic plan that scans the table)."""
    from advisors.dbutil import among

    firms = [make.firm() for _ in range(3)]
    codes = [f.credit_code for f in firms]
    statements = []
    for part in (codes[:1], codes, [*codes, "X" * 18]):
        with count_queries() as q:
            found = db.session.execute(
                select(Enterprise.credit_code).where(among(Enterprise.credit_code, part))
            ).scalars()
            assert sorted(found) == sorted(c for c in part if c in codes)
        statements += q.statements
    assert db.session.execute(select(Enterprise.id).where(among(Enterprise.id, []))).all() == []
    if db.engine.dialect.name == "postgresql":
        assert len(set(statements)) == 1 and "ANY" in statements[0]
