"""A 10,000-row .xlsx list upload against openpyxl reading the same file (target <= 2.5x).

``python -m bench upload [--rows 10000] [--db sqlite|URL] [--runs 3] [--profile]``

Builds a scratch database with the migrations applied, a bureau user and 20 townships; per run
a fresh realistic workbook (new valid credit codes, about 2% bad rows of every kind), then times
(a) openpyxl loading it read-only and iterating every cell, as the import does, and (b)
``import_file`` end to end including the commit. Best of ``--runs`` for each."""

from __future__ import annotations

import argparse
import io
import random
import statistics

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
    args = parser.parse_args(argv)

    with scratch_app(args.db, MAX_UPLOAD_ROWS=max(20_000, args.rows)) as app:
        from advisors.audit import acting_as
        from advisors.services.referral_import import import_file
        from models import db

        bureau = _seed(app)
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
    ok = print_table(
        f"\n{args.rows:,}-row .xlsx upload on {dialect}, best of {args.runs}",
        [
            Figure(f"openpyxl read-only, every cell ({args.rows:,} rows)", floor),
            Figure(f"import_file incl. commit ({args.rows:,} rows)", min(imports), floor, TARGET),
        ],
    )
    return 0 if ok else 1


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
