"""The audit trail as people read it: record types, field names and values in the reader's
language, with the ids of people, organisations, townships, firms and cases shown as names.

One mapping, here (:func:`spec`): each audited table's label and, per column, its label and the
kind of value it holds. The labels come from the services' own label functions
(``firms.field_labels``, ``referrals.status_labels``, ``labels.stage_labels`` …), so a label
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
def _build() -> dict[str, Table]:
    from . import feedback, financing, firms, policies, referrals, risk, visits
    from .labels import (
        risk_status_labels,
        risk_type_labels,
        stage_labels,
        visit_mode_labels,
        visit_role_labels,
    )
    from .orgs import org_type_labels
    from .referral_queries import labels as case_labels
    from .users import role_labels

    firm = firms.field_labels()
    item = referrals.item_labels()
    visit = visits.field_labels()
    loan = financing.field_labels()
    tool = policies.field_labels()
    report = risk.field_labels()
    rating = feedback.field_labels()
    industries = Codes(case_labels("industry"))
    needs = case_labels("need")
    roles = visit_role_labels()
    period_kinds = {"month": _("Month"), "quarter": _("Quarter"), "year": _("Year")}

    def F(label: str, kind=None) -> Field:  # noqa: N802 (a short constructor for the table)
        return Field(label, kind)

    created_by = F(_("Created by"), USER)
    advisor = F(_("Advisor"), USER)
    case = F(_("Referral case"), CASE)
    enterprise = F(_("Firm"), FIRM)
    institution = F(_("Institution"), ORG)
    note = F(_("Note"))
    active = F(_("Active"), BOOL)
    tables = {
        "organisation": Table(
            _("Organisation"),
            {
                "code": F(_("Code")),
                "name": F(_("Name")),
                "type": F(_("Type"), Codes(org_type_labels())),
                "short_name": F(_("Short name")),
                "active": active,
            },
            (ORG,),
        ),
        "township": Table(
            _("Township"),
            {
                "code": F(_("Code")),
                "name": F(_("Name")),
                "active": active,
                "merged_into_id": F(_("Merged into"), TOWNSHIP),
            },
            (TOWNSHIP,),
        ),
        "township_alias": Table(
            _("Township alias"),
            {
                "text": F(_("Name as written")),
                "township_id": F(_("Township"), TOWNSHIP),
                "created_by_id": created_by,
            },
        ),
        "user_account": Table(
            _("User account"),
            {
                "username": F(_("Username")),
                "display_name": F(_("Display name")),
                "password_hash": F(_("Password")),
                "role": F(_("Role"), Codes(role_labels())),
                "org_id": F(_("Organisation"), ORG),
                "phone": F(_("Phone")),
                "email": F(_("Email")),
                "locale": F(_("Language"), Codes({"zh_CN": "中文", "en": "English"})),
                "active": active,
                "password_changed_at": F(_("Password changed"), MOMENT),
                "must_change_password": F(_("Must choose a new password"), BOOL),
            },
            (USER,),
        ),
        "advisor_profile": Table(
            _("Advisor profile"),
            {
                "user_id": advisor,
                "title": F(_("Title")),
                "capacity": F(_("Capacity")),
                "accepting": F(_("Taking new firms"), BOOL),
                "note": note,
                "townships": F(_("Townships")),
            },
            (USER,),
        ),
        "advisor_specialty": Table(
            _("Advisor specialty"),
            {"user_id": advisor, "industry": F(firm["industry"], industries)},
            (USER, "industry"),
        ),
        "api_token": Table(
            _("API token"),
            {
                "user_id": F(_("User"), USER),
                "name": F(_("Name")),
                "prefix": F(_("Prefix")),
                "last_used_at": F(_("Last used"), MOMENT),
                "revoked_at": F(_("Revoked"), MOMENT),
            },
        ),
        "enterprise": Table(
            _("Firm"),
            {
                "credit_code": F(firm["credit_code"]),
                "name": F(firm["name"]),
                "industry": F(firm["industry"], industries),
                "township_id": F(firm["township"], TOWNSHIP),
                "township_text": F(_("Township as written")),
                "address": F(firm["address"]),
                "contact_name": F(firm["contact_name"]),
                "contact_phone": F(firm["contact_phone"]),
                "employees": F(firm["employees"]),
                "revenue_wan": F(firm["revenue_wan"], MONEY),
                "assets_wan": F(firm["assets_wan"], MONEY),
                "size_class": F(_("Size class"), Codes(firms.size_labels())),
                "code_override_reason": F(firm["override_reason"]),
                "code_override_by_id": F(_("Override by"), USER),
                "code_override_at": F(_("Overridden"), MOMENT),
                "registered_by_org_id": F(_("Registered by"), ORG),
            },
            (FIRM,),
        ),
        "policy_tool": Table(
            _("Policy tool"),
            {
                "code": F(tool["code"]),
                "name": F(tool["name"]),
                "description": F(tool["description"]),
                "valid_from": F(tool["valid_from"]),
                "valid_to": F(tool["valid_to"]),
                "eligible_types": F(
                    tool["eligible_types"], Codes(policies.firm_type_labels(), many=True)
                ),
                "active": F(tool["active"], BOOL),
            },
            (TOOL,),
        ),
        "referral": Table(
            _("Referral case"),
            {
                "enterprise_id": enterprise,
                "status": F(_("Status"), Codes(case_labels("status"))),
                **{
                    f"need_{key}": F(f"{item['needs']}: {label}", BOOL)
                    for key, label in needs.items()
                },
                "amount_wan": F(item["amount_wan"], MONEY),
                "purpose": F(item["purpose"]),
                "note": F(item["note"]),
                "org_id": F(_("Referring bureau"), ORG),
                "created_by_id": created_by,
                "source": F(
                    _("Source"),
                    Codes({"form": _("Form"), "upload": _("Spreadsheet"), "api": _("API")}),
                ),
                "upload_id": F(_("Upload"), UPLOAD),
                "advisor_id": advisor,
                "assigned_at": F(_("Assigned"), MOMENT),
                "first_contact_due": F(_("First contact due")),
                "first_contact_on": F(_("First contact")),
                "last_visit_on": F(_("Last visit")),
                "next_visit_on": F(visit["next_visit_on"]),
                "resolved_at": F(_("Resolved"), MOMENT),
                "closed_at": F(_("Closed"), MOMENT),
                "rejected_reason": F(_("Reason for rejection")),
                "outcome_result": F(_("Outcome"), Codes(case_labels("outcome"))),
                "outcome_amount_wan": F(_("Outcome amount (万元)"), MONEY),
                "outcome_note": F(_("Outcome note")),
                "satisfaction": F(_("Satisfaction")),
                "satisfaction_comment": F(_("Satisfaction comment")),
            },
            (CASE,),
        ),
        "referral_bureau": Table(
            _("Referring bureau"),
            {
                "referral_id": case,
                "org_id": F(_("Referring bureau"), ORG),
                "created_by_id": created_by,
                "needs": F(item["needs"], Codes(needs, many=True)),
                "amount_wan": F(item["amount_wan"], MONEY),
                "note": F(item["note"]),
                "proposed": F(_("Firm details sent that differ from the registry"), PROPOSED),
            },
            (CASE, ORG),
        ),
        "visit": Table(
            _("Visit"),
            {
                "referral_id": case,
                "enterprise_id": enterprise,
                "advisor_id": advisor,
                "org_id": institution,
                "visited_on": F(visit["visited_on"]),
                "mode": F(visit["mode"], Codes(visit_mode_labels())),
                **{f"role_{key}": F(label, BOOL) for key, label in roles.items()},
                "summary": F(visit["summary"]),
                "policies": F(visit["policies"], TOOLS),
                "policy_note": F(visit["policy_note"]),
                "guidance_topic": F(visit["guidance_topic"]),
                "guidance_advice": F(visit["guidance_advice"]),
                "information_note": F(visit["information.note"]),
                "next_visit_on": F(visit["next_visit_on"]),
                "log_delay_days": F(_("Days logged late")),
                "corrected_at": F(_("Corrected"), MOMENT),
                "corrected_by_id": F(_("Corrected by"), USER),
                "correction_reason": F(visit["reason"]),
            },
            (VISIT,),
        ),
        "financing_application": Table(
            _("Financing application"),
            {
                "referral_id": case,
                "enterprise_id": enterprise,
                "advisor_id": advisor,
                "org_id": institution,
                "lender_id": F(loan["institution"], ORG),
                "visit_id": F(_("Visit"), VISIT),
                "product": F(loan["product"]),
                "purpose": F(loan["purpose"]),
                "term_months": F(loan["term_months"]),
                "amount_wan": F(loan["amount_wan"], MONEY),
                "first_loan": F(loan["first_loan"], BOOL),
                "unsecured": F(loan["unsecured"], BOOL),
                "stage": F(loan["stage"], Codes(stage_labels())),
                "applied_on": F(_("Applied on")),
                "approved_on": F(_("Approved on")),
                "approved_amount_wan": F(_("Approved (万元)"), MONEY),
                "disbursed_on": F(_("Disbursed on")),
                "disbursed_amount_wan": F(_("Disbursed (万元)"), MONEY),
                "declined_on": F(_("Declined on")),
                "declined_reason": F(loan["reason"]),
            },
        ),
        "risk_report": Table(
            _("Risk report"),
            {
                "visit_id": F(_("Visit"), VISIT),
                "referral_id": case,
                "enterprise_id": enterprise,
                "reporter_id": F(_("Reported by"), USER),
                "org_id": institution,
                "risk_type": F(report["risk_type"], Codes(risk_type_labels())),
                "note": F(report["note"]),
                "status": F(_("Status"), Codes(risk_status_labels())),
                "reported_at": F(_("Reported"), MOMENT),
                "acknowledged_at": F(_("Acknowledged"), MOMENT),
                "acknowledged_by_id": F(_("Acknowledged by"), USER),
                "closed_at": F(_("Closed"), MOMENT),
                "closed_by_id": F(_("Closed by"), USER),
                "close_note": F(_("Closing note")),
            },
        ),
        "feedback_link": Table(
            _("Feedback link"),
            {
                "referral_id": case,
                "advisor_id": advisor,
                "created_by_id": created_by,
                "expires_at": F(_("Valid until"), MOMENT),
                "revoked_at": F(_("Revoked"), MOMENT),
                "used_at": F(_("Rated"), MOMENT),
                "rating": F(rating["rating"]),
                "comment": F(rating["comment"]),
            },
        ),
        "workday_override": Table(
            _("Working-day calendar"),
            {"day": F(_("Day")), "is_workday": F(_("Working day"), BOOL), "note": note},
        ),
        "rubric_version": Table(
            _("Rubric version"),
            {
                "number": F(_("Version")),
                "spec": F(_("Rubric")),
                "note": note,
                "created_by_id": created_by,
            },
            (RUBRIC,),
        ),
        "assessment": Table(
            _("Assessment"),
            {
                "period": F(_("Period")),
                "kind": F(_("Period type"), Codes(period_kinds)),
                "starts_on": F(_("Starts")),
                "ends_on": F(_("Ends")),
                "status": F(_("Status"), Codes({"draft": _("Draft"), "published": _("Published")})),
                "rubric_id": F(_("Rubric version"), RUBRIC),
                "compiled_at": F(_("Compiled"), MOMENT),
                "compiled_by_id": F(_("Compiled by"), USER),
                "compile_count": F(_("Times compiled")),
                "published_at": F(_("Published"), MOMENT),
                "published_by_id": F(_("Published by"), USER),
                "notice_year": F(_("Notice year")),
                "notice_seq": F(_("Notice number in the year")),
                "notice_number": F(_("Document number")),
            },
            (ASSESSMENT,),
        ),
        "assessment_adjustment": Table(
            _("Score adjustment"),
            {
                "assessment_id": F(_("Assessment"), ASSESSMENT),
                "advisor_id": advisor,
                "points": F(_("Points")),
                "reason": F(_("Reason")),
                "created_by_id": created_by,
                "withdrawn_at": F(_("Withdrawn"), MOMENT),
                "withdrawn_by_id": F(_("Withdrawn by"), USER),
            },
        ),
        "assessment_comment": Table(
            _("Assessment comment"),
            {
                "assessment_id": F(_("Assessment"), ASSESSMENT),
                "advisor_id": advisor,
                "author_id": F(_("Author"), USER),
                "body": F(_("Comment")),
            },
        ),
        # Not an audited model: the one entry per sign-in delay an administrator cleared.
        "login_attempt": Table(
            _("Sign-in throttle"),
            {
                "scope": F(
                    _("Delay"),
                    Codes(
                        {
                            "pair": _("Account from one address"),
                            "account": _("Account, from any address"),
                            "address": _("Address, for any account"),
                        }
                    ),
                ),
                "username": F(_("Username")),
                "ip": F(_("Address")),
                "kind": F(
                    _("Attempt"),
                    Codes({"sign_in": _("Sign-in"), "password": _("Password change")}),
                ),
                "failures": F(_("Failures")),
                "cleared_at": F(_("Cleared"), MOMENT),
            },
        ),
    }
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
        from .jobs import job_labels

        job = label[len("job:") :]
        return f"{_('Scheduled job')}: {job_labels().get(job, job)}"
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
