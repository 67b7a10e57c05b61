"""The advisor's workbench (home page): only my firms, ranked by urgency on the service-level
clock, first contacts due and overdue, financing in progress by stage, my month's figures to the
fen, a one-tap "log a visit" per firm, and a fixed number of queries whatever the caseload."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import update

from advisors.audit import acting_as
from advisors.services import referrals as svc
from advisors.services import workbench as wb
from advisors.services.users import update_advisor_profile
from advisors.workdays import WorkdayCalendar
from models import AdvisorProfile, FinancingApplication, Referral, User, Visit, db

# A Wednesday in an ordinary week (no holiday near it).
TODAY = date(2026, 11, 11)


@pytest.fixture
def people(make):
    bank = make.org("bank", code="ABC", name="江州农商银行")
    return {
        "bureau": make.user("bureau", org=make.org("bureau", code="GXJ")),
        "office": make.user("finance_office"),
        "advisor": make.user("advisor", org=bank, username="adv_li"),
        "advisor2": make.user("advisor", org=bank, username="adv_wang"),
        "liaison": make.user("liaison", org=bank),
    }


@pytest.fixture
def today(travel):
    travel(TODAY)
    return TODAY


def new_case(make, bureau, name: str | None = None) -> int:
    data = {
        "credit_code": make.credit_code(),
        "name": name or f"江州市测试企业{make.n()}有限公司",
        "industry": "industry",
        "needs": ["financing"],
        "amount_wan": "100",
    }
    with acting_as(bureau):
        (result,) = svc.submit(bureau, [data], source="form")
    db.session.commit()
    return result.referral_id


def assign(travel, office, rid: int, advisor: User, on: date = TODAY) -> Referral:
    """Assign on day ``on``: the first contact falls due on the real working-day clock."""
    travel(on)
    with acting_as(office):
        (referral,) = svc.assign(office, [rid], advisor.username)
    db.session.commit()
    travel(TODAY)
    return referral


def contact(advisor: User, rid: int, on: date, next_visit: date | None = None) -> None:
    """What the visit service does on a first visit: first contact, in service, the dates."""
    with acting_as(advisor):
        referral = db.session.get(Referral, rid)
        svc.record_first_contact(advisor, referral, on)
        referral.last_visit_on = on
        referral.next_visit_on = next_visit
    db.session.commit()


def set_status(rid: int, status: str) -> None:
    db.session.execute(update(Referral).where(Referral.id == rid).values(status=status))
    db.session.commit()


def visit(advisor: User, rid: int, on: date) -> Visit:
    referral = db.session.get(Referral, rid)
    with acting_as(advisor):
        v = Visit(
            referral_id=rid,
            enterprise_id=referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            visited_on=on,
            mode="onsite",
            role_financing=True,
            summary="了解融资需求",
        )
        db.session.add(v)
        db.session.commit()
    return v


def application(advisor: User, rid: int, amount: str, **values) -> FinancingApplication:
    referral = db.session.get(Referral, rid)
    data = {"stage": "applied", "applied_on": date(2026, 10, 1)}
    data.update(values)
    with acting_as(advisor):
        app = FinancingApplication(
            referral_id=rid,
            enterprise_id=referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            amount_wan=Decimal(amount),
            **data,
        )
        db.session.add(app)
        db.session.commit()
    return app


def page(client) -> str:
    r = client.get("/")
    assert r.status_code == 200
    return html_lib.unescape(r.get_data(as_text=True))


def case_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'id="case-(\d+)"', html)]


# ------------------------------------------------------------------ whose firms
def test_only_my_open_cases_are_listed(client, login, make, travel, people, today):
    me, other = people["advisor"], people["advisor2"]
    mine = [new_case(make, people["bureau"], f"我的企业{i}") for i in range(3)]
    theirs = new_case(make, people["bureau"], "别人的企业")
    new_case(make, people["bureau"], "未分配企业")  # not assigned: nobody's workbench
    closed = new_case(make, people["bureau"], "已结案企业")
    for rid in (*mine, closed):
        assign(travel, people["office"], rid, me, date(2026, 11, 9))
    assign(travel, people["office"], theirs, other, date(2026, 11, 9))
    contact(me, mine[1], date(2026, 11, 10))
    set_status(mine[2], "resolved")
    set_status(closed, "closed")

    login(me)
    html = page(client)
    assert sorted(case_ids(html)) == sorted(mine)
    assert "别人的企业" not in html and "未分配企业" not in html and "已结案企业" not in html
    for rid in mine:
        assert f'href="/visits/new?referral_id={rid}"' in html
        assert f'href="/referrals/{rid}"' in html
    statuses = dict(re.findall(r'id="case-(\d+)" data-status="(\w+)"', html))
    assert statuses == {
        str(mine[0]): "assigned",
        str(mine[1]): "in_service",
        str(mine[2]): "resolved",
    }

    login(other)
    html = page(client)
    assert case_ids(html) == [theirs]
    assert "我的企业" not in html


def test_an_advisor_without_cases_sees_an_empty_workbench(client, login, people, today):
    login(people["advisor"])
    html = page(client)
    assert case_ids(html) == []
    assert "No open cases yet." in html
    assert 'data-figure="disbursed_wan">0.00' in html
    # The profile prompt is kept: a new advisor has no industries or townships yet.
    assert 'data-testid="profile-todo"' in html
    assert "industries you know" in html and "townships you serve" in html
    assert f'href="/admin/advisors/{people["advisor"].id}/profile"' in html


def test_the_profile_prompt_goes_once_the_profile_is_complete(client, login, make, people, today):
    me = people["advisor"]
    town = make.township()
    with acting_as(me):
        update_advisor_profile(
            db.session.get(AdvisorProfile, me.id),
            title="客户经理",
            capacity=12,
            accepting=False,
            specialties=["industry"],
            township_ids=[town.id],
        )
    db.session.commit()
    login(me)
    html = page(client)
    assert 'data-testid="profile-todo"' not in html
    line = html.split('data-testid="workbench-profile"')[1].split("</p>")[0]
    assert "客户经理" in line and "0 firms open, capacity 12" in line
    assert "Not taking new firms" in line
    assert f'href="/admin/advisors/{me.id}/profile"' in line


# ------------------------------------------------------------------ urgency and the clock
@pytest.fixture
def ranked(make, travel, people, today):
    """Seven cases of adv_li, one of each kind of urgency, made through the real clock."""
    me, office, bureau = people["advisor"], people["office"], people["bureau"]
    ids = {}
    # Assigned Tue 11-03: due Tue 11-10 -> overdue on Wed 11-11.
    ids["fc_overdue"] = new_case(make, bureau)
    assign(travel, office, ids["fc_overdue"], me, date(2026, 11, 3))
    # Assigned Wed 11-04: due Wed 11-11 (today) -> due soon.
    ids["fc_today"] = new_case(make, bureau)
    assign(travel, office, ids["fc_today"], me, date(2026, 11, 4))
    # Assigned Tue 11-10: due Tue 11-17, four working days away -> no flag.
    ids["fc_later"] = new_case(make, bureau)
    assign(travel, office, ids["fc_later"], me, date(2026, 11, 10))
    # Contacted, follow-up planned for 11-09 and missed.
    ids["visit_late"] = new_case(make, bureau)
    assign(travel, office, ids["visit_late"], me, date(2026, 11, 2))
    contact(me, ids["visit_late"], date(2026, 11, 3), next_visit=date(2026, 11, 9))
    # Contacted, follow-up planned for today -> due.
    ids["visit_today"] = new_case(make, bureau)
    assign(travel, office, ids["visit_today"], me, date(2026, 11, 2))
    contact(me, ids["visit_today"], date(2026, 11, 4), next_visit=TODAY)
    # Contacted, follow-up planned for Thu 11-12: the advisor's own plan, not flagged before.
    ids["visit_later"] = new_case(make, bureau)
    assign(travel, office, ids["visit_later"], me, date(2026, 11, 2))
    contact(me, ids["visit_later"], date(2026, 11, 4), next_visit=date(2026, 11, 12))
    # Contacted, nothing planned.
    ids["no_plan"] = new_case(make, bureau)
    assign(travel, office, ids["no_plan"], me, date(2026, 11, 2))
    contact(me, ids["no_plan"], date(2026, 11, 5))
    return ids


def test_firms_are_ranked_by_urgency_with_the_sla_flags(people, ranked, today):
    bench = wb.workbench(people["advisor"])
    order = [row.id for row in bench.urgent]
    # Overdue first (the older due date first), then by due date, nothing due last.
    assert order == [
        ranked["visit_late"],  # 11-09
        ranked["fc_overdue"],  # 11-10
        ranked["fc_today"],  # 11-11
        ranked["visit_today"],  # 11-11, a later case
        ranked["visit_later"],  # 11-12
        ranked["fc_later"],  # 11-17
        ranked["no_plan"],
    ]
    flags = {row.id: (row.due_kind, row.due_on, row.flag) for row in bench.urgent}
    assert flags[ranked["fc_overdue"]] == ("first_contact", date(2026, 11, 10), "overdue")
    assert flags[ranked["fc_today"]] == ("first_contact", date(2026, 11, 11), "due_soon")
    assert flags[ranked["fc_later"]] == ("first_contact", date(2026, 11, 17), None)
    assert flags[ranked["visit_late"]] == ("visit", date(2026, 11, 9), "overdue")
    assert flags[ranked["visit_today"]] == ("visit", TODAY, "due_soon")
    assert flags[ranked["visit_later"]] == ("visit", date(2026, 11, 12), None)
    assert flags[ranked["no_plan"]] == (None, None, None)
    fc = bench.first_contacts
    assert (fc.waiting, fc.overdue, fc.due_soon) == (3, 1, 1)
    assert [r.id for r in fc.rows] == [ranked["fc_overdue"], ranked["fc_today"]]
    assert bench.visits_overdue == 1
    assert bench.firms_total == 7
    assert bench.by_status == {"assigned": 3, "in_service": 4, "resolved": 0}


def test_first_contact_flags_agree_with_the_case_list(client, login, people, ranked, today):
    """The workbench and the case list flag a first contact the same way (one clock)."""
    login(people["advisor"])
    listed = client.get("/referrals/?status=").get_data(as_text=True)
    home = page(client)
    for key in ("fc_overdue", "fc_today", "fc_later"):
        rid = ranked[key]
        row = listed.split(f'id="referral-{rid}"')[1].split("</tr>")[0]
        card = home.split(f'id="case-{rid}"')[1].split('data-testid="log-visit"')[0]
        in_list = re.findall(r'data-sla="(\w+)"', row)
        assert re.findall(r'data-sla="(\w+)"', card) == in_list, key
    first = home.split('data-testid="first-contacts"')[1].split("</section>")[0]
    assert re.search(r'data-count="overdue">1<', first)
    assert re.search(r'data-count="due_soon">1<', first)
    assert re.search(r'data-count="waiting">3<', first)
    assert re.findall(r'data-first-contact="(\d+)"', first) == [
        str(ranked["fc_overdue"]),
        str(ranked["fc_today"]),
    ]


def test_a_holiday_moves_the_flag(people, ranked, today):
    """Days off recorded by the finance office reach the workbench's clock: a first contact
    due Tue 11-17 is four working days from Wed 11-11, two with Thu and Fri off, and one (due
    soon) with Mon 11-16 off too."""
    cal = WorkdayCalendar({date(2026, 11, 12): False, date(2026, 11, 13): False})
    bench = wb.workbench(people["advisor"], cal=cal)
    assert {row.id: row.flag for row in bench.urgent}[ranked["fc_later"]] is None
    cal = WorkdayCalendar({date(2026, 11, d): False for d in (12, 13, 16)})
    bench = wb.workbench(people["advisor"], cal=cal)
    assert {row.id: row.flag for row in bench.urgent}[ranked["fc_later"]] == "due_soon"


def test_at_most_thirty_firms_with_a_link_to_all(client, login, make, travel, people, today):
    me = people["advisor"]
    for _ in range(32):
        rid = new_case(make, people["bureau"])
        assign(travel, people["office"], rid, me, date(2026, 11, 9))
    login(me)
    html = page(client)
    assert len(case_ids(html)) == wb.URGENT_ROWS == 30
    assert "Showing the 30 most urgent of 32 firms." in html
    assert 'data-testid="more-firms"' in html


# ------------------------------------------------------------------ financing and the month
@pytest.fixture
def work(make, travel, people, today):
    """A month of work for adv_li (and some for adv_wang, and some of last month)."""
    me, other = people["advisor"], people["advisor2"]
    office, bureau = people["office"], people["bureau"]
    a, b, c = (new_case(make, bureau, f"企业{x}") for x in "ABC")
    for rid in (a, b, c):
        assign(travel, office, rid, me, date(2026, 10, 12))
    theirs = new_case(make, bureau, "王的企业")
    assign(travel, office, theirs, other, date(2026, 10, 12))
    # Visits: three this month on two firms, one last month, one by adv_wang on his firm.
    visit(me, a, date(2026, 11, 1))
    visit(me, a, date(2026, 11, 11))
    visit(me, b, date(2026, 11, 5))
    visit(me, c, date(2026, 10, 31))
    visit(other, theirs, date(2026, 11, 6))
    # adv_wang's visit on a case now mine (he served it before): in my scope, not my month.
    visit(other, a, date(2026, 11, 7))
    apps = {
        # In progress.
        "applied": application(me, a, "50.5", applied_on=date(2026, 11, 5)),
        "applied_old": application(me, b, "30", applied_on=date(2026, 9, 1)),
        "approved": application(
            me,
            b,
            "300",
            stage="approved",
            applied_on=date(2026, 10, 20),
            approved_on=date(2026, 11, 3),
            approved_amount_wan=Decimal("200.125"),
        ),
        # Disbursed this month: one first loan (approved last month), one small.
        "paid_first": application(
            me,
            a,
            "120",
            stage="disbursed",
            applied_on=date(2026, 10, 1),
            approved_on=date(2026, 10, 20),
            approved_amount_wan=Decimal("110"),
            disbursed_on=date(2026, 11, 2),
            disbursed_amount_wan=Decimal("100.50"),
            first_loan=True,
        ),
        "paid_small": application(
            me,
            c,
            "1",
            stage="disbursed",
            applied_on=date(2026, 11, 2),
            approved_on=date(2026, 11, 9),
            approved_amount_wan=Decimal("0.75"),
            disbursed_on=date(2026, 11, 10),
            disbursed_amount_wan=Decimal("0.000001"),
        ),
        # Last month: not in the month's figures.
        "paid_october": application(
            me,
            c,
            "80",
            stage="disbursed",
            applied_on=date(2026, 9, 1),
            approved_on=date(2026, 9, 10),
            approved_amount_wan=Decimal("80"),
            disbursed_on=date(2026, 10, 31),
            disbursed_amount_wan=Decimal("80"),
            first_loan=True,
        ),
        "declined": application(
            me,
            c,
            "10",
            stage="declined",
            applied_on=date(2026, 10, 1),
            declined_on=date(2026, 11, 4),
            declined_reason="资质不足",
        ),
        # adv_wang's, this month: never in adv_li's figures.
        "theirs": application(
            other,
            theirs,
            "999",
            stage="disbursed",
            applied_on=date(2026, 11, 1),
            approved_on=date(2026, 11, 2),
            approved_amount_wan=Decimal("999"),
            disbursed_on=date(2026, 11, 3),
            disbursed_amount_wan=Decimal("999"),
            first_loan=True,
        ),
        "theirs_open": application(other, theirs, "777", applied_on=date(2026, 11, 1)),
        # adv_wang's application on a case now mine: not my work either.
        "theirs_on_mine": application(other, b, "55", applied_on=date(2026, 11, 6)),
    }
    return {"cases": (a, b, c), "theirs": theirs, "apps": apps}


def test_financing_in_progress_by_stage(people, work, today):
    bench = wb.workbench(people["advisor"])
    stages = {s.stage: (s.count, s.amount_wan) for s in bench.financing}
    assert stages == {
        "applied": (2, Decimal("80.50")),
        "approved": (1, Decimal("200.125")),
    }
    assert all(isinstance(s.amount_wan, Decimal) for s in bench.financing)
    apps = work["apps"]
    # The longest waiting first: applied 9-01, applied 11-05 vs approved 11-03.
    assert [a.id for a in bench.applications] == [
        apps["applied_old"].id,
        apps["approved"].id,
        apps["applied"].id,
    ]
    approved = bench.applications[1]
    assert (approved.stage, approved.amount_wan, approved.since) == (
        "approved",
        Decimal("200.125"),
        date(2026, 11, 3),
    )


def test_my_month_figures_are_exact(people, work, today):
    month = wb.workbench(people["advisor"]).month
    assert (month.start, month.today) == (date(2026, 11, 1), TODAY)
    assert month.visits == 3
    assert month.firms_served == 2
    assert month.applied == 2  # 11-05 and 11-02
    assert month.approved == 2  # 11-03 and 11-09
    assert month.approved_wan == Decimal("200.875")
    assert month.disbursed == 2
    assert month.disbursed_wan == Decimal("100.500001")
    assert isinstance(month.disbursed_wan, Decimal)
    assert month.first_loans == 1
    theirs = wb.workbench(people["advisor2"]).month
    assert (theirs.visits, theirs.firms_served, theirs.disbursed) == (2, 2, 1)
    assert theirs.applied == 3
    assert theirs.disbursed_wan == Decimal("999.00")


def test_the_month_is_the_shanghai_calendar_month(people, work, travel):
    """On 12-01 the month starts again: November's work is no longer counted."""
    travel(date(2026, 12, 1))
    month = wb.workbench(people["advisor"]).month
    assert (month.visits, month.firms_served, month.disbursed, month.approved) == (0, 0, 0, 0)
    assert month.disbursed_wan == Decimal("0.00")
    # Still in progress whatever the month.
    stages = {s.stage: s.count for s in wb.workbench(people["advisor"]).financing}
    assert stages == {"applied": 2, "approved": 1}


def test_the_page_shows_the_figures_and_links(client, login, people, work, today):
    login(people["advisor"])
    html = page(client)
    month = html.split('data-testid="my-month"')[1].split("</section>")[0]
    assert 'data-figure="visits">3<' in month
    assert 'data-figure="firms_served">2<' in month
    assert 'data-figure="disbursed_wan">100.500001 万元<' in month
    assert 'data-figure="approved_wan">200.875 万元<' in month
    assert 'data-figure="first_loans">1<' in month
    financing = html.split('data-testid="financing"')[1].split("</section>")[0]
    assert 'data-stage="applied"' in financing and 'data-amount="80.50"' in financing
    assert 'data-amount="200.125"' in financing
    for key in ("applied_old", "approved", "applied"):
        assert f'href="/visits/financing/{work["apps"][key].id}"' in financing
    assert f"/visits/financing/{work['apps']['theirs_open'].id}" not in html
    assert "王的企业" not in html
    assert "2026-11-01 – 2026-11-11" in month


# ------------------------------------------------------------------ a fixed number of queries
def test_the_workbench_runs_a_fixed_number_of_queries(
    client, login, make, travel, people, today, count_queries
):
    me = people["advisor"]
    rid = new_case(make, people["bureau"])
    assign(travel, people["office"], rid, me, date(2026, 11, 9))
    login(me)
    client.get("/")  # warm up (first-request work)
    with count_queries() as q:
        assert client.get("/").status_code == 200
    one_firm = q.count

    # Forty firms more, in every state, with visits and applications.
    for i in range(40):
        rid = new_case(make, people["bureau"])
        assign(travel, people["office"], rid, me, date(2026, 11, 2 + i % 8))
        if i % 2:
            contact(me, rid, date(2026, 11, 10), next_visit=date(2026, 11, 5 + i % 20))
            visit(me, rid, date(2026, 11, 1 + i % 10))
        if i % 3 == 0:
            application(me, rid, str(10 + i), applied_on=date(2026, 11, 1))
        if i % 5 == 0:
            application(
                me,
                rid,
                "20",
                stage="disbursed",
                applied_on=date(2026, 10, 1),
                approved_on=date(2026, 10, 5),
                approved_amount_wan=Decimal("20"),
                disbursed_on=date(2026, 11, 3),
                disbursed_amount_wan=Decimal("20"),
            )
    with count_queries() as q:
        r = client.get("/")
    assert r.status_code == 200
    assert len(case_ids(html_lib.unescape(r.get_data(as_text=True)))) == 30
    assert q.count == one_firm, q.statements
    # Sign-in session, user, the navigation badge, and the workbench's six.
    assert q.count <= 10, q.statements


def test_the_service_runs_six_queries(people, work, today, count_queries):
    me = people["advisor"]
    assert me.org_id  # loaded before counting (the commits expired it)
    with count_queries() as q:
        wb.workbench(me)
    assert q.count == 6, q.statements
