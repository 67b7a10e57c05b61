"""Who may do what.

Two layers, both in this one module:

* **Route access** — every endpoint has a rule: the roles allowed, ``PUBLIC`` or ``SIGNED_IN``.
  Rules are attached with :func:`allow` (on a view) or :func:`allow_blueprint` (default for all of a
  blueprint's views). One ``before_request`` gate enforces them; an endpoint with no rule is refused
  (fail closed) and the access-matrix test fails, so a forgotten route cannot leak. The
  navigation asks the same rules (:func:`may_open`, a template global) whether to show a link.
* **Record scope** — one scoped query per role and record kind (:func:`scoped`). Lists and detail
  pages select through it, so a record outside the caller's scope is simply not found (404).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask_login import current_user
from sqlalchemy import Select, false, select
from sqlalchemy.orm import aliased

from models import (
    ROLES,
    Enterprise,
    FinancingApplication,
    Organisation,
    Referral,
    ReferralBureau,
    RiskReport,
    User,
    Visit,
    db,
)

PUBLIC = "public"
SIGNED_IN = "signed_in"

GLOBAL_ROLES = ("admin", "finance_office", "pboc")
OFFICE_ROLES = ("finance_office", "pboc")

_blueprint_rules: dict[str, frozenset[str]] = {}


def _normalise(roles: Iterable[str]) -> frozenset[str]:
    roles = frozenset(roles)
    unknown = roles - set(ROLES) - {PUBLIC, SIGNED_IN}
    if unknown:
        raise ValueError(f"unknown roles in access rule: {sorted(unknown)}")
    return roles


def allow(*roles: str) -> Callable:
    """Decorator: the roles that may call this view (or PUBLIC / SIGNED_IN)."""

    def decorate(view):
        view.access_roles = _normalise(roles)
        return view

    return decorate


def allow_blueprint(blueprint, *roles: str) -> None:
    """Default rule for every view of ``blueprint`` that has no rule of its own."""
    _blueprint_rules[blueprint.name] = _normalise(roles)


def rule_for(app, endpoint: str) -> frozenset[str] | None:
    """The access rule of an endpoint, or None when it has none (which the gate refuses)."""
    if endpoint == "static" or endpoint.endswith(".static"):
        return frozenset({PUBLIC})
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    roles = getattr(view, "access_roles", None)
    if roles is None and "." in endpoint:
        roles = _blueprint_rules.get(endpoint.rsplit(".", 1)[0])
    return roles


def may_access(roles: frozenset[str], user) -> bool:
    if PUBLIC in roles:
        return True
    if user is None or not user.is_authenticated:
        return False
    return SIGNED_IN in roles or user.role in roles


def may_open(app, user, *endpoints: str) -> bool:
    """Whether ``user`` may open any of ``endpoints``, by the rules the gate enforces: the
    navigation shows a link (or a menu of links) only to those who may follow it. An endpoint
    without a rule, or not registered, is closed, as the gate would have it."""
    return any(may_access(rule_for(app, e) or frozenset(), user) for e in endpoints)


def init_app(app) -> None:
    """Templates ask ``may_open('firms.index')`` (or several endpoints: any of them) for the
    signed-in user of the request."""
    app.add_template_global(
        lambda *endpoints: may_open(app, current_user, *endpoints), name="may_open"
    )


# ------------------------------------------------------------------ record scopes
def _enterprise_scope(user: User, stmt: Select) -> Select:
    if user.role in GLOBAL_ROLES:
        return stmt
    if user.role == "bureau":
        # The firms it registered, and the firms of the cases it referred or co-referred.
        referred = (
            select(Referral.id)
            .join(ReferralBureau, ReferralBureau.referral_id == Referral.id)
            .where(Referral.enterprise_id == Enterprise.id, ReferralBureau.org_id == user.org_id)
            .exists()
        )
        return stmt.where((Enterprise.registered_by_org_id == user.org_id) | referred)
    # Advisors and liaisons reach firms through their cases, not the registry.
    return stmt.where(false())


def _user_scope(user: User, stmt: Select) -> Select:
    if user.role in GLOBAL_ROLES:
        return stmt
    if user.role == "liaison":
        return stmt.where(User.org_id == user.org_id)
    return stmt.where(User.id == user.id)


def _org_scope(user: User, stmt: Select) -> Select:
    if user.role in GLOBAL_ROLES:
        return stmt
    return stmt.where(Organisation.id == user.org_id)


def _referral_scope(user: User, stmt: Select) -> Select:
    """The contract's referral scope: bureau — referred or co-referred by its org; advisor —
    assigned to them; liaison — assigned to advisors of its org; office roles — all."""
    if user.role in GLOBAL_ROLES:
        return stmt
    if user.role == "bureau":
        return stmt.where(
            select(ReferralBureau.referral_id)
            .where(ReferralBureau.referral_id == Referral.id, ReferralBureau.org_id == user.org_id)
            .exists()
        )
    if user.role == "advisor":
        return stmt.where(Referral.advisor_id == user.id)
    if user.role == "liaison":
        advisor = aliased(User)
        return stmt.where(
            select(advisor.id)
            .where(advisor.id == Referral.advisor_id, advisor.org_id == user.org_id)
            .exists()
        )
    return stmt.where(false())


def _work_scope(model):
    """Visits and financing applications: an advisor sees the work they did and all work on the
    cases now assigned to them (a new advisor reads the history); a liaison the work of its
    institution's advisors; office roles all. Bureaus follow cases through the referral's
    status and outcome, not the advisors' notes."""

    def scope(user: User, stmt: Select) -> Select:
        if user.role in GLOBAL_ROLES:
            return stmt
        if user.role == "advisor":
            mine = (
                select(Referral.id)
                .where(Referral.id == model.referral_id, Referral.advisor_id == user.id)
                .exists()
            )
            return stmt.where((model.advisor_id == user.id) | mine)
        if user.role == "liaison":
            return stmt.where(model.org_id == user.org_id)
        return stmt.where(false())

    return scope


def _risk_scope(user: User, stmt: Select) -> Select:
    """Risk reports: the reporter, the finance office, the central bank and admins only — not
    bureaus, not liaisons, not another advisor who later takes the case."""
    if user.role in GLOBAL_ROLES:
        return stmt
    if user.role == "advisor":
        return stmt.where(RiskReport.reporter_id == user.id)
    return stmt.where(false())


SCOPES: dict[type, Callable[[User, Select], Select]] = {
    Referral: _referral_scope,
    Visit: _work_scope(Visit),
    FinancingApplication: _work_scope(FinancingApplication),
    RiskReport: _risk_scope,
    Enterprise: _enterprise_scope,
    User: _user_scope,
    Organisation: _org_scope,
}


def scoped(model: type, user: User, stmt: Select | None = None) -> Select:
    """``select(model)`` (or ``stmt``) narrowed to what ``user`` may see. The one way lists and
    detail pages of scoped records are queried."""
    if stmt is None:
        stmt = select(model)
    return SCOPES[model](user, stmt)


def get_scoped(model: type, user: User, record_id) -> object | None:
    """One record by primary key, or None when it does not exist *or* is outside the scope."""
    pk = model.__mapper__.primary_key[0]
    return db.session.execute(scoped(model, user).where(pk == record_id)).scalar_one_or_none()
