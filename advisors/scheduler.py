"""APScheduler 3.x: jobs defined in code with fixed ids, in Asia/Shanghai.

One scheduler process only: ``flask --app run scheduler run`` in production, or in-process under
``python run.py``. The WSGI app never starts it (3.x cannot share a job store between processes,
so every gunicorn worker would run every job)."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from flask import Flask
from sqlalchemy import delete

from models import FormDraft, LoginAttempt, UserSession, db, utcnow

from .audit import acting_as
from .services.sla import sweep_overdue

log = logging.getLogger(__name__)
TIMEZONE = "Asia/Shanghai"

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600}


def housekeeping() -> dict:
    """Purge what has outlived its use: old login attempts, ended sessions, stale form drafts."""
    now = utcnow()
    counts = {}
    counts["login_attempts"] = db.session.execute(
        delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=30))
    ).rowcount
    counts["sessions"] = db.session.execute(
        delete(UserSession).where(
            (UserSession.revoked_at < now - timedelta(days=30))
            | (UserSession.last_seen_at < now - timedelta(days=30))
        )
    ).rowcount
    counts["form_drafts"] = db.session.execute(
        delete(FormDraft).where(FormDraft.created_at < now - timedelta(days=2))
    ).rowcount
    db.session.commit()
    return counts


def sla_overdue_sweep() -> dict:
    """The daily service-level sweep: notify advisor, liaison and finance office of every case
    past its first-contact date (once per case and day, however often it runs)."""
    counts = sweep_overdue()
    db.session.commit()
    return counts


# id -> (function, trigger kwargs). Ids are fixed so a restart never duplicates a job.
JOBS = {
    "housekeeping": (housekeeping, {"hour": 3, "minute": 30}),
    "sla_overdue_sweep": (sla_overdue_sweep, {"hour": 8, "minute": 30}),
}


def _runner(app: Flask, job_id: str):
    func = JOBS[job_id][0]

    def run():
        with app.app_context(), acting_as(label=f"job:{job_id}"):
            try:
                result = func()
                log.info("job %s done: %s", job_id, result)
            except Exception:
                db.session.rollback()
                log.exception("job %s failed", job_id)
                raise

    return run


def configure(scheduler, app: Flask):
    for job_id, (_func, trigger) in JOBS.items():
        scheduler.add_job(
            _runner(app, job_id),
            CronTrigger(timezone=TIMEZONE, **trigger),
            id=job_id,
            name=job_id,
            replace_existing=True,
        )
    return scheduler


def start_background(app: Flask) -> BackgroundScheduler:
    scheduler = configure(BackgroundScheduler(timezone=TIMEZONE, job_defaults=JOB_DEFAULTS), app)
    scheduler.start()
    return scheduler


def run_blocking(app: Flask) -> None:
    scheduler = configure(BlockingScheduler(timezone=TIMEZONE, job_defaults=JOB_DEFAULTS), app)
    log.info("scheduler started with jobs: %s", ", ".join(JOBS))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
