"""A 10,000-row .xlsx list upload against openpyxl reading the same file (target <= 2.5x), and
the peak memory of importing hostile files of at most 10 MB (target: 100 MB over the idle
process).

``python -m bench upload [--rows 10000] [--db sqlite|URL] [--runs 3] [--profile]
[--memory | --no-memory]``

Builds a scratch database with the migrations applied, a bureau user and 20 townships; per run
a fresh realistic workbook (new valid credit codes, about 2% bad rows of every kind), then times
(a) openpyxl loading it read-only and iterating every cell, as the import once did, and (b)
``import_file`` end to end including the commit. Best of ``--runs`` for each.

The memory part (``--memory`` runs only it) writes each hostile file to a temporary folder and
imports it in a child process of its own (``import_file``, as the request and the queue do),
which reports its resident memory when idle (after a small warm-up import) and at its peak
during the import (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``; elsewhere
``ru_maxrss``), the seconds it took and the outcome."""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib

from .common import Figure, make_user, print_table, scratch_app, timed

TARGET = 2.5
TOWNSHIPS = [
    f"{n}镇"
    for n in (
        "城关",
        "东城",
        "西城",
        "南湖",
        "北山",
        "临江",
        "青石",
        "白沙",
        "金桥",
        "新塘",
        "高桥",
        "石门",
        "花园",
        "梅林",
        "柳桥",
        "桃源",
        "凤凰",
        "龙泉",
        "长安",
        "永安",
    )
]
INDUSTRY_NAMES = [
    "工业",
    "批发业",
    "零售业",
    "软件和信息技术服务业",
    "建筑业",
    "交通运输业",
    "餐饮业",
    "住宿业",
    "农、林、牧、渔业",
    "租赁和商务服务业",
    "制造业",
]
NEEDS = ["融资", "融资、政策", "政策", "发展指导", "融资、发展指导", "保险", "政策、保险"]
DIVISIONS = ["330102", "330105", "330106", "330108", "330110"]
LETTERS = "ABCDEFGHJKLMNPQRTUWXY"  # a letter in every code, so the lower-case kind is bad


def _bad(row: list, kind: int) -> list:
    """Turn a good row into one of the kinds of bad row a bureau sends."""
    if kind == 0:
        row[0] = row[0][:17] + ("0" if row[0][17] != "0" else "1")  # check character
    elif kind == 1:
        row[1] = None  # no name
    elif kind == 2:
        row[2] = "宇宙航行业"  # unknown industry
    elif kind == 3:
        row[5] = -12  # negative employees
    elif kind == 4:
        row[10], row[11] = "融资", None  # financing without an amount
    elif kind == 5:
        row[10] = "融资、算命"  # unknown need
    elif kind == 6:
        row[3] = "不存在镇"  # unknown township
    else:
        row[0] = row[0].lower()  # lower case
    return row


def build_workbook(rows: int, run: int, seed: int = 7) -> bytes:
    """A list as a bureau would send it: the template's headers, Excel-typed cells."""
    from openpyxl import Workbook

    from advisors.credit_code import make_code
    from advisors.services.referral_import import TEMPLATE_COLUMNS

    rnd = random.Random(seed + run)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("企业名单")
    ws.append([h for _f, h in TEMPLATE_COLUMNS])
    prefix = LETTERS[(run * 7 + seed) % len(LETTERS)] + LETTERS[run % len(LETTERS)]
    for i in range(rows):
        code = make_code("9", "1", DIVISIONS[i % len(DIVISIONS)], f"{prefix}{i:06d}")
        needs = rnd.choice(NEEDS)
        row = [
            code,
            f"测试{run}号{i}科技有限公司",
            rnd.choice(INDUSTRY_NAMES),
            rnd.choice(TOWNSHIPS),
            f"{rnd.choice(TOWNSHIPS)}工业园{i % 300}号",
            rnd.randint(3, 900),
            round(rnd.uniform(50, 60000), 2),
            rnd.randint(20, 80000),
            "张经理",
            f"138{rnd.randint(0, 99999999):08d}",
            needs,
            rnd.choice([100, 200, 350.5, 1000]) if "融资" in needs else None,
            "购置设备" if "融资" in needs else None,
            None if i % 3 else "重点企业",
        ]
        if i % 50 == 25:
            row = _bad(row, (i // 50) % 8)
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def read_with_openpyxl(data: bytes) -> int:
    """The floor: what openpyxl alone needs, read-only, touching every cell."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    cells = 0
    for row in wb.worksheets[0].iter_rows(values_only=True):
        for _value in row:
            cells += 1
    wb.close()
    return cells


def _seed(app) -> object:
    from advisors.audit import acting_as
    from models import Township, db

    with acting_as(label="bench"):
        for n, name in enumerate(TOWNSHIPS):
            db.session.add(Township(code=f"B{n:03d}", name=name))
        db.session.commit()
    make_user("finance_office", "finance_office")
    make_user("pboc", "pboc")
    return make_user("bureau", "bureau")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench upload", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a PostgreSQL URL")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--profile", action="store_true", help="profile one extra import (needs pyinstrument)"
    )
    memory = parser.add_mutually_exclusive_group()
    memory.add_argument("--memory", action="store_true", help="only the hostile-file memory part")
    memory.add_argument("--no-memory", action="store_true", help="skip the memory part")
    parser.add_argument("--only", help="only the hostile files whose name contains this")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # DB_URL USER_ID NAME FILE
    args = parser.parse_args(argv)
    if args.child:
        return _child(*args.child)

    with scratch_app(args.db, MAX_UPLOAD_ROWS=max(20_000, args.rows)) as app:
        bureau = _seed(app)
        bureau_id = bureau.id
        ok = True
        if not args.memory:
            ok = _timing(app, args, bureau)
            _queue(app, bureau_id)
        if not args.no_memory:
            ok = _memory(app, bureau_id, args.only) and ok
    return 0 if ok else 1


def _timing(app, args, bureau) -> bool:
    from advisors.audit import acting_as
    from advisors.services.referral_import import import_file
    from models import db

    bureau_id = bureau.id
    dialect = db.engine.dialect.name
    reads, imports, last = [], [], None
    for run in range(args.runs):
        data = build_workbook(args.rows, run)
        reads.append(timed(lambda data=data: read_with_openpyxl(data)))

        def upload(data=data, run=run, user=bureau):
            nonlocal last
            with acting_as(user):
                last = import_file(user, f"bench-{run}.xlsx", data)
                db.session.commit()

        imports.append(timed(upload))
        counts = dict(last.counts)
        db.session.remove()
        bureau = db.session.get(type(bureau), bureau_id)
        print(
            f"run {run + 1}: openpyxl {reads[-1]:.3f}s, import {imports[-1]:.3f}s "
            f"({imports[-1] / reads[-1]:.2f}x) {counts}"
        )
    if args.profile:
        _profile(bureau, build_workbook(args.rows, args.runs))

    floor = min(reads)
    ratios = sorted(i / r for i, r in zip(imports, reads, strict=True))
    print(f"median of the runs' side-by-side ratios: {statistics.median(ratios):.2f}x")
    return print_table(
        f"\n{args.rows:,}-row .xlsx upload on {dialect}, best of {args.runs}",
        [
            Figure(f"openpyxl read-only, every cell ({args.rows:,} rows)", floor),
            Figure(f"import_file incl. commit ({args.rows:,} rows)", min(imports), floor, TARGET),
        ],
    )


def _queue(app, bureau_id: int) -> None:
    """What the upload request costs now: a short list imported in it, a long one only looked
    at and queued; and the scheduler's job importing the long one."""
    from advisors.audit import acting_as
    from advisors.services.jobs import process_uploads
    from advisors.services.upload_queue import receive
    from models import User, db

    inline_rows = app.config["UPLOAD_INLINE_ROWS"]
    short = build_workbook(inline_rows, 50)
    long = build_workbook(20_000, 51)
    user = db.session.get(User, bureau_id)
    done = {}

    def request(name, data):
        def run():
            with acting_as(user):
                done[name] = receive(user, f"{name}.xlsx", data, locale="zh_CN")
                db.session.commit()

        return run

    figures = [
        Figure(f"request: {inline_rows}-row list, imported", timed(request("short", short))),
        Figure("request: 20,000-row list, queued", timed(request("long", long))),
    ]
    assert done["short"].status == "done" and done["long"].status == "queued"
    figures.append(Figure("queue job: that 20,000-row list", timed(process_uploads)))
    db.session.expire_all()
    upload = db.session.get(type(done["long"]), done["long"].id)
    assert upload.status == "done", upload.error
    print_table("\nthe upload request and the queue", figures)


def _profile(bureau, data: bytes) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("--profile needs pyinstrument (pip install pyinstrument)")
        return
    from advisors.audit import acting_as
    from advisors.services.referral_import import import_file
    from models import db

    profiler = Profiler(interval=0.0005)
    with acting_as(bureau):
        profiler.start()
        import_file(bureau, "bench-profile.xlsx", data)
        db.session.commit()
        profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


# ----------------------------------------------------------------------------- memory
MEMORY_TARGET_MB = 100
LIMIT = 10 * 1024 * 1024  # MAX_CONTENT_LENGTH: nothing bigger reaches the import
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
    'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
    'worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{_NS}" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="企业名单" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)


class _Repeating:
    """A deflate compressor for bench files: a chunk compressed once and flushed in full is
    the same bytes every time it comes again, so gigabytes of blank rows are written at the
    speed of their CRC."""

    def __init__(self):
        self.inner = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.done: dict[int, bytes] = {}

    def compress(self, data) -> bytes:
        key = id(data)
        if key not in self.done:
            self.done[key] = self.inner.compress(data) + self.inner.flush(zlib.Z_FULL_FLUSH)
        return self.done[key]

    def flush(self) -> bytes:
        return self.inner.flush()


def _inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _header_row() -> str:
    from advisors.services.referral_import import TEMPLATE_COLUMNS

    letters = "ABCDEFGHIJKLMN"
    cells = "".join(
        _inline(f"{c}1", h) for c, (_f, h) in zip(letters, TEMPLATE_COLUMNS, strict=True)
    )
    return f'<row r="1">{cells}</row>'


def _data_row(number: int, name: str = "") -> str:
    from advisors.credit_code import make_code

    code = make_code("9", "1", "330102", f"M{number % 10**7:07d}")
    name = name or f"测试{number}号科技有限公司"
    cells = (
        _inline(f"A{number}", code)
        + _inline(f"B{number}", name)
        + _inline(f"C{number}", "工业")
        + _inline(f"K{number}", "政策")
    )
    return f'<row r="{number}">{cells}</row>'


def _workbook(sheet_chunks, strings=(), *, repeating: bool = False) -> bytes:
    """An .xlsx of one sheet whose XML is ``sheet_chunks`` (bytes, written one after the
    other) and whose shared strings are ``strings`` (texts)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _ROOT_RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            if repeating:
                f._compressor = _Repeating()  # noqa: SLF001 - see _Repeating
            f.write(f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_NS}">'.encode())
            f.write(b"<sheetData>")
            for chunk in sheet_chunks:
                f.write(chunk)
            f.write(b"</sheetData></worksheet>")
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_NS}">'.encode())
            for text in strings:
                f.write(b"<si><t>" + (text if isinstance(text, bytes) else text.encode()))
                f.write(b"</t></si>")
            f.write(b"</sst>")
    return out.getvalue()


def _blank_rows_to(size: int) -> bytes:
    """A header, one firm, then blank ``<row/>`` elements until the file is about ``size``
    bytes (gigabytes once unpacked)."""
    chunk = b"<row/>" * 174_763  # 1 MB unpacked, about 1.5 KB deflated
    per_chunk = len(_Repeating().compress(chunk))
    head = (_header_row() + _data_row(2)).encode()
    return _workbook(
        [head, *([chunk] * ((size - 2048) // per_chunk))],
        repeating=True,
    )


def _blank_rows_within_cap() -> bytes:
    """As many blank rows as the sheet cap lets through (about 10 million), a firm before and
    one after them."""
    from advisors.sheet_reader import SHEET_PART_MAX

    chunk = b"<row/>" * 174_763
    head = (_header_row() + _data_row(2)).encode()
    count = (SHEET_PART_MAX - 4096) // len(chunk)
    return _workbook([head, *([chunk] * count), _data_row(3 + 174_763 * count).encode()])


def _huge_shared_string(chars: int) -> bytes:
    """A firm whose name is one shared string of ``chars`` characters."""
    row = _data_row(2).replace(_inline("B2", "测试2号科技有限公司"), '<c r="B2" t="s"><v>0</v></c>')
    return _workbook([(_header_row() + row).encode()], [b"A" * chars])


def _long_cells(rows: int, chars: int) -> bytes:
    """``rows`` firms whose every text cell is the same ``chars``-character shared string."""
    refs = "".join(f'<c r="{c}{{n}}" t="s"><v>0</v></c>' for c in "ABCDEFGHIJKLMN")
    sheet = [_header_row().encode()]
    sheet += [f'<row r="{n}">{refs.format(n=n)}</row>'.encode() for n in range(2, rows + 2)]
    return _workbook(sheet, ["长" * chars])


def _many_columns() -> bytes:
    """Rows of 16,384 cells (Excel's widest) up to the sheet cap."""
    from openpyxl.utils import get_column_letter

    from advisors.sheet_reader import SHEET_PART_MAX

    letters = [get_column_letter(i) for i in range(1, 16_385)]
    sheet, size, n = [_header_row().encode()], 0, 2
    while True:
        row = f'<row r="{n}">' + "".join(f'<c r="{c}{n}" t="s"><v>0</v></c>' for c in letters)
        data = (row + "</row>").encode()
        if size + len(data) > SHEET_PART_MAX - 4096:
            break
        sheet.append(data)
        size += len(data)
        n += 1
    return _workbook(sheet, ["x"])


def _many_strings() -> bytes:
    """Distinct two-character Chinese shared strings up to the shared-strings cap (each one a
    Python object of about 80 bytes if read as openpyxl reads them), a few thousand used."""
    from advisors.sheet_reader import STRINGS_PART_MAX

    rnd = random.Random(3)
    count = (STRINGS_PART_MAX - 4096) // len("<si><t>中国</t></si>".encode())
    strings = [
        chr(0x4E00 + rnd.randrange(20_000)) + chr(0x4E00 + rnd.randrange(20_000))
        for _ in range(count)
    ]
    cells = [
        f'<row r="{n}"><c r="O{n}" t="s"><v>{n * 97}</v></c></row>'.encode()
        for n in range(2, 5_000)
    ]
    return _workbook([_header_row().encode(), *cells], strings)


def _shared_strings_list(data: bytes) -> bytes:
    """The list ``data`` saved as Excel and WPS save one: its texts as shared strings (openpyxl
    writes them inline)."""
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    strings: dict[str, int] = {}
    sheet = []
    ws = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
        cells = []
        for i, value in enumerate(row, start=1):
            ref = f"{get_column_letter(i)}{n}"
            if isinstance(value, str):
                index = strings.setdefault(value, len(strings))
                cells.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
            elif value is not None:
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        sheet.append(f'<row r="{n}">{"".join(cells)}</row>'.encode())
    return _workbook(sheet, [html.escape(s, quote=False) for s in strings])


def _all_rejected(rows: int) -> bytes:
    """A well-made list of ``rows`` firms every one of which is refused (unknown industry):
    the largest report."""
    from openpyxl import Workbook

    from advisors.credit_code import make_code
    from advisors.services.referral_import import TEMPLATE_COLUMNS

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("企业名单")
    ws.append([h for _f, h in TEMPLATE_COLUMNS])
    for i in range(rows):
        code = make_code("9", "1", "330106", f"REJ{i:05d}")
        ws.append(
            [code, f"全部拒绝{i}号科技有限公司", "宇宙航行业", "城关镇", f"临江工业园{i}号", 30]
            + [1200, 800, "张经理", "13800000000", "融资、政策", 300, "购置设备", "重点企业"]
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _csv(text: str) -> bytes:
    return text.encode("utf-8-sig")


def _csv_header() -> str:
    from advisors.services.referral_import import TEMPLATE_COLUMNS

    return ",".join(h for _f, h in TEMPLATE_COLUMNS) + "\n"


def hostile_files(only: str | None = None) -> list[tuple[str, str, bytes]]:
    """(what, filename, bytes): every file at most 10 MB (``only``: those whose file name
    contains it)."""
    from advisors.sheet_reader import CSV_ROW_BYTES

    builders = [
        ("genuine list, 10,000 rows", "genuine.xlsx", lambda: build_workbook(10_000, 99)),
        (
            "genuine list, 20,000 rows, shared strings",
            "genuine20k.xlsx",
            lambda: _shared_strings_list(build_workbook(20_000, 98)),
        ),
        ("genuine list, 20,000 rows all rejected", "rejected.xlsx", lambda: _all_rejected(20_000)),
        ("blank rows up to 10 MB (GBs unpacked)", "blank10mb.xlsx", lambda: _blank_rows_to(LIMIT)),
        ("blank rows up to the sheet cap", "blankcap.xlsx", _blank_rows_within_cap),
        (
            "one cell of 100 MB (shared string)",
            "cell100mb.xlsx",
            lambda: _huge_shared_string(10**8),
        ),
        (
            "one cell of 30 MB (shared string)",
            "cell30mb.xlsx",
            lambda: _huge_shared_string(30 * 10**6),
        ),
        (
            "1,000 rows of 14 cells of 30,000 chars",
            "longcells.xlsx",
            lambda: _long_cells(1000, 30_000),
        ),
        ("rows of 16,384 columns up to the cap", "columns.xlsx", _many_columns),
        ("distinct shared strings up to the cap", "strings.xlsx", _many_strings),
        (
            "CSV: a header and 10 MB of empty rows",
            "blank.csv",
            lambda: _csv(_csv_header() + ",\n" * 5 * 10**6),
        ),
        ("CSV: one row of 10 MB of commas", "commas.csv", lambda: _csv("," * (LIMIT - 16))),
        (
            "CSV: a cell just under the row cap",
            "cell.csv",
            lambda: _csv(_csv_header() + "9133," + "x" * (CSV_ROW_BYTES - 64) + ",工业\n"),
        ),
        ("zip of 100,000 empty parts", "parts.xlsx", _many_parts),
    ]
    files = []
    for what, name, build in builders:
        if only and only not in name:
            continue
        data = build()
        assert len(data) <= LIMIT, (what, len(data))
        files.append((what, name, data))
    return files


def _many_parts() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i in range(100_000):
            z.writestr(f"{i:x}", b"")
    return out.getvalue()


def _memory(app, bureau_id: int, only: str | None = None) -> bool:
    from models import db

    url = db.engine.url.render_as_string(hide_password=False)
    print("\nbuilding the hostile files ...", flush=True)
    files = hostile_files(only)
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as folder:
        for what, name, data in files:
            path = os.path.join(folder, name)
            with open(path, "wb") as f:
                f.write(data)
            done = subprocess.run(  # noqa: S603 - this interpreter, our own arguments
                [sys.executable, "-m", "bench", "upload", "--child", url, str(bureau_id), name]
                + [path],
                capture_output=True,
                text=True,
                check=False,
            )
            try:
                result = json.loads(done.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                print(done.stdout[-2000:], done.stderr[-4000:])
                raise SystemExit(f"the child process for {name} failed") from None
            over = (result["peak_kb"] - result["idle_kb"]) / 1024
            passed = over <= MEMORY_TARGET_MB
            ok = ok and passed
            rows.append((what, len(data), result, over, passed))
            print(f"{what}: {result['seconds']:.2f}s, +{over:.0f} MB: {result['outcome']}")
    print(f"\npeak memory of one import over the idle process (target {MEMORY_TARGET_MB} MB)")
    print(f"{'file':<42} {'size':>9} {'seconds':>8} {'idle':>7} {'peak':>7} {'over':>7}  result")
    for what, size, result, over, passed in rows:
        print(
            f"{what:<42} {size / 1024 / 1024:>7.2f}MB {result['seconds']:>8.2f} "
            f"{result['idle_kb'] / 1024:>6.0f}M {result['peak_kb'] / 1024:>6.0f}M "
            f"{over:>6.0f}M  {'PASS' if passed else 'FAIL'}"
        )
    return ok


def _rss() -> tuple[int, int]:
    """(current, peak) resident memory in KB."""
    values = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _sep, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(value.split()[0])
        return values["VmRSS"], values["VmHWM"]
    except (OSError, KeyError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


def _reset_peak() -> int:
    """Start measuring the peak from now (Linux); the resident memory now, in KB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _rss()[0]


def _child(url: str, user_id: str, name: str, path: str) -> int:
    """One import in a fresh process: prints {seconds, idle_kb, peak_kb, outcome} as JSON."""
    import gc

    from advisors import create_app

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SCHEDULER": "off", "DEMO_DATA": False}
        | {"MAX_UPLOAD_ROWS": 20_000}
    )
    with app.app_context(), app.test_request_context():
        from flask_babel import force_locale
        from sqlalchemy import func, select

        from advisors.audit import acting_as
        from advisors.errors import ValidationFailed
        from advisors.services.referral_import import import_file
        from models import ReferralUpload, User, db

        user = db.session.get(User, int(user_id))
        with acting_as(user), force_locale("en"):  # warm up: translations, statement caches
            warm = _csv(_csv_header() + f"91330106MA2H7Q4K0X,预热{os.getpid()},工业,,,,,,,,政策\n")
            import_file(user, "warm.csv", warm)
            db.session.commit()
            gc.collect()
            idle = _reset_peak()
            with open(path, "rb") as f:
                data = f.read()
            start = time.perf_counter()
            try:
                upload_id = import_file(user, name, data).id
                db.session.commit()
                seconds, peak = time.perf_counter() - start, _rss()[1]
                report = db.session.scalar(
                    select(func.length(ReferralUpload.rejected)).where(
                        ReferralUpload.id == upload_id
                    )
                )
                counts = db.session.get(ReferralUpload, upload_id).counts
                outcome = f"{json.dumps(counts)}, report {report / 1e6:.1f} M characters"
            except ValidationFailed as exc:
                seconds, peak = time.perf_counter() - start, _rss()[1]
                db.session.rollback()
                outcome = exc.message
    print(json.dumps({"seconds": seconds, "idle_kb": idle, "peak_kb": peak, "outcome": outcome}))
    return 0
