"""The scheduler: the job table (fixed ids, Asia/Shanghai cron triggers, coalesce, one instance,
a generous misfire grace), scheduled compiles, the catch-up of missed periods at start-up, and
the guarantee that two schedulers, a restart or a "Run now" compile each period exactly once.

Nothing here waits on the clock: ``now`` is injected, and the scheduler's callables are called
directly instead of being fired by a running scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from flask_babel import force_locale
from sqlalchemy import func, select, update

from advisors import periods, scheduler
from advisors.audit import acting_as
from advisors.i18n import SHANGHAI
from advisors.services import jobs as svc
from models import Assessment, JobRun, Notification, Referral, db

ALL_JOBS = {
    "housekeeping",
    "sla_overdue_sweep",
    "assessment_monthly",
    "assessment_quarterly",
    "assessment_annual",
    "weekly_digest",
}


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def ok_runs() -> dict[str, int]:
    """period -> number of successful compile runs."""
    rows = db.session.execute(
        select(JobRun.period, func.count())
        .where(JobRun.status == "ok", JobRun.period.is_not(None))
        .group_by(JobRun.period)
    ).all()
    return dict(rows)


def compile_counts() -> dict[str, int]:
    db.session.expire_all()
    return dict(db.session.execute(select(Assessment.period, Assessment.compile_count)).all())


def record(job_id: str, period: str, status: str = "ok", trigger: str = "schedule") -> None:
    db.session.add(
        JobRun(
            job_id=job_id,
            period=period,
            trigger=trigger,
            status=status,
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
            finished_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    db.session.commit()


@pytest.fixture
def scheduled_until_july():
    """The scheduler last finished 2026-07, 2026-Q2 and 2025 (then it was down)."""
    record("assessment_monthly", "2026-07")
    record("assessment_quarterly", "2026-Q2")
    record("assessment_annual", "2025")


@pytest.fixture
def advisor(make):
    return make.user("advisor", org=make.org("bank", code="ABC"))


# ----------------------------------------------------------------------------- the job table
def _configured(app, **kwargs) -> BackgroundScheduler:
    return scheduler.configure(
        BackgroundScheduler(timezone=scheduler.TIMEZONE, job_defaults=scheduler.JOB_DEFAULTS),
        app,
        **kwargs,
    )


def test_job_table_ids_and_settings(app):
    assert set(scheduler.JOBS) == ALL_JOBS
    sched = _configured(app)
    jobs = {job.id: job for job in sched.get_jobs()}
    assert set(jobs) == ALL_JOBS
    for job_id, job in jobs.items():
        assert job.name == job_id
        assert isinstance(job.trigger, CronTrigger)
        assert str(job.trigger.timezone) == "Asia/Shanghai"
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.misfire_grace_time >= 3600
    # configuring again (a restart re-adding the jobs) replaces them, never duplicates:
    # started paused, so the job store is live but nothing fires
    sched.start(paused=True)
    try:
        scheduler.configure(sched, app)
        assert sorted(j.id for j in sched.get_jobs()) == sorted(ALL_JOBS)
    finally:
        sched.shutdown(wait=False)
    # the compile jobs use the cron fields that match Period.due_at()
    assert scheduler.JOBS["assessment_monthly"][1] == periods.SCHEDULE["month"]
    assert scheduler.JOBS["assessment_quarterly"][1] == periods.SCHEDULE["quarter"]
    assert scheduler.JOBS["assessment_annual"][1] == periods.SCHEDULE["year"]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (
            sh(2026, 10, 13, 10, 0),  # a Tuesday
            {
                "housekeeping": sh(2026, 10, 14, 3, 30),
                "sla_overdue_sweep": sh(2026, 10, 14, 8, 30),
                "assessment_monthly": sh(2026, 11, 2, 6, 0),
                "assessment_quarterly": sh(2027, 1, 2, 6, 0),
                "assessment_annual": sh(2027, 1, 2, 6, 0),
                "weekly_digest": sh(2026, 10, 19, 8, 0),
            },
        ),
        (
            sh(2026, 12, 31, 23, 59),
            {
                "housekeeping": sh(2027, 1, 1, 3, 30),
                "sla_overdue_sweep": sh(2027, 1, 1, 8, 30),
                "assessment_monthly": sh(2027, 1, 2, 6, 0),
                "assessment_quarterly": sh(2027, 1, 2, 6, 0),
                "assessment_annual": sh(2027, 1, 2, 6, 0),
                "weekly_digest": sh(2027, 1, 4, 8, 0),
            },
        ),
        (
            # 2026-07-01 21:30 UTC is already 05:30 on 2 July in Shanghai
            datetime(2026, 7, 1, 21, 30, tzinfo=UTC),
            {
                "housekeeping": sh(2026, 7, 3, 3, 30),
                "sla_overdue_sweep": sh(2026, 7, 2, 8, 30),
                "assessment_monthly": sh(2026, 7, 2, 6, 0),
                "assessment_quarterly": sh(2026, 7, 2, 6, 0),
                "assessment_annual": sh(2027, 1, 2, 6, 0),
                "weekly_digest": sh(2026, 7, 6, 8, 0),
            },
        ),
    ],
)
def test_next_fire_times_in_shanghai(app, now, expected):
    sched = _configured(app)
    for job_id, when in expected.items():
        job = sched.get_job(job_id)
        fire = job.trigger.get_next_fire_time(None, now.astimezone(SHANGHAI))
        assert fire == when, job_id
        assert fire.utcoffset() == timedelta(hours=8)
        assert svc.next_run_at(job_id, now) == when


def test_each_compile_fires_when_its_period_is_due(app):
    """The cron trigger and Period.due_at() agree: the job fires exactly when the previous
    period falls due, and compiles that period."""
    sched = _configured(app)
    now = sh(2026, 3, 15, 12)
    for job_id, kind in svc.COMPILE_KINDS.items():
        fire = sched.get_job(job_id).trigger.get_next_fire_time(None, now)
        compiled = svc.default_period(job_id, fire)
        assert compiled.due_at() == fire, job_id
        assert compiled.kind == kind and compiled.has_ended(fire)


def test_start_adds_a_catch_up_that_runs_first(app):
    sched = _configured(app, catch_up_now=True)
    catch = sched.get_job(scheduler.CATCH_UP_ID)
    assert catch is not None and catch.next_run_time is not None
    others = [j for j in sched.get_jobs() if j.id != scheduler.CATCH_UP_ID]
    now = datetime.now(SHANGHAI)
    assert all(j.trigger.get_next_fire_time(None, now) > catch.next_run_time for j in others)


def test_jobs_run_one_at_a_time(app):
    executor = scheduler._executors()["default"]
    assert executor._pool._max_workers == 1


# ----------------------------------------------------------------------------- WSGI: never
def test_the_wsgi_app_never_starts_the_scheduler(tmp_path):
    """``gunicorn run:app`` imports run.py and serves requests: no scheduler thread, whatever
    the environment says — the scheduler is started only by ``python run.py`` (main) and by
    ``flask scheduler run``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import threading, run\n"
        "client = run.app.test_client()\n"
        "client.get('/healthz')\n"
        "names = [t.name for t in threading.enumerate()]\n"
        "assert not any('APScheduler' in n for n in names), names\n"
        "print('no scheduler')\n"
    )
    for scheduler_env in ("", "on"):
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'wsgi.db'}",
            "SECRET_KEY": "wsgi-test",
            "SCHEDULER": scheduler_env,
        }
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "no scheduler" in done.stdout


def test_create_app_does_not_start_a_scheduler(monkeypatch):
    from apscheduler.schedulers.base import BaseScheduler

    from advisors import create_app

    def refuse(self, *args, **kwargs):
        raise AssertionError("a scheduler was started by the app factory")

    monkeypatch.setattr(BaseScheduler, "start", refuse)
    create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SCHEDULER": "on"})


# ----------------------------------------------------------------------------- what was missed
def test_missed_periods_come_from_the_job_run_table(app, scheduled_until_july):
    now = sh(2026, 10, 5, 10)
    assert [p.key for p in svc.missed_periods(now)] == ["2026-08", "2026-09", "2026-Q3"]
    # failed runs do not count as done; a "Run now" of a later period does not hide the gap
    record("assessment_monthly", "2026-08", status="failed")
    record("assessment_monthly", "2026-09", trigger="manual")
    assert [p.key for p in svc.missed_periods(now)] == ["2026-08", "2026-Q3"]
    # a skipped scheduled run (already compiled, or published) counts as done
    record("assessment_monthly", "2026-08", status="skipped")
    assert [p.key for p in svc.missed_periods(now)] == ["2026-Q3"]
    # before 06:00 on the 2nd the previous period is not due yet
    record("assessment_quarterly", "2026-Q3")
    assert svc.missed_periods(sh(2026, 11, 2, 5, 59)) == []
    assert [p.key for p in svc.missed_periods(sh(2026, 11, 2, 6))] == ["2026-10"]


def test_first_start_begins_at_the_first_activity(app, make):
    now = sh(2026, 10, 5, 10)
    assert svc.missed_periods(now) == []  # an empty database has nothing to assess
    bureau = make.user("bureau")
    from advisors.services import referrals as referral_service

    with acting_as(bureau):
        referral_service.submit(
            bureau,
            [
                {
                    "credit_code": make.credit_code(),
                    "name": "江州市首家企业有限公司",
                    "industry": "retail",
                    "needs": ["policy"],
                }
            ],
            source="form",
        )
    db.session.execute(update(Referral).values(created_at=sh(2026, 8, 15, 9)))
    db.session.commit()
    assert [p.key for p in svc.missed_periods(now)] == ["2026-08", "2026-09", "2026-Q3"]


# ----------------------------------------------------------------------------- compile once
def test_restart_after_missing_periods_compiles_each_once(app, advisor, scheduled_until_july):
    now = sh(2026, 10, 5, 10)
    done = svc.catch_up(now)
    assert [(r.job_id, r.period, r.trigger, r.status) for r in done] == [
        ("assessment_monthly", "2026-08", "catch_up", "ok"),
        ("assessment_monthly", "2026-09", "catch_up", "ok"),
        ("assessment_quarterly", "2026-Q3", "catch_up", "ok"),
    ]
    assert all(r.rows == 1 and r.message.startswith("advisors=1") for r in done)
    # started again (a restart, a second process after the first finished): nothing to do
    assert svc.catch_up(now) == []
    assert svc.catch_up(now + timedelta(days=3)) == []
    assert ok_runs() == {
        "2026-07": 1,
        "2026-Q2": 1,
        "2025": 1,
        "2026-08": 1,
        "2026-09": 1,
        "2026-Q3": 1,
    }
    assert compile_counts() == {"2026-08": 1, "2026-09": 1, "2026-Q3": 1}
    # a month later the scheduler was down over the 2nd: only October is caught up
    done = svc.catch_up(sh(2026, 11, 9, 12))
    assert [(r.period, r.status) for r in done] == [("2026-10", "ok")]
    assert compile_counts()["2026-10"] == 1


def test_starting_the_scheduler_twice_compiles_each_once(app, advisor, scheduled_until_july):
    """Two scheduler processes start at once and both catch up: one compiles each period, the
    other finds it compiled (its run is recorded as skipped)."""
    now = sh(2026, 10, 5, 10)
    start = scheduler._catch_up_runner(app, now)
    barrier = threading.Barrier(2)
    errors = []

    def process():
        try:
            barrier.wait(timeout=30)
            start()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=process) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    db.session.expire_all()
    assert compile_counts() == {"2026-08": 1, "2026-09": 1, "2026-Q3": 1}
    counts = ok_runs()
    assert [counts[k] for k in ("2026-08", "2026-09", "2026-Q3")] == [1, 1, 1]
    statuses = db.session.execute(
        select(JobRun.status).where(JobRun.trigger == "catch_up")
    ).scalars()
    assert set(statuses) <= {"ok", "skipped"}
    # and a third start, later, finds nothing to do
    start()
    assert compile_counts() == {"2026-08": 1, "2026-09": 1, "2026-Q3": 1}


def test_scheduled_compile_runs_once_per_period(app, advisor):
    fire = sh(2026, 8, 2, 6)
    first = svc.run_job("assessment_monthly", "schedule", now=fire)
    assert (first.period, first.status, first.trigger) == ("2026-07", "ok", "schedule")
    # a second scheduler fires too, or the job fires again after a restart: skipped
    second = svc.run_job("assessment_monthly", "schedule", now=fire + timedelta(minutes=1))
    assert (second.period, second.status, second.message) == (
        "2026-07",
        "skipped",
        svc.ALREADY_COMPILED,
    )
    assert compile_counts() == {"2026-07": 1}
    # the catch-up agrees
    assert svc.catch_up(fire + timedelta(hours=1)) == []
    # the finance office's "Run now" recompiles on purpose
    manual = svc.run_job("assessment_monthly", "manual", "2026-07", now=fire)
    assert manual.status == "ok" and manual.message.endswith("compile_count=2")
    assert compile_counts() == {"2026-07": 2}


def test_a_period_compiled_by_hand_counts_as_done(app, make, advisor, scheduled_until_july):
    from advisors.services.assessments import compile_period

    office = make.user("finance_office")
    with acting_as(office):
        compile_period("2026-09", office)
    db.session.commit()
    done = svc.catch_up(sh(2026, 10, 5, 10))
    assert [r.period for r in done] == ["2026-08", "2026-Q3"]
    assert compile_counts() == {"2026-08": 1, "2026-09": 1, "2026-Q3": 1}


def test_a_published_period_is_skipped_not_failed(app, make, advisor):
    from advisors.services.assessments import compile_period

    office = make.user("finance_office")
    with acting_as(office):
        compile_period("2026-07", office)
    db.session.execute(update(Assessment).values(status="published"))
    db.session.commit()
    with force_locale("en"):
        run = svc.run_job("assessment_monthly", "manual", "2026-07", actor=office)
    assert run.status == "skipped" and "published" in run.message
    assert run.error is None
    assert compile_counts() == {"2026-07": 1}
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_admin_run_now_compiles_as_the_scheduler(app, make, advisor):
    admin = make.user("admin")
    run = svc.run_job("assessment_monthly", "manual", "2026-07", actor=admin)
    assert run.status == "ok" and run.triggered_by_id == admin.id
    assessment = db.session.scalar(select(Assessment))
    assert assessment.compiled_by_id is None


def test_a_failed_compile_is_retried_at_the_next_start(
    app, make, advisor, scheduled_until_july, monkeypatch
):
    from advisors.services import assessments

    office = make.user("finance_office")
    real = assessments.compile_period

    def flaky(period_key, actor=None):
        if period_key == "2026-09":
            raise RuntimeError("statement timeout")
        return real(period_key, actor)

    monkeypatch.setattr(assessments, "compile_period", flaky)
    now = sh(2026, 10, 5, 10)
    done = svc.catch_up(now)
    assert [(r.period, r.status) for r in done] == [
        ("2026-08", "ok"),
        ("2026-09", "failed"),
        ("2026-Q3", "ok"),
    ]
    assert "statement timeout" in done[1].error
    assert compile_counts() == {"2026-08": 1, "2026-Q3": 1}
    notes = db.session.execute(
        select(Notification.user_id, Notification.params).where(Notification.kind == "job_failed")
    ).all()
    assert [(uid, p["job"], p["period"]) for uid, p in notes] == [
        (office.id, "assessment_monthly", "2026-09")
    ]
    monkeypatch.setattr(assessments, "compile_period", real)
    done = svc.catch_up(now + timedelta(hours=1))
    assert [(r.period, r.status) for r in done] == [("2026-09", "ok")]
    assert compile_counts() == {"2026-08": 1, "2026-09": 1, "2026-Q3": 1}


def test_the_scheduled_callable_records_the_run(app, monkeypatch):
    """What APScheduler fires: a recorded run with trigger "schedule", in its own context."""
    run = scheduler._runner(app, "housekeeping")
    run()
    db.session.expire_all()
    (row,) = db.session.execute(select(JobRun)).scalars()
    assert (row.job_id, row.trigger, row.status) == ("housekeeping", "schedule", "ok")
    assert row.finished_at is not None and row.triggered_by_id is None


def test_a_catch_up_across_the_new_year(app, advisor):
    record("assessment_monthly", "2025-10")
    record("assessment_quarterly", "2025-Q3")
    record("assessment_annual", "2024")
    done = svc.catch_up(sh(2026, 1, 2, 6))
    assert [(r.job_id, r.period, r.status) for r in done] == [
        ("assessment_monthly", "2025-11", "ok"),
        ("assessment_monthly", "2025-12", "ok"),
        ("assessment_quarterly", "2025-Q4", "ok"),
        ("assessment_annual", "2025", "ok"),
    ]
    assert compile_counts() == {"2025-11": 1, "2025-12": 1, "2025-Q4": 1, "2025": 1}
