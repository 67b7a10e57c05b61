"""APScheduler 3.x: the jobs of :mod:`advisors.services.jobs`, fired in Asia/Shanghai.

One scheduler process only: ``flask --app run scheduler run`` in production, or in-process under
``python run.py``. The WSGI app never starts it (3.x cannot share a job store between processes,
so every gunicorn worker would run every job). Even so, correctness does not depend on there
being one: every run goes through :func:`advisors.services.jobs.run_job`, which records it and
guards each assessment period in the database, so a second scheduler or a restart compiles
nothing twice.

On start the scheduler first catches up the assessment periods it missed while it was down
(worked out from the ``job_run`` table), then fires the jobs on their cron schedules. Jobs run
one at a time (a single worker): three compiles due at 06:00 on 2 January queue up instead of
contending for the database. Beside them, every ``UPLOAD_QUEUE_SECONDS`` the upload queue's job
imports the list uploads too long for a request (:mod:`advisors.services.upload_queue`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from models import db

from . import clock
from .audit import acting_as
from .services.jobs import (
    JOBS,
    QUEUE_JOB_ID,
    TIMEZONE,
    catch_up,
    cron_trigger,
    housekeeping,
    process_uploads,
    run_job,
    sla_overdue_sweep,
)

__all__ = [
    "JOBS",
    "JOB_DEFAULTS",
    "TIMEZONE",
    "configure",
    "housekeeping",
    "run_blocking",
    "sla_overdue_sweep",
    "start_background",
]

log = logging.getLogger(__name__)

# coalesce: after a pause, one run rather than a burst; max_instances: never two of a job at
# once; misfire_grace_time: a run late by up to six hours (a busy or suspended machine) still
# happens — the default of one second would silently skip it.
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600}
CATCH_UP_ID = "catch_up"


def _runner(app: Flask, job_id: str):
    """The callable APScheduler fires: one recorded run of ``job_id`` (trigger "schedule")."""

    def run():
        with app.app_context(), acting_as(label=f"job:{job_id}"):
            try:
                run_job(job_id, "schedule")
            except Exception:
                # run_job records and notifies failures inside the job; this is the database
                # itself failing. Logged, and the next fire tries again.
                db.session.rollback()
                log.exception("job %s could not be run", job_id)

    return run


def _catch_up_runner(app: Flask, now: datetime | None = None):
    def run():
        with app.app_context(), acting_as(label="job:catch_up"):
            try:
                runs = catch_up(now)
                if runs:
                    log.info(
                        "catch-up done: %s",
                        ", ".join(f"{r.job_id} {r.period} {r.status}" for r in runs),
                    )
            except Exception:
                db.session.rollback()
                log.exception("catch-up failed")

    return run


def _queue_runner(app: Flask):
    """The upload queue's job; its first run after the scheduler starts also recovers the
    uploads a previous life of the process left running."""
    first = True

    def run():
        nonlocal first
        with app.app_context(), acting_as(label=f"job:{QUEUE_JOB_ID}"):
            try:
                process_uploads(at_start=first)
                first = False
            except Exception:
                # process_uploads fails an upload whose import fails; this is the database
                # itself failing. Logged, and the next fire tries again.
                db.session.rollback()
                log.exception("job %s could not be run", QUEUE_JOB_ID)

    return run


def _executors() -> dict:
    return {"default": ThreadPoolExecutor(max_workers=1)}


def configure(scheduler, app: Flask, *, catch_up_now: bool = False, queue: bool = False):
    """Add every job (fixed ids; replacing, never duplicating) and, with ``catch_up_now``, a
    one-off catch-up that runs as soon as the scheduler starts, before any scheduled job; with
    ``queue``, the upload queue's job, every ``UPLOAD_QUEUE_SECONDS``."""
    for job_id in JOBS:
        scheduler.add_job(
            _runner(app, job_id),
            cron_trigger(job_id),
            id=job_id,
            name=job_id,
            replace_existing=True,
            **JOB_DEFAULTS,
        )
    if catch_up_now:
        scheduler.add_job(
            _catch_up_runner(app),
            id=CATCH_UP_ID,
            name=CATCH_UP_ID,
            next_run_time=clock.local_now(),
            replace_existing=True,
            **JOB_DEFAULTS,
        )
    if queue:
        scheduler.add_job(
            _queue_runner(app),
            IntervalTrigger(
                seconds=max(1, int(app.config.get("UPLOAD_QUEUE_SECONDS", 5))), timezone=TIMEZONE
            ),
            id=QUEUE_JOB_ID,
            name=QUEUE_JOB_ID,
            replace_existing=True,
            **JOB_DEFAULTS,
        )
    return scheduler


def _new(cls):
    return cls(timezone=TIMEZONE, job_defaults=JOB_DEFAULTS, executors=_executors())


def start_background(app: Flask) -> BackgroundScheduler:
    """In-process scheduler for ``python run.py``: catches up, then runs the schedule."""
    scheduler = configure(_new(BackgroundScheduler), app, catch_up_now=True, queue=True)
    scheduler.start()
    log.info("scheduler started in-process with jobs: %s", ", ".join(JOBS))
    return scheduler


def run_blocking(app: Flask) -> None:
    """``flask --app run scheduler run``: catches up, then runs the schedule until stopped."""
    scheduler = configure(_new(BlockingScheduler), app, catch_up_now=True, queue=True)
    log.info("scheduler started with jobs: %s", ", ".join(JOBS))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
