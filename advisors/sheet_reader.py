"""Uploaded spreadsheets read at a bounded cost: the first sheet of an .xlsx workbook, or a .csv
file, as numbered rows of cell values, whatever the file holds.

Why not openpyxl's read-only mode as it is. Measured on an .xlsx of a header and 3,000,000
blank ``<row/>`` elements (28 KB on disk): ``load_workbook(read_only=True)`` alone took 2.2 s
and 253 MB, iterating the rows 5 s more. openpyxl parses every XML part with
``xml.etree.ElementTree.iterparse``, which builds a tree: ``element.clear()`` empties a parsed
row but leaves it attached to ``<sheetData>``, so every row element read stays in memory (about
85 bytes each, a blank one too) until the part is done. It happens twice: ``ReadOnlyWorksheet``
looks for the sheet's ``<dimension>`` when the workbook is opened, and without one that look
parses the whole sheet; the row iteration parses it again. The shared strings are read the same
way, every string kept as a Python object (about five times its XML for short Chinese strings),
and the styles, workbook and relationship parts are parsed whole. So the cost grew with what the
file unpacks to, not with what it holds.

Here every part is parsed as a stream (:class:`xml.etree.ElementTree.XMLPullParser` fed 64 KB
at a time from the zip) and each element is detached from its parent once read, so memory is
that of one row; the sheet parser stops at the end of ``<sheetData>``. openpyxl still turns each
cell into its value (``WorkSheetParser.parse_cell``: types, shared strings, dates by style) and
decides which number formats are dates. Limits, each checked before the part is parsed (from
the zip's directory, which also bounds what zipfile will inflate) or while it is read:

* at most :data:`MAX_ENTRIES` parts in the zip (zipfile keeps an object per part, 0.5 KB each);
* the first sheet's XML at most :data:`SHEET_PART_MAX`, the shared strings' XML at most
  :data:`STRINGS_PART_MAX` (kept as one UTF-8 buffer, not one object per string), every other
  part read at most :data:`PART_MAX`;
* a row at most 16,384 cells (Excel's own limit), only the first :data:`MAX_COLUMNS` read;
* a cell's text at most :data:`CELL_CHARS` characters (Excel's own limit): a longer one is cut
  to ``CELL_CHARS + 1`` characters, so the reader of the row still sees that it is too long; a
  text node of more than :data:`_GAP_MAX` bytes of XML (far beyond that) stops the reading;
* CSV: each row at most :data:`CSV_ROW_BYTES`, each field at most ``csv.field_size_limit()``
  (131,072 characters unless changed), decoded a line at a time.

How many rows are read (blank or not) is bounded by :class:`Scan` (:func:`read_records`, and
:mod:`advisors.services.referral_import` for referral lists). Every problem raises
:class:`~advisors.errors.ValidationFailed` with the field ``file`` and a message for the user.
A caller that only wants to look at the start of a file within a fixed cost (the upload
request) passes ``budget``, the bytes of XML or CSV it may read: :class:`OverBudget` is raised
when more would be needed.
"""

from __future__ import annotations

import codecs
import csv
import io
import posixpath
import zipfile
from array import array
from collections.abc import Iterator
from xml.etree.ElementTree import XMLPullParser

from flask_babel import gettext as _
from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format
from openpyxl.utils.cell import column_index_from_string
from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH
from openpyxl.worksheet._reader import WorkSheetParser

from .errors import ValidationFailed

MB = 1024 * 1024
MAX_COLUMNS = 200  # columns read per row; a list has fourteen
MAX_ENTRIES = 1000  # parts in the zip; a workbook has about ten, plus a few per sheet
SHEET_PART_MAX = 64 * MB  # a 20,000-row list written by openpyxl (inline strings) is 14 MB
STRINGS_PART_MAX = 32 * MB  # the same list with shared strings has about 5 MB of them
PART_MAX = 16 * MB  # content types, relationships, workbook, styles (streamed, stopped early)
CELL_CHARS = 32_767  # Excel's limit on the text of one cell
ROW_CELLS = 16_384  # Excel's limit on the columns of a sheet
CSV_ROW_BYTES = 1 * MB
_FEED = 64 * 1024
_GAP_MAX = 1 * MB  # XML without an element starting or ending: one text beyond any cell
_SUBTREE_MAX = 10_000  # elements inside one cell or one shared string (rich-text runs)
_NUMBER_FORMATS_MAX = 2_000  # custom number formats looked at (Excel allows about 250)

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_PKG_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_ROW, _CELL, _SHEET_DATA = f"{_MAIN}row", f"{_MAIN}c", f"{_MAIN}sheetData"
_SI, _T, _R = f"{_MAIN}si", f"{_MAIN}t", f"{_MAIN}r"
_IS, _V = f"{_MAIN}is", f"{_MAIN}v"


class OverBudget(Exception):  # noqa: N818 - not an error: the file is just longer than that
    """Reading on would take more than the caller's ``budget``."""


def file_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"file": message})


def _unreadable() -> ValidationFailed:
    return file_error(
        _("This file is not a readable .xlsx workbook. Save it from Excel or WPS as .xlsx.")
    )


def _sheet_unreadable() -> ValidationFailed:
    return file_error(_("The first sheet of this workbook could not be read. Nothing was saved."))


def _cell_too_long(row: int | None) -> ValidationFailed:
    if row is None:
        return file_error(
            _(
                "This workbook has a cell with more than %(n)s characters, more than Excel "
                "allows. Nothing was saved.",
                n=f"{CELL_CHARS:,}",
            )
        )
    return file_error(
        _(
            "Row %(row)s has a cell with more than %(n)s characters, more than Excel allows. "
            "Nothing was saved.",
            row=row,
            n=f"{CELL_CHARS:,}",
        )
    )


def _mb(size: int) -> str:
    return f"{size / MB:,.1f}"


# ----------------------------------------------------------------------------- XML parts
class _Part:
    """One XML part of the zip, parsed as a stream of ("start" | "end", element) events.
    An element at depth ``keep`` or less (the root is 1) is detached from its parent when its
    end has been handled, so the tree never holds more than the open elements and the
    children of the one being read; deeper elements stay until their ancestor at depth
    ``keep`` is detached (at most :data:`_SUBTREE_MAX` of them)."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, keep: int):
        self.archive, self.info, self.keep = archive, info, keep
        self.stack: list = []  # the open elements, root first
        self.row: int | None = None  # for messages: the sheet row being read

    def events(self) -> Iterator[tuple[str, object]]:
        parser = XMLPullParser(events=("start", "end"))
        stack, keep = self.stack, self.keep
        gap = inside = 0
        with self.archive.open(self.info) as source:
            while True:
                chunk = source.read(_FEED)
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()
                seen = False
                for event, element in parser.read_events():
                    seen = True
                    if event == "start":
                        stack.append(element)
                        if len(stack) > keep:
                            inside += 1
                            if inside > _SUBTREE_MAX:
                                raise _sheet_unreadable()
                        yield event, element
                        continue
                    yield event, element
                    stack.pop()
                    if len(stack) < keep and stack:
                        stack[-1].remove(element)  # its only child: detached at once
                        inside = 0
                if not chunk:
                    return
                gap = 0 if seen else gap + len(chunk)
                if gap > _GAP_MAX:
                    raise _cell_too_long(self.row)


def _info(archive: zipfile.ZipFile, name: str | None) -> zipfile.ZipInfo | None:
    if not name:
        return None
    try:
        return archive.getinfo(name)
    except KeyError:
        return None


def _small_part(archive, name: str, keep: int) -> _Part | None:
    info = _info(archive, name)
    if info is None:
        return None
    if info.file_size > PART_MAX:
        raise file_error(
            _(
                "The part %(part)s of this workbook is %(size)s MB once unpacked; at most "
                "%(max)s MB can be read. Copy the list into a new workbook and upload that. "
                "Nothing was saved.",
                part=name,
                size=_mb(info.file_size),
                max=_mb(PART_MAX),
            )
        )
    return _Part(archive, info, keep)


def _relationships(archive, source: str) -> dict[str, tuple[str, str]]:
    """The relationships of the part ``source``: id -> (type, target part name)."""
    folder, base = posixpath.split(source)
    part = _small_part(archive, posixpath.join(folder, "_rels", base + ".rels"), keep=2)
    rels: dict[str, tuple[str, str]] = {}
    if part is None:
        return rels
    for event, element in part.events():
        if event == "end" and element.tag == f"{_PKG_RELS}Relationship":
            target = element.get("Target") or ""
            if element.get("TargetMode") == "External":
                continue
            if target.startswith("/"):
                target = target[1:]
            else:
                target = posixpath.normpath(posixpath.join(folder, target))
            rels[element.get("Id") or ""] = (element.get("Type") or "", target)
    return rels


def _of_type(rels: dict[str, tuple[str, str]], kind: str) -> str | None:
    for rel_type, target in rels.values():
        if rel_type.endswith("/" + kind):
            return target
    return None


def _workbook(archive, name: str) -> tuple[str | None, bool]:
    """The relationship id of the first sheet, and whether dates count from 1904."""
    part = _small_part(archive, name, keep=3)
    if part is None:
        raise _unreadable()
    first, date1904 = None, False
    for event, element in part.events():
        if event != "end":
            continue
        if element.tag == f"{_MAIN}workbookPr":
            date1904 = (element.get("date1904") or "").lower() in ("1", "true")
        elif element.tag == f"{_MAIN}sheet" and first is None:
            first = element.get(f"{{{_DOC_RELS}}}id")
        elif element.tag == f"{_MAIN}sheets":
            break  # workbookPr comes before the sheets; nothing after them is needed
    return first, date1904


def _date_styles(archive, name: str | None) -> tuple[set[int], set[int]]:
    """The cell style indices whose number format is a date, and those that are a duration:
    openpyxl's own test of each format."""
    dates: set[int] = set()
    durations: set[int] = set()
    part = _small_part(archive, name, keep=3) if name else None
    if part is None:
        return dates, durations
    custom: dict[int, str] = {}
    kinds: dict[int, tuple[bool, bool]] = {}
    index = 0
    for event, element in part.events():
        if event != "end":
            continue
        parent = part.stack[-2].tag if len(part.stack) > 1 else None
        if element.tag == f"{_MAIN}numFmt" and len(custom) < _NUMBER_FORMATS_MAX:
            try:
                custom[int(element.get("numFmtId"))] = element.get("formatCode") or ""
            except (TypeError, ValueError):
                continue
        elif element.tag == f"{_MAIN}xf" and parent == f"{_MAIN}cellXfs":
            try:
                number_format = int(element.get("numFmtId") or 0)
            except ValueError:
                number_format = 0
            if number_format not in kinds:
                fmt = custom.get(number_format) or builtin_format_code(number_format)
                kinds[number_format] = (is_date_format(fmt), is_timedelta_format(fmt))
            is_date, is_duration = kinds[number_format]
            if is_date:
                dates.add(index)
            if is_duration:
                durations.add(index)
            index += 1
        elif element.tag == f"{_MAIN}cellXfs":
            break
    return dates, durations


class SharedStrings:
    """The workbook's shared strings in one UTF-8 buffer with their end offsets (4 bytes a
    string, not a Python object each); ``strings[i]`` decodes one."""

    def __init__(self):
        self._buffer = bytearray()
        self._ends = array("I")
        self._view: memoryview | None = None
        self.part_size = 0  # bytes of XML they were read from

    def append(self, text: str) -> None:
        self._buffer += text.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._buffer))

    def freeze(self) -> None:
        self._view = memoryview(self._buffer)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < len(self._ends):
            raise IndexError(index)
        start = self._ends[index - 1] if index else 0
        return str(self._view[start : self._ends[index]], "utf-8", "surrogatepass")


def _text(element) -> str:
    """The text of a shared or inline string as openpyxl's ``Text.content``: the plain text,
    then the runs' (phonetic runs are not part of it)."""
    pieces = []
    for child in element:
        if child.tag == _T:
            pieces.append(child.text or "")
        elif child.tag == _R:
            t = child.find(_T)
            if t is not None:
                pieces.append(t.text or "")
    return "".join(pieces)


def _shared_strings(archive, name: str | None, budget: int | None = None) -> SharedStrings:
    strings = SharedStrings()
    info = _info(archive, name)
    if info is not None:
        strings.part_size = info.file_size
        if info.file_size > STRINGS_PART_MAX:
            raise file_error(
                _(
                    "The text of this workbook (its shared strings) is %(size)s MB once "
                    "unpacked; at most %(max)s MB can be read. Split the list into smaller "
                    "files, or shorten very long cells. Nothing was saved.",
                    size=_mb(info.file_size),
                    max=_mb(STRINGS_PART_MAX),
                )
            )
        if budget is not None and info.file_size > budget:
            raise OverBudget
        part = _Part(archive, info, keep=2)
        for event, element in part.events():
            if event == "end" and element.tag == _SI:
                text = _text(element).replace("x005F_", "")  # as openpyxl reads them
                strings.append(text[: CELL_CHARS + 1])
    strings.freeze()
    return strings


def _too_many_entries(data: bytes) -> bool:
    """Whether the zip's directory lists more than :data:`MAX_ENTRIES` parts, read from its
    end record before zipfile builds an object for each."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 12 > len(data):
        return False  # not a zip: zipfile says so
    return int.from_bytes(data[end + 10 : end + 12], "little") > MAX_ENTRIES


# ----------------------------------------------------------------------------- .xlsx
def xlsx_rows(data: bytes, budget: int | None = None) -> Iterator[tuple[int, tuple]]:
    """The numbered rows of the workbook's first sheet, read as they are consumed. A row
    element with no cells read is an empty tuple; rows the file leaves out are not yielded
    (the numbers say where they were). ``budget``: see :class:`OverBudget` (the shared
    strings count whole, before the sheet)."""
    if _too_many_entries(data):
        raise file_error(
            _(
                "This workbook has more than %(n)s parts. Copy the list into a new workbook "
                "and upload that. Nothing was saved.",
                n=MAX_ENTRIES,
            )
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - not a zip, or one zipfile cannot read
        raise _unreadable() from None
    with archive:
        try:
            sheet, strings, date_styles, epoch = _open_workbook(archive, budget)
        except (ValidationFailed, OverBudget):
            raise
        except Exception:  # noqa: BLE001 - a broken part: openpyxl would not open it either
            raise _unreadable() from None
        if sheet is None:
            return
        budget = None if budget is None else budget - strings.part_size
        try:
            yield from _sheet_rows(archive, sheet, strings, date_styles, epoch, budget)
        except (ValidationFailed, OverBudget):
            raise
        except Exception:  # noqa: BLE001 - a corrupt sheet part
            raise _sheet_unreadable() from None


def _open_workbook(archive, budget: int | None = None):
    root = _relationships(archive, "")
    workbook = _of_type(root, "officeDocument") or "xl/workbook.xml"
    first, date1904 = _workbook(archive, workbook)
    rels = _relationships(archive, workbook)
    sheet = _info(archive, rels.get(first, ("", ""))[1]) if first else None
    if sheet is None:
        return None, None, None, None
    if sheet.file_size > SHEET_PART_MAX:
        raise file_error(
            _(
                "The first sheet of this workbook is %(size)s MB once unpacked; at most "
                "%(max)s MB can be read. Split the list into smaller files. Nothing was saved.",
                size=_mb(sheet.file_size),
                max=_mb(SHEET_PART_MAX),
            )
        )
    strings_name = _of_type(rels, "sharedStrings")
    if strings_name is None and _info(archive, "xl/sharedStrings.xml") is not None:
        strings_name = "xl/sharedStrings.xml"
    styles_name = _of_type(rels, "styles") or "xl/styles.xml"
    strings = _shared_strings(archive, strings_name, budget)
    date_styles = _date_styles(archive, styles_name)
    return sheet, strings, date_styles, CALENDAR_MAC_1904 if date1904 else WINDOWS_EPOCH


def _sheet_rows(  # noqa: C901 - the hot loop of every upload, see the docstring
    archive, info, strings, date_styles, epoch, budget: int | None
) -> Iterator[tuple[int, tuple]]:
    """The rows of the sheet part: :class:`_Part`'s walk written out for speed, with the depths
    of this part's elements (worksheet 1, sheetData 2, row 3, c 4).

    The one function of the product allowed over 60 lines and complexity 15: it runs once per
    XML event (four per cell), and split into methods (one call per event) it made the 10,000-row
    upload benchmark 7% slower, so it stays written out in one loop."""
    cells = WorkSheetParser(
        None,
        strings,
        data_only=True,
        epoch=epoch,
        date_formats=date_styles[0],
        timedelta_formats=date_styles[1],
    )
    parse_cell = cells.parse_cell
    parser = XMLPullParser(events=("start", "end"))
    stack: list = []
    number = count = gap = inside = 0
    values: list = []
    in_data = False
    with archive.open(info) as source:
        for chunk in _fed(source, budget):
            if chunk:
                parser.feed(chunk)
            else:
                parser.close()
            seen = False
            for event, element in parser.read_events():
                seen = True
                if event == "start":
                    stack.append(element)
                    depth = len(stack)
                    if depth > 4:
                        inside += 1
                        if inside > _SUBTREE_MAX:
                            raise _sheet_unreadable()
                    elif depth == 3 and in_data and element.tag == _ROW:
                        r = element.get("r")
                        number = int(float(r)) if r else number + 1
                        cells.row_counter = number
                        cells.col_counter = count = 0
                        values = []
                    elif depth == 2 and element.tag == _SHEET_DATA:
                        in_data = True
                    continue
                depth = len(stack)
                stack.pop()
                if depth == 4:
                    if in_data and element.tag == _CELL:
                        count += 1
                        if count > ROW_CELLS:
                            raise _sheet_unreadable()
                        ref = element.get("r")
                        column = (
                            column_index_from_string(ref.rstrip("0123456789"))
                            if ref
                            else cells.col_counter + 1
                        )
                        if column <= MAX_COLUMNS:
                            # The two kinds of text cell directly, as parse_cell reads them
                            # (it spends most of its time on the inline ones); the rest,
                            # numbers, dates, booleans, by parse_cell.
                            kind = element.get("t")
                            if kind == "s":
                                index = element.findtext(_V)
                                value = strings[int(index)] if index else None
                            elif kind == "inlineStr":
                                inline = element.find(_IS)
                                value = _text(inline) if inline is not None else None
                            else:
                                value = parse_cell(element)["value"]
                            if value.__class__ is str and len(value) > CELL_CHARS:
                                value = value[: CELL_CHARS + 1]
                            if column > len(values):
                                values.extend([None] * (column - len(values)))
                            values[column - 1] = value
                        else:
                            cells.col_counter = column
                    stack[-1].remove(element)
                    inside = 0
                elif depth == 3:
                    if in_data and element.tag == _ROW:
                        yield number, tuple(values)
                    stack[-1].remove(element)
                elif depth == 2:
                    if element.tag == _SHEET_DATA:
                        return  # nothing after the cells is read
                    stack[-1].remove(element)
            if not chunk:
                return
            gap = 0 if seen else gap + len(chunk)
            if gap > _GAP_MAX:
                raise _cell_too_long(number if in_data else None)


def _fed(source, budget: int | None) -> Iterator[bytes]:
    """The part's bytes, :data:`_FEED` at a time, then ``b""``; more than ``budget`` in all
    raises :class:`OverBudget`."""
    left = budget
    while True:
        chunk = source.read(_FEED)
        if left is not None:
            left -= len(chunk)
            if left < 0:
                raise OverBudget
        yield chunk
        if not chunk:
            return


# ----------------------------------------------------------------------------- .csv
def _encoding(data: bytes) -> str:
    """utf-8-sig or gb18030, checked a megabyte at a time (never the whole text at once)."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        view = memoryview(data)
        try:
            for start in range(0, len(data), MB):
                decoder.decode(view[start : start + MB])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise file_error(
        _("The CSV file is neither UTF-8 nor GBK/GB18030 text. Save it again as CSV (UTF-8).")
    )


class _Lines:
    """The decoded lines of a CSV file, one at a time, for csv.reader; a row (which may span
    lines inside quotes) longer than :data:`CSV_ROW_BYTES` stops the reading."""

    def __init__(self, data: bytes, encoding: str, budget: int | None):
        self.data, self.position, self.row_bytes, self.row = data, 0, 0, 1
        self.decoder = codecs.getincrementaldecoder(encoding)()
        self.end = len(data) if budget is None else budget

    def __iter__(self):
        return self

    def __next__(self) -> str:
        data, start = self.data, self.position
        if start >= len(data):
            raise StopIteration
        room = CSV_ROW_BYTES - self.row_bytes  # what the row being read may still take
        end = data.find(b"\n", start, start + room)
        if end >= 0:
            end += 1
        elif len(data) - start <= room:
            end = len(data)
        else:
            raise file_error(
                _(
                    "Row %(row)s of the CSV file is longer than %(n)s MB. Nothing was saved.",
                    row=self.row,
                    n=CSV_ROW_BYTES // MB,
                )
            )
        if end > self.end:
            raise OverBudget
        self.row_bytes += end - start
        self.position = end
        return self.decoder.decode(data[start:end], final=end >= len(data))


def csv_rows(data: bytes, budget: int | None = None) -> Iterator[tuple[int, tuple]]:
    """The numbered rows of a CSV file (UTF-8 or GB18030; comma, tab or semicolon), read as
    they are consumed; cells past :data:`MAX_COLUMNS` are dropped. ``budget``: see
    :class:`OverBudget`."""
    if b"\x00" in data[:4096]:
        raise file_error(_("This file is not a CSV text file. Nothing was saved."))
    encoding = _encoding(data)
    newline = data.find(b"\n", 0, CSV_ROW_BYTES)
    first_line = data[: newline if newline >= 0 else CSV_ROW_BYTES].decode(encoding, "replace")
    delimiter = max((",", "\t", ";"), key=first_line.count)
    lines = _Lines(data, encoding, budget)
    reader = csv.reader(lines, delimiter=delimiter)
    number = 0
    try:
        for row in reader:
            number += 1
            lines.row_bytes, lines.row = 0, number + 1
            yield (
                number,
                tuple(v[: CELL_CHARS + 1] if len(v) > CELL_CHARS else v for v in row[:MAX_COLUMNS]),
            )
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise file_error(
                _(
                    "Row %(row)s of the CSV file has a cell with more than %(n)s characters. "
                    "Nothing was saved.",
                    row=number + 1,
                    n=f"{csv.field_size_limit():,}",
                )
            ) from None
        raise file_error(
            _("The CSV file could not be read. Save it again from Excel or WPS as CSV.")
        ) from None


# ----------------------------------------------------------------------------- the rows read
# After the header, this many blank rows in a row end a list: what follows is not imported
# (the report says where it starts, when a non-blank row is found within the scan bound).
BLANK_RUN = 1000


def _is_blank(values) -> bool:
    for v in values:
        if v is None:
            continue
        if isinstance(v, str) and not v.strip():
            continue
        return False
    return True


def scan_limit(limit: int) -> int:
    """How many rows (blank or not) a list of at most ``limit`` data rows may take to read."""
    return 2 * limit + BLANK_RUN


def _too_many_scanned(scanned: int) -> ValidationFailed:
    return file_error(
        _(
            "The file has more than %(n)s rows, blank ones included. Delete the empty rows or "
            "split the list, and upload it again. Nothing was saved.",
            n=f"{scanned:,}",
        )
    )


class Scan:
    """The non-blank records of a sheet, read with the bounds every upload has: every record
    read (blank or not) counts against ``limit``, and after the first non-blank one (the
    header) a run of :data:`BLANK_RUN` blank rows (written or left out of the file) ends the
    list. Reading then goes on, within ``limit``, only to find whether anything follows:
    ``ignored_from`` is the first non-blank row after the run, which is not read."""

    def __init__(self, records: Iterator, limit: int):
        self.records, self.limit = records, limit
        self.ignored_from: int | None = None

    def __iter__(self) -> Iterator[tuple[int, tuple]]:
        scanned = last = 0
        started = ended = False
        for number, values in self.records:
            scanned += 1
            if scanned > self.limit:
                if ended:
                    return
                raise _too_many_scanned(self.limit)
            if _is_blank(values):
                ended = ended or (started and number - last >= BLANK_RUN)
                continue
            if started and number - last > BLANK_RUN:
                self.ignored_from = number
                return
            started, last = True, number
            yield number, values


def read_records(filename: str, data: bytes, limit: int = 20_000) -> Iterator[tuple[int, tuple]]:
    """The numbered non-blank rows of any uploaded .xlsx or .csv (referral lists, townships),
    with the same bounds and messages (a list of at most ``limit`` rows: see :class:`Scan`);
    raises ValidationFailed (field ``file``) for an unusable file. Close the iterator when
    done."""
    name = (filename or "").lower()
    if not data:
        raise file_error(_("The file is empty. Nothing was saved."))
    if name.endswith((".xlsx", ".xlsm")):
        records = xlsx_rows(data)
    elif name.endswith((".csv", ".txt")):
        records = csv_rows(data)
    else:
        raise file_error(_("Only .xlsx and .csv files can be uploaded."))
    return _closing(iter(Scan(records, scan_limit(limit))), records)


def _closing(rows: Iterator, records: Iterator) -> Iterator:
    try:
        yield from rows
    finally:
        records.close()
