"""The audit trail as people read it: record types, field names and values in the reader's
language, with the ids of people, organisations, townships, firms and cases shown as names.

One mapping, here (:func:`spec`): each audited table's label and, per column, its label and the
kind of value it holds. The labels come from the services' field-label functions
(``firms.field_labels`` …) and the vocabularies of :mod:`advisors.labels`, so a label
changed there changes here too. Values are shown as labels: codes through those functions,
booleans as yes/no, money in 万元, instants in Asia/Shanghai to the minute, and ids of the
reference kinds (user, organisation, township, firm, case …) as names. The ids of a whole page
are collected first and read in one statement (a UNION ALL of one SELECT per kind present),
never with one query per row. Nothing here reads the HTTP request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import String, cast, literal_column, select, union_all

from models import (
    Assessment,
    AuditLog,
    Enterprise,
    Organisation,
    PolicyTool,
    Referral,
    ReferralUpload,
    RubricVersion,
    Township,
    User,
    Visit,
    db,
)

from .. import labels as vocab
from ..i18n import fmt_datetime, fmt_wan
from ..params import parse_id

# ----------------------------------------------------------------------------- value kinds
# Ids of these kinds are read from the database and shown by name.
USER, ORG, TOWNSHIP, FIRM, CASE, TOOL, TOOL_CODE, RUBRIC, ASSESSMENT, VISIT, UPLOAD = (
    "user",
    "org",
    "township",
    "firm",
    "case",
    "tool",
    "tool_code",
    "rubric",
    "assessment",
    "visit",
    "upload",
)
REFERENCES = (USER, ORG, TOWNSHIP, FIRM, CASE, TOOL, TOOL_CODE, RUBRIC, ASSESSMENT, VISIT, UPLOAD)
# Formats.
BOOL, MONEY, MOMENT, TOOLS, PROPOSED = "bool", "money", "moment", "tools", "proposed"


@dataclass(frozen=True)
class Codes:
    """A coded value (or, with ``many``, a list of them) shown through a label function."""

    labels: Mapping[str, str]
    many: bool = False


@dataclass(frozen=True)
class Field:
    label: str
    kind: str | Codes | None = None  # None: shown as written


@dataclass(frozen=True)
class Table:
    label: str
    fields: Mapping[str, Field]
    # How the record id reads: the reference kinds of its parts ("12" or "12/3"), or None.
    record: tuple[str | None, ...] | None = None


# The actor labels that are not accounts (acting_as(label=…)).
def _actor_labels() -> dict[str, str]:
    return {
        "system": _("System"),
        "cli": _("Command line"),
        "demo": _("Demo data"),
        "setup": _("Setup"),
        "firm feedback": _("Firm feedback"),
    }


def action_labels() -> dict[str, str]:
    """Action -> label, for the filter and the list. An action not listed here (a newer kind
    of entry) is shown by :func:`action_label`."""
    return {
        "insert": _("Created"),
        "update": _("Changed"),
        "delete": _("Deleted"),
        "clear": _("Cleared"),
    }


def action_label(action: str, table: str | None = None) -> str:
    if table == "login_attempt" and action in ("update", "clear"):
        return _("Cleared")  # an administrator cleared a sign-in delay
    known = action_labels().get(action)
    if known is not None:
        return known
    text = str(action or "").replace("_", " ").replace(":", " ").strip()
    return text[:1].upper() + text[1:] if text else "—"


# ----------------------------------------------------------------------------- the mapping
# Built per language by :func:`_build` from one small function per area. Each imports the
# services whose label functions it reads when it runs, so importing this module loads none.
@dataclass(frozen=True)
class _Shared:
    """Columns several tables hold, labelled once."""

    created_by: Field
    advisor: Field
    case: Field
    enterprise: Field
    institution: Field
    note: Field
    active: Field
    industry: Field  # a firm's industry (firms and advisors' specialties)

    @classmethod
    def build(cls) -> _Shared:
        from . import firms

        return cls(
            created_by=Field(_("Created by"), USER),
            advisor=Field(_("Advisor"), USER),
            case=Field(_("Referral case"), CASE),
            enterprise=Field(_("Firm"), FIRM),
            institution=Field(_("Institution"), ORG),
            note=Field(_("Note")),
            active=Field(_("Active"), BOOL),
            industry=Field(firms.field_labels()["industry"], Codes(vocab.labels("industry"))),
        )

    def case_work(self) -> dict[str, Field]:
        """The leading columns of an advisor's work on a case (a visit, an application)."""
        return {
            "referral_id": self.case,
            "enterprise_id": self.enterprise,
            "advisor_id": self.advisor,
            "org_id": self.institution,
        }


def _place_tables(s: _Shared) -> dict[str, Table]:
    """Organisations, townships and the names townships are written as."""
    return {
        "organisation": Table(
            _("Organisation"),
            {
                "code": Field(_("Code")),
                "name": Field(_("Name")),
                "type": Field(_("Type"), Codes(vocab.labels("org_type"))),
                "short_name": Field(_("Short name")),
                "active": s.active,
            },
            (ORG,),
        ),
        "township": Table(
            _("Township"),
            {
                "code": Field(_("Code")),
                "name": Field(_("Name")),
                "active": s.active,
                "merged_into_id": Field(_("Merged into"), TOWNSHIP),
            },
            (TOWNSHIP,),
        ),
        "township_alias": Table(
            _("Township alias"),
            {
                "text": Field(_("Name as written")),
                "township_id": Field(_("Township"), TOWNSHIP),
                "created_by_id": s.created_by,
            },
        ),
    }


def _account_tables(s: _Shared) -> dict[str, Table]:
    """Accounts, advisors' profiles and specialties, API tokens."""
    languages = Codes({"zh_CN": "中文", "en": "English"})
    return {
        "user_account": Table(
            _("User account"),
            {
                "username": Field(_("Username")),
                "display_name": Field(_("Display name")),
                "password_hash": Field(_("Password")),
                "role": Field(_("Role"), Codes(vocab.labels("role"))),
                "org_id": Field(_("Organisation"), ORG),
                "phone": Field(_("Phone")),
                "email": Field(_("Email")),
                "locale": Field(_("Language"), languages),
                "active": s.active,
                "password_changed_at": Field(_("Password changed"), MOMENT),
                "must_change_password": Field(_("Must choose a new password"), BOOL),
            },
            (USER,),
        ),
        "advisor_profile": Table(
            _("Advisor profile"),
            {
                "user_id": s.advisor,
                "title": Field(_("Title")),
                "capacity": Field(_("Capacity")),
                "accepting": Field(_("Taking new firms"), BOOL),
                "note": s.note,
                "townships": Field(_("Townships")),
            },
            (USER,),
        ),
        "advisor_specialty": Table(
            _("Advisor specialty"),
            {"user_id": s.advisor, "industry": s.industry},
            (USER, "industry"),
        ),
        "api_token": Table(
            _("API token"),
            {
                "user_id": Field(_("User"), USER),
                "name": Field(_("Name")),
                "prefix": Field(_("Prefix")),
                "last_used_at": Field(_("Last used"), MOMENT),
                "revoked_at": Field(_("Revoked"), MOMENT),
            },
        ),
    }


def _firm_tables(s: _Shared) -> dict[str, Table]:
    """Firms and the policy tools offered to them."""
    from . import firms, policies

    firm = firms.field_labels()
    tool = policies.field_labels()
    firm_types = Codes(vocab.labels("firm_type"), many=True)
    return {
        "enterprise": Table(
            _("Firm"),
            {
                "credit_code": Field(firm["credit_code"]),
                "name": Field(firm["name"]),
                "industry": s.industry,
                "township_id": Field(firm["township"], TOWNSHIP),
                "township_text": Field(_("Township as written")),
                "address": Field(firm["address"]),
                "contact_name": Field(firm["contact_name"]),
                "contact_phone": Field(firm["contact_phone"]),
                "employees": Field(firm["employees"]),
                "revenue_wan": Field(firm["revenue_wan"], MONEY),
                "assets_wan": Field(firm["assets_wan"], MONEY),
                "size_class": Field(_("Size class"), Codes(vocab.labels("size"))),
                "code_override_reason": Field(firm["override_reason"]),
                "code_override_by_id": Field(_("Override by"), USER),
                "code_override_at": Field(_("Overridden"), MOMENT),
                "registered_by_org_id": Field(_("Registered by"), ORG),
            },
            (FIRM,),
        ),
        "policy_tool": Table(
            _("Policy tool"),
            {
                "code": Field(tool["code"]),
                "name": Field(tool["name"]),
                "description": Field(tool["description"]),
                "valid_from": Field(tool["valid_from"]),
                "valid_to": Field(tool["valid_to"]),
                "eligible_types": Field(tool["eligible_types"], firm_types),
                "active": Field(tool["active"], BOOL),
            },
            (TOOL,),
        ),
    }


def _referral_fields(s: _Shared) -> dict[str, Field]:
    """A referral case's columns: the request, then its path through the service."""
    from . import referrals, visits

    item = referrals.item_labels()
    sources = Codes({"form": _("Form"), "upload": _("Spreadsheet"), "api": _("API")})
    return {
        "enterprise_id": s.enterprise,
        "status": Field(_("Status"), Codes(vocab.labels("referral_status"))),
        **{
            f"need_{key}": Field(f"{item['needs']}: {label}", BOOL)
            for key, label in vocab.labels("need").items()
        },
        "amount_wan": Field(item["amount_wan"], MONEY),
        "purpose": Field(item["purpose"]),
        "note": Field(item["note"]),
        "org_id": Field(_("Referring bureau"), ORG),
        "created_by_id": s.created_by,
        "source": Field(_("Source"), sources),
        "upload_id": Field(_("Upload"), UPLOAD),
        "advisor_id": s.advisor,
        "assigned_at": Field(_("Assigned"), MOMENT),
        "first_contact_due": Field(_("First contact due")),
        "first_contact_on": Field(_("First contact")),
        "last_visit_on": Field(_("Last visit")),
        "next_visit_on": Field(visits.field_labels()["next_visit_on"]),
        "resolved_at": Field(_("Resolved"), MOMENT),
        "closed_at": Field(_("Closed"), MOMENT),
        "rejected_reason": Field(_("Reason for rejection")),
        "outcome_result": Field(_("Outcome"), Codes(vocab.labels("outcome"))),
        "outcome_amount_wan": Field(_("Outcome amount (万元)"), MONEY),
        "outcome_note": Field(_("Outcome note")),
        "satisfaction": Field(_("Satisfaction")),
        "satisfaction_comment": Field(_("Satisfaction comment")),
    }


def _referral_tables(s: _Shared) -> dict[str, Table]:
    """Referral cases and each bureau's part in one."""
    from . import referrals

    item = referrals.item_labels()
    return {
        "referral": Table(_("Referral case"), _referral_fields(s), (CASE,)),
        "referral_bureau": Table(
            _("Referring bureau"),
            {
                "referral_id": s.case,
                "org_id": Field(_("Referring bureau"), ORG),
                "created_by_id": s.created_by,
                "needs": Field(item["needs"], Codes(vocab.labels("need"), many=True)),
                "amount_wan": Field(item["amount_wan"], MONEY),
                "note": Field(item["note"]),
                "proposed": Field(_("Firm details sent that differ from the registry"), PROPOSED),
            },
            (CASE, ORG),
        ),
    }


def _visit_table(s: _Shared) -> Table:
    """A visit: who, when, how, and what each of its roles covered."""
    from . import visits

    visit = visits.field_labels()
    return Table(
        _("Visit"),
        {
            **s.case_work(),
            "visited_on": Field(visit["visited_on"]),
            "mode": Field(visit["mode"], Codes(vocab.labels("visit_mode"))),
            **{
                f"role_{key}": Field(label, BOOL)
                for key, label in vocab.labels("visit_role").items()
            },
            "summary": Field(visit["summary"]),
            "policies": Field(visit["policies"], TOOLS),
            "policy_note": Field(visit["policy_note"]),
            "guidance_topic": Field(visit["guidance_topic"]),
            "guidance_advice": Field(visit["guidance_advice"]),
            "information_note": Field(visit["information.note"]),
            "next_visit_on": Field(visit["next_visit_on"]),
            "log_delay_days": Field(_("Days logged late")),
            "corrected_at": Field(_("Corrected"), MOMENT),
            "corrected_by_id": Field(_("Corrected by"), USER),
            "correction_reason": Field(visit["reason"]),
        },
        (VISIT,),
    )


def _financing_table(s: _Shared) -> Table:
    """A financing application and its stages."""
    from . import financing

    loan = financing.field_labels()
    return Table(
        _("Financing application"),
        {
            **s.case_work(),
            "lender_id": Field(loan["institution"], ORG),
            "visit_id": Field(_("Visit"), VISIT),
            "product": Field(loan["product"]),
            "purpose": Field(loan["purpose"]),
            "term_months": Field(loan["term_months"]),
            "amount_wan": Field(loan["amount_wan"], MONEY),
            "first_loan": Field(loan["first_loan"], BOOL),
            "unsecured": Field(loan["unsecured"], BOOL),
            "stage": Field(loan["stage"], Codes(vocab.labels("stage"))),
            "applied_on": Field(_("Applied on")),
            "approved_on": Field(_("Approved on")),
            "approved_amount_wan": Field(_("Approved (万元)"), MONEY),
            "disbursed_on": Field(_("Disbursed on")),
            "disbursed_amount_wan": Field(_("Disbursed (万元)"), MONEY),
            "declined_on": Field(_("Declined on")),
            "declined_reason": Field(loan["reason"]),
        },
    )


def _follow_up_tables(s: _Shared) -> dict[str, Table]:
    """What a visit leads to besides a loan: risk reports and the firm's feedback."""
    from . import feedback, risk

    report = risk.field_labels()
    rating = feedback.field_labels()
    return {
        "risk_report": Table(
            _("Risk report"),
            {
                "visit_id": Field(_("Visit"), VISIT),
                "referral_id": s.case,
                "enterprise_id": s.enterprise,
                "reporter_id": Field(_("Reported by"), USER),
                "org_id": s.institution,
                "risk_type": Field(report["risk_type"], Codes(vocab.labels("risk_type"))),
                "note": Field(report["note"]),
                "status": Field(_("Status"), Codes(vocab.labels("risk_status"))),
                "reported_at": Field(_("Reported"), MOMENT),
                "acknowledged_at": Field(_("Acknowledged"), MOMENT),
                "acknowledged_by_id": Field(_("Acknowledged by"), USER),
                "closed_at": Field(_("Closed"), MOMENT),
                "closed_by_id": Field(_("Closed by"), USER),
                "close_note": Field(_("Closing note")),
            },
        ),
        "feedback_link": Table(
            _("Feedback link"),
            {
                "referral_id": s.case,
                "advisor_id": s.advisor,
                "created_by_id": s.created_by,
                "expires_at": Field(_("Valid until"), MOMENT),
                "revoked_at": Field(_("Revoked"), MOMENT),
                "used_at": Field(_("Rated"), MOMENT),
                "rating": Field(rating["rating"]),
                "comment": Field(rating["comment"]),
            },
        ),
    }


def _assessment_table() -> Table:
    """An assessment period: its dates, compilation and publication."""
    period_kinds = vocab.labels("period_kind")
    statuses = vocab.labels("assessment_status")
    return Table(
        _("Assessment"),
        {
            "period": Field(_("Period")),
            "kind": Field(_("Period type"), Codes(period_kinds)),
            "starts_on": Field(_("Starts")),
            "ends_on": Field(_("Ends")),
            "status": Field(_("Status"), Codes(statuses)),
            "rubric_id": Field(_("Rubric version"), RUBRIC),
            **_ranked_period_fields(),
        },
        (ASSESSMENT,),
    )


def _assessment_tables(s: _Shared) -> dict[str, Table]:
    """The working-day calendar, rubric versions, assessments and what is added to them."""
    return {
        "workday_override": Table(
            _("Working-day calendar"),
            {"day": Field(_("Day")), "is_workday": Field(_("Working day"), BOOL), "note": s.note},
        ),
        "rubric_version": Table(
            _("Rubric version"),
            {
                "number": Field(_("Version")),
                "spec": Field(_("Rubric")),
                "note": s.note,
                "created_by_id": s.created_by,
            },
            (RUBRIC,),
        ),
        "assessment": _assessment_table(),
        "assessment_adjustment": Table(
            _("Score adjustment"),
            {
                "assessment_id": Field(_("Assessment"), ASSESSMENT),
                "advisor_id": s.advisor,
                "points": Field(_("Points")),
                "reason": Field(_("Reason")),
                "created_by_id": s.created_by,
                "withdrawn_at": Field(_("Withdrawn"), MOMENT),
                "withdrawn_by_id": Field(_("Withdrawn by"), USER),
            },
        ),
        "assessment_comment": Table(
            _("Assessment comment"),
            {
                "assessment_id": Field(_("Assessment"), ASSESSMENT),
                "advisor_id": s.advisor,
                "author_id": Field(_("Author"), USER),
                "body": Field(_("Comment")),
            },
        ),
    }


def _throttle_table() -> Table:
    """Not an audited model: the one entry per sign-in delay an administrator cleared."""
    scopes = {
        "pair": _("Account from one address"),
        "account": _("Account, from any address"),
        "address": _("Address, for any account"),
    }
    kinds = {"sign_in": _("Sign-in"), "password": _("Password change")}
    return Table(
        _("Sign-in throttle"),
        {
            "scope": Field(_("Delay"), Codes(scopes)),
            "username": Field(_("Username")),
            "ip": Field(_("Address")),
            "kind": Field(_("Attempt"), Codes(kinds)),
            "failures": Field(_("Failures")),
            "cleared_at": Field(_("Cleared"), MOMENT),
        },
    )


def _indicator_tables(s: _Shared) -> dict[str, Table]:
    """The indicator catalogue, the yearly targets, the monthly reports and ranked months."""
    indicator, month, by = Field(_("Indicator")), Field(_("Month")), Field(_("Saved by"), USER)
    return {
        "indicator": Table(
            _("Indicator"),
            {
                "code": Field(_("Code")),
                "name": Field(_("Name")),
                "unit": Field(_("Unit"), Codes(vocab.labels("indicator_unit"))),
                "reported_by_bank": Field(_("Reported by banks"), BOOL),
                "reported_by_insurer": Field(_("Reported by insurers"), BOOL),
                "ranked_on": Field(_("Ranked on"), Codes(vocab.labels("indicator_ranked_on"))),
                "sort_order": Field(_("Order")),
                "active": s.active,
            },
        ),
        "indicator_target_version": Table(
            _("Indicator targets"),
            {
                "year": Field(_("Year")),
                "version": Field(_("Version")),
                "saved_by_id": by,
                "saved_at": Field(_("Saved"), MOMENT),
                "note": s.note,
            },
        ),
        "indicator_target": Table(
            _("Indicator target"),
            {
                "version_id": Field(_("Targets version")),
                "indicator_id": indicator,
                "institution_id": s.institution,
                "growth_pct": Field(_("Target growth (percent)")),
            },
        ),
        "indicator_report": Table(
            _("Indicator report"),
            {
                "institution_id": s.institution,
                "month": month,
                "submitted_by_id": Field(_("Submitted by"), USER),
                "submitted_at": Field(_("Submitted"), MOMENT),
                "reason": Field(_("Reason")),
            },
        ),
        "indicator_value": Table(
            _("Indicator figure"),
            {
                "report_id": Field(_("Report")),
                "indicator_id": indicator,
                "value": Field(_("Value")),
            },
        ),
        "indicator_month": _indicator_month_table(),
    }


def _indicator_month_table() -> Table:
    return Table(
        _("Indicator ranking"),
        {
            "period": Field(_("Month")),
            "month": Field(_("Month")),
            "status": Field(_("Status"), Codes(vocab.labels("indicator_month_status"))),
            "target_version_id": Field(_("Targets version")),
            **_ranked_period_fields(),
        },
    )


def _supervision_tables(s: _Shared) -> dict[str, Table]:
    """Supervision actions (inspections, interviews) and the answers and comments on them."""
    return {
        "supervision": Table(
            _("Supervision"),
            {
                "institution_id": s.institution,
                "kind": Field(_("Kind"), Codes(vocab.labels("supervision_kind"))),
                "held_on": Field(_("Date")),
                "participants": Field(_("Participants")),
                "findings": Field(_("Findings")),
                "commitments": Field(_("Commitments")),
                "follow_up_due": Field(_("Follow-up due")),
                "status": Field(_("Status"), Codes(vocab.labels("supervision_status"))),
                "created_by_id": s.created_by,
                "closed_at": Field(_("Closed"), MOMENT),
                "closed_by_id": Field(_("Closed by"), USER),
                "overdue_notified_at": Field(_("Overdue notice sent"), MOMENT),
            },
        ),
        "supervision_response": Table(
            _("Supervision answer or comment"),
            {
                "supervision_id": Field(_("Supervision")),
                "author_id": Field(_("Author"), USER),
                "author_role": Field(_("Role"), Codes(vocab.labels("role"))),
                "text": Field(_("Text")),
            },
        ),
    }


def _build() -> dict[str, Table]:
    """Every audited table's labels in the current language, area by area (in this order)."""
    shared = _Shared.build()
    tables: dict[str, Table] = {}
    for area in (_place_tables, _account_tables, _firm_tables, _referral_tables):
        tables.update(area(shared))
    tables["visit"] = _visit_table(shared)
    tables["financing_application"] = _financing_table(shared)
    tables.update(_follow_up_tables(shared))
    tables.update(_assessment_tables(shared))
    tables.update(_indicator_tables(shared))
    tables.update(_supervision_tables(shared))
    tables["login_attempt"] = _throttle_table()
    return tables


_CACHE: dict[str, dict[str, Table]] = {}


def spec() -> dict[str, Table]:
    """The mapping in the current language (built once per process and language)."""
    key = str(get_locale())
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = _build()
    return found


def table_labels() -> dict[str, str]:
    """Audited table -> label, every audited model included (a table audited later than this
    mapping shows its name until it is added here)."""
    labels = {name: table.label for name, table in spec().items()}
    for mapper in db.Model.registry.mappers:
        name = mapper.local_table.name
        if getattr(mapper.class_, "__audited__", False) and name not in labels:
            labels[name] = name.replace("_", " ")
    return labels


def _guess(key: str) -> Field:
    """A column the mapping does not know: its name, and a kind read from its name."""
    label = key.replace("_", " ")
    if key.endswith("_by_id"):
        return Field(label[: -len(" by id")] + " by", USER)
    if key.endswith("_at"):
        return Field(label, MOMENT)
    if key.endswith("_wan"):
        return Field(label, MONEY)
    return Field(label)


def field_of(table: str, key: str) -> Field:
    found = spec().get(table)
    field = found.fields.get(key) if found is not None else None
    return field or _guess(str(key))


# ----------------------------------------------------------------------------- reading ids
_TOOL_REPR = re.compile(r"^<PolicyTool (\S+)>$")


def _as_key(kind: str, value) -> str | None:
    if kind == TOOL_CODE:
        return value if isinstance(value, str) and 0 < len(value) <= 40 else None
    found = parse_id(value if not isinstance(value, bool) else None)
    return None if found is None else str(found)


class Names:
    """Names of referenced records: ``want`` collects, :meth:`load` reads them in one
    statement, ``get`` answers (None when the record no longer exists)."""

    def __init__(self) -> None:
        self.wanted: dict[str, set[str]] = {}
        self.found: dict[tuple[str, str], str] = {}

    def want(self, kind: str, value) -> None:
        key = _as_key(kind, value)
        if key is not None:
            self.wanted.setdefault(kind, set()).add(key)

    def get(self, kind: str, value) -> str | None:
        key = _as_key(kind, value)
        return None if key is None else self.found.get((kind, key))

    def _select(self, index: int, kind: str, keys: set[str]):
        tag = literal_column(str(index))
        ids = sorted(int(k) for k in keys) if kind != TOOL_CODE else sorted(keys)
        if kind == TOOL_CODE:
            return select(tag, PolicyTool.code, PolicyTool.name).where(PolicyTool.code.in_(ids))
        if kind == CASE:
            return (
                select(tag, cast(Referral.id, String), Enterprise.name)
                .join(Enterprise, Enterprise.id == Referral.enterprise_id)
                .where(Referral.id.in_(ids))
            )
        if kind == VISIT:
            return (
                select(
                    tag,
                    cast(Visit.id, String),
                    Enterprise.name.concat(" · ").concat(cast(Visit.visited_on, String)),
                )
                .join(Enterprise, Enterprise.id == Visit.enterprise_id)
                .where(Visit.id.in_(ids))
            )
        model, column = {
            USER: (User, User.display_name),
            ORG: (Organisation, Organisation.name),
            TOWNSHIP: (Township, Township.name),
            FIRM: (Enterprise, Enterprise.name),
            TOOL: (PolicyTool, PolicyTool.name),
            RUBRIC: (RubricVersion, cast(RubricVersion.number, String)),
            ASSESSMENT: (Assessment, Assessment.period),
            UPLOAD: (ReferralUpload, ReferralUpload.filename),
        }[kind]
        return select(tag, cast(model.id, String), column).where(model.id.in_(ids))

    def load(self) -> None:
        """One statement for every kind wanted (nothing when nothing is)."""
        kinds = [kind for kind in REFERENCES if self.wanted.get(kind)]
        if not kinds:
            return
        parts = [self._select(i, kind, self.wanted[kind]) for i, kind in enumerate(kinds)]
        stmt = parts[0] if len(parts) == 1 else union_all(*parts)
        for index, key, name in db.session.execute(stmt).all():
            kind = kinds[int(index)]
            if kind == RUBRIC:
                name = _("Version %(n)s", n=name)
            self.found[(kind, str(key))] = name
        self.wanted.clear()


# ----------------------------------------------------------------------------- values
VALUE_CHARS = 160  # a longer old/new value is shortened in the list


def _short(text: str) -> str:
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def plain_text(value) -> str:
    """A value of no known kind as short text (masked secrets stay ``***``)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list | tuple):
        return _short(", ".join(plain_text(v) for v in value) or "∅")
    if isinstance(value, dict):
        return _short(", ".join(f"{k}: {plain_text(v)}" for k, v in value.items()) or "∅")
    if value == "":
        return '""'
    return _short(str(value))


def _moment(value) -> str | None:
    if not isinstance(value, str) or len(value) < 16:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # stored instants are UTC
    return fmt_datetime(at)


def _money(value, label: str) -> str | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    text = fmt_wan(amount)
    # The unit once: a label such as "Revenue (万元)" already says it.
    return text if "万元" in label else f"{text} {_('万元')}"


def _reference(kind: str, value, names: Names) -> str:
    name = names.get(kind, value)
    if name is not None:
        return name
    return f"#{value}" if _as_key(kind, value) is not None else plain_text(value)


def _tools(value, names: Names) -> str:
    if not isinstance(value, list | tuple):
        return plain_text(value)
    shown = []
    for item in value:
        match = _TOOL_REPR.match(item) if isinstance(item, str) else None
        shown.append(names.get(TOOL_CODE, match.group(1)) or match.group(1) if match else item)
    return plain_text(shown)


def _proposed(value, names: Names) -> str:
    """A bureau's proposed firm changes: {firm field: value}, the township as {id, text}."""
    if not isinstance(value, dict):
        return plain_text(value)
    parts = []
    for key, item in value.items():
        if key == "township" and isinstance(item, dict):
            label = field_of("enterprise", "township_id").label
            shown = names.get(TOWNSHIP, item.get("id")) or item.get("text") or "—"
        else:
            field = field_of("enterprise", str(key))
            label, shown = field.label, format_value(field, item, names)
        parts.append(f"{label}: {shown}")
    return _short("; ".join(parts) or "∅")


def format_value(field: Field, value, names: Names) -> str:
    """One old or new value as people read it."""
    if value is None:
        return "—"
    if value == "***":
        return value
    kind = field.kind
    if isinstance(kind, Codes):
        if kind.many and isinstance(value, list | tuple):
            return plain_text([kind.labels.get(v, v) if isinstance(v, str) else v for v in value])
        if isinstance(value, str) and value in kind.labels:
            return kind.labels[value]
        return plain_text(value)
    if kind in REFERENCES:
        return _reference(kind, value, names)
    if kind == MOMENT:
        return _moment(value) or plain_text(value)
    if kind == MONEY:
        return _money(value, field.label) or plain_text(value)
    if kind == TOOLS:
        return _tools(value, names)
    if kind == PROPOSED:
        return _proposed(value, names)
    return plain_text(value)


def _want_value(field: Field, value, names: Names) -> None:
    kind = field.kind
    if value is None:
        return
    if kind in REFERENCES:
        names.want(kind, value)
    elif kind == TOOLS and isinstance(value, list | tuple):
        for item in value:
            match = _TOOL_REPR.match(item) if isinstance(item, str) else None
            if match:
                names.want(TOOL_CODE, match.group(1))
    elif kind == PROPOSED and isinstance(value, dict):
        township = value.get("township")
        if isinstance(township, dict):
            names.want(TOWNSHIP, township.get("id"))


# ----------------------------------------------------------------------------- entries
@dataclass(frozen=True)
class Change:
    field: str  # the column
    label: str  # the column as people read it
    old: str | None  # None: not shown (an insert has no old value, a delete no new one)
    new: str | None


@dataclass(frozen=True)
class Entry:
    """An audit row as the page shows it."""

    id: int
    at: datetime
    action: str
    action_label: str
    table_name: str
    table_label: str
    record_id: str
    record_name: str | None  # the record's name, when its id reads as one
    actor_label: str  # as written at the time (the filter matches it)
    actor_name: str  # the account's name today, or the label in the reader's language
    ip: str | None
    changes: list[Change]


def _pairs(entry: AuditLog) -> list[tuple[str, object, object]]:
    changes = entry.changes
    if not isinstance(changes, dict):
        return [("", None, changes)] if changes else []
    pairs = []
    for key, pair in changes.items():
        if isinstance(pair, list | tuple) and len(pair) == 2:
            pairs.append((str(key), pair[0], pair[1]))
        else:
            pairs.append((str(key), None, pair))
    order = spec().get(entry.table_name)
    known = list(order.fields) if order is not None else []
    return sorted(pairs, key=lambda p: (known.index(p[0]) if p[0] in known else len(known), p[0]))


def _record_parts(entry: AuditLog) -> list[tuple[str, str]]:
    table = spec().get(entry.table_name)
    if table is None or table.record is None:
        return []
    parts = str(entry.record_id).split("/")
    if len(parts) != len(table.record):
        return []
    return [(kind, part) for kind, part in zip(table.record, parts, strict=True) if kind]


def _record_name(entry: AuditLog, names: Names) -> str | None:
    shown = []
    for kind, part in _record_parts(entry):
        if kind == "industry":
            shown.append(field_of("advisor_specialty", "industry").kind.labels.get(part, part))
        else:
            name = names.get(kind, part)
            if name is None:
                return None
            shown.append(name)
    return " · ".join(shown) or None


def actor_name(label: str, actor_id: int | None, names: Names) -> str:
    if actor_id is not None:
        name = names.get(USER, actor_id)
        if name is not None:
            return name
    known = _actor_labels().get(label)
    if known is not None:
        return known
    if label.startswith("job:"):
        job = label[len("job:") :]
        return f"{_('Scheduled job')}: {vocab.label('job', job)}"
    return label


def readable(rows: Iterable[AuditLog]) -> list[Entry]:
    """The rows as the page shows them: one statement reads every name they refer to."""
    rows = list(rows)
    names = Names()
    for row in rows:
        if row.actor_id is not None:
            names.want(USER, row.actor_id)
        for kind, part in _record_parts(row):
            if kind in REFERENCES:
                names.want(kind, part)
        for key, old, new in _pairs(row):
            field = field_of(row.table_name, key)
            _want_value(field, old, names)
            _want_value(field, new, names)
    names.load()
    tables = table_labels()
    out = []
    for row in rows:
        changes = []
        for key, old, new in _pairs(row):
            field = field_of(row.table_name, key)
            changes.append(
                Change(
                    key,
                    field.label if key else "",
                    None if row.action == "insert" else format_value(field, old, names),
                    None if row.action == "delete" else format_value(field, new, names),
                )
            )
        out.append(
            Entry(
                id=row.id,
                at=row.at,
                action=row.action,
                action_label=action_label(row.action, row.table_name),
                table_name=row.table_name,
                table_label=tables.get(row.table_name, row.table_name),
                record_id=row.record_id,
                record_name=_record_name(row, names),
                actor_label=row.actor_label,
                actor_name=actor_name(row.actor_label, row.actor_id, names),
                ip=row.ip,
                changes=changes,
            )
        )
    return out


def _ranked_period_fields() -> dict:
    """The columns a compiled, published ranking period shares (assessments, indicator months):
    who compiled and published it, and its notice's document number."""
    return {
        "compiled_at": Field(_("Compiled"), MOMENT),
        "compiled_by_id": Field(_("Compiled by"), USER),
        "compile_count": Field(_("Times compiled")),
        "published_at": Field(_("Published"), MOMENT),
        "published_by_id": Field(_("Published by"), USER),
        "notice_year": Field(_("Notice year")),
        "notice_seq": Field(_("Notice number in the year")),
        "notice_number": Field(_("Document number")),
    }
