"""Recorded job runs (run_job), the weekly bureau digest, the finance office's jobs page with
"Run now", and the ``scheduler run-job`` command."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select, update

from advisors.audit import acting_as
from advisors.errors import NotFound, ValidationFailed
from advisors.i18n import SHANGHAI
from advisors.services import digest
from advisors.services import jobs as svc
from advisors.services import referrals as referral_service
from advisors.services.notifications import render
from models import (
    JobRun,
    LoginAttempt,
    Notification,
    Organisation,
    Referral,
    ReferralBureau,
    ReferralEvent,
    db,
    utcnow,
)
from tests.conftest import csrf_from


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def runs() -> list[JobRun]:
    return list(db.session.execute(select(JobRun).order_by(JobRun.id)).scalars())


def notes(kind: str) -> list[Notification]:
    return list(
        db.session.execute(
            select(Notification).where(Notification.kind == kind).order_by(Notification.id)
        ).scalars()
    )


@pytest.fixture
def office(make):
    return make.user("finance_office")


# ----------------------------------------------------------------------------- run_job
def test_a_run_is_recorded_with_its_result(app, office):
    old = utcnow() - timedelta(days=40)
    db.session.add_all(
        [
            LoginAttempt(username="x", ip="1.2.3.4", success=False, at=old),
            LoginAttempt(username="y", ip="1.2.3.4", success=False, at=old),
            LoginAttempt(username="z", ip="1.2.3.4", success=False, at=utcnow()),
        ]
    )
    db.session.commit()
    before = utcnow()
    run = svc.run_job("housekeeping", "manual", actor=office)
    assert (run.job_id, run.trigger, run.status, run.period) == (
        "housekeeping",
        "manual",
        "ok",
        None,
    )
    assert run.rows == 2 and run.error is None and run.triggered_by_id == office.id
    assert before <= run.started_at <= run.finished_at <= utcnow()
    assert run.message == "login_attempts=2; sessions=0; form_drafts=0"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(LoginAttempt)) == 1
    assert [r.status for r in runs()] == ["ok"]
    with app.test_request_context(), force_locale("en"):
        assert svc.describe(run.message) == (
            "login attempts purged: 2 · sessions purged: 0 · form drafts purged: 0"
        )


def test_a_failure_is_rolled_back_recorded_and_notified_once_a_day(app, make, monkeypatch):
    office, admin = make.user("finance_office"), make.user("admin")
    make.user("pboc")
    bureau_user = make.user("bureau")

    def broken():
        db.session.add(Organisation(code="HALF", name="half-written", type="bank"))
        db.session.flush()
        raise RuntimeError("disk full\nsecond line")

    monkeypatch.setitem(svc.JOBS, "housekeeping", (broken, svc.JOBS["housekeeping"][1]))
    run = svc.run_job("housekeeping", "schedule")
    assert run.status == "failed" and run.finished_at is not None
    assert run.message == "RuntimeError: disk full"
    assert "Traceback" in run.error and "disk full" in run.error and "broken" in run.error
    db.session.expire_all()
    # the job's own work was rolled back; its run was kept
    assert db.session.scalar(select(Organisation).where(Organisation.code == "HALF")) is None
    assert [(r.status, r.trigger) for r in runs()] == [("failed", "schedule")]
    sent = notes("job_failed")
    assert sorted(n.user_id for n in sent) == sorted([office.id, admin.id])
    assert bureau_user.id not in {n.user_id for n in sent}
    day = utcnow().astimezone(SHANGHAI).date().isoformat()
    assert {n.dedupe_key for n in sent} == {f"job_failed:housekeeping:{day}"}
    with app.test_request_context(), force_locale("en"):
        text = render(sent[0])
    assert "Housekeeping" in text and "RuntimeError: disk full" in text
    # a second failure the same day is recorded, but the people are not told twice
    svc.run_job("housekeeping", "schedule")
    assert [r.status for r in runs()] == ["failed", "failed"]
    assert len(notes("job_failed")) == 2


def test_unknown_job_bad_trigger_and_bad_period_record_nothing(app):
    with pytest.raises(NotFound):
        svc.run_job("no_such_job", "manual")
    with pytest.raises(ValueError, match="trigger"):
        svc.run_job("housekeeping", "whenever")
    now = sh(2026, 10, 13, 10)
    cases = [
        ("housekeeping", "2026-09", "does not take a period"),
        ("assessment_monthly", "2026-13", "2026-13"),
        ("assessment_monthly", "2026-Q3", "month"),
        ("assessment_quarterly", "2026-09", "quarter"),
        ("assessment_annual", "2026-Q1", "year"),
        ("assessment_monthly", "2026-10", "has not ended"),
        ("assessment_quarterly", "2026-Q4", "has not ended"),
        ("assessment_monthly", "July", "not a period"),
    ]
    for job_id, period, needle in cases:
        with pytest.raises(ValidationFailed) as caught, force_locale("en"):
            svc.run_job(job_id, "manual", period, now=now)
        assert set(caught.value.fields) == {"period"}, (job_id, period)
        assert needle in caught.value.fields["period"], (job_id, period, caught.value.fields)
    assert runs() == []


def test_default_period_is_the_previous_one_in_shanghai():
    # 2026-10-01 01:00 in Shanghai is still September 30 in UTC
    now = sh(2026, 10, 1, 1)
    assert svc.default_period("assessment_monthly", now).key == "2026-09"
    assert svc.default_period("assessment_quarterly", now).key == "2026-Q3"
    assert svc.default_period("assessment_annual", now).key == "2025"
    assert svc.default_period("housekeeping", now) is None
    assert svc.resolve_period("assessment_monthly", "", now).key == "2026-09"
    assert svc.resolve_period("assessment_monthly", " 2026-08 ", now).key == "2026-08"
    assert svc.resolve_period("housekeeping", None, now) is None


def test_runs_are_listed_newest_first_with_keyset_pages(app, office):
    for i in range(7):
        db.session.add(
            JobRun(
                job_id="housekeeping" if i % 2 else "sla_overdue_sweep",
                trigger="schedule",
                status="ok",
                started_at=utcnow() - timedelta(hours=10 - i),
                finished_at=utcnow(),
                triggered_by_id=office.id if i == 6 else None,
            )
        )
    db.session.commit()
    page = svc.recent_runs(limit=3)
    assert [r.id for r in page.items] == [7, 6, 5] and page.next_before == 5
    assert page.items[0].triggered_by == office.display_name
    page = svc.recent_runs(before=page.next_before, limit=3)
    assert [r.id for r in page.items] == [4, 3, 2]
    page = svc.recent_runs(before=page.next_before, limit=3)
    assert [r.id for r in page.items] == [1] and page.next_before is None
    assert [r.id for r in svc.recent_runs("housekeeping").items] == [6, 4, 2]
    with pytest.raises(ValidationFailed) as caught:
        svc.recent_runs("nope")
    assert "job" in caught.value.fields
    latest = svc.latest_by_job()
    assert {k: v.id for k, v in latest.items()} == {"housekeeping": 6, "sla_overdue_sweep": 7}


def test_stale_running_runs_are_marked_interrupted(app):
    """A run whose process is gone (its lock is free) is interrupted; one whose process still
    holds its lock is at work (tests/test_faults.py kills real processes)."""
    from advisors.dbutil import held_for_life

    now = utcnow()
    db.session.add_all(
        [
            JobRun(job_id="housekeeping", trigger="schedule", started_at=now - timedelta(hours=7)),
            JobRun(job_id="housekeeping", trigger="manual", started_at=now - timedelta(minutes=5)),
        ]
    )
    db.session.commit()
    with held_for_life(svc.run_lock_name(runs()[1].id)):
        assert svc.abandon_stale_runs(now) == 1
    db.session.expire_all()
    assert [(r.status, r.message) for r in runs()] == [
        ("failed", svc.INTERRUPTED),
        ("running", None),
    ]


# ----------------------------------------------------------------------------- digest
WEEK_START = date(2026, 10, 5)  # a Monday
IN_WEEK = datetime(2026, 10, 7, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
BEFORE_WEEK = datetime(2026, 10, 4, 15, 59, tzinfo=UTC)  # Sunday 23:59 in Shanghai
MONDAY_AFTER = date(2026, 10, 12)


@pytest.fixture
def city(make):
    bank = make.org("bank", code="ABC")
    gxj, swj = make.org("bureau", code="GXJ"), make.org("bureau", code="SWJ")
    return {
        "gxj": [make.user("bureau", org=gxj), make.user("bureau", org=gxj)],
        "swj": [make.user("bureau", org=swj)],
        "quiet": make.user("bureau", org=make.org("bureau", code="QUIET")),
        "office": make.user("finance_office"),
        "advisor": make.user("advisor", org=bank, username="adv_wang"),
    }


def _submit(make, bureau, credit_code=None) -> int:
    data = {
        "credit_code": credit_code or make.credit_code(),
        "name": f"江州市测试企业{make.n()}有限公司",
        "industry": "industry",
        "needs": ["policy"],
    }
    with acting_as(bureau):
        (result,) = referral_service.submit(bureau, [data], source="form")
    db.session.commit()
    assert result.status in ("created", "merged"), result.errors
    return result.referral_id


def _assign(city, rid):
    with acting_as(city["office"]):
        referral_service.assign(city["office"], [rid], "adv_wang")
    db.session.commit()


def _contact(city, rid, on=date(2026, 10, 7)):
    referral = db.session.get(Referral, rid)
    with acting_as(city["advisor"]):
        referral_service.record_first_contact(city["advisor"], referral, on)
    db.session.commit()


def _resolve(city, rid):
    referral = db.session.get(Referral, rid)
    with acting_as(city["advisor"]):
        referral_service.record_outcome(city["advisor"], referral, "no_need", None, None)
    db.session.commit()


def _close(bureau, rid):
    with acting_as(bureau):
        referral_service.confirm_outcome(bureau, rid, 5, "好")
    db.session.commit()


def _at(when: datetime, referral_ids=None):
    """Move the cases' history (referral rows of the bureaus, timeline events) to ``when``."""
    for model, column, key in (
        (ReferralBureau, ReferralBureau.created_at, ReferralBureau.referral_id),
        (ReferralEvent, ReferralEvent.at, ReferralEvent.referral_id),
    ):
        stmt = update(model).values({column.key: when})
        if referral_ids is not None:
            stmt = stmt.where(key.in_(referral_ids))
        db.session.execute(stmt)
    db.session.commit()


def _story(make, city) -> dict:
    """GXJ: four new cases in the week — one assigned, one contacted, one resolved, one closed
    — plus an old case assigned long ago whose first contact is overdue. SWJ co-refers the
    contacted one."""
    gxj = city["gxj"][0]
    ids = {k: _submit(make, gxj) for k in ("assigned", "contacted", "resolved", "closed", "old")}
    for key in ("assigned", "contacted", "resolved", "closed", "old"):
        _assign(city, ids[key])
    for key in ("contacted", "resolved", "closed"):
        _contact(city, ids[key])
    for key in ("resolved", "closed"):
        _resolve(city, ids[key])
    _close(gxj, ids["closed"])
    firm = db.session.get(Referral, ids["contacted"]).enterprise_id
    from models import Enterprise

    code = db.session.get(Enterprise, firm).credit_code
    _submit(make, city["swj"][0], credit_code=code)  # co-referral
    _at(IN_WEEK)
    _at(BEFORE_WEEK, [ids["old"]])
    db.session.execute(
        update(Referral)
        .where(Referral.id == ids["old"])
        .values(first_contact_due=date(2026, 10, 9))
    )
    db.session.commit()
    return ids


def test_weekly_digest_figures_per_bureau(app, make, city):
    _story(make, city)
    progress = digest.bureau_progress(digest.last_week(MONDAY_AFTER), MONDAY_AFTER)
    gxj = city["gxj"][0].org_id
    swj = city["swj"][0].org_id
    assert progress[gxj] == {
        "new": 4,
        "assigned": 4,
        "contacted": 3,
        "resolved": 2,
        "closed": 1,
        "overdue": 1,
    }
    # SWJ co-referred the contacted case this week: it sees the case's first contact
    assert progress[swj] == {
        "new": 1,
        "assigned": 1,
        "contacted": 1,
        "resolved": 0,
        "closed": 0,
        "overdue": 0,
    }
    assert city["quiet"].org_id not in progress


def test_weekly_digest_notifies_each_bureau_user_once_per_week(app, make, city):
    _story(make, city)
    result = digest.send_weekly_digest(MONDAY_AFTER)
    db.session.commit()
    assert result == {"bureaus": 2, "notifications": 3}
    sent = notes("weekly_digest")
    assert sorted(n.user_id for n in sent) == sorted(u.id for u in city["gxj"] + city["swj"])
    assert {n.dedupe_key for n in sent} == {"weekly_digest:2026-W41"}
    mine = next(n for n in sent if n.user_id == city["gxj"][0].id)
    assert mine.params["start"] == "2026-10-05" and mine.params["end"] == "2026-10-11"
    with app.test_request_context(), force_locale("en"):
        text = render(mine)
    assert text == (
        "Your referrals from 2026-10-05 to 2026-10-11: 4 new, 4 assigned, 3 first contacts, "
        "2 with an outcome, 1 closed; 1 overdue now."
    )
    # the same week again (a second scheduler, a "Run now" on Wednesday): nothing new
    digest.send_weekly_digest(MONDAY_AFTER + timedelta(days=2))
    db.session.commit()
    assert len(notes("weekly_digest")) == 3
    # the next week is a new digest (GXJ still has its overdue case)
    digest.send_weekly_digest(MONDAY_AFTER + timedelta(days=7))
    db.session.commit()
    later = [n for n in notes("weekly_digest") if n.dedupe_key == "weekly_digest:2026-W42"]
    assert sorted(n.user_id for n in later) == sorted(u.id for u in city["gxj"])
    assert later[0].params["overdue"] == 1 and later[0].params["new"] == 0


def test_weekly_digest_leaves_out_the_week_before_and_inactive_users(app, make, city):
    rid = _submit(make, city["gxj"][0])
    _at(BEFORE_WEEK, [rid])
    city["gxj"][1].active = False
    db.session.commit()
    assert digest.send_weekly_digest(MONDAY_AFTER) == {"bureaus": 0, "notifications": 0}
    _at(IN_WEEK, [rid])
    assert digest.send_weekly_digest(MONDAY_AFTER) == {"bureaus": 1, "notifications": 1}
    db.session.commit()
    assert [n.user_id for n in notes("weekly_digest")] == [city["gxj"][0].id]


def test_weekly_digest_queries_do_not_grow_with_the_cases(app, make, city, count_queries):
    def queries() -> int:
        with count_queries() as q:
            digest.bureau_progress(digest.last_week(MONDAY_AFTER), MONDAY_AFTER)
        return q.count

    for _ in range(2):
        _assign(city, _submit(make, city["gxj"][0]))
    _at(IN_WEEK)
    few = queries()
    for _ in range(8):
        _assign(city, _submit(make, city["swj"][0]))
    _at(IN_WEEK)
    assert queries() == few == 3


def test_weekly_digest_week_boundaries():
    assert digest.last_week(date(2026, 10, 12)).start == date(2026, 10, 5)  # Monday
    assert digest.last_week(date(2026, 10, 18)).start == date(2026, 10, 5)  # Sunday
    week = digest.last_week(date(2027, 1, 4))
    assert (week.start, week.end, week.key) == (date(2026, 12, 28), date(2027, 1, 3), "2026-W53")
    start, end = digest.Week(date(2026, 10, 5)).utc_bounds()
    assert start == datetime(2026, 10, 4, 16, tzinfo=UTC)
    assert end == datetime(2026, 10, 11, 16, tzinfo=UTC)


def test_weekly_digest_job_run(app, make, city, travel):
    _story(make, city)
    travel(MONDAY_AFTER)
    run = svc.run_job("weekly_digest", "schedule")
    assert (run.status, run.rows) == ("ok", 3)
    assert run.message == "bureaus=2; notifications=3"


# ----------------------------------------------------------------------------- the page
def test_jobs_page_lists_jobs_schedules_and_runs(app, client, login, office):
    db.session.add(
        JobRun(
            job_id="sla_overdue_sweep",
            trigger="schedule",
            status="failed",
            started_at=utcnow(),
            finished_at=utcnow(),
            message="OperationalError: database is locked",
            error="Traceback (most recent call last):\n  <the stack>",
        )
    )
    db.session.commit()
    login(office)
    r = client.get("/jobs/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for job_id in svc.JOBS:
        assert f'id="job-{job_id}"' in html
        assert f'action="/jobs/{job_id}/run"' in html
    assert "Monthly assessment" in html and "On the 2nd of every month at 06:00" in html
    assert "Mondays at 08:00" in html
    expected = svc.next_run_at("housekeeping").strftime("%Y-%m-%d %H:%M")
    assert expected in html and expected.endswith("03:30")
    # the compile jobs offer the previous period; the others take none
    previous = svc.default_period("assessment_monthly").key
    assert 'id="period-assessment_monthly"' in html and f'value="{previous}"' in html
    assert 'id="period-housekeeping"' not in html
    assert 'data-status="failed"' in html and "database is locked" in html
    assert "<details" in html and "&lt;the stack&gt;" in html


@pytest.mark.parametrize("role", ["bureau", "advisor", "liaison", "pboc"])
def test_jobs_page_is_for_the_finance_office_and_admins(app, client, make, login, role):
    login(make.user(role))
    assert client.get("/jobs/").status_code == 403
    token = csrf_from(client.get("/").get_data(as_text=True))
    r = client.post("/jobs/housekeeping/run", data={"csrf_token": token})
    assert r.status_code == 403
    assert runs() == []


def test_run_now_runs_the_job_and_shows_the_result(app, client, make, login):
    admin = login(make.user("admin"))
    page = client.get("/jobs/")
    token = csrf_from(page.get_data(as_text=True))
    r = client.post("/jobs/housekeeping/run", data={"csrf_token": token})
    assert r.status_code == 302
    (run,) = runs()
    assert (run.trigger, run.status, run.triggered_by_id) == ("manual", "ok", admin.id)
    assert r.headers["Location"].endswith(f"/jobs/?job=housekeeping#run-{run.id}")
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Housekeeping done." in html and f'id="run-{run.id}"' in html
    assert 'data-trigger="manual"' in html and admin.display_name in html


def test_run_now_failure_is_shown_and_recorded(app, client, login, office, monkeypatch):
    def broken():
        raise RuntimeError("mail server unreachable")

    monkeypatch.setitem(svc.JOBS, "weekly_digest", (broken, svc.JOBS["weekly_digest"][1]))
    login(office)
    token = csrf_from(client.get("/jobs/").get_data(as_text=True))
    r = client.post("/jobs/weekly_digest/run", data={"csrf_token": token}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Weekly bureau digest failed: RuntimeError: mail server unreachable" in html
    assert 'data-testid="run-error"' in html
    (run,) = runs()
    assert run.status == "failed" and run.triggered_by_id == office.id
    assert [n.user_id for n in notes("job_failed")] == [office.id]


def test_run_now_refuses_bad_input(app, client, login, office):
    login(office)
    token = csrf_from(client.get("/jobs/").get_data(as_text=True))
    assert client.post("/jobs/nope/run", data={"csrf_token": token}).status_code == 404
    r = client.post("/jobs/assessment_monthly/run", data={"csrf_token": token, "period": "2026-Q3"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "is-invalid" in html and "Monthly assessment compiles a month" in html
    assert 'value="2026-Q3"' in html  # what was typed comes back
    r = client.post("/jobs/housekeeping/run", data={"csrf_token": token, "period": "2026-09"})
    assert r.status_code == 422 and "does not take a period" in r.get_data(as_text=True)
    # no CSRF token: nothing runs
    r = client.post("/jobs/housekeeping/run", data={})
    assert r.status_code == 422
    assert runs() == []


def test_runs_filter_and_pages(app, client, login, office):
    for i in range(55):
        db.session.add(
            JobRun(
                job_id="housekeeping" if i < 52 else "weekly_digest",
                trigger="schedule",
                status="ok",
                started_at=utcnow() - timedelta(minutes=60 - i),
                finished_at=utcnow(),
            )
        )
    db.session.commit()
    login(office)
    html = client.get("/jobs/").get_data(as_text=True)
    assert html.count('<div class="list-group-item" id="run-') == 50
    assert "/jobs/?before=6" in html
    html = client.get("/jobs/?before=6").get_data(as_text=True)
    assert html.count('<div class="list-group-item" id="run-') == 5
    html = client.get("/jobs/?job=weekly_digest").get_data(as_text=True)
    assert html.count('<div class="list-group-item" id="run-') == 3
    r = client.get("/jobs/?job=nope")
    assert r.status_code == 422 and 'data-testid="filter-error"' in r.get_data(as_text=True)
    assert client.get("/jobs/?before=abc&limit=x").status_code == 200


# ----------------------------------------------------------------------------- CLI
def test_cli_run_job(app, runner):
    r = runner.invoke(args=["scheduler", "run-job", "housekeeping"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("housekeeping\t-\tok\t")
    (run,) = runs()
    assert run.trigger == "cli"
    r = runner.invoke(args=["scheduler", "run-job", "nope"])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(args=["scheduler", "run-job", "assessment_monthly", "--period", "2026-13"])
    assert r.exit_code != 0 and "period" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert len(runs()) == 1
