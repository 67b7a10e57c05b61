"""``flask --app run …`` commands of the contract. Errors: non-zero exit, one line on stderr."""

from __future__ import annotations

import functools

import click
from flask import Flask
from flask.cli import AppGroup
from flask_babel import force_locale

from models import db

from .audit import acting_as
from .errors import DomainError

orgs_cli = AppGroup("orgs", help="Organisations.")
users_cli = AppGroup("users", help="Users and API tokens.")
demo_cli = AppGroup("demo", help="The demo data set.")
scheduler_cli = AppGroup("scheduler", help="The scheduler process.")
assessments_cli = AppGroup("assessments", help="Advisor assessments.")
townships_cli = AppGroup("townships", help="The city's townships and streets (乡镇/街道).")
indicators_cli = AppGroup("indicators", help="Institution indicators and their yearly targets.")


def _one_line(message: str, fields: dict | None = None) -> str:
    parts = [message] + [f"{k}: {v}" for k, v in (fields or {}).items()]
    return " ".join(str(p).replace("\n", " ") for p in parts)


def cli_command(func):
    """Run inside an audit actor 'cli', commit once, and turn domain errors into one line."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with force_locale("zh_CN"), acting_as(label="cli"):
            try:
                result = func(*args, **kwargs)
                db.session.commit()
                return result
            except DomainError as exc:
                db.session.rollback()
                raise click.ClickException(_one_line(exc.message, exc.fields)) from None

    return wrapper


@orgs_cli.command("create")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--type", "type_", required=True)
@click.option("--short-name", default=None)
@cli_command
def orgs_create(code, name, type_, short_name):
    """Create an organisation."""
    from .services.orgs import create_org

    org = create_org(code, name, type_, short_name)
    click.echo(f"{org.code}\t{org.name}\t{org.type}")


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", required=True)
@click.option("--org", "org_code", default=None)
@click.option("--name", "display_name", default=None)
@cli_command
def users_create(username, password, role, org_code, display_name):
    """Create a user."""
    from .services.users import create_user

    user = create_user(
        username=username,
        password=password,
        role=role,
        org_code=org_code,
        display_name=display_name,
    )
    click.echo(f"{user.username}\t{user.role}\t{user.org.code if user.org else '-'}")


@users_cli.command("token")
@click.argument("username")
@click.option("--name", default="cli", help="A label shown on the user's profile page.")
@cli_command
def users_token(username, name):
    """Print a new API token for USERNAME (one line, nothing else)."""
    from flask_babel import gettext as _

    from .security import issue_token
    from .services.users import find_user

    user = find_user(username)
    if user is None:
        raise DomainError(_("No user named %(u)s.", u=username))
    if not user.active:
        raise DomainError(_("User %(u)s is deactivated.", u=username))
    _row, secret = issue_token(user, name)
    click.echo(secret)


@demo_cli.command("seed")
@click.option("--force", is_flag=True, help="Seed even when the database already has data.")
@cli_command
def demo_seed(force):
    """Load the demo data set (a realistic city)."""
    from .demo import database_is_empty, seed_demo

    if not force and not database_is_empty():
        raise DomainError("数据库中已有数据；如仍要加载演示数据，请加 --force。")
    summary = seed_demo()
    click.echo(summary)


@scheduler_cli.command("run")
def scheduler_run():
    """The one scheduler process (production: exactly one of these beside gunicorn)."""
    from flask import current_app

    from .scheduler import run_blocking

    run_blocking(current_app._get_current_object())


@scheduler_cli.command("run-job")
@click.argument("job_id")
@click.option("--period", default=None, help="For the compile jobs (default: the previous one).")
def scheduler_run_job(job_id, period):
    """Run one job now and record it (trigger "cli"); exits non-zero if the run failed."""
    from flask_babel import gettext as _

    from .services.jobs import JOBS, describe, run_job

    with force_locale("zh_CN"), acting_as(label="cli"):
        if job_id not in JOBS:
            raise click.ClickException(
                _("Unknown job %(job)s. Jobs: %(jobs)s", job=job_id, jobs=", ".join(JOBS))
            )
        try:
            run = run_job(job_id, "cli", period)
        except DomainError as exc:
            db.session.rollback()
            raise click.ClickException(_one_line(exc.message, exc.fields)) from None
        line = "\t".join([run.job_id, run.period or "-", run.status, describe(run.message)])
        if run.status == "failed":
            raise click.ClickException(line)
        click.echo(line)


def _assessment_line(assessment) -> str:
    from sqlalchemy import func, select

    from models import AssessmentRow, RubricVersion

    advisors = db.session.scalar(
        select(func.count())
        .select_from(AssessmentRow)
        .where(AssessmentRow.assessment_id == assessment.id)
    )
    number = db.session.scalar(
        select(RubricVersion.number).where(RubricVersion.id == assessment.rubric_id)
    )
    from .services.assessments import compiled_in_progress

    fields = [
        assessment.period,
        assessment.status,
        f"advisors={advisors}",
        f"rubric=v{number}",
        f"compile_count={assessment.compile_count}",
    ]
    if assessment.notice_number:
        fields.append(f"document={assessment.notice_number}")
    if compiled_in_progress(assessment):
        # The current, unfinished period: the figures change until it ends.
        fields.append(f"in_progress=until {assessment.ends_on.isoformat()}")
    return "\t".join(fields)


@assessments_cli.command("compile")
@click.argument("period")
@cli_command
def assessments_compile(period):
    """Compile PERIOD (2026-07, 2026-Q3 or 2026), or recompile its draft; one summary line."""
    from .services.assessments import compile_period

    assessment = compile_period(period, None)
    click.echo(_assessment_line(assessment))


@assessments_cli.command("publish")
@click.argument("period")
@click.option("--by", "username", default=None, help="The finance-office user publishing it.")
@click.option(
    "--doc-number",
    "doc_number",
    default=None,
    help="The notice's number in the year (文号) from the register; default: the next one.",
)
@cli_command
def assessments_publish(period, username, doc_number):
    """Publish the draft of PERIOD (notifies the advisors and liaisons); one summary line."""
    from flask_babel import gettext as _

    from .services.assessments import publish
    from .services.users import find_user

    actor = None
    if username is not None:
        actor = find_user(username)
        if actor is None:
            raise DomainError(_("No user named %(u)s.", u=username))
    from flask import current_app

    assessment = publish(
        actor,
        period,
        doc_number=doc_number,
        doc_prefix=current_app.config.get("NOTICE_DOC_PREFIX", ""),
    )
    click.echo(_assessment_line(assessment))


@townships_cli.command("create")
@click.option("--code", required=True, help="1-20 letters or digits (the 9-digit township code).")
@click.option("--name", required=True)
@cli_command
def townships_create(code, name):
    """Add a township or street to the city's list."""
    from .services import townships as township_service

    township = township_service.create(None, code, name)
    click.echo(f"{township.code}\t{township.name}")


@townships_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def townships_import(ctx, path):
    """Import townships from an .xlsx or .csv (columns code and name, or 代码/编码 and 名称).
    Bad rows go to stderr as "row N: FIELD: reason" while the good rows are saved; the last line
    is the summary. Exit 1 when a row was rejected."""
    from pathlib import Path

    from .services import townships as township_service

    file = Path(path)
    limit = 10 * 1024 * 1024
    if file.stat().st_size > limit:
        raise click.ClickException(f"{file.name}: larger than 10 MB")
    report = _townships_import(township_service, file.name, file.read_bytes())
    for problem in report.problems:
        click.echo(f"row {problem.row}: {problem.field}: {problem.message}", err=True)
    click.echo(report.summary())
    if report.rejected:
        ctx.exit(1)


@cli_command
def _townships_import(township_service, filename, data):
    return township_service.import_file(None, filename, data)


def _targets_lines(year: int, version) -> list[str]:
    from .services.indicators import targets as target_service

    if version is None:
        return [f"{year}\tno targets"]
    out = [f"{year}\tversion {version.version}"]
    for line in target_service.lines(version):
        where = line.institution.code if line.institution else "city"
        out.append(f"{line.indicator.code}\t{where}\t{line.growth_pct}")
    return out


@indicators_cli.command("targets")
@click.argument("year", type=int)
@click.option("--set", "settings", multiple=True, help="CODE=PERCENT (CODE= removes it).")
@click.option("--institution", default=None, help="The bank's or insurer's org code.")
@cli_command
def indicators_targets(year, settings, institution):
    """Show YEAR's targets, or change those named by --set (city-wide, or for --institution)
    and save them as a new version; prints the version in force and its targets."""
    from .services.indicators import target_import
    from .services.indicators import targets as target_service

    target_service.check_year(year)
    if settings:
        version = target_import.set_targets(None, year, list(settings), institution)
    else:
        version = target_service.latest(year)
    for line in _targets_lines(year, version):
        click.echo(line)


@indicators_cli.command("targets-import")
@click.argument("year", type=int)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def indicators_targets_import(year, path):
    """Save YEAR's targets from an .xlsx or .csv (columns indicator, growth_pct, institution,
    or 指标, 目标增速, 机构) as a new version. A wrong row: every wrong row on stderr as
    "row N: FIELD: reason", nothing saved, exit 1."""
    from pathlib import Path

    file = Path(path)
    if file.stat().st_size > 10 * 1024 * 1024:
        raise click.ClickException(f"{file.name}: larger than 10 MB")
    for line in _import_targets(year, file.name, file.read_bytes()):
        click.echo(line)


@cli_command
def _import_targets(year, filename, data):
    from .services.indicators import target_import
    from .services.indicators import targets as target_service

    try:
        version = target_import.import_file(None, year, filename, data)
    except target_import.ImportRefused as exc:
        for problem in exc.problems:
            click.echo(problem.line(), err=True)
        raise
    return _targets_lines(target_service.check_year(year), version)


@click.command("setup")
@cli_command
def setup():
    """Add the reference data every city needs (policy catalogue, default rubric, indicator
    catalogue) where it is missing; `db upgrade` does this too. Safe to run again: nothing is
    duplicated or undone."""
    from .reference import ensure_reference_data

    added = ensure_reference_data()
    click.echo(
        f"policy tools added {added['policy_tools']}, rubric versions added "
        f"{added['rubric_versions']}, indicators added {added['indicators']}"
    )


def register_commands(app: Flask) -> None:
    for group in (
        orgs_cli,
        users_cli,
        demo_cli,
        scheduler_cli,
        assessments_cli,
        townships_cli,
        indicators_cli,
    ):
        app.cli.add_command(group)
    app.cli.add_command(setup)
