"""The inbox and bureau lists at 200,000 referrals against a trivial signed-in page (target <= 3x).

``python -m bench lists [--referrals 200000] [--db sqlite|URL] [--requests 20]``

Builds a scratch database with the migrations applied; inserts in bulk (Core inserts in chunks)
one firm per referral, 200,000 referrals spread over 5 bureaus and 20 advisors at 4 institutions,
in every status, with about 3% co-referrals and half of the new ones opened by the finance office
user. Then, signed in through the Flask test client, times the median of ``--requests`` GETs of:
the trivial page (``/notifications/``: the bell, one small query plus the layout every page has),
the finance office's inbox ``/referrals/``, the inbox with filters, and a bureau's list. Each list
is compared with the trivial page of the same user (the navigation badges differ by role). Also
prints the SQL statements per request for page sizes 5 and 50 (they must be equal)."""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, text

from .common import (
    BUREAUS,
    PASSWORD,
    Figure,
    paired,
    print_table,
    query_count,
    scratch_app,
    signed_in,
)

TARGET = 3.0
CHUNK = 5000
INSTITUTIONS = [
    ("ABC", "江州农商银行", "bank"),
    ("ICB", "工商银行江州分行", "bank"),
    ("CCB", "建设银行江州分行", "bank"),
    ("PIC", "人保财险江州分公司", "insurer"),
]
# Status mix of a programme that has run for a while.
STATUS_MIX = [
    ("submitted", 12),
    ("assigned", 18),
    ("in_service", 25),
    ("resolved", 10),
    ("closed", 28),
    ("rejected", 4),
    ("withdrawn", 3),
]


def _setup_people():
    """Orgs and users through the services (audited, as in production), with a known password."""
    from advisors.audit import acting_as
    from advisors.services.orgs import create_org
    from advisors.services.users import create_user
    from models import Township, db

    people = {"bureaus": [], "advisors": []}
    with acting_as(label="bench"):
        for code, name in BUREAUS:
            org = create_org(code, name, "bureau")
            people["bureaus"].append(
                create_user(
                    username=f"bench_{code.lower()}",
                    password=PASSWORD,
                    role="bureau",
                    org=org,
                    display_name=f"{name}联络员",
                )
            )
        for code, name, kind in INSTITUTIONS:
            org = create_org(code, name, kind)
            for i in range(5):
                people["advisors"].append(
                    create_user(
                        username=f"adv_{code.lower()}{i}",
                        password=PASSWORD,
                        role="advisor",
                        org=org,
                        display_name=f"{name[:2]}顾问{i}",
                    )
                )
        office_org = create_org("JRB", "市金融工作局", "finance_office")
        people["office"] = create_user(
            username="bench_office",
            password=PASSWORD,
            role="finance_office",
            org=office_org,
            display_name="金融办",
        )
        towns = [Township(code=f"T{i:02d}", name=f"镇{i:02d}") for i in range(20)]
        db.session.add_all(towns)
        db.session.flush()
        people["townships"] = [t.id for t in towns]
    db.session.commit()
    return people


def _fill(people, n: int, seed: int = 11) -> None:
    """``n`` firms and referrals, their referring bureaus and some inbox reads, in bulk."""
    from advisors.credit_code import make_code
    from advisors.sizing import INDUSTRIES
    from models import Enterprise, Referral, ReferralBureau, ReferralRead, db

    rnd = random.Random(seed)
    industries = list(INDUSTRIES)
    sizes = ["micro", "small", "medium", "large", "unknown"]
    statuses = [s for s, w in STATUS_MIX for _ in range(w)]
    outcomes = ["financed", "financed", "policy_delivered", "no_need", "declined", "not_financed"]
    bureaus = people["bureaus"]
    advisors = people["advisors"]
    office_id = people["office"].id
    start = datetime.now(UTC) - timedelta(days=730)
    step = timedelta(days=730) / n
    body_chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

    def body(i: int) -> str:
        out = []
        for _ in range(8):
            i, r = divmod(i, len(body_chars))
            out.append(body_chars[r])
        return "".join(reversed(out))

    firms, cases, links, reads = [], [], [], []

    def flush():
        for table, rows in (
            (Enterprise, firms),
            (Referral, cases),
            (ReferralBureau, links),
            (ReferralRead, reads),
        ):
            if rows:
                db.session.execute(insert(table), rows)
                rows.clear()

    for i in range(1, n + 1):
        # Batches (an upload or an API push) share one timestamp: the id breaks the tie.
        created = start + step * (i - i % 7)
        bureau = bureaus[i % len(bureaus)]
        industry = industries[i % len(industries)]
        firms.append(
            {
                "id": i,
                "credit_code": make_code("9", "1", "330100", body(i)),
                "name": f"江州{industry[:4]}企业{i}有限公司",
                "industry": industry,
                "township_id": people["townships"][i % 20],
                "employees": rnd.randint(1, 900),
                "revenue_wan": Decimal(rnd.randint(10, 90000)),
                "size_class": rnd.choice(sizes),
                "registered_by_org_id": bureau.org_id,
                "created_at": created,
                "updated_at": created,
                "version": 1,
            }
        )
        status = rnd.choice(statuses)
        needs = rnd.choice(
            [
                ("financing",),
                ("financing", "policy"),
                ("policy",),
                ("guidance",),
                ("financing", "guidance"),
                ("insurance",),
            ]
        )
        row = {
            "id": i,
            "enterprise_id": i,
            "status": status,
            "need_financing": "financing" in needs,
            "need_policy": "policy" in needs,
            "need_guidance": "guidance" in needs,
            "need_insurance": "insurance" in needs,
            "amount_wan": Decimal(rnd.randint(10, 3000)) if "financing" in needs else None,
            "purpose": "流动资金",
            "org_id": bureau.org_id,
            "created_by_id": bureau.id,
            "source": "upload",
            "created_at": created,
            "updated_at": created,
            "version": 1,
            "advisor_id": None,
            "assigned_at": None,
            "first_contact_due": None,
            "first_contact_on": None,
            "resolved_at": None,
            "closed_at": None,
            "rejected_reason": "不符合条件" if status == "rejected" else None,
            "outcome_result": None,
            "outcome_amount_wan": None,
            "satisfaction": None,
        }
        if status in ("assigned", "in_service", "resolved", "closed"):
            assigned = created + timedelta(days=rnd.randint(0, 3))
            row.update(
                advisor_id=advisors[i % len(advisors)].id,
                assigned_at=assigned,
                first_contact_due=(assigned + timedelta(days=7)).date(),
            )
            if status != "assigned":
                row["first_contact_on"] = (assigned + timedelta(days=rnd.randint(1, 9))).date()
            if status in ("resolved", "closed"):
                result = rnd.choice(outcomes)
                row.update(
                    outcome_result=result,
                    resolved_at=assigned + timedelta(days=30),
                    outcome_amount_wan=Decimal(rnd.randint(10, 2000))
                    if result == "financed"
                    else None,
                )
            if status == "closed":
                row.update(satisfaction=rnd.randint(3, 5), closed_at=assigned + timedelta(days=40))
        cases.append(row)
        links.append(
            {
                "referral_id": i,
                "org_id": bureau.org_id,
                "created_at": created,
                "created_by_id": bureau.id,
                "needs": list(needs),
                "amount_wan": row["amount_wan"],
                "note": None,
            }
        )
        if i % 33 == 0:  # a co-referral by the next bureau
            other = bureaus[(i + 1) % len(bureaus)]
            links.append(
                {
                    "referral_id": i,
                    "org_id": other.org_id,
                    "created_at": created,
                    "created_by_id": other.id,
                    "needs": list(needs),
                    "amount_wan": row["amount_wan"],
                    "note": "同时推荐",
                }
            )
        if status == "submitted" and i % 2 == 0:
            reads.append({"user_id": office_id, "referral_id": i, "at": created})
        if len(cases) >= CHUNK:
            flush()
    flush()
    if db.session.get_bind().dialect.name == "postgresql":
        for table in ("enterprise", "referral"):
            db.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    db.session.commit()
    db.session.execute(text("ANALYZE"))  # fresh statistics, as autovacuum would give
    db.session.commit()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench lists", description=__doc__)
    parser.add_argument("--referrals", type=int, default=200_000)
    parser.add_argument("--db", default="sqlite", help="'sqlite' (a temp file) or a PostgreSQL URL")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)

    with scratch_app(args.db) as app:
        began = time.perf_counter()
        people = _setup_people()
        _fill(people, args.referrals)
        dialect = app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0]
        print(
            f"built {args.referrals:,} referrals on {dialect} in "
            f"{time.perf_counter() - began:.1f} s"
        )
        office = signed_in(app, people["office"].username)
        bureau = signed_in(app, people["bureaus"][0].username)
        trivial = "/notifications/"
        pages = [
            ("inbox /referrals/ (finance office)", office, "/referrals/"),
            (
                "inbox, filtered (industry, need)",
                office,
                "/referrals/?status=submitted&industry=retail&need=financing",
            ),
            (
                "inbox, filtered (bureau, amount)",
                office,
                "/referrals/?status=submitted&bureau=SWJ&amount_min=500",
            ),
            ("all statuses (finance office)", office, "/referrals/?status="),
            ("bureau list /referrals/ (bureau)", bureau, "/referrals/"),
            ("bureau list, status closed", bureau, "/referrals/?status=closed"),
        ]
        figures = []
        for name, client, url in pages:
            measured = paired(client, url, trivial, args.requests)
            who = "finance office" if client is office else "bureau"
            figures.append(Figure(f"  trivial {trivial} ({who})", measured.floor))
            figures.append(
                Figure(name, measured.seconds, measured.floor, TARGET, paired=measured.ratio)
            )
        measured = paired(office, "/referrals/?status=&limit=200", trivial, args.requests)
        figures.append(
            Figure(
                "(info) 200 a page, all statuses",
                measured.seconds,
                measured.floor,
                paired=measured.ratio,
            )
        )
        ok = print_table(
            f"Lists at {args.referrals:,} referrals: median of {args.requests} requests, "
            f"ratio against the trivial page of the same user",
            figures,
        )
        print("SQL statements per request (limit 5 / limit 50):")
        for name, client, url in pages:
            sep = "&" if "?" in url else "?"
            few = query_count(app, client, f"{url}{sep}limit=5")
            many = query_count(app, client, f"{url}{sep}limit=50")
            same = "fixed" if few == many else "VARIES"
            print(f"  {name:<44} {few:>3} / {many:<3} {same}")
            ok = ok and few == many
        return 0 if ok else 1
