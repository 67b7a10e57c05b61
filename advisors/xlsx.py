"""Spreadsheet output shared by every export: openpyxl write-only workbooks, with cells that a
spreadsheet program would run as a formula escaped (CSV/formula injection)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from .i18n import local

# A leading = + - @ (or tab / carriage return) makes Excel and WPS evaluate the cell.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def safe_cell(value):
    """A value ready for a cell: text that would start a formula gets a leading apostrophe;
    money stays Decimal (written as a number), times become Asia/Shanghai."""
    if value is None:
        return None
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_START) else value
    if isinstance(value, datetime):
        return local(value).replace(tzinfo=None)
    if isinstance(value, bool | int | Decimal | date):
        return value
    return safe_cell(str(value))


def workbook_bytes(sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence]]]) -> bytes:
    """Build an .xlsx from (sheet title, header row, rows) triples."""
    wb = Workbook(write_only=True)
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title=title[:31])
        header_cells = []
        for text in headers:
            cell = WriteOnlyCell(ws, value=safe_cell(text))
            cell.font = Font(bold=True)
            header_cells.append(cell)
        ws.append(header_cells)
        for row in rows:
            ws.append([safe_cell(v) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
