"""Compiling a month's assessment against its SQL floor, at 10x the data, and its pages (issue 5).

``python -m bench assessments [--db sqlite|URL] [--scale 1.0] [--month 2026-10] [--repeats 7]
[--requests 20] [--db-small URL] [--reuse]``

Builds two synthetic cities through the migrations (the real schema and indexes): one at
``--scale`` (1.0: 2,000 advisors at 40 banks and insurers, 200,000 firms each with a referral,
1,000,000 visits, 100,000 financing applications, a risk report per ~200 visits, 60,000
feedback links) and one at a tenth of it. ``--db sqlite`` puts each in a temporary SQLite file;
a PostgreSQL URL names a database that is dropped and created anew (the small city goes to the
same name with ``10`` appended, or ``--db-small``); both are kept after the run, and
``--reuse`` measures them again (the same day, at the same scale) without building them anew.

The data spans the 14 months up to today, visits and applications the last 12 of them, so a
month holds about a twelfth: referrals from five bureaus, most assigned (advisors' case loads
and institutions' sizes skewed), first contacts on time or late, cases in service, resolved and
closed (most closed ones with the bureau's satisfaction); a first visit on each case's first
contact date and follow-ups on cases already in service, with role flags, the policy tools
explained on every policy visit and logging delays; applications in every stage with their
dates; risk reports from information visits; feedback links, most answered with a rating.
Firms and cases are inserted with Core inserts in chunks (one executemany per chunk),
everything else with one ``INSERT … SELECT`` each over a generated series
(``generate_series`` on PostgreSQL, a recursive CTE on SQLite).

Then, alternately and ``--repeats`` times each, taking medians (a ratio is the median of the
ratios of the runs measured side by side — each compile against the floor measured right before
it —, so that the machine's speed drifting during the run does not move it):

* the floor: hand-written SQL reading the rows the compile must read — one grouped aggregate
  per source table (visits, referrals, financing applications, risk reports, feedback
  ratings) over the month, per advisor (:data:`FLOOR`);
* ``compile_period(month)`` as the finance office, committed: a first compile (the draft
  deleted beforehand, untimed) and a recompile of the draft — each against 1.5x the floor;
* the same first compile in the small city: the big city's time against 11x it;
* signed in as the finance office (test client), the assessment page and the notice page
  against the trivial page ``/notifications/`` (3x), ``--requests`` times each — after the
  statistics autovacuum gathers within a minute of a compile (:meth:`City.settle`).

Checks that every raw value the compile stored equals the one computed from the floor's rows
(so the floor reads what the compile reads), and prints where one first compile's time goes:
by function of the service and, on PostgreSQL, by SQL statement."""

from __future__ import annotations

import argparse
import bisect
import json
import random
import re
import statistics
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Date, Integer, bindparam, event, insert, select, text
from sqlalchemy.engine import make_url

from .common import (
    BUREAUS,
    PASSWORD,
    Figure,
    body_text,
    paired,
    print_table,
    scratch_app,
    series_sql,
    signed_in,
    timed,
    utc_type,
)

COMPILE_TARGET = 1.5
SCALING_TARGET = 11.0
PAGE_TARGET = 3.0
CHUNK = 5000
HISTORY = 425  # days of referrals up to today; visits and applications: the last WINDOW days
WINDOW = 365
BANKS = [
    "工商银行",
    "农业银行",
    "中国银行",
    "建设银行",
    "交通银行",
    "邮储银行",
    "招商银行",
    "浦发银行",
    "中信银行",
    "光大银行",
    "华夏银行",
    "民生银行",
    "兴业银行",
    "平安银行",
    "广发银行",
    "浙商银行",
    "渤海银行",
    "恒丰银行",
    "宁波银行",
    "杭州银行",
    "台州银行",
    "泰隆银行",
    "稠州银行",
    "民泰银行",
    "上海银行",
    "北京银行",
    "南京银行",
    "江苏银行",
]
LOCAL_BANKS = ["江州农商银行", "江州银行"]
INSURERS = [
    "人保财险",
    "平安产险",
    "太保产险",
    "国寿财险",
    "中华联合财险",
    "大地保险",
    "阳光财险",
    "太平财险",
    "华安保险",
    "永安保险",
]
POLICY_TOOLS = 12
_SHARES = ("visit_coverage", "first_contact_on_time", "satisfaction", "logs_on_time")
PRODUCTS = ("流动资金贷款", "科创贷", "小微信用贷", "设备更新贷款")


class Sizes:
    """The city at ``scale`` (1.0: the issue's default)."""

    def __init__(self, scale: float):
        self.scale = scale
        self.advisors = max(10, round(2000 * scale))
        self.firms = max(100, round(200_000 * scale))
        self.visits = max(500, round(1_000_000 * scale))
        self.applications = max(50, round(100_000 * scale))
        self.risk_reports = max(5, self.visits // 200)
        self.feedback = max(30, round(60_000 * scale))


# ============================================================================ SQL fragments
def _day(dialect: str, idx: str) -> str:
    """The date ``:origin`` + ``idx`` days."""
    if dialect == "postgresql":
        return f"(CAST(:origin AS date) + CAST({idx} AS integer))"
    return f"date(:origin, '+' || ({idx}) || ' days')"


def _stamp(dialect: str, idx: str, hour: int) -> str:
    """The UTC timestamp ``:origin`` + ``idx`` days + ``hour`` hours, stored as UTCDateTime
    stores it (naive UTC; on SQLite the text SQLAlchemy writes, microseconds included)."""
    if dialect == "postgresql":
        return (
            f"(CAST(:origin AS timestamp) + CAST({idx} AS integer) * interval '1 day' "
            f"+ interval '{hour} hours')"
        )
    return (
        f"strftime('%Y-%m-%d %H:%M:%S.000000', :origin, '+' || ({idx}) || ' days', '+{hour} hours')"
    )


def _stamp_of(dialect: str, day: str, days: int, hour: int) -> str:
    """The UTC timestamp of the date column ``day`` + ``days`` days + ``hour`` hours."""
    if dialect == "postgresql":
        return f"(CAST({day} AS timestamp) + interval '{days} days {hour} hours')"
    return f"strftime('%Y-%m-%d %H:%M:%S.000000', {day}, '+{days} days', '+{hour} hours')"


def _token(dialect: str, i: str) -> str:
    """A unique 64-character token digest for the integer ``i``."""
    if dialect == "postgresql":
        return f"lpad(CAST({i} AS text), 64, '0')"
    return f"printf('%064d', {i})"


def _params(stmt, **values):
    """``stmt`` with the usual binds typed (dates, UTC timestamps, integers) and ``values``."""
    types = {"origin": Date(), "now": utc_type()}
    binds = [bindparam(k, type_=types.get(k, Integer())) for k in values if k in stmt._bindparams]
    return stmt.bindparams(*binds), values


def _run(sql: str, **values) -> int:
    from models import db

    stmt, values = _params(text(sql), **values)
    return db.session.execute(stmt, values).rowcount


# ============================================================================ the city
def _people(sizes: Sizes, rnd: random.Random) -> dict:
    """Orgs and the users who sign in through the services (audited, as in production); the
    advisors in bulk with one password hash. Institutions' sizes are skewed (big banks have
    more advisors); 1% of the advisors have left (inactive)."""
    from advisors.audit import acting_as
    from advisors.security import hash_password
    from advisors.services.orgs import create_org
    from advisors.services.users import create_user
    from models import User, db

    people: dict = {}
    with acting_as(label="bench"):
        office_org = create_org("JRB", "市金融工作局", "finance_office")
        people["office"] = create_user(
            username="bench_office",
            password=PASSWORD,
            role="finance_office",
            org=office_org,
            display_name="金融办考核专员",
        )
        create_user(
            username="bench_pboc",
            password=PASSWORD,
            role="pboc",
            org=create_org("RMYH", "人民银行江州市分行", "pboc"),
        )
        people["bureaus"] = []
        for code, name in BUREAUS:
            org = create_org(code, name, "bureau")
            user = create_user(
                username=f"bench_{code.lower()}", password=PASSWORD, role="bureau", org=org
            )
            people["bureaus"].append((user.id, org.id))
        institutions = []
        for k, name in enumerate(LOCAL_BANKS + BANKS):
            full = name if name in LOCAL_BANKS else f"{name}江州分行"
            institutions.append(create_org(f"B{k + 1:02d}", full, "bank").id)
        for k, name in enumerate(INSURERS):
            institutions.append(create_org(f"I{k + 1:02d}", f"{name}江州分公司", "insurer").id)
        db.session.flush()
    people["institutions"] = institutions
    weights = [1 / (k + 1) ** 0.8 for k in range(len(institutions))]
    orgs = rnd.choices(institutions, weights=weights, k=sizes.advisors)
    now = datetime.now(UTC)
    digest = hash_password(PASSWORD)
    db.session.execute(
        insert(User.__table__),
        [
            {
                "username": f"adv{i:05d}",
                "display_name": f"顾问{i:05d}",
                "password_hash": digest,
                "role": "advisor",
                "org_id": orgs[i],
                "active": i % 100 != 99,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(sizes.advisors)
        ],
    )
    db.session.commit()
    people["advisors"] = db.session.execute(
        select(User.id, User.org_id).where(User.role == "advisor").order_by(User.id)
    ).all()
    people["office_name"] = people["office"].username
    people["office_id"] = people["office"].id
    return people


def _cases(people, sizes: Sizes, today: date, rnd: random.Random) -> list[tuple]:
    """One firm and one referral per firm, created evenly over HISTORY days, in bulk. Returns
    the cases with a first contact: (referral, firm, advisor, institution, first-contact day
    index), for the visits, applications and feedback to be drawn from."""
    from advisors.credit_code import make_code
    from advisors.sizing import INDUSTRIES
    from models import Enterprise, Referral, ReferralBureau, db

    origin = datetime.combine(today - timedelta(days=HISTORY), clock(1), tzinfo=UTC)
    now = datetime.now(UTC)
    industries = list(INDUSTRIES)
    sizes_cls = ["micro", "micro", "small", "small", "small", "medium", "unknown"]
    advisors = people["advisors"]
    # Case loads are skewed: some advisors carry three times the cases of others.
    cum, acc = [], 0.0
    for _ in advisors:
        acc += 0.5 + rnd.random()
        cum.append(acc)
    bureaus = people["bureaus"]
    firms, cases, links, served = [], [], [], []

    def flush():
        for model, rows in ((Enterprise, firms), (Referral, cases), (ReferralBureau, links)):
            if rows:
                db.session.execute(insert(model.__table__), rows)  # Core: one executemany
                rows.clear()

    for i in range(1, sizes.firms + 1):
        created = origin + timedelta(days=(HISTORY - 2) * (i - 0.5) / sizes.firms)
        bureau_user, bureau_org = bureaus[i % len(bureaus)]
        industry = industries[i % len(industries)]
        firms.append(
            {
                "id": i,
                "credit_code": make_code("9", "1", "330100", body_text(i)),
                "name": f"江州{industry[:4]}企业{i}有限公司",
                "industry": industry,
                "employees": rnd.randint(1, 600),
                "revenue_wan": Decimal(rnd.randint(10, 40000)),
                "size_class": rnd.choice(sizes_cls),
                "registered_by_org_id": bureau_org,
                "created_at": created,
                "updated_at": created,
                "version": 1,
            }
        )
        amount = Decimal(rnd.choice((50, 100, 200, 300, 500, 800, 1000, 2000)))
        row = {
            "id": i,
            "enterprise_id": i,
            "status": "submitted",
            "need_financing": i % 5 != 0,
            "need_policy": i % 3 == 0,
            "need_guidance": i % 7 == 0,
            "need_insurance": i % 11 == 0,
            "amount_wan": amount if i % 5 else None,
            "purpose": "流动资金",
            "org_id": bureau_org,
            "created_by_id": bureau_user,
            "source": "upload" if i % 4 else "api",
            "created_at": created,
            "updated_at": created,
            "version": 1,
            "advisor_id": None,
            "assigned_at": None,
            "first_contact_due": None,
            "first_contact_on": None,
            "last_visit_on": None,
            "resolved_at": None,
            "closed_at": None,
            "rejected_reason": None,
            "outcome_result": None,
            "outcome_amount_wan": None,
            "satisfaction": None,
        }
        fate = rnd.random()
        if now - created < timedelta(days=2) or fate < 0.03:
            pass  # still in the inbox
        elif fate < 0.05:
            row["status"], row["rejected_reason"] = "rejected", "不属于服务范围"
        elif fate < 0.06:
            row["status"] = "withdrawn"
        else:
            k = bisect.bisect_left(cum, rnd.random() * acc)
            advisor_id, org_id = advisors[min(k, len(advisors) - 1)]
            assigned = min(created + timedelta(hours=rnd.randint(4, 72)), now)
            row.update(
                status="assigned",
                advisor_id=advisor_id,
                assigned_at=assigned,
                first_contact_due=(assigned + timedelta(days=7)).date(),
            )
            # First contact: 85% within the clock, some late, 3% never (overdue).
            delay = rnd.choice((1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 10, 14)) if fate > 0.09 else None
            first = assigned.date() + timedelta(days=delay) if delay is not None else None
            if first is not None and first <= today:
                row.update(status="in_service", first_contact_on=first, last_visit_on=first)
                served.append((i, i, advisor_id, org_id, (first - origin.date()).days))
                age = (today - first).days
                ended = rnd.random()
                if age > 20 and ended < min(0.75, age / 200):
                    resolved = datetime.combine(first, clock(7), tzinfo=UTC) + timedelta(
                        days=rnd.randint(10, 60)
                    )
                    if resolved < now:
                        result = rnd.choice(("financed", "financed", "policy_delivered", "no_need"))
                        row.update(
                            status="resolved",
                            resolved_at=resolved,
                            outcome_result=result,
                            outcome_amount_wan=amount if result == "financed" else None,
                        )
                        closed = resolved + timedelta(days=rnd.randint(2, 20), hours=3)
                        if closed < now and ended < min(0.6, age / 250):
                            row.update(status="closed", closed_at=closed)
                            if rnd.random() < 0.85:
                                row["satisfaction"] = rnd.choices(
                                    (5, 4, 3, 2, 1), weights=(55, 30, 10, 4, 1)
                                )[0]
        cases.append(row)
        links.append(
            {
                "referral_id": i,
                "org_id": bureau_org,
                "created_at": created,
                "created_by_id": bureau_user,
                "needs": [n for n in ("financing", "policy", "guidance") if row[f"need_{n}"]]
                or ["guidance"],
                "amount_wan": row["amount_wan"],
                "note": None,
            }
        )
        if len(cases) >= CHUNK:
            flush()
    flush()
    return served


def _case_tables(dialect: str, served: list[tuple]) -> None:
    """Scratch tables for drawing work at random: ``bench_case`` numbers the cases in service
    by first-contact day (n = 1, 2, …), ``bench_day`` holds for each day index how many had
    been first contacted by then — so ``n = 1 + hash % bench_day.cases`` is a case that was in
    service on that day."""
    from models import db

    served.sort(key=lambda c: (c[4], c[0]))
    db.session.execute(
        text(
            "CREATE TABLE bench_case (n INTEGER PRIMARY KEY, referral_id INTEGER NOT NULL, "
            "enterprise_id INTEGER NOT NULL, advisor_id INTEGER NOT NULL, org_id INTEGER, "
            "first_day INTEGER NOT NULL)"
        )
    )
    db.session.execute(text("CREATE TABLE bench_day (day INTEGER PRIMARY KEY, cases INTEGER)"))
    stmt = text(
        "INSERT INTO bench_case VALUES (:n, :referral_id, :enterprise_id, :advisor_id, "
        ":org_id, :first_day)"
    )
    rows = [
        {
            "n": n,
            "referral_id": c[0],
            "enterprise_id": c[1],
            "advisor_id": c[2],
            "org_id": c[3],
            "first_day": c[4],
        }
        for n, c in enumerate(served, start=1)
    ]
    for start in range(0, len(rows), CHUNK):
        db.session.execute(stmt, rows[start : start + CHUNK])
    firsts = [c[4] for c in served]
    db.session.execute(
        text("INSERT INTO bench_day VALUES (:day, :cases)"),
        [{"day": d, "cases": bisect.bisect_right(firsts, d)} for d in range(HISTORY + 1)],
    )


_VISIT_COLUMNS = """visit (referral_id, enterprise_id, advisor_id, org_id, visited_on, mode,
    role_policy, role_guidance, role_financing, role_information, summary, log_delay_days,
    version, created_at, updated_at)"""


def _hashes(i: str) -> str:
    """Independent-looking pseudo-random columns of the integer ``i`` (prime moduli)."""
    b = f"CAST({i} AS BIGINT)"
    return (
        f"({b} * 7477) % 101 AS hp, ({b} * 6007) % 103 AS hg, ({b} * 5003) % 107 AS hf, "
        f"({b} * 4001) % 109 AS hi, ({b} * 7919) % 113 AS hd, ({b} * 3001) % 7 AS hm"
    )


# Roles: policy 40%, guidance 30%, financing 30%, information 25% or when no other role;
# logged the same day 60%, within 3 days 88%, up to 12 days late otherwise.
_VISIT_VALUES = """
    CASE WHEN x.hm < 3 THEN 'onsite' WHEN x.hm < 5 THEN 'phone' WHEN x.hm = 5 THEN 'online'
         ELSE 'event' END,
    x.hp < 40, x.hg < 30, x.hf < 30,
    x.hi < 25 OR NOT (x.hp < 40 OR x.hg < 30 OR x.hf < 30),
    '{summary}',
    CASE WHEN x.hd < 68 THEN 0 WHEN x.hd < 85 THEN 1 WHEN x.hd < 94 THEN 2
         WHEN x.hd < 100 THEN 3 ELSE 4 + x.hd % 9 END,
    1, :now, :now"""


def _visits(dialect: str, n: int, origin: date) -> None:
    """A first visit on each case's first-contact day, then follow-ups up to ``n`` visits in
    all: each on a day spread evenly over the last WINDOW days, on a case in service that day."""
    first = _run(
        f"""
        INSERT INTO {_VISIT_COLUMNS}
        SELECT x.referral_id, x.enterprise_id, x.advisor_id, x.org_id,
            {_day(dialect, "x.first_day")},
            {_VISIT_VALUES.format(summary="首次走访：了解企业经营与融资需求")}
        FROM (SELECT c.referral_id, c.enterprise_id, c.advisor_id, c.org_id, c.first_day,
                     {_hashes("c.n")}
              FROM bench_case c) AS x
        """,  # noqa: S608 (our own fragments)
        origin=origin,
        now=datetime.now(UTC),
    )
    lo = HISTORY - WINDOW
    _run(
        f"""
        INSERT INTO {_VISIT_COLUMNS}
        SELECT c.referral_id, c.enterprise_id, c.advisor_id, c.org_id, {_day(dialect, "x.d")},
            {_VISIT_VALUES.format(summary="回访企业：跟进政策落实与融资进展")}
        FROM (SELECT g.i AS i, {lo} + (CAST(g.i AS BIGINT) * 37) % {WINDOW + 1} AS d,
                     {_hashes("g.i")}
              FROM {series_sql(dialect)}) AS x
        JOIN bench_day bd ON bd.day = x.d
        JOIN bench_case c ON c.n = 1 + (CAST(x.i AS BIGINT) * 7919) % NULLIF(bd.cases, 0)
        """,  # noqa: S608 (our own fragments)
        n=max(n - first, 0),
        origin=origin,
        now=datetime.now(UTC),
    )


def _visit_policies() -> None:
    """The policy tools explained on each policy visit: one on every one (the visit service
    requires at least one), a second on 20%."""
    from models import PolicyTool, db

    now = datetime.now(UTC)
    db.session.execute(
        insert(PolicyTool.__table__),
        [
            {
                "code": f"BENCH{k:02d}",
                "name": f"惠企政策{k:02d}",
                "description": "小微企业融资支持政策",
                "eligible_types": ["micro", "small"],
                "active": True,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for k in range(POLICY_TOOLS)
        ],
    )
    tool0 = db.session.scalar(select(PolicyTool.id).where(PolicyTool.code == "BENCH00"))
    for offset, share in ((0, 10), (5, 2)):
        _run(
            f"""
            INSERT INTO visit_policy (visit_id, policy_tool_id)
            SELECT v.id, :tool0 + (v.id + {offset}) % {POLICY_TOOLS} FROM visit v
            WHERE v.role_policy AND (v.id * 31) % 10 < {share}
            """,  # noqa: S608 (our own fragments)
            tool0=tool0,
        )


def _applications(dialect: str, n: int, origin: date) -> None:
    """``n`` financing applications on cases in service, applied for on days spread over the
    last WINDOW days: 15% declined after 10 days, 77% disbursed 10 to 42 days after applying,
    the rest approved 5 to 15 days after — each only once that day has come (until then the
    application waits in the stage before). 20% first loans, 30% unsecured."""
    day, wan = (lambda idx: _day(dialect, idx)), 1_000_000  # Money: millionths of 万元
    lo = HISTORY - WINDOW
    approved = "x.stage IN ('approved', 'disbursed')"
    amount = "(10 + x.ha * x.ha / 5)"
    _run(
        f"""
        INSERT INTO financing_application (referral_id, enterprise_id, advisor_id, org_id,
            lender_id, product, purpose, term_months, amount_wan, first_loan, unsecured, stage,
            applied_on, approved_on, approved_amount_wan, disbursed_on, disbursed_amount_wan,
            declined_on, declined_reason, version, created_at, updated_at)
        SELECT c.referral_id, c.enterprise_id, c.advisor_id, c.org_id, c.org_id,
            CASE x.i % 4 WHEN 0 THEN '{PRODUCTS[0]}' WHEN 1 THEN '{PRODUCTS[1]}'
                 WHEN 2 THEN '{PRODUCTS[2]}' ELSE '{PRODUCTS[3]}' END,
            '流动资金周转', 6 * (1 + x.i % 6), {amount} * {wan},
            (x.i * 13) % 5 = 0, (x.i * 17) % 10 < 3, x.stage, {day("x.d")},
            CASE WHEN {approved} THEN {day("x.d + x.la")} END,
            CASE WHEN {approved} THEN {amount} * {wan * 9 // 10} END,
            CASE WHEN x.stage = 'disbursed' THEN {day("x.d + x.ld")} END,
            CASE WHEN x.stage = 'disbursed' THEN {amount} * {wan * 9 // 10} END,
            CASE WHEN x.stage = 'declined' THEN {day("x.d + 10")} END,
            CASE WHEN x.stage = 'declined' THEN '经营流水不足' END,
            1, :now, :now
        FROM (
            SELECT y.*,
                CASE WHEN y.h < 15 THEN CASE WHEN y.d + 10 <= {HISTORY} THEN 'declined'
                                             ELSE 'applied' END
                     WHEN y.h < 92 AND y.d + y.ld <= {HISTORY} THEN 'disbursed'
                     WHEN y.d + y.la <= {HISTORY} THEN 'approved'
                     ELSE 'applied' END AS stage
            FROM (
                SELECT CAST(g.i AS BIGINT) AS i,
                    {lo} + (CAST(g.i AS BIGINT) * 41) % {WINDOW} AS d,
                    (CAST(g.i AS BIGINT) * 7907) % 100 AS h,
                    5 + (CAST(g.i AS BIGINT) * 13) % 11 AS la,
                    10 + (CAST(g.i AS BIGINT) * 13) % 11 + (CAST(g.i AS BIGINT) * 17) % 23 AS ld,
                    (CAST(g.i AS BIGINT) * 389) % 97 AS ha
                FROM {series_sql(dialect)}
            ) AS y
        ) AS x
        JOIN bench_day bd ON bd.day = x.d
        JOIN bench_case c ON c.n = 1 + (x.i * 104729) % NULLIF(bd.cases, 0)
        """,  # noqa: S608 (our own fragments)
        n=n,
        origin=origin,
        now=datetime.now(UTC),
    )


def _risk_reports(dialect: str, n: int, origin: date) -> None:
    """About ``n`` risk reports, each from an information visit on the visit's day; those over
    30 days old acknowledged, over 60 closed."""
    from models import db

    info = db.session.scalar(text("SELECT count(*) FROM visit WHERE role_information"))
    every = max(1, round(info / max(n, 1)))
    _run(
        f"""
        INSERT INTO risk_report (visit_id, referral_id, enterprise_id, reporter_id, org_id,
            risk_type, note, status, reported_at, acknowledged_at, closed_at, version)
        SELECT v.id, v.referral_id, v.enterprise_id, v.advisor_id, v.org_id,
            CASE (v.id / {every}) % 4 WHEN 0 THEN 'illegal_fundraising'
                 WHEN 1 THEN 'illegal_deposit' WHEN 2 THEN 'fraud' ELSE 'other' END,
            '走访中发现企业参与民间高息集资的迹象',
            CASE WHEN v.visited_on < {_day(dialect, str(HISTORY - 60))} THEN 'closed'
                 WHEN v.visited_on < {_day(dialect, str(HISTORY - 30))} THEN 'acknowledged'
                 ELSE 'open' END,
            {_stamp_of(dialect, "v.visited_on", 0, 2)},
            CASE WHEN v.visited_on < {_day(dialect, str(HISTORY - 30))}
                 THEN {_stamp_of(dialect, "v.visited_on", 1, 2)} END,
            CASE WHEN v.visited_on < {_day(dialect, str(HISTORY - 60))}
                 THEN {_stamp_of(dialect, "v.visited_on", 20, 2)} END,
            1
        FROM visit v
        WHERE v.role_information AND v.id % {every} = 0
        """,  # noqa: S608 (our own fragments)
        origin=origin,
    )


def _feedback(dialect: str, n: int, origin: date) -> None:
    """``n`` feedback links made on visits over the last WINDOW days; 75% answered within four
    days with a rating (5: 55%, 4: 30%, 3: 10%, 2: 4%, 1: 1%)."""
    lo = HISTORY - WINDOW
    used = f"x.hu < 75 AND x.d + x.lag <= {HISTORY}"
    _run(
        f"""
        INSERT INTO feedback_link (referral_id, advisor_id, token_hash, created_by_id,
            created_at, expires_at, used_at, rating, comment)
        SELECT c.referral_id, c.advisor_id, {_token(dialect, "x.i")}, c.advisor_id,
            {_stamp(dialect, "x.d", 3)}, {_stamp(dialect, "x.d + 14", 3)},
            CASE WHEN {used} THEN {_stamp(dialect, "x.d + x.lag", 5)} END,
            CASE WHEN {used} THEN
                CASE WHEN x.hr < 55 THEN 5 WHEN x.hr < 85 THEN 4 WHEN x.hr < 95 THEN 3
                     WHEN x.hr < 99 THEN 2 ELSE 1 END END,
            CASE WHEN {used} AND x.hr < 20 THEN '顾问服务专业、响应及时' END
        FROM (SELECT CAST(g.i AS BIGINT) AS i, {lo} + (CAST(g.i AS BIGINT) * 53) % {WINDOW} AS d,
                     (CAST(g.i AS BIGINT) * 7919) % 100 AS hr, g.i % 5 AS lag,
                     (CAST(g.i AS BIGINT) * 6007) % 100 AS hu
              FROM {series_sql(dialect)}) AS x
        JOIN bench_day bd ON bd.day = x.d
        JOIN bench_case c ON c.n = 1 + (x.i * 15485863) % NULLIF(bd.cases, 0)
        """,  # noqa: S608 (our own fragments)
        n=n,
        origin=origin,
    )


def build(sizes: Sizes, seed: int = 5) -> dict:
    """The whole city in the current app's (empty, migrated) database. Returns the people and
    the counts of what was built, with the build time."""
    from advisors.clock import today as shanghai_today
    from models import db

    began = time.perf_counter()
    rnd = random.Random(seed)
    today = shanghai_today()
    origin = today - timedelta(days=HISTORY)
    dialect = db.session.get_bind().dialect.name
    phases: dict[str, float] = {}
    mark = [time.perf_counter()]

    def phase(name: str) -> None:
        now = time.perf_counter()
        phases[name] = now - mark[0]
        mark[0] = now

    people = _people(sizes, rnd)
    served = _cases(people, sizes, today, rnd)
    phase("people, firms, cases")
    _case_tables(dialect, served)
    _visits(dialect, sizes.visits, origin)
    phase("visits")
    _visit_policies()
    _applications(dialect, sizes.applications, origin)
    _risk_reports(dialect, sizes.risk_reports, origin)
    _feedback(dialect, sizes.feedback, origin)
    db.session.execute(text("DROP TABLE bench_case"))
    db.session.execute(text("DROP TABLE bench_day"))
    if dialect == "postgresql":
        for table in ("enterprise", "referral"):
            db.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    db.session.commit()
    phase("policies, applications, risks, feedback")
    # Fresh statistics and visibility map, as autovacuum would give.
    if dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    phase("analyze")
    people["phases"] = phases
    people["seconds"] = time.perf_counter() - began
    people["built_on"] = today.isoformat()
    people["scale"] = sizes.scale
    people["seed"] = seed
    people["counts"] = {
        table: db.session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
        for table in (
            "user_account",
            "enterprise",
            "referral",
            "visit",
            "visit_policy",
            "financing_application",
            "risk_report",
            "feedback_link",
        )
    }
    if dialect == "postgresql":  # what --reuse needs to measure this city again
        kept = {k: people[k] for k in _KEPT}
        db.session.execute(text("CREATE TABLE bench_city (meta text NOT NULL)"))
        db.session.execute(text("INSERT INTO bench_city VALUES (:m)"), {"m": json.dumps(kept)})
        db.session.commit()
    return people


_KEPT = ("office_id", "office_name", "counts", "phases", "seconds", "built_on", "scale", "seed")


def _kept_city(url: str, sizes: Sizes) -> dict | None:
    """The people of a city an earlier run built today at this scale in the database of
    ``url`` (``--reuse``), or None when there is none to reuse."""
    from sqlalchemy import create_engine

    from advisors.clock import today as shanghai_today

    target = make_url(url)
    if target.drivername == "postgresql":
        target = target.set(drivername="postgresql+psycopg")
    engine = create_engine(target)
    try:
        with engine.connect() as conn:
            meta = conn.scalar(text("SELECT meta FROM bench_city"))
    except Exception:  # noqa: BLE001 (no such database or table: nothing to reuse)
        return None
    finally:
        engine.dispose()
    people = json.loads(meta) if meta else None
    if (
        people is None
        or people.get("scale") != sizes.scale
        or people.get("built_on") != shanghai_today().isoformat()
    ):
        return None
    return people


# ============================================================================ the floor
# One grouped aggregate per source table over the period, per advisor: the rows the compile
# must read and the sums it forms from them (advisors.services.assessments._aggregates), as an
# expert would write them by hand. ``advisor_id + 0`` makes the cases a plain scan grouped in
# memory (SQLite's planner would otherwise walk the (advisor_id, status) index with a table
# lookup per row) — coverage is cumulative, so every case assigned by the period's end is read.
# Satisfaction counts each case once (the default rubric's rule, firm_first): the firm's latest
# rating of a case in the month, else the bureau's rating of a case closed in the month that the
# firm has not rated by the month's end; summed in halves (the "average" rule needs them).
FLOOR = {
    "visits": """
        SELECT v.advisor_id, count(*),
            sum(CASE WHEN v.role_policy THEN 1 ELSE 0 END
                + CASE WHEN v.role_guidance THEN 1 ELSE 0 END
                + CASE WHEN v.role_financing THEN 1 ELSE 0 END
                + CASE WHEN v.role_information THEN 1 ELSE 0 END),
            sum(CASE WHEN v.role_policy THEN 1 ELSE 0 END),
            sum(CASE WHEN v.role_information THEN 1 ELSE 0 END),
            sum(CASE WHEN v.log_delay_days <= 3 THEN 1 ELSE 0 END)
        FROM visit v
        WHERE v.visited_on >= :first AND v.visited_on <= :last
        GROUP BY v.advisor_id""",
    "referrals": """
        SELECT r.advisor_id + 0, count(*),
            sum(CASE WHEN r.first_contact_on <= :last THEN 1 ELSE 0 END),
            sum(CASE WHEN r.first_contact_due >= :first AND r.first_contact_due <= :last
                     THEN 1 ELSE 0 END),
            sum(CASE WHEN r.first_contact_due >= :first AND r.first_contact_due <= :last
                      AND r.first_contact_on <= r.first_contact_due THEN 1 ELSE 0 END),
            sum(CASE WHEN r.closed_at >= :start AND r.closed_at < :end
                      AND r.satisfaction IS NOT NULL AND fc.rid IS NULL
                 THEN 2 * r.satisfaction ELSE 0 END),
            sum(CASE WHEN r.closed_at >= :start AND r.closed_at < :end
                      AND r.satisfaction IS NOT NULL AND fc.rid IS NULL THEN 1 ELSE 0 END)
        FROM referral r
        LEFT JOIN (SELECT b.referral_id AS rid, b.advisor_id AS aid
                   FROM feedback_link b
                   WHERE b.used_at < :end AND b.rating IS NOT NULL AND b.advisor_id IS NOT NULL
                   GROUP BY b.referral_id, b.advisor_id) AS fc
               ON fc.rid = r.id AND fc.aid = r.advisor_id
        WHERE r.advisor_id IS NOT NULL AND r.assigned_at < :end
          AND r.status NOT IN ('rejected', 'withdrawn')
        GROUP BY r.advisor_id + 0""",
    "financing": """
        SELECT f.advisor_id, count(DISTINCT f.enterprise_id), sum(f.disbursed_amount_wan),
            count(DISTINCT CASE WHEN f.first_loan THEN f.enterprise_id END)
        FROM financing_application f
        WHERE f.disbursed_on >= :first AND f.disbursed_on <= :last
        GROUP BY f.advisor_id""",
    "risk reports": """
        SELECT k.reporter_id, count(*)
        FROM risk_report k
        WHERE k.reported_at >= :start AND k.reported_at < :end
        GROUP BY k.reporter_id""",
    "ratings": """
        SELECT t.advisor_id, sum(2 * t.rating), count(*)
        FROM (SELECT b.advisor_id, b.rating,
                     row_number() OVER (PARTITION BY b.advisor_id, b.referral_id
                                        ORDER BY b.used_at DESC, b.id DESC) AS n
              FROM feedback_link b
              WHERE b.used_at >= :start AND b.used_at < :end AND b.rating IS NOT NULL
                AND b.advisor_id IS NOT NULL) AS t
        WHERE t.n = 1
        GROUP BY t.advisor_id""",
}

# SQLite evaluates a CASE lazily: the firm's rating of a case closed with a rating in the month
# is looked up for just those cases (the index on feedback_link.referral_id), cheaper there
# than joining every case to the firm's ratings; PostgreSQL would cost that look-up per row of
# the scan and turn JIT compilation on, so it takes the join above.
_RATED = "r.closed_at >= :start AND r.closed_at < :end AND r.satisfaction IS NOT NULL"
_FIRM_RATED = """EXISTS (SELECT 1 FROM feedback_link b
                         WHERE b.referral_id = r.id AND b.advisor_id = r.advisor_id
                           AND b.used_at < :end AND b.rating IS NOT NULL)"""
FLOOR_SQLITE = {
    "referrals": f"""
        SELECT r.advisor_id + 0, count(*),
            sum(CASE WHEN r.first_contact_on <= :last THEN 1 ELSE 0 END),
            sum(CASE WHEN r.first_contact_due >= :first AND r.first_contact_due <= :last
                     THEN 1 ELSE 0 END),
            sum(CASE WHEN r.first_contact_due >= :first AND r.first_contact_due <= :last
                      AND r.first_contact_on <= r.first_contact_due THEN 1 ELSE 0 END),
            sum(CASE WHEN {_RATED}
                     THEN CASE WHEN {_FIRM_RATED} THEN 0 ELSE 2 * r.satisfaction END
                     ELSE 0 END),
            sum(CASE WHEN {_RATED} THEN CASE WHEN {_FIRM_RATED} THEN 0 ELSE 1 END ELSE 0 END)
        FROM referral r
        WHERE r.advisor_id IS NOT NULL AND r.assigned_at < :end
          AND r.status NOT IN ('rejected', 'withdrawn')
        GROUP BY r.advisor_id + 0""",  # noqa: S608 (our own fragments)
}


def _floor_statements():
    from models import db

    out = {}
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    for name, sql in FLOOR.items():
        if sqlite:
            sql = FLOOR_SQLITE.get(name, sql)
        stmt = text(sql)
        binds = []
        for key in ("first", "last"):
            if key in stmt._bindparams:
                binds.append(bindparam(key, type_=Date()))
        for key in ("start", "end"):
            if key in stmt._bindparams:
                binds.append(bindparam(key, type_=utc_type()))
        out[name] = stmt.bindparams(*binds)
    return out


def run_floor(period) -> dict[str, list]:
    """The floor's five statements, results fetched."""
    from advisors.dbutil import custom_plans
    from models import db

    start, end = period.utc_bounds()
    values = {"first": period.first_day, "last": period.last_day, "start": start, "end": end}
    with custom_plans():  # planned for these bounds every time, as the compile's aggregates
        return {
            name: db.session.execute(stmt, values).all()
            for name, stmt in _floor_statements().items()
        }


def _share(part: int, whole: int) -> int | None:
    """part / whole rounded half up to 1e-6, in millionths (None: nothing to share)."""
    if not whole:
        return None
    value = (Decimal(part) / Decimal(whole)).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    return int(value * 1_000_000)


def floor_raws(result: dict[str, list]) -> dict[int, dict[str, int | None]]:
    """Each advisor's raw values computed from the floor's rows, in the unit the compile
    stores them (``Money``: millionths) — what the compile must arrive at."""
    sums: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for aid, n, roles, policy, info, on_time in result["visits"]:
        sums[aid].update(visits=n, roles=roles or 0, policy=policy or 0, info=info or 0)
        sums[aid]["on_time"] = on_time or 0
    for aid, cases, covered, due, met, sat_halves, sat_n in result["referrals"]:
        sums[aid].update(cases=cases, covered=covered or 0, due=due or 0, met=met or 0)
        sums[aid]["rating_halves"] += sat_halves or 0
        sums[aid]["ratings"] += sat_n or 0
    for aid, firms, amount, first_loans in result["financing"]:
        sums[aid].update(firms=firms, amount=amount or 0, first_loans=first_loans or 0)
    for aid, n in result["risk reports"]:
        sums[aid]["risks"] = n
    for aid, halves, n in result["ratings"]:
        sums[aid]["rating_halves"] += halves or 0
        sums[aid]["ratings"] += n
    million = 1_000_000
    return {
        aid: {
            "visit_coverage": _share(w["covered"], w["cases"]),
            "first_contact_on_time": _share(w["met"], w["due"]),
            "visits_logged": w["roles"] * million,
            "policy_promotion": w["policy"] * million,
            "firms_financed": w["firms"] * million,
            "amount_disbursed": int(w["amount"]),
            "first_loans": w["first_loans"] * million,
            "info_reports": (w["info"] + w["risks"]) * million,
            "satisfaction": _share(w["rating_halves"], 2 * w["ratings"]),
            "logs_on_time": _share(w["on_time"], w["visits"]),
        }
        for aid, w in sums.items()
    }


def _stored_raws(key: str) -> dict[int, dict[str, int | None]]:
    from models import db

    out: dict[int, dict[str, int | None]] = defaultdict(dict)
    for aid, metrics in db.session.execute(
        text(
            "SELECT r.advisor_id, CAST(r.metrics AS TEXT) FROM assessment_row r "
            "JOIN assessment a ON a.id = r.assessment_id WHERE a.period = :period"
        ),
        {"period": key},
    ):
        for metric, (raw, _points) in json.loads(metrics).items():
            # raw: a decimal string exact to 1e-6 — as millionths, like the floor's
            out[aid][metric] = None if raw is None else int(Decimal(raw).scaleb(6))
    return out


# ============================================================================ measuring
class City:
    """One built city: its app and what is measured in it."""

    def __init__(self, name: str, app, people: dict, sizes: Sizes):
        self.name, self.app, self.people, self.sizes = name, app, people, sizes
        self.floors: list[float] = []
        self.firsts: list[float] = []
        self.recompiles: list[float] = []

    def floor(self, period) -> None:
        from models import db

        with self.app.app_context():
            self.floors.append(timed(lambda: run_floor(period)))
            db.session.rollback()

    def compile(self, period, into: list[float]) -> None:
        from advisors.audit import acting_as
        from advisors.services.assessments import compile_period
        from models import User, db

        with self.app.app_context():
            office = db.session.get(User, self.people["office_id"])

            def run():
                with acting_as(office):
                    compile_period(period.key, office)
                db.session.commit()

            into.append(timed(run))

    def drop_draft(self, period) -> None:
        from models import db

        with self.app.app_context():
            ids = "(SELECT id FROM assessment WHERE period = :period)"
            for table in (
                "assessment_row",
                "assessment_institution",
                "assessment_adjustment",
                "assessment_comment",
            ):
                db.session.execute(
                    text(f"DELETE FROM {table} WHERE assessment_id IN {ids}"),  # noqa: S608
                    {"period": period.key},
                )
            db.session.execute(
                text("DELETE FROM assessment WHERE period = :period"), {"period": period.key}
            )
            db.session.commit()
            if db.engine.dialect.name == "postgresql":  # no dead rows left by the bench itself
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM assessment, assessment_row, assessment_institution"))

    def settle(self) -> None:
        """The statistics autovacuum gathers within a minute of a compile (the migrations have
        it analyze ``assessment_row`` after every 1,000 changed rows), before the pages are
        measured: every compile above made a new assessment id the planner does not know yet."""
        from models import db

        with self.app.app_context():
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("ANALYZE assessment_row, assessment_institution"))

    def check(self, period) -> list[str]:
        """Every raw value the compile stored against the same value computed from the
        floor's rows (empty: they all agree)."""
        from models import db

        with self.app.app_context():
            floor = floor_raws(run_floor(period))
            stored = _stored_raws(period.key)
            db.session.rollback()
        problems = []
        for aid, metrics in sorted(stored.items()):
            mine = floor.get(aid, {})
            for metric, raw in sorted(metrics.items()):
                expected = mine.get(metric, 0 if metric not in _SHARES else None)
                if expected != raw:
                    problems.append(
                        f"{self.name}: advisor {aid} {metric}: floor {expected}, compiled {raw}"
                    )
        missing = sorted(aid for aid in floor if aid not in stored)
        if missing:
            problems.append(f"{self.name}: advisors with work but no row: {missing[:10]}")
        return problems

    def profile(self, period) -> list[tuple[str, float, int]]:
        """One first compile, by the service's functions: (function, seconds, calls) for the
        calls made from ``compile_period`` itself (each function's time includes what it
        calls), then compile_period's own code, the commit and the total."""
        import functools
        import inspect

        from advisors.services.assessments import compiling as svc
        from models import db

        self.drop_draft(period)
        spent: dict[str, list] = defaultdict(lambda: [0.0, 0])
        depth = [0]

        def wrap(name, fn):
            @functools.wraps(fn)
            def timed_call(*args, **kwargs):
                depth[0] += 1
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    depth[0] -= 1
                    if depth[0] == 0:
                        spent[name][0] += time.perf_counter() - start
                        spent[name][1] += 1

            return timed_call

        statements: dict[str, list] = defaultdict(lambda: [0.0, 0])
        started: list[float] = []

        def before(conn, cursor, statement, parameters, context, executemany):
            started.append(time.perf_counter())

        def after(conn, cursor, statement, parameters, context, executemany):
            entry = statements[" ".join(statement.split())[:90]]
            entry[0] += time.perf_counter() - started.pop()
            entry[1] += 1

        with self.app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        originals = {
            name: fn
            for name, fn in vars(svc).items()
            if inspect.isfunction(fn)
            and fn.__module__.startswith(svc.__name__.rpartition(".")[0])
            and name != "compile_period"
        }
        for name, fn in originals.items():
            setattr(svc, name, wrap(name, fn))
        try:
            with self.app.app_context():
                from advisors.audit import acting_as
                from models import User

                office = db.session.get(User, self.people["office_id"])
                began = time.perf_counter()
                with acting_as(office):
                    svc.compile_period(period.key, office)
                compiled = time.perf_counter()
                db.session.commit()
                done = time.perf_counter()
        finally:
            for name, fn in originals.items():
                setattr(svc, name, fn)
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
        self.statements = sorted(
            ((k, v[0], v[1]) for k, v in statements.items()), key=lambda r: -r[1]
        )
        rows = sorted(((k, v[0], v[1]) for k, v in spent.items()), key=lambda r: -r[1])
        inside = sum(r[1] for r in rows)
        rows.append(("(compile_period's own code)", compiled - began - inside, 1))
        rows.append(("(commit)", done - compiled, 1))
        rows.append(("(total)", done - began, 1))
        return rows

    def floor_by_statement(self, period, repeats: int) -> list[tuple[str, float]]:
        """Median seconds of each of the floor's statements (executed and fetched)."""
        from advisors.dbutil import custom_plans
        from models import db

        start, end = period.utc_bounds()
        values = {"first": period.first_day, "last": period.last_day, "start": start, "end": end}
        out = []
        with self.app.app_context(), custom_plans():
            for name, stmt in _floor_statements().items():
                times = [
                    timed(lambda s=stmt: db.session.execute(s, values).all())
                    for _ in range(repeats)
                ]
                out.append((name, statistics.median(times)))
            db.session.rollback()
        return out


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _paired_ratio(values: list[float], floors: list[float]) -> float:
    """The median of ``values[i] / floors[i]``: runs measured side by side."""
    return statistics.median(v / f for v, f in zip(values, floors, strict=True))


def _route(app, url: str) -> bool:
    """Whether ``url`` is served by a route (not just by the 404 page)."""
    from werkzeug.exceptions import HTTPException

    try:
        app.url_map.bind("localhost").match(url, method="GET")
    except HTTPException:
        return False
    return True


def _small_url(db: str, small: str | None) -> str:
    if small:
        return small
    if db in ("", "sqlite"):
        return "sqlite"
    url = make_url(db)
    return url.set(database=f"{url.database}10").render_as_string(hide_password=False)


def _parse_month(value: str):
    from advisors.periods import Period

    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", value or "")
    if not match:
        raise argparse.ArgumentTypeError("use YYYY-MM, such as 2026-10")
    try:
        return Period("month", int(match.group(1)), int(match.group(2)))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _describe(city: City) -> str:
    c = city.people["counts"]
    reused = " (reused)" if "office" not in city.people else ""
    return (
        f"{city.name}{reused}: built in {city.people['seconds']:.1f} s — "
        f"{c['user_account']:,} users, {c['referral']:,} firms/referrals, {c['visit']:,} visits "
        f"({c['visit_policy']:,} policy links), {c['financing_application']:,} applications, "
        f"{c['risk_report']:,} risk reports, {c['feedback_link']:,} feedback links ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in city.people["phases"].items())
        + ")"
    )


def _month_counts(city: City, period) -> str:
    from models import db

    with city.app.app_context():
        visits = db.session.scalar(
            text(
                "SELECT count(*) FROM visit WHERE visited_on >= :a AND visited_on <= :b"
            ).bindparams(bindparam("a", type_=Date()), bindparam("b", type_=Date())),
            {"a": period.first_day, "b": period.last_day},
        )
        disbursed = db.session.scalar(
            text(
                "SELECT count(*) FROM financing_application "
                "WHERE disbursed_on >= :a AND disbursed_on <= :b"
            ).bindparams(bindparam("a", type_=Date()), bindparam("b", type_=Date())),
            {"a": period.first_day, "b": period.last_day},
        )
        rows = db.session.scalar(
            text(
                "SELECT count(*) FROM assessment_row r JOIN assessment a "
                "ON a.id = r.assessment_id WHERE a.period = :p"
            ),
            {"p": period.key},
        )
        db.session.rollback()
    return (
        f"{city.name}, {period.key}: {visits:,} visits, {disbursed:,} disbursements, "
        f"{rows:,} advisors assessed"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench assessments", description=__doc__)
    parser.add_argument(
        "--db",
        default="sqlite",
        help="'sqlite' (temporary files) or a PostgreSQL URL whose database is dropped and "
        "recreated (the small city: the same name with 10 appended)",
    )
    parser.add_argument("--db-small", default=None, help="URL for the city at a tenth")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--month", type=_parse_month, default="2026-10")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: measure the cities an earlier run built today at the same scale "
        "(their databases kept) instead of building them again",
    )
    args = parser.parse_args(argv)
    if not 0.001 <= args.scale <= 10:
        parser.error("--scale must be between 0.001 and 10")
    if args.repeats < 1 or args.requests < 1:
        parser.error("--repeats and --requests must be at least 1")
    period = args.month
    today = datetime.now(UTC).date()
    earliest = today - timedelta(days=WINDOW - 31)
    if period.first_day > today or period.last_day < earliest:
        parser.error(
            f"--month must be between {earliest:%Y-%m} and {today:%Y-%m}: the visits span the "
            f"last {WINDOW} days"
        )
    recreate = args.db not in ("", "sqlite")
    big_sizes, small_sizes = Sizes(args.scale), Sizes(args.scale / 10)

    small_db = _small_url(args.db, args.db_small)
    kept_big = _kept_city(args.db, big_sizes) if recreate and args.reuse else None
    kept_small = _kept_city(small_db, small_sizes) if recreate and args.reuse else None
    with scratch_app(args.db, recreate=recreate, reuse=kept_big is not None) as big_app:
        big = City(f"scale {args.scale:g}", big_app, kept_big or build(big_sizes), big_sizes)
        dialect = big_app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0]
        print(_describe(big), flush=True)
        with scratch_app(
            small_db, recreate=small_db != "sqlite", reuse=kept_small is not None
        ) as small_app:
            small = City(
                f"scale {args.scale / 10:g}",
                small_app,
                kept_small or build(small_sizes),
                small_sizes,
            )
            print(_describe(small), flush=True)
            return _measure(args, period, dialect, big, small)


def _measure(args, period, dialect: str, big: City, small: City) -> int:
    began = time.perf_counter()
    for city in (big, small):  # warm up: caches, statement compilation, the rubric's version 1
        city.floor(period)
        city.compile(period, [])
    for _ in range(args.repeats):
        for city in (big, small):
            city.floor(period)
            city.drop_draft(period)
            city.compile(period, city.firsts)
            city.compile(period, city.recompiles)
    print(_month_counts(big, period))
    print(_month_counts(small, period))
    problems = big.check(period) + small.check(period)
    # Each repeat measures the floor, then the compiles, side by side: the ratios are the
    # medians of those pairs (floors[0] of each city is the warm-up's: left out).
    floors, small_floors = big.floors[1:], small.floors[1:]
    floor = _median(floors)
    first, again = _median(big.firsts), _median(big.recompiles)
    small_first = _median(small.firsts)
    figures = [
        Figure(f"floor: 5 grouped aggregates, {period.key}", floor),
        Figure(
            "compile_period, first compile (+commit)",
            first,
            floor,
            COMPILE_TARGET,
            paired=_paired_ratio(big.firsts, floors),
        ),
        Figure(
            "compile_period, recompile of draft (+commit)",
            again,
            floor,
            COMPILE_TARGET,
            paired=_paired_ratio(big.recompiles, floors),
        ),
        Figure(f"  floor at scale {small.sizes.scale:g}", _median(small_floors)),
        Figure(f"  first compile at scale {small.sizes.scale:g}", small_first),
        Figure(
            "compile at 10x the data vs a tenth",
            first,
            small_first,
            SCALING_TARGET,
            paired=_paired_ratio(big.firsts, small.firsts),
        ),
        Figure(
            "(info) floor at 10x the data vs a tenth",
            floor,
            _median(small_floors),
            paired=_paired_ratio(floors, small_floors),
        ),
    ]
    print(f"compiles measured in {time.perf_counter() - began:.1f} s", flush=True)

    big.settle()
    pages = [
        ("assessment page (finance office)", f"/assessments/{period.key}"),
        ("notice page (finance office)", f"/assessments/{period.key}/notice"),
    ]
    missing = [url for _name, url in pages if not _route(big.app, url)]
    broken: list[str] = []
    if len(missing) < len(pages):
        office = signed_in(big.app, big.people["office_name"])
        trivial = "/notifications/"
        for name, url in pages:
            if url in missing:
                continue
            try:
                measured = paired(office, url, trivial, args.requests)
            except SystemExit as exc:  # a page that answers with an error
                broken.append(str(exc))
                continue
            figures.append(Figure(f"  trivial {trivial} (finance office)", measured.floor))
            figures.append(
                Figure(name, measured.seconds, measured.floor, PAGE_TARGET, paired=measured.ratio)
            )
    ok = print_table(
        f"Assessments on {dialect}, scale {args.scale:g} ({big.sizes.advisors:,} advisors, "
        f"{big.people['counts']['visit']:,} visits): median of {args.repeats} compiles, "
        f"{args.requests} requests",
        figures,
    )
    for url in missing:
        print(f"NOT MEASURED: no route serves {url} yet")
    for message in broken:
        print(f"NOT MEASURED: {message}")
    if problems:
        print(f"FLOOR MISMATCH ({len(problems)}): the floor does not read what the compile reads")
        for p in problems[:10]:
            print(f"  {p}")
    else:
        print("floor check: every raw value compiled equals the floor's (both cities)")
    print("the floor by statement (median seconds):")
    for name, seconds in big.floor_by_statement(period, args.repeats):
        print(f"  {seconds:8.3f}  {name}")
    print(f"one first compile at scale {args.scale:g}, by service function (seconds, calls):")
    for label, seconds, count in big.profile(period):
        print(f"  {seconds:8.3f} {count:>5}  {label}")
    if dialect.startswith("postgresql"):  # psycopg fetches while executing: times are whole
        print("the same compile's slowest SQL statements (seconds, executions):")
        for label, seconds, count in big.statements[:8]:
            print(f"  {seconds:8.3f} {count:>5}  {label}")
    return 0 if ok and not problems and not missing and not broken else 1
