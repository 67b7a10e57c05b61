"""The audit trail browser: who changed what, when, with old and new values."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from advisors.permissions import allow_blueprint
from advisors.services import audit_queries

bp = Blueprint("audit", __name__, url_prefix="/audit")
allow_blueprint(bp, "admin", "finance_office")


@bp.route("/")
def index():
    filters, errors = audit_queries.parse_filters(request.args)
    rows, next_before = [], None
    if not errors:
        rows, next_before = audit_queries.search_audit(
            filters, audit_queries.parse_cursor(request.args.get("before"))
        )
    next_url = (
        url_for("audit.index", **filters.as_args(), before=next_before) if next_before else None
    )
    return render_template(
        "audit/index.html",
        rows=audit_queries.readable_entries(rows),
        filters=filters,
        raw=audit_queries.echo_values(request.args),
        errors=errors,
        next_url=next_url,
        paged=request.args.get("before") is not None,
        table_labels=audit_queries.table_labels(),
        action_labels=audit_queries.action_labels(),
    ), (422 if errors else 200)
