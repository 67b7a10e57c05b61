"""List uploads of referrals (.xlsx and .csv): parse leniently, then hand every row to
:func:`advisors.services.referrals.submit` (the one rule set), and keep a report in which every
row is either saved or explained with its row number, column and reason.

The fingerprint (sha256 of the bytes) makes a second upload of the same file by the same bureau
a no-op that returns the first upload. Parsing is all or nothing: an unreadable file, a missing
required column or too many rows saves nothing and says why.

On PostgreSQL the rows are saved in chunks while the rest of the file is still being read (the
server stores one chunk while Python reads and checks the next, see
:class:`advisors.dbutil.BulkWriter`); a problem found further down rolls back to a savepoint
taken before the upload, so the outcome is the same as reading the whole file first.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import itertools
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import defer

from models import NEEDS, ReferralUpload, Township, User, db

from .. import credit_code
from ..dbutil import BulkWriter
from ..errors import ValidationFailed
from ..sizing import INDUSTRIES
from ..xlsx import workbook_bytes
from . import referrals as referral_service
from .firms import UnknownTownship, clean_text

CHUNK = 1000  # rows per submit() call (its MAX_ITEMS)
MAX_COLUMNS = 200  # columns read per row; a list has fourteen
MAX_UNZIPPED = 300 * 1024 * 1024  # an .xlsx inflating beyond this is refused (zip bomb)
REASON_HEADER = "错误原因"
STATUS_HEADER = "处理结果"

# The template's header row: (field, header). Required columns carry a "*", which the matcher
# ignores, like brackets and units.
TEMPLATE_COLUMNS = (
    ("credit_code", "统一社会信用代码*"),
    ("name", "企业名称*"),
    ("industry", "行业*"),
    ("township", "乡镇（街道）"),
    ("address", "地址"),
    ("employees", "从业人员（人）"),
    ("revenue_wan", "营业收入（万元）"),
    ("assets_wan", "资产总额（万元）"),
    ("contact_name", "联系人"),
    ("contact_phone", "联系电话"),
    ("needs", "需求*"),
    ("amount_wan", "融资金额（万元）"),
    ("purpose", "资金用途"),
    ("note", "备注"),
)
REQUIRED_FIELDS = ("credit_code", "name", "industry", "needs")

# Header synonyms, written in their normalised form (see _norm_header).
_HEADER_SYNONYMS = {
    "credit_code": (
        "统一社会信用代码",
        "信用代码",
        "社会信用代码",
        "统一信用代码",
        "统一代码",
        "creditcode",
        "uscc",
    ),
    "name": ("企业名称", "名称", "企业", "企业全称", "单位名称", "name", "firmname", "company"),
    "industry": ("行业", "所属行业", "行业类别", "行业分类", "industry"),
    "township": ("乡镇", "街道", "乡镇街道", "所属乡镇", "所在乡镇", "镇街", "township"),
    "address": ("地址", "企业地址", "注册地址", "经营地址", "address"),
    "employees": (
        "从业人员",
        "从业人数",
        "员工人数",
        "从业人员数",
        "职工人数",
        "employees",
    ),
    "revenue_wan": ("营业收入", "营收", "年营业收入", "revenue", "revenuewan"),
    "assets_wan": ("资产总额", "总资产", "assets", "assetswan"),
    "contact_name": ("联系人", "联系人姓名", "contact", "contactname"),
    "contact_phone": (
        "联系电话",
        "电话",
        "手机",
        "手机号",
        "手机号码",
        "联系方式",
        "phone",
        "contactphone",
    ),
    "needs": ("需求", "需求类型", "服务需求", "needs"),
    "amount_wan": ("融资金额", "需求金额", "金额", "融资需求金额", "amount", "amountwan"),
    "purpose": ("用途", "资金用途", "融资用途", "purpose"),
    "note": ("备注", "说明", "note", "notes"),
}
_HEADER_FIELDS = {syn: key for key, syns in _HEADER_SYNONYMS.items() for syn in syns}

# Industry names bureaus write that are not the standard's labels.
_INDUSTRY_ALIASES = {
    "农业": "agriculture",
    "农林牧渔业": "agriculture",
    "农林牧渔": "agriculture",
    "制造业": "industry",
    "工业企业": "industry",
    "采矿业": "industry",
    "建筑": "construction",
    "批发": "wholesale",
    "零售": "retail",
    "交通运输": "transport",
    "运输业": "transport",
    "仓储": "warehousing",
    "邮政": "postal",
    "住宿": "accommodation",
    "餐饮": "catering",
    "信息传输": "information_transmission",
    "软件": "software_it",
    "软件业": "software_it",
    "软件和信息技术服务": "software_it",
    "信息技术服务业": "software_it",
    "房地产": "real_estate",
    "房地产开发": "real_estate",
    "房地产业": "real_estate",
    "物业": "property_management",
    "物业服务": "property_management",
    "租赁和商务服务": "leasing_business",
    "商务服务业": "leasing_business",
    "其他": "other",
    "其他行业": "other",
}
_NEED_LABELS_ZH = {
    "financing": "融资",
    "policy": "政策",
    "guidance": "发展指导",
    "insurance": "保险",
}

_BRACKETS_RE = re.compile(r"[（(\[【［{｛][^）)\]】］}｝]*[）)\]】］}｝]")
_HEADER_STRIP_RE = re.compile(r"[\s\u3000*＊:：_\-·.。]+")
_NEED_SEP_RE = re.compile(r"[/|｜\s\u3000]+")
_WAN_SUFFIX_RE = re.compile(r"\s*(万元|万)\s*$")
_PERSON_SUFFIX_RE = re.compile(r"\s*人\s*$")
_NUMERIC = frozenset({"employees", "revenue_wan", "assets_wan", "amount_wan", "contact_phone"})


def _norm_header(text: str) -> str:
    text = _BRACKETS_RE.sub("", text)
    return _HEADER_STRIP_RE.sub("", text).lower()


def _norm_key(text: str) -> str:
    return _HEADER_STRIP_RE.sub("", text).replace("、", "").replace("，", "").lower()


# ----------------------------------------------------------------------------- cell values
def cell_text(value) -> str:
    """A cell as the text the user sees: numbers without float noise (Excel keeps 15
    significant digits), dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return _float_decimal_text(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _float_decimal_text(value: float) -> str:
    """A float from a spreadsheet as a plain decimal string, never through binary noise."""
    text = format(value, ".15g")
    if "e" in text or "E" in text:
        try:
            text = format(Decimal(text), "f")
        except InvalidOperation:  # pragma: no cover - finite floats always parse
            return text
    return text


def _number(value):
    """A number cell for the service: int and Decimal kept, float turned into a Decimal through
    its decimal text (never kept as float), text stripped of a unit the column already has."""
    if value is None:
        return None
    if isinstance(value, bool):
        return cell_text(value)
    if isinstance(value, int | Decimal):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return Decimal(_float_decimal_text(value))
    text = cell_text(value).strip()
    text = _WAN_SUFFIX_RE.sub("", text)
    return text


# ----------------------------------------------------------------------------- parsing
@dataclass
class Sheet:
    headers: list[str]  # original header texts, made unique
    fields: list[str | None]  # the item field each column maps to
    # (spreadsheet row number, cell values): a list, or from open_sheet an iterator that reads
    # the rest of the file as it is consumed
    rows: Iterable[tuple[int, tuple]]
    close: Callable[[], None] = lambda: None  # let go of the file (open_sheet)


def _file_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"file": message})


def _too_many_rows(limit: int) -> ValidationFailed:
    return _file_error(
        _(
            "The file has more than %(limit)s data rows. Split it into files of at most "
            "%(limit)s rows and upload them one by one. Nothing was saved.",
            limit=limit,
        )
    )


def _is_blank(values) -> bool:
    for v in values:
        if v is None:
            continue
        if isinstance(v, str) and not v.strip():
            continue
        return False
    return True


def _data_rows(records: Iterator, limit: int) -> Iterator[tuple[int, tuple]]:
    """The numbered records after the header, blank ones skipped; more than ``limit`` of them
    is an error."""
    count = 0
    for number, values in records:
        if _is_blank(values):
            continue
        if count >= limit:
            raise _too_many_rows(limit)
        count += 1
        yield number, values


def _xlsx_records(data: bytes) -> Iterator[tuple[int, tuple]]:
    """The numbered rows of the first sheet, read as they are consumed (the workbook is closed
    when they run out or the generator is closed)."""
    from openpyxl import load_workbook

    unreadable = _(
        "This file is not a readable .xlsx workbook. Save it from Excel or WPS as .xlsx."
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except Exception:  # noqa: BLE001 - not a zip, or one zipfile cannot read
        raise _file_error(unreadable) from None
    if unpacked > MAX_UNZIPPED:
        raise _file_error(_("The .xlsx file is too large once unpacked. Nothing was saved."))
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds on a broken file
        raise _file_error(unreadable) from None
    try:
        if not wb.worksheets:
            return
        ws = wb.worksheets[0]
        # Read every row the sheet has, not the range its <dimension> claims: some programs
        # write a stale one, and openpyxl would silently stop there.
        ws.reset_dimensions()
        try:
            yield from enumerate(ws.iter_rows(values_only=True), start=1)
        except Exception:  # noqa: BLE001 - a corrupt sheet part
            raise _file_error(
                _("The first sheet of this workbook could not be read. Nothing was saved.")
            ) from None
    finally:
        wb.close()


def _decode_csv(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise _file_error(_("This file is not a CSV text file. Nothing was saved."))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _file_error(
        _("The CSV file is neither UTF-8 nor GBK/GB18030 text. Save it again as CSV (UTF-8).")
    )


def _csv_records(data: bytes) -> Iterator[tuple[int, tuple]]:
    text = _decode_csv(data)
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for number, row in enumerate(reader, start=1):
            yield number, tuple(row)
    except csv.Error:
        raise _file_error(
            _("The CSV file could not be read. Save it again from Excel or WPS as CSV.")
        ) from None


def _map_headers(raw: list) -> tuple[list[str], list[str | None]]:
    headers: list[str] = []
    fields: list[str | None] = []
    seen_headers: set[str] = set()
    seen_fields: set[str] = set()
    for position, value in enumerate(raw, start=1):
        text = cell_text(value).strip()
        label = text or _("Column %(n)s", n=position)
        unique, n = label, 2
        while unique in seen_headers:
            unique, n = f"{label} ({n})", n + 1
        seen_headers.add(unique)
        headers.append(unique)
        key = _HEADER_FIELDS.get(_norm_header(text)) if text else None
        if key in seen_fields:
            key = None  # a second column for the same field is kept but not read
        if key:
            seen_fields.add(key)
        fields.append(key)
    # Trailing columns without a header and without a field carry nothing to read.
    while headers and fields[-1] is None and not cell_text(raw[len(headers) - 1]).strip():
        headers.pop()
        fields.pop()
    return headers, fields


def open_sheet(filename: str, data: bytes, limit: int) -> Sheet:
    """Open an uploaded list: its type, header row and first data row are checked now, and the
    returned sheet's ``rows`` reads the rest of the file as it is consumed, raising when it
    finds a problem further down (more than ``limit`` rows, a corrupt part). Raises
    ValidationFailed (field ``file``) when the list cannot be used; the errors, and which of
    them wins when a file has several, are those of reading the whole file first. The caller
    calls ``close()`` when done."""
    name = (filename or "").lower()
    if not data:
        raise _file_error(_("The file is empty. Nothing was saved."))
    if name.endswith((".xlsx", ".xlsm")):
        records = _xlsx_records(data)
    elif name.endswith((".csv", ".txt")):
        records = _csv_records(data)
    elif name.endswith(".xls"):
        raise _file_error(
            _(
                "The old .xls format cannot be read. Open the file in Excel or WPS and save it "
                "as .xlsx."
            )
        )
    else:
        raise _file_error(_("Only .xlsx and .csv files can be uploaded."))
    try:
        return _open_records(records, limit)
    except BaseException:
        records.close()
        raise


def _open_records(records: Iterator, limit: int) -> Sheet:
    raw_header = []
    for _number, values in records:
        if not _is_blank(values):
            raw_header = list(values[:MAX_COLUMNS])
            break
    rows = _data_rows(records, limit)
    if not raw_header:
        raise _file_error(_("The file has no rows. Nothing was saved."))
    headers, fields = _map_headers(raw_header)
    missing = [f for f in REQUIRED_FIELDS if f not in fields]
    if missing:
        names = dict(TEMPLATE_COLUMNS)
        labels = referral_service.item_labels()
        columns = "、".join(f"{names[f].rstrip('*')} ({labels[f]})" for f in missing)
        error = _file_error(
            _(
                "The file has no column for: %(columns)s. The header must be the first non-empty "
                "row; download the template to see the expected headers. Nothing was saved.",
                columns=columns,
            )
        )
        # Too many rows or a corrupt part further down is what reading the whole file first
        # reports, so it is looked for before this error is raised.
        for _row in rows:
            pass
        raise error
    first = next(rows, None)
    if first is None:
        raise _file_error(_("The file has a header row but no data rows. Nothing was saved."))
    return Sheet(headers, fields, itertools.chain((first,), rows), records.close)


def parse(filename: str, data: bytes, limit: int) -> Sheet:
    """Parse a whole uploaded list (``rows`` a list). Raises ValidationFailed (field ``file``)
    when it cannot be used."""
    sheet = open_sheet(filename, data, limit)
    try:
        sheet.rows = list(sheet.rows)
    finally:
        sheet.close()
    return sheet


# ----------------------------------------------------------------------------- mapping rows
def _industry_table() -> dict[str, str]:
    """Normalised industry name -> key: keys, English and Chinese labels, common aliases."""
    table = {_norm_key(k): k for k in INDUSTRIES}
    for key, label in INDUSTRIES.items():
        table[_norm_key(label)] = key
        table[_norm_key(_(label))] = key
    with force_locale("zh_CN"):
        for key, label in INDUSTRIES.items():
            table[_norm_key(_(label))] = key
    for alias, key in _INDUSTRY_ALIASES.items():
        table.setdefault(_norm_key(alias), key)
    return table


def _township_table() -> dict[str, Township]:
    table: dict[str, Township] = {}
    for t in db.session.execute(select(Township)).scalars():
        table.setdefault(_norm_key(t.code), t)
        table[_norm_key(t.name)] = t
    return table


class _RowMapper:
    """Turns a sheet row into a referral ITEM dict, resolving names to what the service takes
    (industry keys, township ids) without a query per row."""

    def __init__(self, fields: list[str | None]):
        self.columns = [(i, f) for i, f in enumerate(fields) if f]
        self.industries = _industry_table()
        self.townships = _township_table()
        self.township_ids = {t.id for t in self.townships.values()}

    def item(self, values: tuple) -> dict:
        item: dict = {}
        size = len(values)
        for i, key in self.columns:
            value = values[i] if i < size else None
            if key in _NUMERIC:
                if key == "contact_phone":
                    value = cell_text(value) if value is not None else None
                else:
                    value = _number(value)
                    if key == "employees" and isinstance(value, str):
                        value = _PERSON_SUFFIX_RE.sub("", value)
            elif key == "industry":
                text = cell_text(value).strip()
                value = self.industries.get(_norm_key(text), text)
            elif key == "township":
                # A known township goes as the row already loaded (no query, no lookup); an
                # unknown name goes as typed and is reported.
                text = cell_text(value).strip()
                found = self.townships.get(_norm_key(text)) if text else None
                if found is not None:
                    value = found
                elif text.isdecimal() and int(text) in self.township_ids:
                    # Digits that are no township's code or name must not be taken for an id.
                    value = UnknownTownship(text + " ")
                elif text and clean_text(text) == text:
                    # Not in the table (an exact name or code would have matched above), so
                    # the service need not look it up again.
                    value = UnknownTownship(text)
                else:
                    value = text or None
            elif key == "needs":
                value = _NEED_SEP_RE.sub(",", cell_text(value).strip())
            elif value is not None and not isinstance(value, str):
                value = cell_text(value)
            item[key] = value
        return item


# ----------------------------------------------------------------------------- import
def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_repeat(actor: User, sha256: str) -> ReferralUpload | None:
    return db.session.execute(
        select(ReferralUpload).where(
            ReferralUpload.org_id == actor.org_id, ReferralUpload.sha256 == sha256
        )
    ).scalar_one_or_none()


def clean_filename(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ord(ch) >= 32 and ch != "\x7f").strip()
    return name[:200] or "upload"


class _Report:
    """The rows not saved as new cases, with the file's own headers and values."""

    def __init__(self, sheet: Sheet):
        self.sheet = sheet
        self.header_of = {f: h for h, f in zip(sheet.headers, sheet.fields, strict=True) if f}
        self.labels = referral_service.item_labels()
        self.rejected: list[dict] = []

    def column(self, key: str) -> str:
        key = {"township_id": "township"}.get(key, key)
        if key in self.header_of:
            return self.header_of[key]
        return self.labels.get(key, "")

    def add(self, number: int, values: tuple, status: str, errors: dict, referral_id=None):
        headers = self.sheet.headers
        size = len(values)
        text = {h: cell_text(values[i] if i < size else None) for i, h in enumerate(headers)}
        firm = " ".join(
            text[self.header_of[k]].strip()
            for k in ("name", "credit_code")
            if k in self.header_of and text[self.header_of[k]].strip()
        )
        self.rejected.append(
            {
                "row": number,
                "firm": firm,
                "status": status,
                "referral_id": referral_id,
                "values": text,
                "errors": [
                    {"column": self.column(k), "field": k, "message": m} for k, m in errors.items()
                ],
            }
        )


def import_file(actor: User, filename: str, data: bytes) -> ReferralUpload:
    """Import an uploaded list for a bureau user. Returns the :class:`ReferralUpload`; when the
    same bureau already uploaded these exact bytes, the earlier upload is returned unchanged
    with ``repeat = True`` set on it. Flushes; the caller commits once."""
    if actor.role != "bureau" or actor.org_id is None:
        raise ValidationFailed(_("Only bureau users can refer firms."))
    sha = fingerprint(data)
    existing = find_repeat(actor, sha)
    if existing is not None:
        existing.repeat = True
        return existing
    with _cyclic_gc_paused():
        return _import(actor, filename, data, sha)


@contextmanager
def _cyclic_gc_paused():
    """Pause the cyclic garbage collector for the length of one import. The whole list is held
    in memory while it is validated and saved, and the collector would otherwise walk those
    tens of thousands of live objects again and again (about a fifth of a 10,000-row import,
    measured with ``python -m bench upload``). Reference counting still frees everything at
    once; the collector is switched back on (if it was on) even when the import fails."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import(actor: User, filename: str, data: bytes, sha: str) -> ReferralUpload:
    limit = int(current_app.config.get("MAX_UPLOAD_ROWS", 20000))
    writer = BulkWriter()
    sheet = open_sheet(filename, data, limit)
    try:
        if not writer.background:
            sheet.rows = list(sheet.rows)  # the whole file is read (and checked) first
            return _save(actor, filename, sha, sheet, writer)
        # PostgreSQL: the server stores one chunk while the next one is read from the file. A
        # problem further down the file (too many rows, a corrupt part) then takes back what
        # was written, to this savepoint: nothing is saved, as when the file is read first.
        savepoint = db.session.begin_nested()
        try:
            upload = _save(actor, filename, sha, sheet, writer)
        except BaseException:
            writer.wait(raise_error=False)
            with suppress(Exception):  # a broken connection: the caller's rollback reports it
                savepoint.rollback()
            raise
        savepoint.commit()
        return upload
    finally:
        writer.close()
        sheet.close()


def _save(actor: User, filename: str, sha: str, sheet: Sheet, writer: BulkWriter) -> ReferralUpload:
    upload = ReferralUpload(
        org_id=actor.org_id,
        user_id=actor.id,
        filename=clean_filename(filename),
        sha256=sha,
        rows=0,
        counts={},
        rejected=[],
        headers=sheet.headers,
    )
    db.session.add(upload)
    db.session.flush()

    mapper = _RowMapper(sheet.fields)
    report = _Report(sheet)
    totals = {"created": 0, "merged": 0, "duplicate": 0, "rejected": 0}
    first_row: dict[str, int] = {}  # credit code -> first row in the file that was accepted
    rows = iter(sheet.rows)
    count = 0
    while part := list(itertools.islice(rows, CHUNK)):
        count += len(part)
        results = referral_service.submit(
            actor,
            [mapper.item(values) for _n, values in part],
            source="upload",
            upload_id=upload.id,
            notify_office=False,
            writer=writer,
        )
        for result in sorted(results, key=lambda r: r.index):
            number, values = part[result.index]
            totals[result.status] = totals.get(result.status, 0) + 1
            if result.status == "rejected":
                report.add(number, values, "rejected", result.errors)
                continue
            code = result.credit_code
            if result.status == "duplicate" and code in first_row:
                errors = {
                    "credit_code": _(
                        "The same firm appears earlier in this file (row %(row)s).",
                        row=first_row[code],
                    )
                }
                report.add(number, values, "duplicate", errors, result.referral_id)
                continue
            first_row.setdefault(code, number)
            if result.status == "duplicate":
                report.add(number, values, "duplicate", result.errors, result.referral_id)
    writer.wait()
    referral_service.notify_submitted(actor, totals["created"])
    upload.rows = count
    upload.counts = totals
    upload.rejected = report.rejected
    upload.repeat = False
    db.session.flush()
    return upload


# ----------------------------------------------------------------------------- reading back
def uploads_of(actor: User, limit: int = 20) -> list[ReferralUpload]:
    """The bureau's previous uploads, newest first (without loading their reports)."""
    return list(
        db.session.execute(
            select(ReferralUpload)
            .options(defer(ReferralUpload.rejected))
            .where(ReferralUpload.org_id == actor.org_id)
            .order_by(ReferralUpload.created_at.desc(), ReferralUpload.id.desc())
            .limit(limit)
        ).scalars()
    )


def get_upload(actor: User, upload_id: int) -> ReferralUpload | None:
    """An upload of the actor's bureau, or None (also for another bureau's upload)."""
    if actor.org_id is None:
        return None
    return db.session.execute(
        select(ReferralUpload).where(
            ReferralUpload.id == upload_id, ReferralUpload.org_id == actor.org_id
        )
    ).scalar_one_or_none()


def _reason_text(entry: dict) -> str:
    return "；".join(
        f"{e['column']}: {e['message']}" if e.get("column") else e["message"]
        for e in entry.get("errors", [])
    )


def rejected_workbook(upload: ReferralUpload) -> bytes:
    """The rows to fix, with the file's own headers plus 错误原因, ready to re-upload (first
    sheet); the duplicate rows, for information, on a second sheet."""
    headers = list(upload.headers or [])

    def rows(status: str):
        for entry in upload.rejected or []:
            if entry.get("status", "rejected") != status:
                continue
            values = entry.get("values", {})
            yield [values.get(h, "") for h in headers] + [_reason_text(entry)]

    return workbook_bytes(
        [
            ("需修改的行", [*headers, REASON_HEADER], rows("rejected")),
            ("重复的行", [*headers, REASON_HEADER], rows("duplicate")),
        ]
    )


# ----------------------------------------------------------------------------- templates
def template_rows() -> tuple[list[str], list[list]]:
    header = [h for _f, h in TEMPLATE_COLUMNS]
    township = db.session.execute(
        select(Township.name).where(Township.active.is_(True)).order_by(Township.name).limit(1)
    ).scalar_one_or_none()
    example = {
        "credit_code": credit_code.make_code("9", "1", "330100", "MA2H7Q4K"),
        "name": "示例科技有限公司",
        "industry": "软件和信息技术服务业",
        "township": township or "",
        "address": "示例路1号",
        "employees": 35,
        "revenue_wan": 800,
        "assets_wan": 600,
        "contact_name": "张三",
        "contact_phone": "13800000000",
        "needs": "融资、政策",
        "amount_wan": 300,
        "purpose": "购买设备",
        "note": "",
    }
    return header, [[example[f] for f, _h in TEMPLATE_COLUMNS]]


def template_xlsx() -> bytes:
    header, rows = template_rows()
    with force_locale("zh_CN"):
        industries = [(_(label), key) for key, label in INDUSTRIES.items()]
    needs = [(_NEED_LABELS_ZH[n], n) for n in NEEDS]
    townships = list(
        db.session.execute(
            select(Township.name, Township.code)
            .where(Township.active.is_(True))
            .order_by(Township.name)
        )
    )
    length = max(len(industries), len(needs), len(townships))

    def pick(items, i):
        return list(items[i]) if i < len(items) else ["", ""]

    values = [pick(industries, i) + pick(needs, i) + pick(townships, i) for i in range(length)]
    return workbook_bytes(
        [
            ("企业名单", header, rows),
            (
                "可选值",
                ["行业", "行业代码", "需求", "需求代码", "乡镇（街道）", "乡镇代码"],
                values,
            ),
        ]
    )


def template_csv() -> bytes:
    header, rows = template_rows()
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    # UTF-8 with BOM: Excel on Chinese Windows opens it without garbling.
    return out.getvalue().encode("utf-8-sig")
