"""Uploads at a bounded cost: hostile files (blank rows by the million, one huge cell, very wide
rows, zips of many parts, endless CSV rows) are refused quickly or read within fixed bounds,
with messages that name the limit; and long lists are imported by the scheduler's queue, not
in the request (progress, report, notification, failures, retries, recovery).

Every file is built here with zipfile (nothing is committed)."""

from __future__ import annotations

import html as html_lib
import io
import time
import tracemalloc
import zipfile
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from advisors import sheet_reader
from advisors.audit import acting_as
from advisors.errors import ValidationFailed
from advisors.services import referral_import, upload_queue
from advisors.services.jobs import process_uploads
from models import AuditLog, Notification, Referral, ReferralUpload, db, utcnow
from tests.conftest import csrf_from

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEADERS = ["统一社会信用代码*", "企业名称*", "行业*", "需求*", "备注"]


# ------------------------------------------------------------------ files
def _cell(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def _header() -> bytes:
    return (
        '<row r="1">'
        + "".join(_cell(f"{c}1", h) for c, h in zip("ABCDE", HEADERS, strict=True))
        + "</row>"
    ).encode()


def _firm(number: int, code: str, name: str = "测试科技有限公司", note: str = "") -> bytes:
    values = [code, name, "工业", "政策", note]
    cells = "".join(_cell(f"{c}{number}", v) for c, v in zip("ABCDE", values, strict=True))
    return f'<row r="{number}">{cells}</row>'.encode()


def _xlsx(sheet: list[bytes], strings: list[bytes] | None = None) -> bytes:
    """A workbook of one sheet whose rows are ``sheet`` (XML, written in turn) and whose shared
    strings are ``strings`` (XML text of each, written in turn: the parts can be made large
    without holding them in memory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"/>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        z.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0"?><workbook xmlns="{NS}" xmlns:r="http://schemas.openxmlformats.'
            'org/officeDocument/2006/relationships"><sheets><sheet name="名单" sheetId="1" '
            'r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        )
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0"?><worksheet xmlns="{NS}"><sheetData>'.encode())
            for chunk in sheet:
                f.write(chunk)
            f.write(b"</sheetData></worksheet>")
        if strings is not None:
            with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
                f.write(f'<?xml version="1.0"?><sst xmlns="{NS}"><si><t>'.encode())
                for chunk in strings:
                    f.write(chunk)
                f.write(b"</t></si></sst>")
    return out.getvalue()


def _shared_name_row(number: int, code: str) -> bytes:
    """A firm whose name is the first shared string."""
    return (
        f'<row r="{number}">{_cell(f"A{number}", code)}<c r="B{number}" t="s"><v>0</v></c>'
        f"{_cell(f'C{number}', '工业')}{_cell(f'D{number}', '政策')}</row>"
    ).encode()


def _csv(lines: list[str]) -> bytes:
    return ("\n".join([",".join(HEADERS), *lines]) + "\n").encode("utf-8-sig")


def _code(make) -> str:
    return make.credit_code()


@pytest.fixture
def login(client_as):
    """A fresh client signed in as ``user``, English interface (see conftest.client_as)."""
    return client_as


@pytest.fixture
def bureau(make):
    return make.user("bureau", org=make.org("bureau", code="BUR-L", name="商务局"))


def _import(bureau, filename: str, data: bytes):
    """Imported as the upload request does (in English, the msgids)."""
    with acting_as(bureau), force_locale("en"):
        upload = referral_import.import_file(bureau, filename, data)
        db.session.commit()
    db.session.expire_all()
    return db.session.get(ReferralUpload, upload.id)


def _refused(bureau, filename: str, data: bytes) -> str:
    with acting_as(bureau), force_locale("en"), pytest.raises(ValidationFailed) as caught:
        referral_import.import_file(bureau, filename, data)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ReferralUpload)) == 0
    return caught.value.fields["file"]


def _peak_of(fn):
    """(result, seconds, peak bytes traced while ``fn`` ran)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        return result, seconds, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


MB = 1024 * 1024


# ------------------------------------------------------------------ blank rows
def test_a_million_blank_rows_end_the_list_quickly(app, bureau, make):
    """3,000,000 blank <row/> elements (28 KB on disk): openpyxl took 7 s and 300 MB. The
    first 1,000 blank rows end the list, and reading stops at the scan bound (2 ×
    MAX_UPLOAD_ROWS + 1,000 rows): the firm after three million blank rows is never reached."""
    blank = b"<row/>" * 100_000
    data = _xlsx([_header(), _firm(2, _code(make)), *([blank] * 30), _firm(3_000_003, "x")])
    assert len(data) < 64 * 1024

    upload, seconds, peak = _peak_of(lambda: _import(bureau, "blank.xlsx", data))
    assert upload.counts == {"created": 1, "merged": 0, "duplicate": 0, "rejected": 0}
    assert upload.rows == 1
    assert seconds < 10 and peak < 20 * MB, (seconds, peak / MB)
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 1


def test_rows_after_a_blank_run_are_reported_not_read(app, bureau, make):
    blank = b"<row/>" * 5_000
    data = _xlsx([_header(), _firm(2, _code(make)), blank, _firm(5_003, _code(make))])
    upload = _import(bureau, "blank.xlsx", data)
    assert upload.counts["created"] == 1 and upload.counts["ignored_from"] == 5_003


def test_rows_left_out_of_the_file_count_as_blank(app, bureau, make):
    """<row r="…"> numbers that jump by 1,000 or more end the list too (nothing is padded)."""
    codes = [_code(make) for _ in range(3)]
    data = _xlsx([_header(), _firm(2, codes[0]), _firm(900, codes[1]), _firm(1_048_576, codes[2])])
    upload = _import(bureau, "gap.xlsx", data)
    assert upload.counts["created"] == 2 and upload.counts["ignored_from"] == 1_048_576


def test_the_report_says_where_the_unread_rows_start(app, login, bureau, make):
    data = _xlsx([_header(), _firm(2, _code(make)), _firm(5_000, _code(make))])
    upload = _import(bureau, "gap.xlsx", data)
    page = html_lib.unescape(login(bureau).get(f"/referrals/uploads/{upload.id}").get_data(True))
    assert "Row 5000 and the rows after it were not read" in page
    assert "1,000 or more blank rows" in page


def test_blank_rows_beyond_the_sheet_cap_are_refused_before_reading(app, bureau, make):
    """A sheet larger than the cap once unpacked (the zip's directory says so) is refused
    before any of it is parsed, with the limit named."""
    blank = b"<row/>" * 1_000_000  # 6 MB unpacked a piece
    data = _xlsx([_header(), *([blank] * 12)])  # 72 MB
    message, seconds, _peak = _peak_of(lambda: _refused(bureau, "blank.xlsx", data))
    assert "The first sheet of this workbook is 68.7 MB once unpacked" in message
    assert "at most 64.0 MB" in message
    assert seconds < 1


def test_every_row_read_counts_against_the_scan_bound(app, bureau, make, monkeypatch):
    """Blank rows between firms (fewer than 1,000 at a time) still count: a list that needs
    more than 2 × MAX_UPLOAD_ROWS + 1,000 rows read is refused."""
    app.config["MAX_UPLOAD_ROWS"] = 5
    try:
        rows = [_header()]
        number = 1
        for _ in range(3):
            number += 1
            rows.append(_firm(number, _code(make)))
            rows.append(b"<row/>" * 990)
            number += 990
        message = _refused(bureau, "sparse.xlsx", _xlsx(rows))
    finally:
        app.config["MAX_UPLOAD_ROWS"] = 20000
    assert message.startswith("The file has more than 1,010 rows, blank ones included.")


# ------------------------------------------------------------------ huge cells
def test_a_100_mb_cell_is_refused_by_the_shared_strings_cap(app, bureau, make):
    """A 100 MB firm name in a 100 KB file: refused from the zip's directory, unparsed."""
    data = _xlsx([_header(), _shared_name_row(2, _code(make))], [b"A" * MB] * 100)
    assert len(data) < 200 * 1024
    message, seconds, peak = _peak_of(lambda: _refused(bureau, "cell.xlsx", data))
    assert "The text of this workbook (its shared strings) is 100.0 MB once unpacked" in message
    assert "at most 32.0 MB can be read" in message
    assert seconds < 1 and peak < 5 * MB


def test_a_cell_longer_than_excel_allows_stops_the_reading(app, bureau, make):
    """Under the caps, a text of megabytes (Excel stops at 32,767 characters) is refused as
    soon as the reader has seen a megabyte of it."""
    data = _xlsx([_header(), _shared_name_row(2, _code(make))], [b"A" * MB] * 5)
    message, _seconds, peak = _peak_of(lambda: _refused(bureau, "cell.xlsx", data))
    assert message == (
        "This workbook has a cell with more than 32,767 characters, more than Excel allows. "
        "Nothing was saved."
    )
    assert peak < 10 * MB
    inline = _xlsx([_header(), _firm(2, _code(make), name="B" * (2 * MB))])
    message = _refused(bureau, "cell.xlsx", inline)
    assert message.startswith("Row 2 has a cell with more than 32,767 characters")


def test_a_cell_longer_than_its_field_is_reported_on_its_row(app, login, bureau, make):
    """The row is rejected with its row and column named, before the services see it; the
    stored report keeps 300 characters of the cell, and so do its page and download."""
    good = _code(make)
    data = _xlsx(
        [
            _header(),
            _firm(2, good),
            _firm(3, _code(make), name="长" * 5000),
            _firm(4, "9" * 30_000),
            _firm(5, _code(make), note="备" * 2001),
        ]
    )
    upload = _import(bureau, "long.xlsx", data)
    assert upload.counts == {"created": 1, "merged": 0, "duplicate": 0, "rejected": 3}
    by_row = {e["row"]: e for e in upload.rejected}
    name = by_row[3]
    assert name["errors"] == [
        {
            "column": "企业名称*",
            "field": "name",
            "message": "Firm name is too long: 5,000 characters, at most 200.",
        }
    ]
    assert name["values"]["企业名称*"] == "长" * 300 + "…"
    assert by_row[4]["errors"][0]["message"] == (
        "Credit code is too long: 30,000 characters, at most 50."
    )
    assert by_row[5]["errors"][0]["column"] == "备注"
    assert "at most 2,000" in by_row[5]["errors"][0]["message"]
    client = login(bureau)
    page = client.get(f"/referrals/uploads/{upload.id}").get_data(True)
    assert len(page) < 60_000
    workbook = client.get(f"/referrals/uploads/{upload.id}/rejected.xlsx").data
    assert len(workbook) < 20_000


def test_a_cell_beyond_excels_limit_is_cut_and_its_row_refused(app, bureau, make):
    data = _xlsx([_header(), _shared_name_row(2, _code(make))], [b"A" * 40_000])
    upload = _import(bureau, "cut.xlsx", data)
    assert upload.counts["rejected"] == 1 and upload.counts["created"] == 0
    [entry] = upload.rejected
    assert entry["errors"][0]["message"] == (
        "Firm name is too long: more than 32,767 characters, at most 200."
    )


def test_the_report_is_bounded_as_a_whole(app, bureau, make, monkeypatch):
    """Rows beyond the report's size are counted, not listed."""
    monkeypatch.setattr(referral_import, "REPORT_BYTES", 3000)
    rows = [_header()] + [_firm(n, "bad") for n in range(2, 40)]
    upload = _import(bureau, "bad.xlsx", _xlsx(rows))
    assert upload.counts["rejected"] == 38
    assert 0 < len(upload.rejected) < 38
    assert upload.counts["unlisted"] == 38 - len(upload.rejected)


# ------------------------------------------------------------------ wide rows, zips, CSV
def test_columns_past_two_hundred_are_not_read(app, bureau, make):
    far = _cell("ZZ2", "x" * 100)  # column 702
    row = _firm(2, _code(make)).replace(b"</row>", far.encode() + b"</row>")
    upload = _import(bureau, "wide.xlsx", _xlsx([_header(), row]))
    assert upload.counts["created"] == 1


def test_a_row_wider_than_excel_is_refused(app, bureau, make):
    cells = "".join(f'<c t="n"><v>{i}</v></c>' for i in range(16_385))
    data = _xlsx([_header(), _firm(2, _code(make)), f"<row>{cells}</row>".encode()])
    assert _refused(bureau, "wide.xlsx", data) == (
        "The first sheet of this workbook could not be read. Nothing was saved."
    )


def test_a_zip_of_many_parts_is_refused_before_zipfile_reads_it(app, bureau):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i in range(1001):
            z.writestr(f"{i}", b"")
    message = _refused(bureau, "parts.xlsx", out.getvalue())
    assert message.startswith("This workbook has more than 1000 parts.")


def test_csv_rows_and_cells_are_bounded(app, bureau, make):
    code = _code(make)
    long_row = _csv([f"{code},名称,工业,政策," + "x" * 120_000 + ",y" * 500_000])
    assert _refused(bureau, "row.csv", long_row) == (
        "Row 2 of the CSV file is longer than 1 MB. Nothing was saved."
    )
    long_cell = _csv([f"{code},名称,工业,政策," + "x" * 200_000])
    assert _refused(bureau, "cell.csv", long_cell) == (
        "Row 2 of the CSV file has a cell with more than 131,072 characters. Nothing was saved."
    )
    blank = _csv(
        [f"{code},名称,工业,政策,", *([",,,,"] * 20_000), f"{_code(make)},名称,工业,政策,"]
    )
    upload, seconds, peak = _peak_of(lambda: _import(bureau, "blank.csv", blank))
    assert upload.counts["created"] == 1 and upload.counts["ignored_from"] == 20_003
    assert seconds < 5 and peak < 20 * MB


# ------------------------------------------------------------------ the queue
@pytest.fixture
def short_inline(app):
    """Lists of more than two rows go to the queue."""
    app.config["UPLOAD_INLINE_ROWS"] = 2
    yield
    app.config["UPLOAD_INLINE_ROWS"] = 500


def _list(make, n: int, **over) -> bytes:
    rows = [_header()]
    for i in range(n):
        rows.append(_firm(i + 2, over.get("code") or _code(make), name=f"队列{i}号科技有限公司"))
    return _xlsx(rows)


def _post(client, filename: str, data: bytes):
    token = csrf_from(client.get("/referrals/upload").get_data(as_text=True))
    return client.post(
        "/referrals/upload",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def _upload_row() -> ReferralUpload:
    db.session.expire_all()
    return db.session.execute(
        select(ReferralUpload).order_by(ReferralUpload.id.desc()).limit(1)
    ).scalar_one()


def _text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def test_a_short_list_is_still_imported_in_the_request(app, login, bureau, make, short_inline):
    r = _post(login(bureau), "short.xlsx", _list(make, 2))
    assert r.status_code == 302
    upload = _upload_row()
    assert upload.status == "done" and upload.counts["created"] == 2 and upload.payload is None


def test_a_long_list_is_queued_then_imported_by_the_job(app, login, bureau, make, short_inline):
    client = login(bureau)
    r = _post(client, "long.xlsx", _list(make, 5))
    assert r.status_code == 302
    upload = _upload_row()
    assert upload.status == "queued" and upload.payload and upload.locale == "en"
    assert upload.headers == HEADERS
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 0

    page = client.get(r.headers["Location"])
    assert page.headers["Refresh"] == "3"
    assert "Waiting to be imported." in _text(page)
    assert "The list is long, so it is imported in the background." in _text(page)
    assert "Waiting</span>" in _text(client.get("/referrals/upload"))

    assert process_uploads() == 1
    upload = _upload_row()
    assert upload.status == "done" and upload.payload is None
    assert upload.rows == upload.progress == 5 and upload.counts["created"] == 5
    assert upload.started_at is not None and upload.finished_at is not None
    # as the uploader: the audit trail names them
    actors = set(
        db.session.scalars(select(AuditLog.actor_id).where(AuditLog.table_name == "referral"))
    )
    assert actors == {bureau.id}
    [note] = db.session.scalars(select(Notification).where(Notification.user_id == bureau.id))
    assert note.kind == "upload_done" and note.params["created"] == 5
    page = client.get(f"/referrals/uploads/{upload.id}")
    assert "Refresh" not in page.headers
    assert "Every row was saved." in _text(page)
    # the notification leads to the report
    notes = client.get("/notifications/").get_data(as_text=True)
    assert "long.xlsx has been imported: 5 new referrals" in html_lib.unescape(notes)
    token = csrf_from(notes)
    opened = client.post(f"/notifications/{note.id}/open", data={"csrf_token": token})
    assert opened.headers["Location"].endswith(f"/referrals/uploads/{upload.id}")


def test_the_page_shows_the_progress(app, login, bureau, make, short_inline):
    client = login(bureau)
    _post(client, "long.xlsx", _list(make, 5))
    upload = _upload_row()
    upload.status, upload.rows, upload.progress = "running", 5, 2
    db.session.commit()
    page = _text(client.get(f"/referrals/uploads/{upload.id}"))
    assert (
        "Importing: 2 of 5 rows." in page
        and '<progress class="w-100 mb-2" max="5" value="2">' in page
    )


def test_progress_is_written_after_every_chunk(app, bureau, make, short_inline, monkeypatch):
    """PostgreSQL writes it from a connection of its own while the import's transaction is
    open; SQLite (one writer) writes none until the end."""
    monkeypatch.setattr(referral_import, "CHUNK", 2)
    with acting_as(bureau):
        upload = upload_queue.receive(bureau, "long.xlsx", _list(make, 5), locale="en")
        db.session.commit()
    seen = []
    writer = upload_queue._progress_writer

    def recording(upload_id):
        write = writer(upload_id)

        def record(rows):
            seen.append(rows)
            if write is not None:
                write(rows)
                with db.engine.connect() as other:  # visible to the page's own reads
                    progress = other.scalar(
                        select(ReferralUpload.progress).where(ReferralUpload.id == upload_id)
                    )
                assert progress == rows

        return record

    monkeypatch.setattr(upload_queue, "_progress_writer", recording)
    process_uploads()
    assert seen == [2, 4, 5]
    assert db.session.get(ReferralUpload, upload.id).status == "done"


def test_the_import_runs_in_the_uploaders_language(app, login, bureau, make, short_inline):
    rows = [_header()] + [_firm(n, "not-a-code") for n in range(2, 6)]
    _post(login(bureau), "bad.xlsx", _xlsx(rows))  # the client is signed in in English
    upload = _upload_row()
    upload.locale = "zh_CN"
    db.session.commit()
    process_uploads()
    upload = _upload_row()
    assert upload.counts["rejected"] == 4
    assert "统一社会信用代码" in upload.rejected[0]["errors"][0]["message"]


def test_a_file_failing_in_the_background_saves_nothing_and_may_be_retried(
    app, login, bureau, make, short_inline
):
    client = login(bureau)
    data = _list(make, 6)
    app.config["MAX_UPLOAD_ROWS"] = 5
    try:
        _post(client, "long.xlsx", data)  # the request reads three rows: queued
        assert _upload_row().status == "queued"
        process_uploads()
    finally:
        app.config["MAX_UPLOAD_ROWS"] = 20000
    upload = _upload_row()
    assert upload.status == "failed" and upload.payload is None
    assert upload.error.startswith("The file has more than 5 data rows.")
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 0
    page = _text(client.get(f"/referrals/uploads/{upload.id}"))
    assert "The list could not be imported: The file has more than 5 data rows." in page
    note = db.session.scalars(select(Notification).where(Notification.user_id == bureau.id)).one()
    assert note.kind == "upload_failed" and "more than 5 data rows" in note.params["error"]
    token = csrf_from(client.get("/notifications/").get_data(as_text=True))
    opened = client.post(f"/notifications/{note.id}/open", data={"csrf_token": token})
    assert opened.headers["Location"].endswith("/referrals/upload")
    # the same bytes again: tried again (not "already uploaded"), and imported this time
    r = _post(client, "long.xlsx", data)
    assert "already uploaded" not in _text(client.get(r.headers["Location"]))
    process_uploads()
    upload = _upload_row()
    assert upload.status == "done" and upload.counts["created"] == 6
    assert db.session.scalar(select(func.count()).select_from(ReferralUpload)) == 1


def test_a_second_upload_of_a_queued_file_is_the_same_upload(
    app, login, bureau, make, short_inline
):
    client = login(bureau)
    data = _list(make, 4)
    first = _post(client, "long.xlsx", data).headers["Location"]
    second = _post(client, "again.xlsx", data)
    assert second.headers["Location"] == first
    assert "already uploaded" in _text(client.get(first))
    assert db.session.scalar(select(func.count()).select_from(ReferralUpload)) == 1


def test_a_request_reads_no_more_than_its_budget(app, bureau, make, monkeypatch):
    """A list whose start is larger than UPLOAD_INLINE_BYTES goes to the queue unread."""
    app.config["UPLOAD_INLINE_BYTES"] = 2000
    try:
        with acting_as(bureau):
            upload = upload_queue.receive(bureau, "long.xlsx", _list(make, 40), locale="en")
    finally:
        app.config["UPLOAD_INLINE_BYTES"] = 4 * MB
    assert upload.status == "queued"


def test_a_broken_start_is_refused_in_the_request(app, login, bureau, short_inline):
    r = _post(login(bureau), "list.xlsx", b"not a workbook")
    assert r.status_code == 422 and "not a readable .xlsx workbook" in _text(r)
    assert db.session.scalar(select(func.count()).select_from(ReferralUpload)) == 0


def _running(make, bureau, minutes_ago: int, attempts: int) -> int:
    with acting_as(bureau):
        upload = upload_queue.receive(bureau, "long.xlsx", _list(make, 3), locale="en")
    upload.status = "running"
    upload.started_at = utcnow() - timedelta(minutes=minutes_ago)
    upload.counts = {"attempts": attempts}
    db.session.commit()
    return upload.id


def test_an_upload_cut_off_goes_back_to_the_queue_once(app, bureau, make, short_inline):
    """An upload ``running`` whose process is gone (its lock is free) goes back to the queue
    once, then fails; one whose process is at work (its lock held) is left alone."""
    from advisors.dbutil import held_for_life

    alive = _running(make, bureau, 30, 1)
    gone = _running(make, bureau, 1, 1)
    twice = _running(make, bureau, 1, 2)
    with held_for_life(upload_queue.lock_name(alive)):
        assert upload_queue.recover() == 2
    db.session.expire_all()
    assert db.session.get(ReferralUpload, alive).status == "running"
    assert db.session.get(ReferralUpload, gone).status == "queued"
    failed = db.session.get(ReferralUpload, twice)
    assert failed.status == "failed" and failed.payload is None
    assert failed.error.startswith("The import was cut off")
    # its process gone too, the next run takes it back and imports both
    assert process_uploads() == 2
    db.session.expire_all()
    assert db.session.get(ReferralUpload, alive).status == "done"
    assert db.session.get(ReferralUpload, gone).status == "done"


def test_without_a_lock_to_look_at_age_tells(app, bureau, make, short_inline, monkeypatch):
    """Where the lock cannot be known: running for more than ten minutes, or any at the
    scheduler's start, is cut off."""
    monkeypatch.setattr(upload_queue, "is_held", lambda name: None)
    fresh = _running(make, bureau, 1, 1)
    stale = _running(make, bureau, 11, 1)
    assert upload_queue.recover() == 1
    db.session.expire_all()
    assert db.session.get(ReferralUpload, fresh).status == "running"
    assert db.session.get(ReferralUpload, stale).status == "queued"
    process_uploads(at_start=True)
    db.session.expire_all()
    assert db.session.get(ReferralUpload, fresh).status == "done"
    assert db.session.get(ReferralUpload, stale).status == "done"


def test_claims_take_the_oldest_and_never_the_same(app, bureau, make, short_inline):
    with acting_as(bureau):
        ids = [
            upload_queue.receive(bureau, f"{n}.xlsx", _list(make, 3), locale="en").id
            for n in range(2)
        ]
    db.session.commit()
    assert [upload_queue.claim(), upload_queue.claim(), upload_queue.claim()] == [*ids, None]
    db.session.expire_all()
    statuses = {u.status for u in db.session.scalars(select(ReferralUpload))}
    assert statuses == {"running"}


def test_an_upload_another_claimer_holds_is_skipped(app, bureau, make, short_inline):
    """PostgreSQL: SKIP LOCKED passes over a row another process is claiming."""
    from advisors.dbutil import is_postgresql

    if not is_postgresql():
        pytest.skip("SQLite has one writer: there is no row lock to skip")
    with acting_as(bureau):
        ids = [
            upload_queue.receive(bureau, f"{n}.xlsx", _list(make, 3), locale="en").id
            for n in range(2)
        ]
    db.session.commit()
    with db.engine.connect() as other:
        other.execute(
            select(ReferralUpload.id).where(ReferralUpload.id == ids[0]).with_for_update()
        )
        assert upload_queue.claim() == ids[1]
        other.rollback()
    assert upload_queue.claim() == ids[0]


def test_the_scheduler_runs_the_queue(app, bureau, make, short_inline):
    from apscheduler.schedulers.background import BackgroundScheduler

    from advisors import scheduler

    sched = scheduler.configure(scheduler._new(BackgroundScheduler), app, queue=True)
    job = sched.get_job("process_uploads")
    assert job is not None and job.trigger.interval == timedelta(seconds=5)
    assert job.coalesce is True and job.max_instances == 1
    with acting_as(bureau):
        upload = upload_queue.receive(bureau, "long.xlsx", _list(make, 3), locale="en")
    db.session.commit()
    job.func()  # one fire, as the scheduler's thread would
    db.session.expire_all()
    assert db.session.get(ReferralUpload, upload.id).status == "done"


def test_reading_stays_correct(app, bureau, make):
    """The bounded reader reads what openpyxl reads: numbers, dates, shared and inline text."""
    from datetime import date, datetime

    from openpyxl import Workbook, load_workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["a", "b", "c"])
    ws.append([date(2026, 1, 2), 1.5, "中文"])
    ws.append([True, None, datetime(2026, 1, 2, 3, 4)])
    ws["F7"] = "far"
    out = io.BytesIO()
    wb.save(out)
    data = out.getvalue()
    ours = list(sheet_reader.xlsx_rows(data))
    theirs = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
    theirs.reset_dimensions()
    expected = [
        (n, tuple(row)) for n, row in enumerate(theirs.iter_rows(values_only=True), 1) if row
    ]
    assert ours == expected
