"""List uploads of referrals (.xlsx and .csv): parse leniently, then hand every row to
:func:`advisors.services.referrals.submit` (the one rule set), and keep a report in which every
row is either saved or explained with its row number, column and reason.

The fingerprint (sha256 of the bytes) makes a second upload of the same file by the same bureau
a no-op that returns the first upload. Parsing is all or nothing: an unreadable file, a missing
required column or too many rows saves nothing and says why.

The rows are saved in chunks while the rest of the file is still being read (on PostgreSQL the
server stores one chunk while Python reads and checks the next, see
:mod:`advisors.bulk`); a problem found further down takes back what was written
(to a savepoint taken before the upload), so the outcome is the same as reading the whole file
first.

Every upload costs a bounded amount whatever the file holds: the file is read by
:mod:`advisors.sheet_reader` (parts capped by their unpacked size, rows streamed, cells capped);
every row read, blank or not, counts against a scan bound and 1,000 blank rows end the list
(:class:`~advisors.sheet_reader.Scan`); a cell longer than its column's maximum rejects its row here
(:data:`FIELD_CHARS`); a chunk holds at most :data:`CHUNK_CHARS` characters; the stored report
keeps :data:`REPORT_CELL_CHARS` of a cell and :data:`REPORT_BYTES` in all. Lists longer than a
request should take are imported by the scheduler (:mod:`.upload_queue`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import JSON, Text, cast, literal, select
from sqlalchemy.orm import defer

from models import ReferralUpload, Township, User, db

from .. import bulk, credit_code, sheet_reader
from ..dbutil import is_postgresql
from ..errors import ValidationFailed
from ..sizing import INDUSTRIES
from ..xlsx import workbook_bytes
from . import referrals as referral_service
from .firms import clean_text

CHUNK = 1000  # rows per submit() call (its MAX_ITEMS)
# A chunk also ends once its cells hold this many characters: a chunk of a thousand rows of
# long cells (a long shared string is a new str at every use) stays a few megabytes.
CHUNK_CHARS = 2_000_000
MAX_COLUMNS = sheet_reader.MAX_COLUMNS  # columns read per row; a list has fourteen
BLANK_RUN = sheet_reader.BLANK_RUN  # blank rows in a row that end a list
# The stored report keeps this many characters of a cell (and "…"): its page and the download
# of the rows to fix stay small whatever the cells hold.
REPORT_CELL_CHARS = 300
# ... and its JSON at most this many bytes as Python holds it (characters times their width:
# 1, 2 for Chinese, 4 for emoji); on its way into the database it is copied a few times over.
# About 13,000 rejected rows of the template's fourteen columns; rows beyond are counted, not
# listed.
REPORT_BYTES = 12 * 1024 * 1024
# The longest text read from each column: the services' own maxima (firms.clean_firm_fields,
# referrals.clean_item) where they have one, and for codes, numbers and lists a length no
# valid value comes near. A longer cell rejects its row here, with the column named, before
# the row goes any further (a credit code of 30,000 characters would otherwise get a message
# naming each bad position).
FIELD_CHARS = {
    "credit_code": 50,
    "name": 200,
    "industry": 100,
    "township": 200,
    "address": 200,
    "employees": 50,
    "revenue_wan": 50,
    "assets_wan": 50,
    "contact_name": 60,
    "contact_phone": 50,
    "needs": 200,
    "amount_wan": 50,
    "purpose": 200,
    "note": 2000,
}
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
    # where the rows stopped being read (see sheet_reader.Scan), once ``rows`` has been consumed
    scan: sheet_reader.Scan | None = None


_file_error = sheet_reader.file_error


def _too_many_rows(limit: int) -> ValidationFailed:
    return _file_error(
        _(
            "The file has more than %(limit)s data rows. Split it into files of at most "
            "%(limit)s rows and upload them one by one. Nothing was saved.",
            limit=limit,
        )
    )


def _data_rows(rows: Iterator, limit: int, width: int) -> Iterator[tuple[int, tuple]]:
    """The numbered rows after the header (non-blank, from :class:`sheet_reader.Scan`), at
    most ``width`` cells each; more than ``limit`` of them is an error."""
    count = 0
    for number, values in rows:
        if count >= limit:
            raise _too_many_rows(limit)
        count += 1
        yield number, values if len(values) <= width else values[:width]


def _xlsx_records(data: bytes, budget: int | None = None) -> Iterator[tuple[int, tuple]]:
    """The numbered rows of the first sheet, read as they are consumed, at a bounded cost
    (:mod:`advisors.sheet_reader`; the file is let go when they run out or the generator is
    closed)."""
    return sheet_reader.xlsx_rows(data, budget)


def _csv_records(data: bytes, budget: int | None = None) -> Iterator[tuple[int, tuple]]:
    return sheet_reader.csv_rows(data, budget)


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


def open_sheet(filename: str, data: bytes, limit: int, budget: int | None = None) -> Sheet:
    """Open an uploaded list: its type, header row and first data row are checked now, and the
    returned sheet's ``rows`` reads the rest of the file as it is consumed, raising when it
    finds a problem further down (more than ``limit`` rows, more than ``scan_limit(limit)``
    rows with the blank ones, a corrupt part). Raises ValidationFailed (field ``file``) when
    the list cannot be used; the errors, and which of them wins when a file has several, are
    those of reading the whole file first. The caller calls ``close()`` when done. With
    ``budget`` (bytes of XML or text), reading more than that raises
    :class:`~advisors.sheet_reader.OverBudget`, now or as ``rows`` are consumed."""
    name = (filename or "").lower()
    if not data:
        raise _file_error(_("The file is empty. Nothing was saved."))
    if name.endswith((".xlsx", ".xlsm")):
        records = _xlsx_records(data, budget)
    elif name.endswith((".csv", ".txt")):
        records = _csv_records(data, budget)
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
    scan = sheet_reader.Scan(records, sheet_reader.scan_limit(limit))
    scanned = iter(scan)
    raw_header = []
    for _number, values in scanned:
        raw_header = list(values[:MAX_COLUMNS])
        break
    if not raw_header:
        raise _file_error(_("The file has no rows. Nothing was saved."))
    headers, fields = _map_headers(raw_header)
    rows = _data_rows(scanned, limit, len(headers))
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
    return Sheet(headers, fields, itertools.chain((first,), rows), records.close, scan)


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


class _RowMapper:
    """Turns a sheet row into a referral ITEM dict, resolving names to what the service takes
    (industry keys, township ids) without a query per row."""

    def __init__(self, fields: list[str | None]):
        self.columns = [(i, f) for i, f in enumerate(fields) if f]
        self.industries = _industry_table()

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
                # As written: the service matches it to the city's list, or keeps the text.
                value = cell_text(value) if value is not None else None
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
    """The rows not saved as new cases, with the file's own headers and values. Each entry is
    kept as its JSON text from the start (compact, not ASCII-escaped: a fraction of the memory
    of its dicts, and of the JSON column's own encoding), each cell cut to
    :data:`REPORT_CELL_CHARS`, the whole at most :data:`REPORT_BYTES`: entries beyond that are
    counted in ``unlisted``, not kept."""

    def __init__(self, sheet: Sheet):
        self.sheet = sheet
        self.header_of = {f: h for h, f in zip(sheet.headers, sheet.fields, strict=True) if f}
        self.labels = referral_service.item_labels()
        self.entries: list[str] = []
        self.chars = 2  # of the JSON: the entries, their commas and the brackets
        self.width = 1  # bytes a character of the joined JSON takes (its widest character's)
        self.unlisted = 0

    def column(self, key: str) -> str:
        key = {"township_id": "township"}.get(key, key)
        if key in self.header_of:
            return self.header_of[key]
        return self.labels.get(key, "")

    def add(self, number: int, values: tuple, status: str, errors: dict, referral_id=None):
        headers = self.sheet.headers
        size = len(values)
        text = {
            h: _report_text(cell_text(values[i] if i < size else None))
            for i, h in enumerate(headers)
        }
        firm = " ".join(
            text[self.header_of[k]].strip()
            for k in ("name", "credit_code")
            if k in self.header_of and text[self.header_of[k]].strip()
        )
        entry = {
            "row": number,
            "firm": firm,
            "status": status,
            "referral_id": referral_id,
            "values": text,
            "errors": [
                {"column": self.column(k), "field": k, "message": m} for k, m in errors.items()
            ],
        }
        encoded = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        chars, width = self.chars + len(encoded) + 1, max(self.width, _width(encoded))
        if chars * width > REPORT_BYTES:
            self.unlisted += 1
            return
        self.entries.append(encoded)
        self.chars, self.width = chars, width

    def column_value(self):
        """The report for the JSON column, as SQL around its text, so that the column does not
        encode it again (on SQLite the text as it is; PostgreSQL casts it to json)."""
        value = literal("[" + ",".join(self.entries) + "]", Text())
        return cast(value, JSON) if is_postgresql() else value


def _width(text: str) -> int:
    """Bytes per character of ``text`` in memory (CPython keeps a string at its widest)."""
    if text.isascii():
        return 1
    top = ord(max(text))
    return 1 if top < 0x100 else 2 if top < 0x10000 else 4


def _report_text(text: str) -> str:
    if len(text) <= REPORT_CELL_CHARS:
        return text
    return text[:REPORT_CELL_CHARS] + "…"


def _too_long(item: dict, labels: dict[str, str]) -> dict[str, str]:
    """Field errors for the cells of ``item`` longer than :data:`FIELD_CHARS` allows, measured
    as the services measure them (stripped, control characters dropped)."""
    errors = {}
    for key, value in item.items():
        limit = FIELD_CHARS.get(key)
        if limit is None or value.__class__ is not str or len(value) <= limit:
            continue
        length = len(clean_text(value))
        if length > sheet_reader.CELL_CHARS:  # cut by the reader: longer than that
            errors[key] = _(
                "%(field)s is too long: more than %(n)s characters, at most %(max)s.",
                field=labels.get(key, key),
                n=f"{sheet_reader.CELL_CHARS:,}",
                max=f"{limit:,}",
            )
        elif length > limit:
            errors[key] = _(
                "%(field)s is too long: %(n)s characters, at most %(max)s.",
                field=labels.get(key, key),
                n=f"{length:,}",
                max=f"{limit:,}",
            )
    return errors


def _chunks(rows: Iterator[tuple[int, tuple]]) -> Iterator[list[tuple[int, tuple]]]:
    """The rows in parts of at most :data:`CHUNK` rows and about :data:`CHUNK_CHARS`
    characters."""
    part: list[tuple[int, tuple]] = []
    chars = 0
    for row in rows:
        part.append(row)
        chars += sum(len(v) for v in row[1] if v.__class__ is str)
        if len(part) >= CHUNK or chars >= CHUNK_CHARS:
            yield part
            part, chars = [], 0
    if part:
        yield part


def check_repeat(actor: User, sha256: str) -> ReferralUpload | None:
    """The earlier upload of these bytes by the actor's bureau (``repeat = True`` set on it),
    or None. A failed one is removed instead (it saved nothing): the file may be tried again."""
    existing = find_repeat(actor, sha256)
    if existing is not None and existing.status == "failed":
        db.session.delete(existing)
        db.session.flush()
        return None
    if existing is not None:
        existing.repeat = True
    return existing


def import_file(actor: User, filename: str, data: bytes) -> ReferralUpload:
    """Import an uploaded list for a bureau user, now. Returns the :class:`ReferralUpload`;
    when the same bureau already uploaded these exact bytes, the earlier upload is returned
    unchanged with ``repeat = True`` set on it (unless it failed: then the file is imported
    again). Flushes; the caller commits once."""
    if actor.role != "bureau" or actor.org_id is None:
        raise ValidationFailed(_("Only bureau users can refer firms."))
    sha = fingerprint(data)
    existing = check_repeat(actor, sha)
    if existing is not None:
        return existing
    return import_new(actor, filename, data, sha)


def import_new(actor: User, filename: str, data: bytes, sha: str) -> ReferralUpload:
    """Import a list whose repeat check is done (``sha``: its fingerprint), now."""
    return _import(actor, filename, data, sha)


def _import(
    actor: User,
    filename: str,
    data: bytes,
    sha: str,
    upload: ReferralUpload | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReferralUpload:
    """Read and save the list in chunks while the rest of the file is still being read (on
    PostgreSQL the server stores one chunk while the next one is read: :mod:`advisors.bulk`).
    A problem further down the file (too many rows, a corrupt part) takes back what was
    written: nothing is saved, as when the file is read first. ``upload``: a queued upload to
    fill (see :mod:`.upload_queue`); ``progress(rows)`` is called after each chunk."""
    limit = int(current_app.config.get("MAX_UPLOAD_ROWS", 20000))
    with bulk.writing() as writer:
        sheet = open_sheet(filename, data, limit)
        try:
            undo = _undo_point()
            try:
                upload = _save(actor, filename, sha, sheet, writer, upload, progress)
            except BaseException:
                writer.wait(raise_error=False)
                with suppress(Exception):  # a broken connection: the caller's rollback reports it
                    undo(False)
                raise
            undo(True)
            return upload
        finally:
            sheet.close()


def _undo_point() -> Callable[[bool], None]:
    """What takes the session back to now if the import fails (``undo(False)``), or keeps
    its work (``undo(True)``): a savepoint; on SQLite outside a transaction, where SQLite would
    make a savepoint the transaction itself (and its release a commit), a rollback, which then
    takes back only the import's work (the session was flushed by the repeat check)."""
    if not is_postgresql():
        driver = db.session.connection().connection.driver_connection
        if not getattr(driver, "in_transaction", True):

            def rollback(keep: bool) -> None:
                if not keep:
                    db.session.rollback()

            return rollback
    savepoint = db.session.begin_nested()

    def release(keep: bool) -> None:
        if keep:
            savepoint.commit()
        else:
            savepoint.rollback()

    return release


def _save(
    actor: User,
    filename: str,
    sha: str,
    sheet: Sheet,
    writer: bulk.BulkWriter,
    upload: ReferralUpload | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReferralUpload:
    # A queued upload's row is written only at the end: its progress is written meanwhile from
    # another connection, which must not wait for this transaction.
    if upload is None:
        upload = _new_upload(actor, filename, sha, sheet)
    tally = _Tally(sheet)
    for part in _chunks(iter(sheet.rows)):
        tally.rows += len(part)
        chunk = tally.sort(part)
        results = (
            referral_service.submit(
                actor,
                chunk.items,
                source="upload",
                upload_id=upload.id,
                notify_office=False,
                writer=writer,
            )
            if chunk.items
            else []
        )
        tally.record(chunk, results)
        del part, chunk, results
        if progress is not None:
            progress(tally.rows)
    writer.wait()
    totals = tally.totals
    referral_service.notify_submitted(actor, totals["created"], totals["merged"])
    if sheet.scan is not None and sheet.scan.ignored_from is not None:
        totals["ignored_from"] = sheet.scan.ignored_from
    if tally.report.unlisted:
        totals["unlisted"] = tally.report.unlisted
    upload.headers = sheet.headers
    upload.rows = tally.rows
    upload.counts = totals
    upload.rejected = tally.report.column_value()
    upload.repeat = False
    db.session.flush()
    return upload


def _new_upload(actor: User, filename: str, sha: str, sheet: Sheet) -> ReferralUpload:
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
    return upload


@dataclass
class _Chunk:
    """A part of the list: its rows, the items of those to submit (and their positions in the
    part), the rows with cells too long (position -> errors) and the example rows."""

    rows: list[tuple[int, tuple]]
    items: list[dict] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    too_long: dict[int, dict] = field(default_factory=dict)
    examples: set[int] = field(default_factory=set)


class _Tally:
    """The counts and the report of one import, chunk by chunk."""

    def __init__(self, sheet: Sheet):
        self.mapper = _RowMapper(sheet.fields)
        self.report = _Report(sheet)
        self.totals = {"created": 0, "merged": 0, "duplicate": 0, "rejected": 0}
        self.first_row: dict[str, int] = {}  # credit code -> first row accepted in the file
        self.rows = 0

    def sort(self, part: list[tuple[int, tuple]]) -> _Chunk:
        chunk = _Chunk(part)
        for position, (_number, values) in enumerate(part):
            item = self.mapper.item(values)
            errors = _too_long(item, self.report.labels)
            if errors:
                chunk.too_long[position] = errors
            elif is_example(item):
                chunk.examples.add(position)
            else:
                chunk.items.append(item)
                chunk.positions.append(position)
        return chunk

    def record(self, chunk: _Chunk, results: list) -> None:
        totals, report = self.totals, self.report
        by_position = {chunk.positions[r.index]: r for r in results}
        for position, (number, values) in enumerate(chunk.rows):
            if position in chunk.too_long:
                totals["rejected"] += 1
                report.add(number, values, "rejected", chunk.too_long[position])
            elif position in chunk.examples:  # the template's example row, left in the list
                totals["example"] = totals.get("example", 0) + 1
            else:
                self._record_result(number, values, by_position[position])

    def _record_result(self, number: int, values: tuple, result) -> None:
        self.totals[result.status] = self.totals.get(result.status, 0) + 1
        report, code = self.report, result.credit_code
        if result.status == "rejected":
            report.add(number, values, "rejected", result.errors)
        elif result.status == "duplicate" and code in self.first_row:
            errors = {
                "credit_code": _(
                    "The same firm appears earlier in this file (row %(row)s).",
                    row=self.first_row[code],
                )
            }
            report.add(number, values, "duplicate", errors, result.referral_id)
        else:
            self.first_row.setdefault(code, number)
            if result.status == "duplicate":
                report.add(number, values, "duplicate", result.errors, result.referral_id)
            elif result.warnings:  # saved, with something for the bureau to check
                report.add(number, values, "warning", result.warnings, result.referral_id)


# ----------------------------------------------------------------------------- reading back
def uploads_of(actor: User, limit: int = 20) -> list[ReferralUpload]:
    """The bureau's previous uploads, newest first (without loading their reports)."""
    return list(
        db.session.execute(
            select(ReferralUpload)
            .options(defer(ReferralUpload.rejected), defer(ReferralUpload.payload))
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
        select(ReferralUpload)
        .options(defer(ReferralUpload.payload))  # the file of a queued upload: not shown
        .where(ReferralUpload.id == upload_id, ReferralUpload.org_id == actor.org_id)
    ).scalar_one_or_none()


def _reason_text(entry: dict) -> str:
    return "；".join(
        f"{e['column']}: {e['message']}" if e.get("column") else e["message"]
        for e in entry.get("errors", [])
    )


_NUMBER_FIELDS = ("employees", "revenue_wan", "assets_wan", "amount_wan")


def _as_number(text):
    """A figure the report kept as text back as a number, so the file to fix reads like the
    uploaded one (a phone number or a code stays text: only figure columns come here)."""
    if not isinstance(text, str) or not text.strip():
        return text
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        return text
    if not value.is_finite():
        return text
    return int(value) if value == value.to_integral_value() and abs(value) < 10**15 else value


def rejected_workbook(upload: ReferralUpload) -> bytes:
    """The rows to fix, with the file's own headers plus 错误原因, ready to re-upload (first
    sheet); the duplicate rows and the rows saved with a warning (a township not on the city's
    list), for information, on sheets of their own, each only when it has rows."""
    headers = list(upload.headers or [])
    _names, fields = _map_headers(headers)
    numeric = {h for h, f in zip(headers, fields, strict=False) if f in _NUMBER_FIELDS}

    def rows(status: str):
        for entry in upload.rejected or []:
            if entry.get("status", "rejected") != status:
                continue
            values = entry.get("values", {})
            yield [
                _as_number(values.get(h, "")) if h in numeric else values.get(h, "")
                for h in headers
            ] + [_reason_text(entry)]

    statuses = {entry.get("status", "rejected") for entry in upload.rejected or []}
    sheets = [
        (title, [*headers, REASON_HEADER], rows(status))
        for status, title in (
            ("rejected", "需修改的行"),
            ("duplicate", "重复的行"),
            ("warning", "已保存但需核对的行"),
        )
        if status in statuses or (status == "rejected" and not statuses)
    ]
    return workbook_bytes(sheets)


# ----------------------------------------------------------------------------- templates
# The templates' example row carries this mark in its firm name: a row so marked is skipped by
# the import (counted as the example), so leaving it in the list never creates a firm.
EXAMPLE_MARK = "【示例】"
TEMPLATE_ROWS = 5000  # rows of the template's data sheet that carry the drop-down lists
_TEMPLATE_WIDTHS = {
    "credit_code": 22,
    "name": 30,
    "industry": 22,
    "township": 16,
    "address": 28,
    "contact_phone": 15,
    "needs": 16,
    "purpose": 20,
    "note": 24,
}
# Needs as bureaus write them: each alone and the usual pairs (the import reads any mix).
_NEED_CHOICES = ("融资", "政策", "发展指导", "保险", "融资、政策", "政策、发展指导", "融资、保险")


def is_example(item: dict) -> bool:
    name = item.get("name")
    return isinstance(name, str) and name.lstrip().startswith(EXAMPLE_MARK)


def template_rows() -> tuple[list[str], list[list]]:
    header = [h for _f, h in TEMPLATE_COLUMNS]
    township = db.session.execute(
        select(Township.name).where(Township.active.is_(True)).order_by(Township.code).limit(1)
    ).scalar_one_or_none()
    example = {
        "credit_code": credit_code.make_code("9", "1", "330100", "MA2H7Q4K"),
        "name": EXAMPLE_MARK + "示例科技有限公司（导入时跳过本行）",
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
    """The list template: the data sheet first (header frozen, widths, drop-down lists for
    industry, township and needs that still accept other text), then a sheet with the example
    row (out of the data area, and marked so it is skipped even when copied in), then the
    lists the drop-downs read."""
    from openpyxl import Workbook

    header, example = template_rows()
    with force_locale("zh_CN"):
        industries = [(_(label), key) for key, label in INDUSTRIES.items()]
    townships = list(
        db.session.execute(
            select(Township.name, Township.code)
            .where(Township.active.is_(True))
            .order_by(Township.code)
        )
    )
    wb = Workbook()
    data = wb.active
    data.title = "企业名单"
    sample = wb.create_sheet("填写示例")
    lists = wb.create_sheet("可选值")
    for sheet in (data, sample):
        _template_header(sheet, header)
    for row in example:
        sample.append(row)
    _template_lists(lists, industries, townships)
    _template_drop_downs(
        data,
        (
            ("industry", "A", len(industries)),
            ("needs", "C", len(_NEED_CHOICES)),
            ("township", "D", len(townships)),
        ),
    )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _template_header(sheet, header: list[str]) -> None:
    """The header row, bold on a fill, wrapped, with the columns' widths; frozen."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    sheet.append(header)
    for i, (key, _h) in enumerate(TEMPLATE_COLUMNS, start=1):
        cell = sheet.cell(row=1, column=i)
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        sheet.column_dimensions[get_column_letter(i)].width = _TEMPLATE_WIDTHS.get(key, 13)
    sheet.freeze_panes = "A2"


def _template_lists(lists, industries: list[tuple], townships: list) -> None:
    """The sheet the drop-down lists read: industries (label, key), needs, townships (name,
    code), side by side."""
    lists.append(["行业", "行业代码", "需求", "乡镇（街道）", "乡镇代码"])
    rows = max(len(industries), len(_NEED_CHOICES), len(townships))
    for i in range(rows):
        lists.append(
            [
                *(industries[i] if i < len(industries) else ("", "")),
                _NEED_CHOICES[i] if i < len(_NEED_CHOICES) else "",
                *(tuple(townships[i]) if i < len(townships) else ("", "")),
            ]
        )
    for letter, width in zip("ABCDE", (26, 24, 16, 16, 14), strict=True):
        lists.column_dimensions[letter].width = width
    lists.freeze_panes = "A2"


def _template_drop_downs(data, sources) -> None:
    """A drop-down on the data sheet's column of each field in ``sources`` ((field, column of
    the lists sheet, how many values)), for the template's rows."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    column = {f: get_column_letter(i) for i, (f, _h) in enumerate(TEMPLATE_COLUMNS, start=1)}
    for key, source, count in sources:
        if not count:
            continue
        # A warning, not a stop: an alias (制造业) or a township the city has not listed yet is
        # still accepted by the import and reported there.
        check = DataValidation(
            type="list",
            formula1=f"='可选值'!${source}$2:${source}${count + 1}",
            allow_blank=True,
            errorStyle="warning",
            showErrorMessage=True,
            errorTitle="不在可选值中",
            error="此值不在可选值列表中，仍可保留，导入时会提示。",
        )
        check.add(f"{column[key]}2:{column[key]}{TEMPLATE_ROWS + 1}")
        data.add_data_validation(check)


def template_csv() -> bytes:
    header, rows = template_rows()
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    # UTF-8 with BOM: Excel on Chinese Windows opens it without garbling.
    return out.getvalue().encode("utf-8-sig")
