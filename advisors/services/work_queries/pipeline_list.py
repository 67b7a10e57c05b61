"""The financing pipeline: its filtered, scoped select, keyset pages, totals by stage and
export rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from models import (
    FINANCING_STAGES,
    Enterprise,
    Organisation,
    Referral,
    User,
    db,
)

from ... import paging
from ...labels import labels
from ...params import PAGE_SIZE
from ...permissions import scoped
from . import shared
from .filters import PipelineFilters
from .shared import FA, MAX_LIMIT, Cursor, Export, Page, _after, _case_visible, _firm_ids


# ------------------------------------------------------------------ the financing pipeline
@dataclass(slots=True)
class ApplicationRow:
    id: int
    referral_id: int
    firm_name: str
    advisor_name: str | None
    advisor_username: str | None
    institution: str | None
    lender: str | None
    product: str | None
    amount_wan: Decimal
    stage: str
    applied_on: date
    approved_on: date | None
    approved_amount_wan: Decimal | None
    disbursed_on: date | None
    disbursed_amount_wan: Decimal | None
    declined_on: date | None
    first_loan: bool
    unsecured: bool
    case_visible: bool


def _pipeline_filtered(actor: User, f: PipelineFilters, stmt):
    stmt = scoped(FA, actor, stmt)
    if f.stage:
        stmt = stmt.where(FA.stage == f.stage)
    if f.advisor_id is not None:
        stmt = stmt.where(FA.advisor_id == f.advisor_id)
    if f.org_id is not None:
        stmt = stmt.where(FA.org_id == f.org_id)
    if f.first_loan is not None:
        stmt = stmt.where(FA.first_loan.is_(f.first_loan))
    if f.unsecured is not None:
        stmt = stmt.where(FA.unsecured.is_(f.unsecured))
    if f.date_from:
        stmt = stmt.where(FA.applied_on >= f.date_from)
    if f.date_to:
        stmt = stmt.where(FA.applied_on <= f.date_to)
    if f.q:
        stmt = stmt.where(FA.enterprise_id.in_(_firm_ids(f.q)))
    return stmt


def _pipeline_select(actor: User, f: PipelineFilters, *, full: bool = False):
    advisor = aliased(User, name="app_advisor")
    inst = aliased(Organisation, name="app_institution")
    lender = aliased(Organisation, name="app_lender")
    case_advisor = aliased(User, name="case_advisor")
    the_case = aliased(Referral, name="the_case")
    columns = [
        FA.id,
        FA.referral_id,
        Enterprise.name.label("firm_name"),
        advisor.display_name.label("advisor_name"),
        advisor.username.label("advisor_username"),
        func.coalesce(inst.short_name, inst.name).label("institution"),
        func.coalesce(lender.short_name, lender.name).label("lender"),
        FA.product,
        FA.amount_wan,
        FA.stage,
        FA.applied_on,
        FA.approved_on,
        FA.approved_amount_wan,
        FA.disbursed_on,
        FA.disbursed_amount_wan,
        FA.declined_on,
        FA.first_loan,
        FA.unsecured,
        the_case.advisor_id.label("case_advisor_id"),
        case_advisor.org_id.label("case_advisor_org_id"),
    ]
    if full:
        columns += [Enterprise.credit_code, FA.purpose, FA.term_months, FA.declined_reason]
    stmt = (
        select(*columns)
        .select_from(FA)
        .join(Enterprise, Enterprise.id == FA.enterprise_id)
        .join(the_case, the_case.id == FA.referral_id)
        .outerjoin(advisor, advisor.id == FA.advisor_id)
        .outerjoin(inst, inst.id == FA.org_id)
        .outerjoin(lender, lender.id == FA.lender_id)
        .outerjoin(case_advisor, case_advisor.id == the_case.advisor_id)
    )
    return _pipeline_filtered(actor, f, stmt)


def _newest_applications(stmt):
    return stmt.order_by(FA.applied_on.desc(), FA.id.desc())


def _application_row(actor: User, d: Mapping) -> ApplicationRow:
    return ApplicationRow(
        id=d["id"],
        referral_id=d["referral_id"],
        firm_name=d["firm_name"],
        advisor_name=d["advisor_name"],
        advisor_username=d["advisor_username"],
        institution=d["institution"],
        lender=d["lender"],
        product=d["product"],
        amount_wan=d["amount_wan"],
        stage=d["stage"],
        applied_on=d["applied_on"],
        approved_on=d["approved_on"],
        approved_amount_wan=d["approved_amount_wan"],
        disbursed_on=d["disbursed_on"],
        disbursed_amount_wan=d["disbursed_amount_wan"],
        declined_on=d["declined_on"],
        first_loan=bool(d["first_loan"]),
        unsecured=bool(d["unsecured"]),
        case_visible=_case_visible(actor, d["case_advisor_id"], d["case_advisor_org_id"]),
    )


def pipeline_page(
    actor: User, f: PipelineFilters, *, cursor: Cursor | None = None, limit: int = PAGE_SIZE
) -> Page:
    """One page of the actor's financing applications, newest application first. One query."""
    limit = paging.clamp(limit, MAX_LIMIT)
    stmt = _newest_applications(_after(_pipeline_select(actor, f), FA.applied_on, FA.id, cursor))
    rows = [
        _application_row(actor, d) for d in db.session.execute(stmt.limit(limit + 1)).mappings()
    ]
    return Page(*paging.split(rows, limit, lambda r: (r.applied_on, r.id)))


@dataclass
class StageTotal:
    stage: str
    count: int = 0
    amount_wan: Decimal = Decimal("0.00")
    approved_wan: Decimal = Decimal("0.00")
    disbursed_wan: Decimal = Decimal("0.00")


@dataclass
class Totals:
    by_stage: list[StageTotal]
    all: StageTotal


def pipeline_totals(actor: User, f: PipelineFilters) -> Totals:
    """Count and amounts by stage over every application matching ``f``. One grouped query."""
    stmt = _pipeline_filtered(
        actor,
        f,
        select(
            FA.stage,
            func.count(),
            func.sum(FA.amount_wan),
            func.sum(FA.approved_amount_wan),
            func.sum(FA.disbursed_amount_wan),
        ).select_from(FA),
    ).group_by(FA.stage)
    found = {s: StageTotal(s) for s in FINANCING_STAGES}
    grand = StageTotal("")
    for stage, n, amount, approved, disbursed in db.session.execute(stmt).all():
        t = found.setdefault(stage, StageTotal(stage))
        t.count = n
        t.amount_wan = amount if amount is not None else Decimal("0.00")
        t.approved_wan = approved if approved is not None else Decimal("0.00")
        t.disbursed_wan = disbursed if disbursed is not None else Decimal("0.00")
        grand.count += t.count
        grand.amount_wan += t.amount_wan
        grand.approved_wan += t.approved_wan
        grand.disbursed_wan += t.disbursed_wan
    return Totals([found[s] for s in found], grand)


def pipeline_export_headers() -> list[str]:
    return [
        _("Application"),
        _("Firm name"),
        _("Credit code"),
        _("Case"),
        _("Advisor"),
        _("Institution"),
        _("Lender"),
        _("Product"),
        _("Purpose"),
        _("Term (months)"),
        _("Amount applied (万元)"),
        _("Stage"),
        _("Applied on"),
        _("Approved on"),
        _("Amount approved (万元)"),
        _("Disbursed on"),
        _("Amount disbursed (万元)"),
        _("Declined on"),
        _("Reason declined"),
        _("First-time borrower (首贷户)"),
        _("Unsecured loan (信用贷款)"),
    ]


def pipeline_export_rows(actor: User, f: PipelineFilters, cap: int | None = None) -> Export:
    """Every application matching ``f`` (up to ``cap``), newest first. One query."""
    cap = shared.EXPORT_CAP if cap is None else cap
    stmt = _newest_applications(_pipeline_select(actor, f, full=True)).limit(cap + 1)
    found = list(db.session.execute(stmt).mappings())
    truncated = len(found) > cap
    stages = labels("stage")
    yes, no = _("Yes"), _("No")
    out = []
    for d in found[:cap]:
        out.append(
            [
                d["id"],
                d["firm_name"],
                d["credit_code"],
                d["referral_id"],
                d["advisor_name"],
                d["institution"],
                d["lender"],
                d["product"],
                d["purpose"],
                d["term_months"],
                d["amount_wan"],
                stages.get(d["stage"], d["stage"]),
                d["applied_on"],
                d["approved_on"],
                d["approved_amount_wan"],
                d["disbursed_on"],
                d["disbursed_amount_wan"],
                d["declined_on"],
                d["declined_reason"],
                yes if d["first_loan"] else no,
                yes if d["unsecured"] else no,
            ]
        )
    return Export(out, truncated)
