"""The advisor's workbench at 1,000,000 visits against a trivial signed-in page (target <= 3x).

``python -m bench workbench [--visits 1000000] [--db sqlite|URL] [--requests 20]``

Builds a scratch database with the migrations applied, then a programme that has run for two
years: 200 advisors at 4 institutions, about 40,000 firms and cases, ``--visits`` visits in all
and one financing application per ten visits. The measured advisor has 300 open cases (first
contacts pending, overdue and due soon, follow-ups planned and missed, outcomes waiting) plus
100 closed ones, 5,000 visits over the last year and 600 applications in every stage. Firms
and cases are inserted with Core inserts in chunks; visits and applications with one
``INSERT … SELECT`` each over a generated series (``generate_series`` on PostgreSQL, a
recursive CTE on SQLite), never row by row.

Then, signed in through the Flask test client as the measured advisor, times the median of
``--requests`` GETs of the workbench (``/``) and of the trivial page (``/notifications/``: the
bell, one small query plus the layout every page has), taken alternately. Also prints the SQL
statements per request of the workbench for the measured advisor and for an advisor with no
case at all (they must be equal)."""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Date, Integer, bindparam, func, insert, select, text

from .common import (
    PASSWORD,
    Figure,
    body_text,
    paired,
    print_table,
    query_count,
    scratch_app,
    series_sql,
    signed_in,
    timed,
    utc_type,
)

TARGET = 3.0
CHUNK = 5000
ADVISORS = 200  # the measured one among them
CASES_PER_ADVISOR = 200  # the others'
MY_OPEN = 300
MY_CLOSED = 100
MY_VISITS = 5000
MY_APPLICATIONS = 600
INSTITUTIONS = [
    ("ABC", "江州农商银行", "bank"),
    ("ICB", "工商银行江州分行", "bank"),
    ("CCB", "建设银行江州分行", "bank"),
    ("PIC", "人保财险江州分公司", "insurer"),
]


def _setup_people():
    """Orgs and the users who sign in, through the services (audited, as in production); the
    other advisors in bulk with one password hash (they never sign in)."""
    from advisors.audit import acting_as
    from advisors.security import hash_password
    from advisors.services.orgs import create_org
    from advisors.services.users import create_user
    from models import User, db

    people = {}
    with acting_as(label="bench"):
        bureau_org = create_org("GXJ", "工业和信息化局", "bureau")
        people["bureau"] = create_user(
            username="bench_gxj", password=PASSWORD, role="bureau", org=bureau_org
        )
        orgs = [create_org(code, name, kind) for code, name, kind in INSTITUTIONS]
        people["me"] = create_user(
            username="bench_me",
            password=PASSWORD,
            role="advisor",
            org=orgs[0],
            display_name="张伟",
        )
        people["newcomer"] = create_user(
            username="bench_new",
            password=PASSWORD,
            role="advisor",
            org=orgs[1],
            display_name="新顾问",
        )
        office_org = create_org("JRB", "市金融工作局", "finance_office")
        people["office"] = create_user(
            username="bench_office", password=PASSWORD, role="finance_office", org=office_org
        )
        db.session.flush()
    now = datetime.now(UTC)
    digest = hash_password(PASSWORD)
    db.session.execute(
        insert(User),
        [
            {
                "username": f"bench_adv{i:03d}",
                "display_name": f"顾问{i:03d}",
                "password_hash": digest,
                "role": "advisor",
                "org_id": orgs[i % len(orgs)].id,
                "active": True,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(ADVISORS - 1)
        ],
    )
    db.session.commit()
    for key in ("me", "newcomer", "bureau", "office"):
        people[f"{key}_name"] = people[key].username
    people["me_id"] = people["me"].id
    people["others"] = list(
        db.session.execute(
            select(User.id).where(User.username.like("bench_adv%")).order_by(User.id)
        ).scalars()
    )
    return people


def _fill_cases(people, today: date, seed: int = 7) -> dict:
    """Firms and cases, in bulk: the other advisors' first (ids 1..n), then the measured
    advisor's (the next ``MY_OPEN + MY_CLOSED`` ids). Returns the id ranges."""
    from advisors.credit_code import make_code
    from advisors.sizing import INDUSTRIES
    from models import Enterprise, Referral, ReferralBureau, db

    rnd = random.Random(seed)
    industries = list(INDUSTRIES)
    bureau = people["bureau"]
    others = people["others"]
    n_others = len(others) * CASES_PER_ADVISOR
    total = n_others + MY_OPEN + MY_CLOSED
    start = datetime.now(UTC) - timedelta(days=730)
    firms, cases, links = [], [], []

    def flush():
        for model, rows in ((Enterprise, firms), (Referral, cases), (ReferralBureau, links)):
            if rows:
                db.session.execute(insert(model), rows)
                rows.clear()

    for i in range(1, total + 1):
        mine = i > n_others
        k = i - n_others  # the measured advisor's k-th case (1-based) when mine
        if mine:
            created = datetime.now(UTC) - timedelta(days=MY_OPEN + MY_CLOSED - k + 30)
        else:
            created = start + timedelta(minutes=i * 15)
        industry = industries[i % len(industries)]
        firms.append(
            {
                "id": i,
                "credit_code": make_code("9", "1", "330100", body_text(i)),
                "name": f"江州{industry[:4]}企业{i}有限公司",
                "industry": industry,
                "employees": rnd.randint(1, 900),
                "revenue_wan": Decimal(rnd.randint(10, 90000)),
                "size_class": "small",
                "registered_by_org_id": bureau.org_id,
                "created_at": created,
                "updated_at": created,
                "version": 1,
            }
        )
        row = {
            "id": i,
            "enterprise_id": i,
            "need_financing": True,
            "need_policy": i % 2 == 0,
            "need_guidance": False,
            "need_insurance": False,
            "amount_wan": Decimal(rnd.randint(10, 3000)),
            "purpose": "流动资金",
            "org_id": bureau.org_id,
            "created_by_id": bureau.id,
            "source": "upload",
            "created_at": created,
            "updated_at": created,
            "version": 1,
            "assigned_at": created + timedelta(days=1),
            "first_contact_due": None,
            "first_contact_on": None,
            "last_visit_on": None,
            "next_visit_on": None,
            "resolved_at": None,
            "closed_at": None,
            "outcome_result": None,
        }
        if not mine:
            status = ("assigned", "in_service", "in_service", "resolved", "closed")[i % 5]
            row["advisor_id"] = others[i % len(others)]
            day = row["assigned_at"].date()
            row["first_contact_due"] = day + timedelta(days=7)
            if status != "assigned":
                row["first_contact_on"] = day + timedelta(days=3)
                row["last_visit_on"] = min(today, day + timedelta(days=30))
        else:
            row["advisor_id"] = people["me_id"]
            if k <= 60:  # first contact pending: due from 10 days ago to 10 days ahead
                status = "assigned"
                row["first_contact_due"] = today + timedelta(days=k % 21 - 10)
            elif k <= MY_OPEN:
                status = "resolved" if k > MY_OPEN - 20 else "in_service"
                row["first_contact_due"] = today - timedelta(days=k % 90 + 20)
                row["first_contact_on"] = today - timedelta(days=k % 90 + 25)
                row["last_visit_on"] = today - timedelta(days=k % 40)
                if k % 4:  # a follow-up planned, from a month ago to two months ahead
                    row["next_visit_on"] = today + timedelta(days=k % 90 - 30)
            else:
                status = "closed"
                row["first_contact_on"] = today - timedelta(days=200)
                row["first_contact_due"] = today - timedelta(days=195)
        row["status"] = status
        if status in ("resolved", "closed"):
            row["outcome_result"] = "financed"
            row["resolved_at"] = row["assigned_at"] + timedelta(days=30)
        if status == "closed":
            row["closed_at"] = row["assigned_at"] + timedelta(days=40)
        cases.append(row)
        links.append(
            {
                "referral_id": i,
                "org_id": bureau.org_id,
                "created_at": created,
                "created_by_id": bureau.id,
                "needs": ["financing"],
                "amount_wan": row["amount_wan"],
                "note": None,
            }
        )
        if len(cases) >= CHUNK:
            flush()
    flush()
    return {"others": (1, n_others), "mine": (n_others + 1, total)}


def _days_before(dialect: str, offset: str) -> str:
    """SQL for the date ``:today`` minus ``offset`` (an integer expression) days."""
    if dialect == "postgresql":
        return f"(CAST(:today AS date) - ({offset}))"
    return f"date(:today, '-' || ({offset}) || ' days')"


def _insert_visits(dialect: str, n: int, first: int, count: int, days: int, today: date) -> None:
    """``n`` visits on the cases ``first .. first + count - 1`` (their advisor's), spread over
    the last ``days`` days."""
    from models import db

    day = _days_before(dialect, f"(g.i * 37) % {days}")
    stmt = text(
        f"""
        INSERT INTO visit (referral_id, enterprise_id, advisor_id, org_id, visited_on, mode,
            role_policy, role_guidance, role_financing, role_information, summary, version,
            created_at, updated_at)
        SELECT r.id, r.enterprise_id, r.advisor_id, u.org_id, {day},
            CASE g.i % 4 WHEN 0 THEN 'onsite' WHEN 1 THEN 'phone' WHEN 2 THEN 'online'
                ELSE 'event' END,
            g.i % 2 = 0, g.i % 3 = 0, g.i % 5 = 0,
            (g.i % 2 <> 0 AND g.i % 3 <> 0 AND g.i % 5 <> 0) OR g.i % 7 = 0,
            '走访企业，了解经营与融资需求', 1, :now, :now
        FROM {series_sql(dialect)}
        JOIN referral r ON r.id = :first + (CAST(g.i AS BIGINT) * 7919) % :count
        JOIN user_account u ON u.id = r.advisor_id
        """  # noqa: S608 (our own fragments)
    ).bindparams(
        bindparam("today", type_=Date()),
        bindparam("now", type_=utc_type()),
        bindparam("n", type_=Integer()),
        bindparam("first", type_=Integer()),
        bindparam("count", type_=Integer()),
    )
    db.session.execute(
        stmt,
        {"n": n, "first": first, "count": count, "today": today, "now": datetime.now(UTC)},
    )


def _insert_applications(
    dialect: str, n: int, first: int, count: int, days: int, today: date
) -> None:
    """``n`` applications on the cases ``first .. first + count - 1``: 20% applied, 15%
    approved, 50% disbursed, 15% declined; applied 14 to 14 + ``days`` days ago, approved a
    week later, disbursed a fortnight later."""
    from models import db

    off = f"(14 + (g.i * 13) % {days})"
    applied = _days_before(dialect, off)
    approved = _days_before(dialect, f"{off} - 7")
    disbursed = _days_before(dialect, f"{off} - 14")
    stage = (
        "CASE WHEN g.i % 20 < 4 THEN 'applied' WHEN g.i % 20 < 7 THEN 'approved' "
        "WHEN g.i % 20 < 17 THEN 'disbursed' ELSE 'declined' END"
    )
    granted = "g.i % 20 BETWEEN 4 AND 16"
    paid = "g.i % 20 BETWEEN 7 AND 16"
    wan = 1_000_000  # Money is stored in millionths of 万元
    stmt = text(
        f"""
        INSERT INTO financing_application (referral_id, enterprise_id, advisor_id, org_id,
            product, amount_wan, first_loan, unsecured, stage, applied_on, approved_on,
            approved_amount_wan, disbursed_on, disbursed_amount_wan, declined_on,
            declined_reason, version, created_at, updated_at)
        SELECT r.id, r.enterprise_id, r.advisor_id, u.org_id, '流动资金贷款',
            ((g.i % 500) + 10) * {wan}, g.i % 4 = 0, g.i % 3 = 0, {stage}, {applied},
            CASE WHEN {granted} THEN {approved} END,
            CASE WHEN {granted} THEN ((g.i % 500) + 5) * {wan} + 250000 END,
            CASE WHEN {paid} THEN {disbursed} END,
            CASE WHEN {paid} THEN ((g.i % 500) + 5) * {wan} + 250000 END,
            CASE WHEN g.i % 20 >= 17 THEN {approved} END,
            CASE WHEN g.i % 20 >= 17 THEN '资质不足' END,
            1, :now, :now
        FROM {series_sql(dialect)}
        JOIN referral r ON r.id = :first + (CAST(g.i AS BIGINT) * 104729) % :count
        JOIN user_account u ON u.id = r.advisor_id
        """  # noqa: S608 (our own fragments)
    ).bindparams(
        bindparam("today", type_=Date()),
        bindparam("now", type_=utc_type()),
        bindparam("n", type_=Integer()),
        bindparam("first", type_=Integer()),
        bindparam("count", type_=Integer()),
    )
    db.session.execute(
        stmt,
        {"n": n, "first": first, "count": count, "today": today, "now": datetime.now(UTC)},
    )


def _fill(people, visits: int) -> dict:
    from advisors.clock import today as shanghai_today
    from models import db

    today = shanghai_today()
    dialect = db.session.get_bind().dialect.name
    ranges = _fill_cases(people, today)
    (o_first, o_last), (m_first, m_last) = ranges["others"], ranges["mine"]
    other_visits = max(visits - MY_VISITS, 0)
    _insert_visits(dialect, other_visits, o_first, o_last - o_first + 1, 730, today)
    _insert_visits(dialect, MY_VISITS, m_first, m_last - m_first + 1, 365, today)
    _insert_applications(dialect, other_visits // 10, o_first, o_last - o_first + 1, 700, today)
    _insert_applications(dialect, MY_APPLICATIONS, m_first, m_last - m_first + 1, 120, today)
    if dialect == "postgresql":
        for table in ("enterprise", "referral", "user_account"):
            db.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    db.session.commit()
    # Fresh statistics and visibility map, as autovacuum would give.
    if dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return ranges


def _counts(people) -> dict:
    from models import FinancingApplication, Referral, Visit, db

    me = people["me_id"]

    def count(model, *where):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))

    return {
        "visits": count(Visit),
        "applications": count(FinancingApplication),
        "cases": count(Referral),
        "my_open": count(
            Referral,
            Referral.advisor_id == me,
            Referral.status.in_(("assigned", "in_service", "resolved")),
        ),
        "my_visits": count(Visit, Visit.advisor_id == me),
        "my_applications": count(FinancingApplication, FinancingApplication.advisor_id == me),
    }


def _service_time(app, people, requests: int) -> float:
    """The workbench service alone (its six queries and the ranking), median."""
    import statistics

    from advisors.services.workbench import workbench
    from models import User, db

    times = []
    for _ in range(requests):
        with app.test_request_context("/"):
            user = db.session.get(User, people["me_id"])
            times.append(timed(lambda u=user: workbench(u)))
            db.session.remove()
    return statistics.median(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench workbench", description=__doc__)
    parser.add_argument("--visits", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite", help="'sqlite' (a temp file) or a PostgreSQL URL")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)
    if args.visits < MY_VISITS:
        parser.error(f"--visits must be at least {MY_VISITS} (the measured advisor's)")

    with scratch_app(args.db) as app:
        began = time.perf_counter()
        people = _setup_people()
        _fill(people, args.visits)
        dialect = app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0]
        sizes = _counts(people)
        print(
            f"built on {dialect} in {time.perf_counter() - began:.1f} s: "
            f"{sizes['visits']:,} visits, {sizes['applications']:,} applications, "
            f"{sizes['cases']:,} cases; the measured advisor: {sizes['my_open']} open cases, "
            f"{sizes['my_visits']:,} visits, {sizes['my_applications']} applications"
        )
        me = signed_in(app, people["me_name"])
        trivial = "/notifications/"
        measured = paired(me, "/", trivial, args.requests)
        figures = [
            Figure(f"  trivial {trivial} (advisor)", measured.floor),
            Figure(
                "workbench / (advisor, 300 firms)",
                measured.seconds,
                measured.floor,
                TARGET,
                paired=measured.ratio,
            ),
            Figure("(info) workbench service alone", _service_time(app, people, args.requests)),
        ]
        ok = print_table(
            f"Workbench at {sizes['visits']:,} visits: median of {args.requests} requests, "
            f"ratio against the trivial page of the same user",
            figures,
        )
        newcomer = signed_in(app, people["newcomer_name"])
        full = query_count(app, me, "/")
        empty = query_count(app, newcomer, "/")
        same = "fixed" if full == empty else "VARIES"
        print("SQL statements per request (300 firms / no firm):")
        print(f"  {'workbench /':<44} {full:>3} / {empty:<3} {same}")
        return 0 if ok and full == empty else 1
