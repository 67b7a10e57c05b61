"""The notice (通报) as a Chinese official document (issue 12, point 9): the issuer, the document
number given on publishing (unique per year, kept), the title centred, the date in the official
form and the issuer and date at the bottom right (落款) — on the printable page, in the PDF (its
CJK font embedded, every character of it in the font) and in the .xlsx (title row, frozen
header, A4 print set-up)."""

from __future__ import annotations

import html as html_lib
import io
import re
import shutil
import subprocess
from datetime import date

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from advisors.audit import acting_as
from advisors.clock import today
from advisors.errors import ValidationFailed
from advisors.security import hash_password
from advisors.services import assessments as svc
from advisors.services import notice as notice_service
from models import Assessment, Organisation, db
from tests.conftest import PASSWORD
from tests.test_assessment_compile import build_city, compile_

ISSUER = "江州市地方金融管理局"


@pytest.fixture
def world(make, app):
    w = build_city(make)
    office = w["office"]
    office.password_hash = hash_password(PASSWORD)
    db.session.get(Organisation, office.org_id).name = ISSUER
    db.session.commit()
    app.config["NOTICE_DOC_PREFIX"] = "江金办"
    yield w
    app.config["NOTICE_DOC_PREFIX"] = ""


def _publish(key: str, actor, number=None):
    with acting_as(actor):
        svc.publish(actor, key, doc_number=number, doc_prefix="江金办")
    db.session.commit()


def _chinese(client):
    with client.session_transaction() as s:
        s["lang"] = "zh_CN"


# ----------------------------------------------------------------------------- the form
@pytest.mark.parametrize(
    ("day", "text"),
    [
        (date(2026, 12, 5), "二〇二六年十二月五日"),
        (date(2026, 1, 10), "二〇二六年一月十日"),
        (date(2030, 11, 21), "二〇三〇年十一月二十一日"),
        (date(2027, 3, 30), "二〇二七年三月三十日"),
        (date(2027, 10, 31), "二〇二七年十月三十一日"),
        (date(2100, 2, 14), "二一〇〇年二月十四日"),
    ],
)
def test_the_date_in_the_official_form(day, text):
    assert notice_service.chinese_date(day) == text


def test_the_document_number_form():
    assert svc.notice_number_text("江金办", 2026, 12) == "江金办〔2026〕12号"
    assert svc.notice_number_text("", 2026, 1) == "〔2026〕1号"


# ----------------------------------------------------------------------------- numbering
def test_numbers_are_given_on_publishing_unique_per_year_and_kept(world, runner):
    office = world["office"]
    year = today().year
    for key in ("2026-06", "2026-07", "2026-08"):
        compile_(key)
    assert svc.next_doc_number() == 1
    _publish("2026-06", office)
    _publish("2026-07", office, "12")  # as the office's register gives it
    with pytest.raises(ValidationFailed) as exc:
        svc.publish(office, "2026-08", doc_number=12)
    assert set(exc.value.fields) == {"doc_number"} and "2026-07" in exc.value.fields["doc_number"]
    db.session.rollback()
    for bad in ("0", "abc", "-3", 100000, True):
        with pytest.raises(ValidationFailed) as exc:
            svc.publish(office, "2026-08", doc_number=bad)
        assert set(exc.value.fields) == {"doc_number"}, bad
        db.session.rollback()
    result = runner.invoke(args=["assessments", "publish", "2026-08", "--by", office.username])
    assert result.exit_code == 0, result.output
    numbers = dict(db.session.execute(select(Assessment.period, Assessment.notice_number)).all())
    assert numbers == {
        "2026-06": f"江金办〔{year}〕1号",
        "2026-07": f"江金办〔{year}〕12号",
        "2026-08": f"江金办〔{year}〕13号",  # the CLI takes the configured prefix
    }
    assert f"document=江金办〔{year}〕13号" in result.stdout
    assert svc.next_doc_number() == 14


def test_the_publish_form_and_api_take_the_number(client, world, login, make):
    compile_("2026-06")
    compile_("2026-07")
    login(world["office"])
    page = client.get("/assessments/2026-06").get_data(as_text=True)
    assert 'name="doc_number"' in page and 'placeholder="1"' in page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)[1]
    version = re.search(r'name="version"[^>]*value="(\d+)"', page)[1]
    r = client.post(
        "/assessments/2026-06/publish",
        data={"csrf_token": token, "version": version, "doc_number": "x1"},
    )
    assert r.status_code == 422 and 'data-testid="doc-number-error"' in r.get_data(as_text=True)
    r = client.post(
        "/assessments/2026-06/publish",
        data={"csrf_token": token, "version": version, "doc_number": "7"},
    )
    assert r.status_code == 302
    headers = {"Authorization": f"Bearer {make.token(world['office'])}"}
    r = client.post("/api/v1/assessments/2026-07/publish", json={"doc_number": 7}, headers=headers)
    assert r.status_code == 422 and "doc_number" in r.get_json()["error"]["fields"]
    r = client.post("/api/v1/assessments/2026-07/publish", json={}, headers=headers)
    assert r.status_code == 200
    assert r.get_json()["document_number"] == f"江金办〔{today().year}〕8号"


# ----------------------------------------------------------------------------- the page
def test_the_printable_notice_is_an_official_notice(client, world, login):
    compile_("2026-07")
    login(world["office"])
    draft = html_lib.unescape(client.get("/assessments/2026-07/notice").get_data(as_text=True))
    assert "Draft: the document number is given when published" in draft
    _publish("2026-07", world["office"], 12)
    _chinese(client)
    html = html_lib.unescape(client.get("/assessments/2026-07/notice").get_data(as_text=True))
    number = f"江金办〔{today().year}〕12号"
    assert re.search(r'data-testid="notice-issuer">' + ISSUER + "<", html)
    assert re.search(r'data-testid="notice-number">' + re.escape(number) + "<", html)
    title = re.search(r'<h1 class="([^"]*)" data-testid="notice-title">([^<]+)</h1>', html)
    assert "text-center" in title[1]
    with client.application.test_request_context():
        from flask_babel import force_locale

        with force_locale("zh_CN"):
            expected = notice_service.notice_title("month", date(2026, 7, 1))
    assert title[2] == expected and "2026年7月" in expected
    signature = re.search(r'data-testid="notice-signature">.*?</footer>', html, re.S)[0]
    assert ISSUER in signature
    assert notice_service.chinese_date(today()) in signature  # published today


# ----------------------------------------------------------------------------- the PDF
def _text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _fonts(data: bytes) -> list[tuple[str, bool]]:
    """(base font, embedded) of every font the pages use."""
    out = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptors = [font.get("/FontDescriptor")]
            for child in font.get("/DescendantFonts") or []:
                descriptors.append(child.get_object().get("/FontDescriptor"))
            embedded = any(
                d is not None
                and any(k in d.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                for d in descriptors
            )
            out.append((str(font["/BaseFont"]), embedded))
    return out


def test_the_pdf_embeds_its_font_and_reads_as_an_official_notice(client, world, login, app):
    compile_("2026-07")
    _publish("2026-07", world["office"], 12)
    login(world["office"])
    _chinese(client)
    r = client.get("/assessments/2026-07/notice.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    fonts = _fonts(r.data)
    assert fonts and all(embedded for _name, embedded in fonts), fonts
    text = _text(r.data)
    number = f"江金办〔{today().year}〕12号"
    with app.test_request_context():
        from flask_babel import force_locale

        with force_locale("zh_CN"):
            title = notice_service.notice_title("month", date(2026, 7, 1))
    flat = text.replace("\n", "")
    assert title in flat
    assert number in text
    date_text = notice_service.chinese_date(today())
    # 落款: the issuer, then the date, at the end of the last page.
    last = PdfReader(io.BytesIO(r.data)).pages[-1].extract_text().strip().splitlines()
    assert ISSUER in last[-3] + last[-2] and date_text in last[-2] + last[-1]
    assert text.count(ISSUER) >= 2  # at the head and in 落款
    assert "— 1 —" in text
    assert "农业银行江州分行" in text and "顾问adv_a1" in text
    # No missing glyph: every character shown is in the embedded font.
    from reportlab.pdfbase.ttfonts import TTFontFile

    path, face = notice_service.font_file(app.config)
    cmap = TTFontFile(path, subfontIndex=face).charToGlyph
    missing = {ch for ch in text if not ch.isspace() and ord(ch) not in cmap}
    assert not missing, missing
    if shutil.which("pdffonts"):  # poppler-utils, where installed: the same from outside
        listing = subprocess.run(
            ["pdffonts", "-"], input=r.data, capture_output=True, check=True
        ).stdout.decode()
        rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
        assert rows and all("yes" in row[-5:-3] for row in rows), listing


def test_a_missing_font_is_a_clear_error(client, world, login, app):
    compile_("2026-07")
    login(world["office"])
    app.config["NOTICE_FONT_PATH"] = "/nonexistent/font.ttc"
    try:
        r = client.get("/assessments/2026-07/notice.pdf")
    finally:
        app.config["NOTICE_FONT_PATH"] = ""
    assert r.status_code == 503
    assert "NOTICE_FONT_PATH" in html_lib.unescape(r.get_data(as_text=True))


def test_no_font_installed_says_what_to_install(monkeypatch):
    monkeypatch.setattr(notice_service, "FONT_CANDIDATES", (("/nonexistent/a.ttc", 0),))
    with pytest.raises(notice_service.NoticeFontMissing) as exc:
        notice_service.font_file({})
    assert "fonts-wqy-zenhei" in exc.value.message


# ----------------------------------------------------------------------------- the workbook
def test_the_workbook_has_a_title_a_frozen_header_and_print_settings(client, world, login):
    compile_("2026-07")
    _publish("2026-07", world["office"], 3)
    login(world["office"])
    r = client.get("/assessments/2026-07/notice.xlsx")
    wb = load_workbook(io.BytesIO(r.data))
    assert len(wb.worksheets) == 4
    number = f"江金办〔{today().year}〕3号"
    for ws in wb.worksheets:
        assert ws["A1"].value.startswith("Notice on the assessment")
        assert ws["A1"].font.b and ws["A1"].alignment.horizontal == "center"
        assert any(str(m).startswith("A1:") for m in ws.merged_cells.ranges)
        assert number in ws["A2"].value and ISSUER in ws["A2"].value
        assert ws["A3"].font.b  # the header row
        assert ws.freeze_panes in ("A4", "C4")
        assert ws.print_title_rows == "$3:$3"  # the header repeated on every printed page
        setup = ws.page_setup
        assert str(setup.paperSize) == ws.PAPERSIZE_A4
        assert setup.fitToWidth == 1 and setup.fitToHeight == 0
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text
        assert all(ws.column_dimensions[c].width >= 6 for c in "AB")
    ranking = wb.worksheets[0]
    assert ranking.page_setup.orientation == "landscape"  # 18 columns
    assert ranking.freeze_panes == "C4"  # rank and name stay in view
    assert ranking.column_dimensions["B"].width > ranking.column_dimensions["A"].width
    headers = [c.value for c in ranking[3]]
    assert headers[:2] == ["Rank", "Advisor"]
    satisfaction = headers.index("Firm satisfaction")
    a2 = next(
        row for row in ranking.iter_rows(min_row=4, values_only=True) if row[1] == "顾问adv_a2"
    )
    assert a2[satisfaction] == "not applicable"
    about = dict(row[:2] for row in wb.worksheets[3].iter_rows(min_row=4, values_only=True))
    assert about["Document number"] == number and about["Issuer"] == ISSUER
