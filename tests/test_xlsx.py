import io
from datetime import UTC, datetime
from decimal import Decimal

from openpyxl import load_workbook

from advisors.xlsx import safe_cell, workbook_bytes


def test_formula_cells_are_escaped():
    for text in ("=1+1", "+86 138", "-5", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("正常文本") == "正常文本"
    assert safe_cell(Decimal("12.50")) == Decimal("12.50")


def test_workbook_round_trip():
    data = workbook_bytes(
        [("名单", ["企业", "金额"], [['=HYPERLINK("x")', Decimal("1.5")], ["甲", None]])]
    )
    ws = load_workbook(io.BytesIO(data)).active
    rows = list(ws.values)
    assert rows[0] == ("企业", "金额")
    assert rows[1][0].startswith("'=")
    assert rows[1][1] == 1.5


def test_times_are_shanghai():
    assert safe_cell(datetime(2026, 1, 1, 16, 0, tzinfo=UTC)) == datetime(2026, 1, 2, 0, 0)
