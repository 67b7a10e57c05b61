"""Scheduled jobs: the catalogue, the record of every run, and the catch-up after downtime.

The catalogue (:data:`JOBS`) maps a fixed job id to its function and its cron fields
(Asia/Shanghai). :func:`run_job` is the one way a job runs — on schedule, at start-up
(catch-up), from the finance office's "Run now" button or from the CLI — and every run leaves a
``job_run`` row: start, end, status, rows, a summary and, on failure, the error. The run is
recorded in its own transaction, so a failure inside the job is rolled back while its failed
run is kept and the finance office and admins are notified.

Correctness lives in the database, not in the scheduler: a compile job takes a lock on its
period (PostgreSQL advisory transaction lock; on SQLite, the database write lock taken by the
transaction's first statement) and, when it runs on its own (schedule or catch-up), skips a
period that already has an assessment or a successful run. Two schedulers, a restart or a
"Run now" beside the schedule therefore compile each period once. :func:`catch_up` works out
the missed periods from the ``job_run`` table, never from the scheduler's fire times.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, exists, func, select, text, update

from models import (
    Assessment,
    AssessmentRow,
    FormDraft,
    JobRun,
    LoginAttempt,
    Referral,
    User,
    UserSession,
    Visit,
    db,
    utcnow,
)

from .. import clock, periods
from .. import labels as vocab
from ..dbutil import held_for_life, is_held, is_postgresql, set_local_statement_timeout
from ..errors import Conflict, NotFound, ValidationFailed
from ..i18n import SHANGHAI
from .notifications import notify, users_with_role

log = logging.getLogger(__name__)

TIMEZONE = "Asia/Shanghai"
TRIGGERS = ("schedule", "catch_up", "manual", "cli")
AUTOMATIC = ("schedule", "catch_up")  # runs nobody asked for: they never redo a period
STATUSES = ("running", "ok", "failed", "skipped")
STALE_AFTER = timedelta(hours=6)  # a run still "running" after this was cut off
PAGE_SIZE = 50
MAX_LIMIT = 200
_MESSAGE_MAX = 1000
_ERROR_MAX = 20_000
ALREADY_COMPILED = "already_compiled"
INTERRUPTED = "interrupted"
FAULT_PAUSE_ENV = "ADVISORS_FAULT_PAUSE_IN_JOB"  # tests only: see _fault_pause


@dataclass(frozen=True)
class Result:
    """What a job did: ``rows`` written or removed, and named counts (the run's summary)."""

    rows: int
    counts: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- the jobs
def housekeeping() -> Result:
    """Purge what has outlived its use: old login attempts, ended sessions, stale form drafts."""
    now = utcnow()
    counts = {
        "login_attempts": db.session.execute(
            delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=30))
        ).rowcount,
        "sessions": db.session.execute(
            delete(UserSession).where(
                (UserSession.revoked_at < now - timedelta(days=30))
                | (UserSession.last_seen_at < now - timedelta(days=30))
            )
        ).rowcount,
        "form_drafts": db.session.execute(
            delete(FormDraft).where(FormDraft.created_at < now - timedelta(days=2))
        ).rowcount,
    }
    counts = {k: max(v or 0, 0) for k, v in counts.items()}
    return Result(sum(counts.values()), counts)


def sla_overdue_sweep() -> Result:
    """The daily service-level sweep: notify advisor, liaison and finance office of every case
    past its first-contact date (once per case and day, however often it runs)."""
    from .sla import sweep_overdue

    counts = sweep_overdue()
    return Result(counts["notifications"], counts)


def weekly_digest() -> Result:
    """Each bureau's users: their referrals' progress over the past week."""
    from .digest import send_weekly_digest

    counts = send_weekly_digest()
    return Result(counts["notifications"], counts)


# The upload queue's job (advisors/services/upload_queue.py): fired every few seconds
# (UPLOAD_QUEUE_SECONDS) by the scheduler process, so not in JOBS, whose runs are recorded one
# by one. Each upload it takes has its own status, progress and outcome instead.
QUEUE_JOB_ID = "process_uploads"


def process_uploads(*, at_start: bool = False) -> int:
    """Import the queued list uploads, oldest first, for up to a minute; the first run after
    the scheduler starts (``at_start``) first sends back to the queue (or fails) the uploads
    its previous life left running. Returns how many uploads it took."""
    from .upload_queue import process_queue, recover

    if at_start:
        recover(at_start=True)
    return process_queue()


def _compile(period: periods.Period, actor: User | None) -> Result:
    """Compile through the assessments service. Only the finance office compiles in its own
    name; an admin's "Run now" runs the job as the scheduler would (the run records who)."""
    from .assessments import compile_period

    in_own_name = actor is not None and actor.role == "finance_office"
    assessment = compile_period(period.key, actor if in_own_name else None)
    advisors = db.session.scalar(
        select(func.count())
        .select_from(AssessmentRow)
        .where(AssessmentRow.assessment_id == assessment.id)
    )
    return Result(advisors, {"advisors": advisors, "compile_count": assessment.compile_count})


def assessment_monthly(period: periods.Period, actor: User | None = None) -> Result:
    """Compile a month (on schedule: the previous month, on the 2nd at 06:00)."""
    return _compile(period, actor)


def assessment_quarterly(period: periods.Period, actor: User | None = None) -> Result:
    """Compile a quarter (on schedule: the previous quarter, on the 2nd of Jan/Apr/Jul/Oct)."""
    return _compile(period, actor)


def assessment_annual(period: periods.Period, actor: User | None = None) -> Result:
    """Compile a year (on schedule: the previous year, on 2 January)."""
    return _compile(period, actor)


# id -> (function, CronTrigger fields in Asia/Shanghai). Ids are fixed, so a restart or a
# second scheduler never duplicates a job, and job_run rows keep their meaning.
JOBS: dict[str, tuple[Callable[..., Result], dict]] = {
    "housekeeping": (housekeeping, {"hour": 3, "minute": 30}),
    "sla_overdue_sweep": (sla_overdue_sweep, {"hour": 8, "minute": 30}),
    "assessment_monthly": (assessment_monthly, periods.SCHEDULE["month"]),
    "assessment_quarterly": (assessment_quarterly, periods.SCHEDULE["quarter"]),
    "assessment_annual": (assessment_annual, periods.SCHEDULE["year"]),
    "weekly_digest": (weekly_digest, {"day_of_week": "mon", "hour": 8, "minute": 0}),
}
# The compile jobs and the kind of period each compiles.
COMPILE_KINDS = {
    "assessment_monthly": "month",
    "assessment_quarterly": "quarter",
    "assessment_annual": "year",
}
JOB_OF_KIND = {kind: job_id for job_id, kind in COMPILE_KINDS.items()}


def job_descriptions() -> dict[str, str]:
    return {
        "housekeeping": _(
            "Purges login attempts and ended sessions older than 30 days and unsent form drafts."
        ),
        "sla_overdue_sweep": _(
            "Notifies the advisor, the liaison and the finance office of every case whose first "
            "contact is overdue."
        ),
        "assessment_monthly": _("Compiles the previous month's assessment as a draft."),
        "assessment_quarterly": _("Compiles the previous quarter's assessment as a draft."),
        "assessment_annual": _("Compiles the previous year's assessment as a draft."),
        "weekly_digest": _(
            "Sends each bureau's users a summary of their referrals' progress over the past week."
        ),
    }


def cron_trigger(job_id: str) -> CronTrigger:
    return CronTrigger(timezone=TIMEZONE, **JOBS[job_id][1])


def next_run_at(job_id: str, now: datetime | None = None) -> datetime | None:
    """When the job fires next after ``now``, as an aware Asia/Shanghai time."""
    now = (now or utcnow()).astimezone(SHANGHAI)
    return cron_trigger(job_id).get_next_fire_time(None, now)


# ----------------------------------------------------------------------------- summaries
_SUMMARY_RE = re.compile(r"^[a-z_]+=-?[0-9]+(; [a-z_]+=-?[0-9]+)*$")


def _summary(counts: dict[str, int]) -> str:
    return "; ".join(f"{k}={int(v)}" for k, v in counts.items())[:_MESSAGE_MAX]


def describe(message: str | None) -> str:
    """A run's summary in the reader's language: counts are stored as ``key=value; …``."""
    if not message:
        return ""
    if message == ALREADY_COMPILED:
        return _("This period was already compiled; nothing was done.")
    if message == INTERRUPTED:
        return _("The run did not finish: the process running it stopped.")
    if not _SUMMARY_RE.match(message):
        return message
    labels = vocab.labels("job_count")
    parts = []
    for item in message.split("; "):
        key, value = item.split("=", 1)
        parts.append(f"{labels.get(key, key)}: {value}")
    return " · ".join(parts)


# ----------------------------------------------------------------------------- run_job
def is_job(job_id: object) -> bool:
    return isinstance(job_id, str) and job_id in JOBS


def default_period(job_id: str, now: datetime | None = None) -> periods.Period | None:
    """The period a compile job compiles when none is given: the one before ``now``'s."""
    kind = COMPILE_KINDS.get(job_id)
    if kind is None:
        return None
    return periods.period_of(kind, now or utcnow()).previous()


def resolve_period(
    job_id: str, period: str | periods.Period | None, now: datetime | None = None
) -> periods.Period | None:
    """The period a run of ``job_id`` is for. Compile jobs take one of their kind that has
    ended (default: the previous one); the other jobs take none. Bad input raises
    ValidationFailed naming the field ``period``."""
    now = now or utcnow()
    kind = COMPILE_KINDS.get(job_id)
    raw = period.key if isinstance(period, periods.Period) else (period or "").strip()
    if kind is None:
        if raw:
            raise ValidationFailed(
                _("Please correct the marked fields."),
                {"period": _("This job does not take a period.")},
            )
        return None
    if not raw:
        return default_period(job_id, now)
    try:
        target = periods.parse(raw)
    except ValueError as exc:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"period": str(exc)}
        ) from None
    if target.kind != kind:
        examples = {"month": "2026-07", "quarter": "2026-Q3", "year": "2026"}
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "period": _(
                    "%(job)s compiles a %(kind)s, such as %(example)s.",
                    job=vocab.labels("job")[job_id],
                    kind=vocab.labels("period_kind_lower")[kind],
                    example=examples[kind],
                )
            },
        )
    if not target.has_ended(now):
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"period": _("%(period)s has not ended yet.", period=target.key)},
        )
    return target


def run_job(
    job_id: str,
    trigger: str,
    period: str | periods.Period | None = None,
    actor: User | None = None,
    *,
    now: datetime | None = None,
) -> JobRun:
    """Run a job and record the run. Manages its own transactions (call it with no unfinished
    work in the session): the ``running`` row is committed first; the job's work and its ``ok``
    are committed together; on failure the work is rolled back and the failed run committed,
    with the finance office and admins notified. A compile refused because the period is
    published (Conflict) is ``skipped``, not a failure.

    Raises NotFound for an unknown job and ValidationFailed for a bad period (nothing recorded).
    """
    if not is_job(job_id):
        raise NotFound(_("No job named %(id)s.", id=str(job_id)[:40]))
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    target = resolve_period(job_id, period, now)
    func = JOBS[job_id][0]
    run = JobRun(
        job_id=job_id,
        period=target.key if target else None,
        trigger=trigger,
        started_at=utcnow(),
        status="running",
        triggered_by_id=actor.id if actor is not None else None,
    )
    db.session.add(run)
    db.session.flush()
    # Held from before the "running" row is visible until the run's outcome is committed, and
    # never longer than this process lives: a run left "running" by a process that was killed
    # is told from one still at work (abandon_stale_runs).
    with held_for_life(run_lock_name(run.id)):
        db.session.commit()
        return _execute(run, job_id, trigger, target, func, actor)


def _execute(run: JobRun, job_id, trigger, target, func, actor) -> JobRun:
    run_id = run.id
    try:
        # The job's own transaction: longer statements than a web request's are allowed.
        set_local_statement_timeout(current_app.config.get("JOB_STATEMENT_TIMEOUT_MS", 0))
        if target is not None:
            _lock_period(target, run_id)
            if trigger in AUTOMATIC and _already_compiled(job_id, target.key, run_id):
                _finish(run, "skipped", message=ALREADY_COMPILED)
                db.session.commit()
                log.info("job %s %s: already compiled, skipped", job_id, target.key)
                return run
            result = func(target, actor)
        else:
            result = func()
        _fault_pause(job_id)
        _finish(run, "ok", rows=result.rows, message=_summary(result.counts))
        db.session.commit()
        log.info("job %s%s done: %s", job_id, f" {target.key}" if target else "", result.counts)
    except Conflict as exc:
        db.session.rollback()
        run = db.session.get(JobRun, run_id)
        _finish(run, "skipped", message=exc.message)
        db.session.commit()
        log.info("job %s skipped: %s", job_id, exc.message)
    except Exception as exc:  # noqa: BLE001 (every failure is recorded and notified)
        db.session.rollback()
        log.exception("job %s failed", job_id)
        run = _record_failure(run_id, exc, traceback.format_exc())
    return run


def run_lock_name(run_id: int) -> str:
    """The lock a run's process holds while it runs (:func:`advisors.dbutil.held_for_life`)."""
    return f"job_run:{run_id}"


def _fault_pause(job_id: str) -> None:
    """Test hook for tests/test_faults.py only: with ``ADVISORS_FAULT_PAUSE_IN_JOB=SECONDS`` in
    the environment a job announces on stderr that its work is done but not committed, and
    sleeps, so that a ``kill -9`` lands inside its transaction."""
    seconds = os.environ.get(FAULT_PAUSE_ENV)
    if seconds:
        print(f"fault-pause: {job_id} in its transaction", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


def _finish(run: JobRun, status: str, *, rows: int | None = None, message: str | None = None):
    run.status = status
    run.rows = rows
    run.message = (message or None) and message[:_MESSAGE_MAX]
    run.finished_at = utcnow()


def _one_line(exc: BaseException) -> str:
    lines = str(getattr(exc, "message", None) or exc).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _record_failure(run_id: int, exc: BaseException, trace: str) -> JobRun:
    run = db.session.get(JobRun, run_id)
    _finish(run, "failed", message=_one_line(exc))
    run.error = trace[-_ERROR_MAX:]
    day = clock.today().isoformat()
    recipients = users_with_role("finance_office") + users_with_role("admin")
    notify(
        recipients,
        "job_failed",
        params={
            "job": run.job_id,
            "period": run.period or "",
            "error": _one_line(exc)[:200],
            "run_id": run.id,
        },
        dedupe_key=f"job_failed:{run.job_id}:{day}",
    )
    db.session.commit()
    return run


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _lock_period(target: periods.Period, run_id: int) -> None:
    """Serialise every run compiling ``target`` until this transaction ends. PostgreSQL: an
    advisory transaction lock. SQLite: make the transaction's first statement a write, which
    takes the database's one write lock (waiting out another writer's transaction)."""
    if is_postgresql():
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(f"compile:{target.key}")}
        )
    else:
        db.session.execute(update(JobRun).where(JobRun.id == run_id).values(status="running"))


def _already_compiled(job_id: str, key: str, run_id: int) -> bool:
    assessment = exists().where(Assessment.period == key)
    ok_run = exists().where(
        JobRun.job_id == job_id, JobRun.period == key, JobRun.status == "ok", JobRun.id != run_id
    )
    return bool(db.session.scalar(select(assessment | ok_run)))


# ----------------------------------------------------------------------------- catch-up
def last_done() -> dict[str, periods.Period | None]:
    """Per kind, the latest period the scheduler itself finished (ok, or skipped as already
    done) — a "Run now" of a later period does not hide the gap before it."""
    rows = db.session.execute(
        select(JobRun.job_id, JobRun.period)
        .where(
            JobRun.job_id.in_(list(COMPILE_KINDS)),
            JobRun.trigger.in_(AUTOMATIC),
            JobRun.status.in_(("ok", "skipped")),
            JobRun.period.is_not(None),
        )
        .distinct()
    ).all()
    latest: dict[str, periods.Period | None] = dict.fromkeys(periods.KINDS)
    for job_id, key in rows:
        try:
            p = periods.parse(key)
        except ValueError:
            continue
        kind = COMPILE_KINDS[job_id]
        if p.kind == kind and (latest[kind] is None or p > latest[kind]):
            latest[kind] = p
    return latest


def _first_activity() -> date | None:
    """The Shanghai date of the first visit or referral: before it there is nothing to assess."""
    days = []
    first_visit = db.session.scalar(select(func.min(Visit.visited_on)))
    if first_visit is not None:
        days.append(first_visit)
    first_referral = db.session.scalar(select(func.min(Referral.created_at)))
    if first_referral is not None:
        days.append(first_referral.astimezone(SHANGHAI).date())
    return min(days) if days else None


def _done_periods(keys: list[str]) -> set[str]:
    if not keys:
        return set()
    compiled = db.session.execute(select(Assessment.period).where(Assessment.period.in_(keys)))
    ok = db.session.execute(
        select(JobRun.period).where(
            JobRun.job_id.in_(list(COMPILE_KINDS)),
            JobRun.period.in_(keys),
            JobRun.status == "ok",
        )
    )
    return set(compiled.scalars()) | set(ok.scalars())


def missed_periods(now: datetime | None = None) -> list[periods.Period]:
    """The periods to compile at start-up, oldest first: those due since the latest period the
    scheduler finished per kind (:func:`periods.due_periods`), less those already compiled (an
    assessment exists, or an ok run). The first time a kind runs at all, the backlog starts
    at the first recorded activity, so an empty database compiles nothing."""
    now = now or utcnow()
    done_before = last_done()
    due = periods.due_periods(now, done_before)
    first = _first_activity()
    due = [
        p
        for p in due
        if done_before[p.kind] is not None or (first is not None and p.last_day >= first)
    ]
    done = _done_periods([p.key for p in due])
    return [p for p in due if p.key not in done]


def abandon_stale_runs(now: datetime | None = None) -> int:
    """Runs left ``running`` by a process that is gone (killed, crashed, the machine went
    down) are marked failed as interrupted (not notified); the catch-up then compiles their
    periods again. A run's process holds its lock (:func:`run_lock_name`) for as long as it
    runs, so a run whose lock is free is gone whatever its age, and one still at work in
    another process (a "Run now", a second scheduler) is left alone. Where that cannot be
    known (no ``flock``), a run is taken for gone after :data:`STALE_AFTER`."""
    now = now or utcnow()
    running = db.session.execute(
        select(JobRun.id, JobRun.started_at).where(JobRun.status == "running")
    ).all()
    db.session.rollback()  # the checks below must not wait on a transaction of ours
    gone = []
    for run_id, started_at in running:
        held = is_held(run_lock_name(run_id))
        if held is False or (held is None and started_at < now - STALE_AFTER):
            gone.append(run_id)
    if not gone:
        return 0
    count = db.session.execute(
        update(JobRun)
        .where(JobRun.id.in_(gone), JobRun.status == "running")  # unless it finished meanwhile
        .values(status="failed", message=INTERRUPTED, finished_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if count:
        log.warning("marked %s interrupted run(s) as failed: %s", count, gone)
    return max(count or 0, 0)


def catch_up(now: datetime | None = None) -> list[JobRun]:
    """At start-up: compile every missed period, oldest first (trigger ``catch_up``)."""
    now = now or utcnow()
    abandon_stale_runs(now)
    missed = missed_periods(now)
    if missed:
        log.info("catch-up: compiling %s", ", ".join(p.key for p in missed))
    return [run_job(JOB_OF_KIND[p.kind], "catch_up", p, now=now) for p in missed]


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class RunRow:
    id: int
    job_id: str
    period: str | None
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    rows: int | None
    message: str | None
    error: str | None
    triggered_by: str | None

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class RunPage:
    items: list[RunRow]
    next_before: int | None


def _run_columns():
    return (
        JobRun.id,
        JobRun.job_id,
        JobRun.period,
        JobRun.trigger,
        JobRun.status,
        JobRun.started_at,
        JobRun.finished_at,
        JobRun.rows,
        JobRun.message,
        JobRun.error,
        User.display_name.label("triggered_by"),
    )


def recent_runs(
    job_id: str | None = None, before: int | None = None, limit: int = PAGE_SIZE
) -> RunPage:
    """The latest runs, newest first, keyset-paginated by id (``before``: the last id seen);
    optionally of one job (an unknown job raises ValidationFailed naming ``job``)."""
    if job_id and not is_job(job_id):
        raise ValidationFailed(
            _("Please correct the marked fields."), {"job": _("Choose a job from the list.")}
        )
    limit = max(1, min(int(limit), MAX_LIMIT))
    stmt = select(*_run_columns()).outerjoin(User, User.id == JobRun.triggered_by_id)
    if job_id:
        stmt = stmt.where(JobRun.job_id == job_id)
    if before:
        stmt = stmt.where(JobRun.id < before)
    rows = [
        RunRow(**r._mapping)
        for r in db.session.execute(stmt.order_by(JobRun.id.desc()).limit(limit + 1))
    ]
    more = len(rows) > limit
    rows = rows[:limit]
    return RunPage(rows, rows[-1].id if more and rows else None)


def latest_by_job() -> dict[str, RunRow]:
    """Each job's latest run (one query)."""
    latest = select(func.max(JobRun.id).label("id")).group_by(JobRun.job_id).subquery("latest")
    stmt = (
        select(*_run_columns())
        .join(latest, latest.c.id == JobRun.id)
        .outerjoin(User, User.id == JobRun.triggered_by_id)
    )
    return {r.job_id: RunRow(**r._mapping) for r in db.session.execute(stmt)}
