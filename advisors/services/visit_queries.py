"""Read-only look-ups for the visit and financing pages (headings, names, choices).

The rules and writes are in :mod:`.visits` and :mod:`.financing`; this module only reads what
the pages show around them, so the views never query the database themselves.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import (
    AuditLog,
    Enterprise,
    FinancingApplication,
    FinancingStep,
    Organisation,
    PolicyTool,
    Referral,
    RiskReport,
    User,
    Visit,
    db,
)

from ..dbutil import chunks
from ..params import MAX_ID
from ..permissions import scoped


def active_policy_tools() -> list[PolicyTool]:
    """The catalogue's active tools, in catalogue order (the visit form's checkboxes)."""
    return list(
        db.session.execute(
            select(PolicyTool).where(PolicyTool.active.is_(True)).order_by(PolicyTool.id)
        ).scalars()
    )


def policy_tool_names() -> dict[int, str]:
    """Every tool's name by id (a conflict page names the tools on either side)."""
    return dict(db.session.execute(select(PolicyTool.id, PolicyTool.name)).all())


def org_names(org_ids) -> dict[int, str]:
    """Organisation names by id, for the ids given (None ignored)."""
    ids = [i for i in org_ids if i]
    if not ids:
        return {}
    return dict(
        db.session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
        ).all()
    )


def case_header(referral_id: int):
    """The firm's (name, credit code) for a case's page heading, or None."""
    return db.session.execute(
        select(Enterprise.name, Enterprise.credit_code)
        .join(Referral, Referral.enterprise_id == Enterprise.id)
        .where(Referral.id == referral_id)
    ).first()


def referral_of(visit: Visit) -> Referral:
    return db.session.get(Referral, visit.referral_id)


def visit_names(visit: Visit) -> tuple[str, str, str | None]:
    """(author's name, firm's name, name of who corrected it or None) for a visit's page."""
    author, firm = db.session.execute(
        select(User.display_name, Enterprise.name)
        .select_from(User)
        .join(Enterprise, Enterprise.id == visit.enterprise_id)
        .where(User.id == visit.advisor_id)
    ).one()
    corrected_by = (
        db.session.scalar(select(User.display_name).where(User.id == visit.corrected_by_id))
        if visit.corrected_by_id
        else None
    )
    return author, firm, corrected_by


def last_change(visit_id: int):
    """(who, when) of the visit's latest audited change, or None."""
    return db.session.execute(
        select(AuditLog.actor_label, AuditLog.at)
        .where(AuditLog.table_name == "visit", AuditLog.record_id == str(visit_id))
        .order_by(AuditLog.id.desc())
        .limit(1)
    ).first()


def lender_of(app: FinancingApplication) -> Organisation | None:
    return db.session.get(Organisation, app.lender_id) if app.lender_id else None


def application_names(app: FinancingApplication) -> tuple[str, str, str | None]:
    """(firm's name, advisor's name, lender's name or None) for an application's page."""
    firm, advisor, lender = db.session.execute(
        select(Enterprise.name, User.display_name, Organisation.name)
        .select_from(Enterprise)
        .join(User, User.id == app.advisor_id)
        .outerjoin(Organisation, Organisation.id == app.lender_id)
        .where(Enterprise.id == app.enterprise_id)
    ).one()
    return firm, advisor, lender


# ------------------------------------------------------------------ the API's visits
# A page of visits costs a fixed number of queries: the visits with their policies, then one
# query (per chunk of ids) for each of the lookups below and the authors' names
# (:func:`advisors.services.users.usernames_with_org`).
def visit_for_api(actor: User, visit_id: int) -> Visit | None:
    """One visit in the actor's scope with its policies loaded, or None."""
    if not 0 < visit_id <= MAX_ID:
        return None
    return db.session.execute(
        scoped(Visit, actor).where(Visit.id == visit_id).options(selectinload(Visit.policies))
    ).scalar_one_or_none()


def steps_of(visit_ids: list[int]) -> dict[int, list[tuple[FinancingStep, FinancingApplication]]]:
    """Visit id -> the financing steps recorded on it with their application, oldest first."""
    steps: dict[int, list] = {i: [] for i in visit_ids}
    for part in chunks(visit_ids):
        for step, app in db.session.execute(
            select(FinancingStep, FinancingApplication)
            .join(FinancingApplication, FinancingApplication.id == FinancingStep.application_id)
            .where(FinancingStep.visit_id.in_(part))
            .order_by(FinancingStep.id)
        ):
            steps[step.visit_id].append((step, app))
    return steps


def risks_of(actor: User, visit_ids: list[int]) -> dict[int, list[RiskReport]]:
    """Visit id -> its risk reports the actor may see (the reporter, the office roles, admin:
    the risk reports' scope)."""
    risks: dict[int, list[RiskReport]] = {i: [] for i in visit_ids}
    for part in chunks(visit_ids):
        for report in db.session.execute(
            scoped(RiskReport, actor).where(RiskReport.visit_id.in_(part))
        ).scalars():
            risks[report.visit_id].append(report)
    return risks
