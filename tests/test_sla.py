"""The service-level clock: first contact due in working days on the Chinese calendar, the
flags, and the daily overdue sweep (once per case, recipient and day)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select, update

from advisors.audit import acting_as
from advisors.services import referrals as svc
from advisors.services.notifications import render
from advisors.services.sla import flag, sweep_overdue
from advisors.workdays import WorkdayCalendar
from models import Notification, Referral, db

SHANGHAI = "Asia/Shanghai"


@pytest.fixture
def people(make):
    bank = make.org("bank", code="ABC")
    other_bank = make.org("bank", code="ICBC")
    office = make.user("finance_office")
    return {
        "bureau": make.user("bureau", org=make.org("bureau", code="GXJ")),
        "office": office,
        "office2": make.user("finance_office", org=office.org),
        "pboc": make.user("pboc"),
        "advisor": make.user("advisor", org=bank, username="adv_li"),
        "liaison": make.user("liaison", org=bank),
        "other_liaison": make.user("liaison", org=other_bank),
    }


def new_case(make, bureau) -> int:
    data = {
        "credit_code": make.credit_code(),
        "name": f"江州市测试企业{make.n()}有限公司",
        "industry": "industry",
        "needs": ["policy"],
    }
    with acting_as(bureau):
        (result,) = svc.submit(bureau, [data], source="form")
    db.session.commit()
    return result.referral_id


def assign_on(travel, day: date, office, referral_id: int, advisor="adv_li") -> Referral:
    travel(day)
    with acting_as(office):
        (referral,) = svc.assign(office, [referral_id], advisor)
    db.session.commit()
    return referral


# ----------------------------------------------------------------------------- due date
@pytest.mark.parametrize(
    ("assigned_on", "due"),
    [
        # Tue before National Day: 9-30, then 10-8, 10-9, the make-up Saturday 10-10, 10-12.
        (date(2026, 9, 29), date(2026, 10, 12)),
        # The last day before the holiday: 10-8, 10-9, 10-10 (Sat, a working day), 10-12, 10-13.
        (date(2026, 9, 30), date(2026, 10, 13)),
        # Assigned during the holiday: the clock starts on 10-8.
        (date(2026, 10, 3), date(2026, 10, 13)),
        # The Friday before the make-up Saturday: 10-10, 10-12, 10-13, 10-14, 10-15.
        (date(2026, 10, 9), date(2026, 10, 15)),
        # An ordinary week: Mon -> the next Mon.
        (date(2026, 11, 2), date(2026, 11, 9)),
    ],
)
def test_first_contact_due_counts_working_days(make, travel, people, assigned_on, due):
    rid = new_case(make, people["bureau"])
    referral = assign_on(travel, assigned_on, people["office"], rid)
    assert referral.first_contact_due == due


def test_make_up_saturday_and_holiday_in_the_calendar():
    cal = WorkdayCalendar()
    assert cal.is_workday(date(2026, 10, 10))  # Saturday, 调休 working day
    assert not any(cal.is_workday(date(2026, 10, d)) for d in range(1, 8))
    # An override recorded by the finance office wins over the bundled calendar.
    assert not WorkdayCalendar({date(2026, 10, 10): False}).is_workday(date(2026, 10, 10))


def test_configured_number_of_working_days(travel, app, make, monkeypatch, people):
    monkeypatch.setitem(app.config, "FIRST_CONTACT_WORKING_DAYS", 2)
    rid = new_case(make, people["bureau"])
    assert assign_on(travel, date(2026, 9, 30), people["office"], rid).first_contact_due == (
        date(2026, 10, 9)
    )


def test_reassignment_before_first_contact_restarts_the_clock(make, travel, people):
    make.user("advisor", org=people["advisor"].org, username="adv_wang")
    rid = new_case(make, people["bureau"])
    assign_on(travel, date(2026, 9, 29), people["office"], rid)
    referral = assign_on(travel, date(2026, 10, 9), people["office"], rid, "adv_wang")
    assert referral.first_contact_due == date(2026, 10, 15)


# ----------------------------------------------------------------------------- flag
CAL = WorkdayCalendar()


@pytest.mark.parametrize(
    ("status", "due", "contacted", "today", "expected"),
    [
        ("assigned", date(2026, 10, 12), None, date(2026, 10, 13), "overdue"),
        ("assigned", date(2026, 10, 12), None, date(2026, 10, 12), "due_soon"),
        # Saturday 10-10 is a working day, so on Friday 10-9 a Monday date is two days away.
        ("assigned", date(2026, 10, 12), None, date(2026, 10, 9), None),
        ("assigned", date(2026, 10, 12), None, date(2026, 10, 10), "due_soon"),
        # Across the holiday: on 9-30 the next working day is 10-8.
        ("assigned", date(2026, 10, 8), None, date(2026, 9, 30), "due_soon"),
        ("assigned", date(2026, 10, 9), None, date(2026, 9, 30), None),
        ("assigned", date(2026, 10, 12), date(2026, 10, 9), date(2026, 10, 20), None),
        ("in_service", date(2026, 10, 12), None, date(2026, 10, 20), None),
        ("submitted", None, None, date(2026, 10, 20), None),
        ("assigned", None, None, date(2026, 10, 20), None),
        ("resolved", date(2026, 10, 12), date(2026, 10, 9), date(2026, 10, 20), None),
    ],
)
def test_flag(status, due, contacted, today, expected):
    assert flag(status, due, contacted, today, CAL) == expected


# ----------------------------------------------------------------------------- sweep
def overdue_notes(referral_id: int | None = None) -> list[tuple[int, str]]:
    db.session.rollback()  # see what other sessions committed
    stmt = select(Notification.user_id, Notification.dedupe_key).where(
        Notification.kind == "overdue"
    )
    if referral_id is not None:
        stmt = stmt.where(Notification.referral_id == referral_id)
    return sorted(db.session.execute(stmt).all())


def test_sweep_notifies_each_recipient_once_a_day(make, travel, people):
    rid = new_case(make, people["bureau"])
    assign_on(travel, date(2026, 9, 29), people["office"], rid)  # due 10-12
    expected = sorted([people[r].id for r in ("advisor", "liaison", "office", "office2")])

    # Not overdue on the due date itself.
    assert sweep_overdue(date(2026, 10, 12)) == {"overdue": 0, "notifications": 0}
    db.session.commit()
    assert overdue_notes() == []

    first = sweep_overdue(date(2026, 10, 13))
    db.session.commit()
    assert first == {"overdue": 1, "notifications": 4}
    second = sweep_overdue(date(2026, 10, 13))
    db.session.commit()
    assert second == {"overdue": 1, "notifications": 0}
    notes = overdue_notes(rid)
    assert [uid for uid, _k in notes] == expected
    assert {key for _u, key in notes} == {f"overdue:{rid}:2026-10-13"}

    third = sweep_overdue(date(2026, 10, 14))
    db.session.commit()
    assert third == {"overdue": 1, "notifications": 4}
    per_user = {}
    for uid, _key in overdue_notes(rid):
        per_user[uid] = per_user.get(uid, 0) + 1
    assert per_user == {uid: 2 for uid in expected}
    # Neither the other bank's liaison, the central bank nor the bureau are told.
    for role in ("other_liaison", "pboc", "bureau"):
        assert people[role].id not in per_user


def test_sweep_message_names_firm_due_date_and_advisor(make, travel, people):
    rid = new_case(make, people["bureau"])
    assign_on(travel, date(2026, 9, 29), people["office"], rid)
    sweep_overdue(date(2026, 10, 20))
    db.session.commit()
    note = db.session.execute(
        select(Notification).where(
            Notification.kind == "overdue", Notification.user_id == people["advisor"].id
        )
    ).scalar_one()
    assert note.referral_id == rid
    assert note.params["due"] == "2026-10-12"
    assert note.params["advisor"] == people["advisor"].display_name
    assert note.params["firm"].startswith("江州市测试企业")
    text = render(note)
    assert "2026-10-12" in text and note.params["firm"] in text


def test_first_contact_stops_the_sweep(make, travel, people):
    contacted = new_case(make, people["bureau"])
    waiting = new_case(make, people["bureau"])
    for rid in (contacted, waiting):
        assign_on(travel, date(2026, 9, 29), people["office"], rid)
    referral = db.session.get(Referral, contacted)
    with acting_as(people["advisor"]):
        svc.record_first_contact(people["advisor"], referral, date(2026, 10, 9))
    db.session.commit()
    # A case still "assigned" but with a first contact on record is not overdue either.
    third = new_case(make, people["bureau"])
    assign_on(travel, date(2026, 9, 29), people["office"], third)
    db.session.execute(
        update(Referral)
        .where(Referral.id == third)
        .values(first_contact_on=date(2026, 10, 12))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()

    assert sweep_overdue(date(2026, 10, 20))["overdue"] == 1
    db.session.commit()
    assert {
        n
        for n in db.session.scalars(
            select(Notification.referral_id).where(Notification.kind == "overdue")
        )
    } == {waiting}


def test_sweep_skips_unassigned_closed_and_inactive(make, travel, people):
    from advisors.services.users import deactivate_user

    new_case(make, people["bureau"])  # submitted: no clock yet
    rid = new_case(make, people["bureau"])
    assign_on(travel, date(2026, 9, 29), people["office"], rid)
    with acting_as(label="test"):
        deactivate_user(people["office2"])
    db.session.commit()
    sweep_overdue(date(2026, 10, 13))
    db.session.commit()
    users = {uid for uid, _k in overdue_notes()}
    assert people["office2"].id not in users
    assert users == {people[r].id for r in ("advisor", "liaison", "office")}


def test_sweep_defaults_to_today_in_shanghai(make, travel, people):
    rid = new_case(make, people["bureau"])
    assign_on(travel, date(2026, 9, 29), people["office"], rid)
    travel(date(2026, 10, 13))
    assert sweep_overdue()["overdue"] == 1
    db.session.commit()
    assert {k for _u, k in overdue_notes()} == {f"overdue:{rid}:2026-10-13"}


def test_sweep_one_query_for_the_cases(make, travel, people, count_queries):
    for _ in range(12):
        assign_on(travel, date(2026, 9, 29), people["office"], new_case(make, people["bureau"]))
    with count_queries() as q:
        result = sweep_overdue(date(2026, 10, 13))
    db.session.commit()
    # Advisor and liaison per case; the two finance-office users one summary each.
    assert result == {"overdue": 12, "notifications": 12 * 2 + 2}
    summaries = db.session.execute(
        select(Notification.user_id, Notification.params).where(
            Notification.kind == "overdue_summary"
        )
    ).all()
    assert {uid for uid, _p in summaries} == {people["office"].id, people["office2"].id}
    assert all(p["count"] == 12 for _u, p in summaries)
    # cases, finance office, liaisons, one insert (a batch)
    assert q.count <= 5, q.statements


# ----------------------------------------------------------------------------- the job
def test_job_is_registered_daily_at_0830_shanghai(app):
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    from advisors import scheduler

    func, trigger = scheduler.JOBS["sla_overdue_sweep"]
    assert trigger == {"hour": 8, "minute": 30}
    sched = scheduler.configure(
        BackgroundScheduler(timezone=scheduler.TIMEZONE, job_defaults=scheduler.JOB_DEFAULTS), app
    )
    job = sched.get_job("sla_overdue_sweep")
    assert job is not None and job.name == "sla_overdue_sweep"
    assert isinstance(job.trigger, CronTrigger)
    assert str(job.trigger.timezone) == SHANGHAI
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(SHANGHAI)
    early = datetime(2026, 10, 13, 8, 0, tzinfo=tz)
    assert job.trigger.get_next_fire_time(None, early) == datetime(2026, 10, 13, 8, 30, tzinfo=tz)
    late = datetime(2026, 10, 13, 9, 0, tzinfo=tz)
    assert job.trigger.get_next_fire_time(None, late) == datetime(2026, 10, 14, 8, 30, tzinfo=tz)
    assert scheduler.JOB_DEFAULTS["coalesce"] is True
    assert scheduler.JOB_DEFAULTS["max_instances"] == 1
    assert func is scheduler.sla_overdue_sweep


def test_job_run_commits_and_is_idempotent(app, make, travel, people):
    from advisors import scheduler

    rid = new_case(make, people["bureau"])
    assign_on(travel, date(2026, 9, 29), people["office"], rid)
    travel(date(2026, 10, 13))
    run = scheduler._runner(app, "sla_overdue_sweep")
    run()
    run()
    assert len(overdue_notes(rid)) == 4
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "overdue", Notification.user_id == people["advisor"].id)
        )
        == 1
    )
