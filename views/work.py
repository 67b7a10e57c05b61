"""The record of advisor work: visit logs and financing pipelines by advisor and institution,
the liaison's view of its institution, and their exports.

Routes are thin: parse the filters -> call :mod:`advisors.services.work_queries` -> render (or
build the workbook). Bad filters answer 422 with the page and the field named; a record or an
institution outside the caller's scope is a 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from advisors import clock
from advisors.labels import labels
from advisors.permissions import GLOBAL_ROLES, allow, allow_blueprint
from advisors.services import work_queries as queries
from advisors.xlsx import XLSX_MIMETYPE, workbook_bytes
from models import FINANCING_STAGES

bp = Blueprint("work", __name__, url_prefix="/work")
allow_blueprint(bp, "admin", "finance_office", "pboc", "advisor", "liaison")


def _me():
    return current_user._get_current_object()


def _choices(user):
    return queries.advisor_choices(user), queries.institution_choices(user)


def _heading(user, kind: str) -> str:
    if kind == "visits":
        return {
            "advisor": _("My visit log"),
            "liaison": _("Our advisors' visit log"),
        }.get(user.role, _("Visit log"))
    return {
        "advisor": _("My financing pipeline"),
        "liaison": _("Our advisors' financing pipeline"),
    }.get(user.role, _("Financing pipeline"))


def _common_context(user, advisors, institutions, filters, errors, keys) -> dict:
    return {
        "raw": queries.echo_values(request.args, keys),
        "filters": filters,
        "filter_errors": errors,
        "filters_open": bool(errors) or filters.narrowed,
        "advisors": advisors,
        "institutions": institutions,
        "show_advisor": user.role != "advisor",
        "show_institution": user.role in GLOBAL_ROLES,
    }


def _pager(endpoint: str, filters, limit: int, cursor, next_cursor) -> dict:
    base_args = filters.as_args()
    if limit != queries.PAGE_SIZE:
        base_args["limit"] = str(limit)
    return {
        "next_url": url_for(endpoint, **base_args, cursor=next_cursor) if next_cursor else None,
        "first_url": url_for(endpoint, **base_args) if cursor else None,
    }


def _workbook_response(name: str, sheets) -> Response:
    stamp = clock.local_now().strftime("%Y%m%d-%H%M")
    return Response(
        workbook_bytes(sheets),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.xlsx"'},
    )


def _notes(filters, advisors, institutions, data) -> list[list]:
    notes = [
        [label, value]
        for label, value in queries.iter_filter_notes(filters, advisors, institutions)
    ]
    notes.append([_("Rows"), len(data.rows)])
    if data.truncated:
        notes.append(
            [
                _("Note"),
                _(
                    "Only the first %(n)s rows are included. "
                    "Narrow the filters to export the rest.",
                    n=f"{queries.EXPORT_CAP:,}",
                ),
            ]
        )
    return notes


# ------------------------------------------------------------------ the visit log
def _render_visits():
    user = _me()
    advisors, institutions = _choices(user)
    filters, errors = queries.parse_visit_filters(request.args, user, advisors, institutions)
    limit = queries.parse_limit(request.args.get("limit"))
    cursor = queries.decode_cursor(request.args.get("cursor"))
    page = queries.Page([], None)
    if not errors:
        page = queries.visit_page(user, filters, cursor=cursor, limit=limit)
    return render_template(
        "work/visits.html",
        heading=_heading(user, "visits"),
        page=page,
        visit_role_names=labels("visit_role"),
        mode_names=labels("visit_mode"),
        export_url=url_for("work.visits_export", **filters.as_args()),
        clear_url=url_for("work.visits"),
        **_pager("work.visits", filters, limit, cursor, page.next_cursor),
        **_common_context(user, advisors, institutions, filters, errors, queries.VisitFilters.KEYS),
    ), (422 if errors else 200)


@bp.route("/visits")
def visits():
    return _render_visits()


@bp.route("/visits.xlsx")
def visits_export():
    user = _me()
    advisors, institutions = _choices(user)
    filters, errors = queries.parse_visit_filters(request.args, user, advisors, institutions)
    if errors:
        return _render_visits()
    data = queries.visit_export_rows(user, filters)
    return _workbook_response(
        "visits",
        [
            (_("Visits"), queries.visit_export_headers(), data.rows),
            (
                _("Filters"),
                [_("Filter"), _("Value")],
                _notes(filters, advisors, institutions, data),
            ),
        ],
    )


# ------------------------------------------------------------------ the pipeline
def _render_pipeline():
    user = _me()
    advisors, institutions = _choices(user)
    filters, errors = queries.parse_pipeline_filters(request.args, user, advisors, institutions)
    limit = queries.parse_limit(request.args.get("limit"))
    cursor = queries.decode_cursor(request.args.get("cursor"))
    page = queries.Page([], None)
    totals = None
    if not errors:
        page = queries.pipeline_page(user, filters, cursor=cursor, limit=limit)
        totals = queries.pipeline_totals(user, filters)
    return render_template(
        "work/pipeline.html",
        heading=_heading(user, "pipeline"),
        page=page,
        totals=totals,
        stages=FINANCING_STAGES,
        stage_labels=labels("stage"),
        export_url=url_for("work.pipeline_export", **filters.as_args()),
        clear_url=url_for("work.pipeline"),
        **_pager("work.pipeline", filters, limit, cursor, page.next_cursor),
        **_common_context(
            user, advisors, institutions, filters, errors, queries.PipelineFilters.KEYS
        ),
    ), (422 if errors else 200)


@bp.route("/pipeline")
def pipeline():
    return _render_pipeline()


@bp.route("/pipeline.xlsx")
def pipeline_export():
    user = _me()
    advisors, institutions = _choices(user)
    filters, errors = queries.parse_pipeline_filters(request.args, user, advisors, institutions)
    if errors:
        return _render_pipeline()
    data = queries.pipeline_export_rows(user, filters)
    totals = queries.pipeline_totals(user, filters)
    stages = labels("stage")
    total_rows = [
        [stages.get(t.stage, t.stage), t.count, t.amount_wan, t.approved_wan, t.disbursed_wan]
        for t in totals.by_stage
    ]
    total_rows.append(
        [
            _("All stages"),
            totals.all.count,
            totals.all.amount_wan,
            totals.all.approved_wan,
            totals.all.disbursed_wan,
        ]
    )
    return _workbook_response(
        "pipeline",
        [
            (_("Financing applications"), queries.pipeline_export_headers(), data.rows),
            (
                _("Totals by stage"),
                [
                    _("Stage"),
                    _("Applications"),
                    _("Amount applied (万元)"),
                    _("Amount approved (万元)"),
                    _("Amount disbursed (万元)"),
                ],
                total_rows,
            ),
            (
                _("Filters"),
                [_("Filter"), _("Value")],
                _notes(filters, advisors, institutions, data),
            ),
        ],
    )


# ------------------------------------------------------------------ the institution view
@bp.route("/institution")
@allow("admin", "finance_office", "pboc", "liaison")
def institution():
    user = _me()
    code = request.args.get("org")
    code = code.strip() if isinstance(code, str) else ""
    if user.role in GLOBAL_ROLES and not code:
        return render_template("work/institutions.html", lines=queries.institutions_overview(user))
    org = queries.find_institution(user, code)
    if org is None:
        abort(404)
    view = queries.institution_view(user, org)
    office = user.role in GLOBAL_ROLES
    scope_args = {"institution": org.code} if office else {}
    return render_template(
        "work/institution.html",
        view=view,
        office=office,
        scope_args=scope_args,
        stage_labels=labels("stage"),
        visit_role_names=labels("visit_role"),
        mode_names=labels("visit_mode"),
    )
