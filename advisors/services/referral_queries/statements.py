"""The SQL of the referral lists: the scoped, filtered select of cases, the names joined around
a page, the keyset condition and the bind values; statements are built once per user and
filter shape and reused."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from models import (
    Enterprise,
    Organisation,
    Referral,
    ReferralBureau,
    ReferralRead,
    Township,
    User,
)

from ... import credit_code, paging
from ...i18n import SHANGHAI
from ...permissions import OFFICE_ROLES, scoped
from .cursor import Cursor
from .filters import FILTER_KEYS, UNMATCHED, ReferralFilters


def _day_start_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(UTC)


def _select(actor: User, filters: ReferralFilters):
    """The actor's cases matching ``filters``: the narrow inner part of a list query (the case
    and its firm, which the scope and the filters need). Add the page's order and LIMIT, then
    wrap it with :func:`_decorate`."""
    stmt = (
        select(
            Referral.id,
            Referral.created_at,
            Referral.status,
            Referral.need_financing,
            Referral.need_policy,
            Referral.need_guidance,
            Referral.need_insurance,
            Referral.amount_wan,
            Referral.purpose,
            Referral.advisor_id,
            Referral.first_contact_due,
            Referral.first_contact_on,
            Referral.resolved_at,
            Referral.outcome_result,
            Referral.outcome_amount_wan,
            Referral.outcome_note,
            Referral.rejected_reason,
            Referral.satisfaction,
            Enterprise.id.label("firm_id"),
            Enterprise.name.label("firm_name"),
            Enterprise.credit_code,
            Enterprise.industry,
            Enterprise.size_class,
            Enterprise.township_id,
            Enterprise.township_text,
        )
        .select_from(Referral)
        # An outer join (the firm always exists) keeps the case the driving table, so the
        # (status,) created_at, id index gives the page in order and LIMIT stops the scan.
        .outerjoin(Enterprise, Enterprise.id == Referral.enterprise_id)
    )
    return _apply_filters(scoped(Referral, actor, stmt), filters)


_ALIASES: dict[str, object] = {}


def _aliases():
    if not _ALIASES:
        _ALIASES["advisor"] = aliased(User, name="case_advisor")
        _ALIASES["institution"] = aliased(Organisation, name="case_institution")
    return _ALIASES["advisor"], _ALIASES["institution"]


def _decorate(actor: User, inner, order: str = "created"):
    """The page (``inner``, already ordered and limited) with the names around it: township,
    advisor, institution and, for the office roles, the read marker. Joining these outside
    the LIMIT keeps them to the page's rows whatever plan the database picks for the page."""
    page = inner.subquery("page")
    advisor, institution = _aliases()
    stmt = (
        select(
            page,
            Township.name.label("township"),
            advisor.display_name.label("advisor_name"),
            advisor.username.label("advisor_username"),
            func.coalesce(institution.short_name, institution.name).label("institution"),
        )
        .select_from(page)
        .outerjoin(Township, Township.id == page.c.township_id)
        .outerjoin(advisor, advisor.id == page.c.advisor_id)
        .outerjoin(institution, institution.id == advisor.org_id)
    )
    if actor.role in OFFICE_ROLES:
        stmt = stmt.add_columns(ReferralRead.at.label("read_at")).outerjoin(
            ReferralRead,
            and_(ReferralRead.referral_id == page.c.id, ReferralRead.user_id == actor.id),
        )
    first = page.c.resolved_at if order == "resolved" else page.c.created_at
    return stmt.order_by(first.desc(), page.c.id.desc())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _apply_filters(stmt, f: ReferralFilters):
    """The filters as conditions on named bind parameters (values from :func:`_values`): the
    statement depends only on which filters are set, so it can be built once and reused."""
    if f.status:
        stmt = stmt.where(Referral.status == bindparam("f_status"))
    if f.bureau:
        org_id = (
            select(Organisation.id)
            .where(func.lower(Organisation.code) == bindparam("f_bureau"))
            .scalar_subquery()
        )
        stmt = stmt.where(
            select(ReferralBureau.referral_id)
            .where(ReferralBureau.referral_id == Referral.id, ReferralBureau.org_id == org_id)
            .exists()
        )
    if f.industry:
        stmt = stmt.where(Enterprise.industry == bindparam("f_industry"))
    if f.township == UNMATCHED:
        stmt = stmt.where(Enterprise.township_id.is_(None), Enterprise.township_text.is_not(None))
    elif f.township:
        stmt = stmt.where(Enterprise.township_id == bindparam("f_township"))
    if f.size:
        stmt = stmt.where(Enterprise.size_class == bindparam("f_size"))
    if f.need:
        stmt = stmt.where(getattr(Referral, f"need_{f.need}").is_(True))
    if f.amount_min is not None:
        stmt = stmt.where(Referral.amount_wan >= bindparam("f_amount_min"))
    if f.amount_max is not None:
        stmt = stmt.where(Referral.amount_wan <= bindparam("f_amount_max"))
    if f.date_from:
        stmt = stmt.where(Referral.created_at >= bindparam("f_from"))
    if f.date_to:
        stmt = stmt.where(Referral.created_at < bindparam("f_to"))
    if f.q:
        found = [
            Enterprise.credit_code.like(bindparam("f_code"), escape="\\"),
            Enterprise.name.like(bindparam("f_name"), escape="\\"),
        ]
        if f.township == UNMATCHED:
            # The townships page links a name not on the list to the cases of its firms.
            found.append(Enterprise.township_text == bindparam("f_text"))
        stmt = stmt.where(or_(*found))
    return stmt


def _values(f: ReferralFilters, cursor: Cursor | None = None) -> dict:
    """The bind values for :func:`_apply_filters` and :func:`_after`."""
    values: dict = {}
    if f.status:
        values["f_status"] = f.status
    if f.bureau:
        values["f_bureau"] = f.bureau.lower()
    if f.industry:
        values["f_industry"] = f.industry
    if f.township and f.township != UNMATCHED:
        values["f_township"] = f.township
    if f.size:
        values["f_size"] = f.size
    if f.amount_min is not None:
        values["f_amount_min"] = f.amount_min
    if f.amount_max is not None:
        values["f_amount_max"] = f.amount_max
    if f.date_from:
        values["f_from"] = _day_start_utc(f.date_from)
    if f.date_to:
        values["f_to"] = _day_start_utc(f.date_to + timedelta(days=1))
    if f.q:
        # A credit code by its start (as typed, normalised), or a part of the name.
        values["f_code"] = _like_escape(credit_code.normalize(f.q).upper()) + "%"
        values["f_name"] = "%" + _like_escape(f.q) + "%"
        if f.township == UNMATCHED:
            values["f_text"] = f.q
    if cursor is not None:
        values["c_at"], values["c_id"] = cursor.created_at, cursor.id
    return values


def _shape(f: ReferralFilters) -> tuple:
    """Which filters are set (and which need column): what the statement's form depends on."""
    return tuple(getattr(f, k) not in (None, "") for k in FILTER_KEYS) + (f.need,)


def _after(stmt, cursor: Cursor | None):
    if cursor is None:
        return stmt
    return stmt.where(
        paging.after(
            Referral.created_at,
            Referral.id,
            bindparam("c_at", type_=Referral.created_at.type),
            bindparam("c_id", type_=Integer),
        )
    )


_STATEMENTS: dict[tuple, object] = {}
_MAX_STATEMENTS = 1000


def _page_statement(actor: User, filters: ReferralFilters, cursor: Cursor | None, limit: int):
    """The statement of a list page, built once per user and filter shape, then reused with
    new bind values: building and keying a statement this size costs more than running it.
    The scope (role, user id, org id) is in both the statement and its key."""
    key = (actor.id, actor.role, actor.org_id, _shape(filters), cursor is not None, limit)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        if len(_STATEMENTS) >= _MAX_STATEMENTS:
            _STATEMENTS.clear()
        inner = _newest_first(_after(_select(actor, filters), cursor)).limit(limit)
        stmt = _STATEMENTS[key] = _decorate(actor, inner)
    return stmt


def _newest_first(stmt):
    return stmt.order_by(Referral.created_at.desc(), Referral.id.desc())
