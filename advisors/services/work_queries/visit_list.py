"""The visit log: its filtered, scoped select, keyset pages, the latest visits of an
institution, and export rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from models import (
    VISIT_ROLES,
    Enterprise,
    Organisation,
    PolicyTool,
    Referral,
    User,
    Visit,
    VisitPolicy,
    db,
)

from ... import paging
from ...labels import labels
from ...params import PAGE_SIZE
from ...permissions import scoped
from . import shared
from .filters import VisitFilters
from .shared import MAX_LIMIT, Cursor, Export, Page, _after, _case_visible, _firm_ids

SUMMARY_CHARS = 120
RECENT_VISITS = 10


# ------------------------------------------------------------------ the visit log
@dataclass(slots=True)
class VisitRow:
    id: int
    visited_on: date
    mode: str
    roles: list[str]
    summary: str
    referral_id: int
    firm_name: str
    advisor_name: str | None
    advisor_username: str | None
    institution: str | None
    corrected: bool
    case_visible: bool


def _visit_filtered(actor: User, f: VisitFilters, stmt):
    stmt = scoped(Visit, actor, stmt)
    if f.advisor_id is not None:
        stmt = stmt.where(Visit.advisor_id == f.advisor_id)
    if f.org_id is not None:
        stmt = stmt.where(Visit.org_id == f.org_id)
    if f.date_from:
        stmt = stmt.where(Visit.visited_on >= f.date_from)
    if f.date_to:
        stmt = stmt.where(Visit.visited_on <= f.date_to)
    if f.role:
        stmt = stmt.where(getattr(Visit, f"role_{f.role}").is_(True))
    if f.mode:
        stmt = stmt.where(Visit.mode == f.mode)
    if f.q:
        stmt = stmt.where(Visit.enterprise_id.in_(_firm_ids(f.q)))
    return stmt


def _visit_select(actor: User, f: VisitFilters, *, full: bool = False):
    """The actor's visits matching ``f`` with the names around them (firm, advisor,
    institution, the case's current advisor); the summary cut to what a list shows unless
    ``full``."""
    advisor = aliased(User, name="visit_advisor")
    inst = aliased(Organisation, name="visit_institution")
    case_advisor = aliased(User, name="case_advisor")
    # The case under its own name: the advisor scope correlates a subquery on ``referral``.
    the_case = aliased(Referral, name="the_case")
    summary = Visit.summary if full else func.substr(Visit.summary, 1, SUMMARY_CHARS + 1)
    columns = [
        Visit.id,
        Visit.visited_on,
        Visit.mode,
        Visit.role_policy,
        Visit.role_guidance,
        Visit.role_financing,
        Visit.role_information,
        summary.label("summary"),
        Visit.referral_id,
        Visit.corrected_at,
        Enterprise.name.label("firm_name"),
        advisor.display_name.label("advisor_name"),
        advisor.username.label("advisor_username"),
        func.coalesce(inst.short_name, inst.name).label("institution"),
        the_case.advisor_id.label("case_advisor_id"),
        case_advisor.org_id.label("case_advisor_org_id"),
    ]
    if full:
        columns += [
            Enterprise.credit_code,
            Visit.guidance_topic,
            Visit.next_visit_on,
            Visit.created_at,
        ]
    stmt = (
        select(*columns)
        .select_from(Visit)
        .join(Enterprise, Enterprise.id == Visit.enterprise_id)
        .join(the_case, the_case.id == Visit.referral_id)
        .outerjoin(advisor, advisor.id == Visit.advisor_id)
        .outerjoin(inst, inst.id == Visit.org_id)
        .outerjoin(case_advisor, case_advisor.id == the_case.advisor_id)
    )
    return _visit_filtered(actor, f, stmt)


def _newest_visits(stmt):
    return stmt.order_by(Visit.visited_on.desc(), Visit.id.desc())


def _visit_row(actor: User, d: Mapping) -> VisitRow:
    summary = d["summary"] or ""
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS].rstrip() + "…"
    return VisitRow(
        id=d["id"],
        visited_on=d["visited_on"],
        mode=d["mode"],
        roles=[r for r in VISIT_ROLES if d[f"role_{r}"]],
        summary=summary,
        referral_id=d["referral_id"],
        firm_name=d["firm_name"],
        advisor_name=d["advisor_name"],
        advisor_username=d["advisor_username"],
        institution=d["institution"],
        corrected=d["corrected_at"] is not None,
        case_visible=_case_visible(actor, d["case_advisor_id"], d["case_advisor_org_id"]),
    )


def visit_page(
    actor: User, f: VisitFilters, *, cursor: Cursor | None = None, limit: int = PAGE_SIZE
) -> Page:
    """One page of the actor's visit log, newest first. One query whatever ``limit`` is."""
    limit = paging.clamp(limit, MAX_LIMIT)
    stmt = _newest_visits(_after(_visit_select(actor, f), Visit.visited_on, Visit.id, cursor))
    rows = [_visit_row(actor, d) for d in db.session.execute(stmt.limit(limit + 1)).mappings()]
    return Page(*paging.split(rows, limit, lambda r: (r.visited_on, r.id)))


def recent_visits(actor: User, org_id: int, limit: int = RECENT_VISITS) -> list[VisitRow]:
    """The institution's latest visits (in the actor's scope)."""
    stmt = _newest_visits(_visit_select(actor, VisitFilters(org_id=org_id))).limit(limit)
    return [_visit_row(actor, d) for d in db.session.execute(stmt).mappings()]


def visit_export_headers() -> list[str]:
    return [
        _("Visit"),
        _("Visited on"),
        _("Firm name"),
        _("Credit code"),
        _("Case"),
        _("Advisor"),
        _("Institution"),
        _("Mode"),
        _("Roles"),
        _("Summary"),
        _("Policy tools explained"),
        _("Guidance topic"),
        _("Next visit planned"),
        _("Corrected by the finance office"),
        _("Logged at"),
    ]


def visit_export_rows(actor: User, f: VisitFilters, cap: int | None = None) -> Export:
    """Every visit matching ``f`` (up to ``cap``), newest first, as spreadsheet rows. Two
    queries: the visits, and the policy tools explained on them."""
    cap = shared.EXPORT_CAP if cap is None else cap
    stmt = _newest_visits(_visit_select(actor, f, full=True)).limit(cap + 1)
    found = list(db.session.execute(stmt).mappings())
    truncated = len(found) > cap
    found = found[:cap]
    policies: dict[int, list[str]] = {}
    if found:
        ids = _visit_filtered(actor, f, select(Visit.id).select_from(Visit))
        for visit_id, name in db.session.execute(
            select(VisitPolicy.visit_id, PolicyTool.name)
            .join(PolicyTool, PolicyTool.id == VisitPolicy.policy_tool_id)
            .where(VisitPolicy.visit_id.in_(ids))
            .order_by(VisitPolicy.visit_id, PolicyTool.id)
        ).all():
            policies.setdefault(visit_id, []).append(name)
    modes = labels("visit_mode")
    roles = labels("visit_role")
    yes = _("Yes")
    out = []
    for d in found:
        out.append(
            [
                d["id"],
                d["visited_on"],
                d["firm_name"],
                d["credit_code"],
                d["referral_id"],
                d["advisor_name"],
                d["institution"],
                modes.get(d["mode"], d["mode"]),
                "、".join(roles[r] for r in VISIT_ROLES if d[f"role_{r}"]),
                d["summary"],
                "、".join(policies.get(d["id"], [])) or None,
                d["guidance_topic"],
                d["next_visit_on"],
                yes if d["corrected_at"] is not None else None,
                d["created_at"],
            ]
        )
    return Export(out, truncated)
