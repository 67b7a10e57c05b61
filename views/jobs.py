"""Scheduled jobs: the finance office's page of jobs, their schedule and their recorded runs,
with a "Run now" button per job.

"Run now" runs the job synchronously in the request through
:func:`advisors.services.jobs.run_job` (trigger "manual"), which records the run and commits in
its own transactions; the page then shows the run's result. Finance office and admins only.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from advisors import labels as vocab
from advisors.errors import NotFound, ValidationFailed
from advisors.params import parse_id, parse_limit
from advisors.permissions import allow_blueprint
from advisors.services import jobs as svc

from ._http import form_view

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
allow_blueprint(bp, "finance_office", "admin")


class RunForm(FlaskForm):
    """The "Run now" form: the CSRF token, and the period for the compile jobs."""

    period = StringField(
        _l("Period"),
        render_kw={"maxlength": 10, "autocomplete": "off", "inputmode": "text"},
    )


@dataclass
class JobCard:
    id: str
    label: str
    description: str
    schedule: str
    next_run: object
    latest: svc.RunRow | None
    compiles: bool
    form: RunForm


def _cards(forms: dict[str, RunForm]) -> list[JobCard]:
    labels, descriptions, schedules = (
        vocab.labels("job"),
        svc.job_descriptions(),
        vocab.labels("job_schedule"),
    )
    latest = svc.latest_by_job()
    cards = []
    for job_id in svc.JOBS:
        form = forms.get(job_id)
        if form is None:
            default = svc.default_period(job_id)
            form = RunForm(formdata=None, period=default.key if default else "")
        cards.append(
            JobCard(
                id=job_id,
                label=labels[job_id],
                description=descriptions[job_id],
                schedule=schedules[job_id],
                next_run=svc.next_run_at(job_id),
                latest=latest.get(job_id),
                compiles=job_id in svc.COMPILE_KINDS,
                form=form,
            )
        )
    return cards


def _render(forms: dict[str, RunForm] | None = None, status: int = 200):
    job = (request.args.get("job") or "").strip()[:40]
    before = parse_id(request.args.get("before"))  # the last run id seen; else the first page
    limit = parse_limit(request.args.get("limit"), svc.PAGE_SIZE, svc.MAX_LIMIT)
    error = None
    try:
        page = svc.recent_runs(job or None, before=before, limit=limit)
    except ValidationFailed as exc:
        page = svc.RunPage([], None)
        error = exc.fields.get("job", exc.message)
        status = max(status, 422)
    args = {"job": job} if job else {}
    if limit != svc.PAGE_SIZE:
        args["limit"] = str(limit)
    return render_template(
        "jobs/index.html",
        cards=_cards(forms or {}),
        page=page,
        job=job,
        error=error,
        status_labels=vocab.labels("job_status"),
        trigger_labels=vocab.labels("job_trigger"),
        describe=svc.describe,
        next_url=url_for("jobs.index", **args, before=page.next_before)
        if page.next_before
        else None,
        first_url=url_for("jobs.index", **args) if before else None,
    ), status


@bp.route("/")
def index():
    return _render()


@bp.route("/<job_id>/run", methods=["POST"])
@form_view
def run(job_id: str):
    if not svc.is_job(job_id):
        abort(404)
    form = RunForm()
    if not form.validate():
        return _render({job_id: form}, status=422)
    try:
        result = svc.run_job(
            job_id, "manual", form.period.data, actor=current_user._get_current_object()
        )
    except ValidationFailed as exc:
        for key, message in exc.fields.items():
            target = getattr(form, key, None)
            if target is not None and key != "csrf_token":
                target.errors = [*target.errors, message]
            else:
                form.form_errors.append(message)
        return _render({job_id: form}, status=422)
    except NotFound:
        abort(404)
    label = vocab.labels("job")[job_id]
    if result.period:
        label = f"{label} {result.period}"
    summary = svc.describe(result.message)
    if result.status == "ok":
        flash(_("%(job)s done. %(summary)s", job=label, summary=summary).strip(), "success")
    elif result.status == "skipped":
        flash(_("%(job)s skipped: %(reason)s", job=label, reason=summary), "warning")
    else:
        flash(
            _(
                "%(job)s failed: %(error)s. The error is recorded below; the finance office "
                "and admins have been notified.",
                job=label,
                error=summary,
            ),
            "danger",
        )
    return redirect(url_for("jobs.index", job=job_id, _anchor=f"run-{result.id}"))
