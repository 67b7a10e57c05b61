"""The policy-tool catalogue (政策工具目录) that policy promoters explain.

The central-bank branch keeps the list; the finance office and the administrator may also
maintain it. Every other role reads it. Names and descriptions are data (Chinese), not msgids.
"""

from __future__ import annotations

import re
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from models import FIRM_TYPES, PolicyTool, User, db

from .. import clock
from ..errors import Conflict, DomainError, ValidationFailed
from ..params import parse_date_field
from . import saving

MAINTAINER_ROLES = ("admin", "finance_office", "pboc")
CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_NAME = 120
MAX_DESCRIPTION = 4000
# Control characters never belong in a name or code (PostgreSQL also refuses NUL in text).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class NotAllowedError(DomainError):
    """The actor's role may not maintain the catalogue."""

    status = 403
    code = "forbidden"


# The seed entries (REFERENCE.md §4). Codes are stable keys; names are exactly as published.
CATALOGUE: tuple[dict, ...] = (
    {
        "code": "relending_agri_small",
        "name": "支农支小再贷款",
        "description": (
            "人民银行向地方法人金融机构提供低成本再贷款资金，引导其扩大涉农和小微企业、"
            "民营企业贷款投放。2025年起由原支农再贷款与支小再贷款合并为一项工具。"
        ),
        "valid_from": date(2025, 1, 1),
        "valid_to": None,
        "eligible_types": ["enterprise", "individual_business", "cooperative", "farmer"],
    },
    {
        "code": "rediscount",
        "name": "再贴现",
        "description": (
            "企业持有的商业汇票经银行贴现后，由人民银行再贴现，重点支持涉农、小微和民营企业"
            "票据融资，帮助企业以较低成本盘活应收票据。"
        ),
        "valid_from": None,
        "valid_to": None,
        "eligible_types": ["enterprise", "cooperative"],
    },
    {
        "code": "inclusive_loan_tool",
        "name": "普惠小微贷款支持工具",
        "description": (
            "对地方法人银行普惠小微贷款余额的增量给予激励资金，鼓励银行持续增加对小微企业"
            "和个体工商户的贷款。实施期为2022年至2024年。"
        ),
        "valid_from": date(2022, 1, 1),
        "valid_to": date(2024, 12, 31),
        "eligible_types": ["enterprise", "individual_business"],
    },
    {
        "code": "tech_relending",
        "name": "科技创新和技术改造再贷款",
        "description": (
            "支持金融机构向科技型企业发放贷款，并支持企业开展技术改造和设备更新。"
            "自2026年起，研发投入较高的民营中小企业也纳入支持范围。"
        ),
        "valid_from": None,
        "valid_to": None,
        "eligible_types": ["enterprise"],
    },
    {
        "code": "private_firm_relending",
        "name": "民营企业再贷款",
        "description": (
            "2026年设立的再贷款工具，为金融机构向民营企业发放贷款提供资金支持，"
            "缓解民营企业融资难、融资贵。"
        ),
        "valid_from": date(2026, 1, 1),
        "valid_to": None,
        "eligible_types": ["enterprise"],
    },
    {
        "code": "carbon_reduction",
        "name": "碳减排支持工具",
        "description": (
            "人民银行对金融机构发放的碳减排贷款按一定比例提供资金支持，"
            "引导资金投向清洁能源、节能环保和碳减排技术等领域的项目。"
        ),
        "valid_from": None,
        "valid_to": None,
        "eligible_types": ["enterprise"],
    },
    {
        "code": "deferral",
        "name": "普惠小微企业贷款延期还本付息",
        "description": (
            "对暂时遇到困难的普惠小微企业贷款，经企业申请、银行同意，"
            "可以延期偿还本金和利息，缓解企业短期还款压力。2020年6月起实施，"
            "多次延续至2022年底到期；此后并入普惠小微贷款支持工具，不再单独实施。"
        ),
        "valid_from": date(2020, 6, 1),
        "valid_to": date(2022, 12, 31),
        "eligible_types": ["enterprise", "individual_business"],
    },
    {
        "code": "inclusive_credit_loan",
        "name": "普惠小微企业信用贷款",
        "description": (
            "不需要抵押或担保、凭企业信用发放的普惠小微贷款，"
            "帮助缺少抵押物的小微企业和个体工商户获得融资。"
        ),
        "valid_from": None,
        "valid_to": None,
        "eligible_types": ["enterprise", "individual_business"],
    },
    {
        "code": "startup_guarantee_loan",
        "name": "创业担保贷款",
        "description": (
            "由政府性担保基金提供担保、财政给予贴息的贷款，"
            "支持创业个人、个体工商户和吸纳就业的小微企业创业经营。"
        ),
        "valid_from": None,
        "valid_to": None,
        "eligible_types": ["individual_business", "enterprise", "farmer"],
    },
)

FIELDS = ("code", "name", "description", "valid_from", "valid_to", "eligible_types", "active")


def field_labels() -> dict[str, str]:
    return {
        "code": _("Code"),
        "name": _("Name"),
        "description": _("Description"),
        "valid_from": _("Valid from"),
        "valid_to": _("Valid to"),
        "eligible_types": _("Eligible firm types"),
        "active": _("Active"),
    }


def may_maintain(actor: User | None) -> bool:
    return actor is not None and getattr(actor, "role", None) in MAINTAINER_ROLES


def validity(tool: PolicyTool, on: date | None = None) -> str:
    """``valid``, ``expired`` or ``not_yet`` on the given day (default: today in Shanghai)."""
    on = on or clock.today()
    if tool.valid_from is not None and on < tool.valid_from:
        return "not_yet"
    if tool.valid_to is not None and on > tool.valid_to:
        return "expired"
    return "valid"


# ------------------------------------------------------------------ reading
def list_tools(
    actor: User, *, include_inactive: bool = False, limit: int = 100, after_id: int | None = None
) -> list[PolicyTool]:
    """Newest first, keyset paginated on id. Maintainers may include deactivated tools."""
    stmt = select(PolicyTool)
    if not (include_inactive and may_maintain(actor)):
        stmt = stmt.where(PolicyTool.active.is_(True))
    if after_id is not None:
        stmt = stmt.where(PolicyTool.id < after_id)
    stmt = stmt.order_by(PolicyTool.id.desc()).limit(limit)
    return list(db.session.execute(stmt).scalars())


def catalogue() -> list[PolicyTool]:
    """Every tool, active or not, by code (the API's catalogue)."""
    return list(db.session.execute(select(PolicyTool).order_by(PolicyTool.code)).scalars())


def get(tool_id: int) -> PolicyTool | None:
    return db.session.get(PolicyTool, tool_id)


def find_by_code(code: str) -> PolicyTool | None:
    return db.session.execute(
        select(PolicyTool).where(PolicyTool.code == (code or "").strip())
    ).scalar_one_or_none()


# ------------------------------------------------------------------ validation
def _as_list(raw) -> list:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        return [part for part in (p.strip() for p in raw.split(",")) if part]
    if isinstance(raw, list | tuple | set | frozenset):
        return list(raw)
    return [raw]


def clean_tool_fields(data: dict, existing: PolicyTool | None = None) -> dict:
    """Validate raw fields (form strings or JSON values); returns clean values or raises
    ValidationFailed with one message per offending field."""
    labels = field_labels()
    errors: dict[str, str] = {}
    values = {
        "code": _clean_code(data.get("code"), existing, errors),
        "name": _clean_name(data.get("name"), labels, errors),
        "description": _clean_description(data.get("description"), labels, errors),
        **_clean_dates(data, labels, errors),
        "eligible_types": _clean_types(data.get("eligible_types"), errors),
        "active": _clean_active(data.get("active", True if existing is None else existing.active)),
    }
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return values


def _code_taken(code: str) -> str:
    return _("A policy tool with code %(code)s already exists.", code=code)


def _clean_code(raw, existing: PolicyTool | None, errors: dict) -> str:
    code = raw.strip() if isinstance(raw, str) else ""
    if not CODE_RE.match(code):
        errors["code"] = _(
            "Code must be 2-40 lower-case letters, digits or '_', starting with a letter."
        )
    else:
        other = find_by_code(code)
        if other is not None and (existing is None or other.id != existing.id):
            errors["code"] = _code_taken(code)
    return code


def _clean_name(raw, labels: dict, errors: dict) -> str:
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        errors["name"] = _("%(field)s is required.", field=labels["name"])
    elif len(name) > MAX_NAME:
        errors["name"] = _(
            "%(field)s must be at most %(n)s characters.", field=labels["name"], n=MAX_NAME
        )
    elif _CONTROL_RE.search(name):
        errors["name"] = _(
            "%(field)s contains characters that are not allowed.", field=labels["name"]
        )
    return name


def _clean_description(raw, labels: dict, errors: dict) -> str:
    description = raw.strip() if isinstance(raw, str) else ""
    description = description.replace("\r\n", "\n")
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = _(
            "%(field)s must be at most %(n)s characters.",
            field=labels["description"],
            n=MAX_DESCRIPTION,
        )
    elif _CONTROL_IN_TEXT_RE.search(description):
        errors["description"] = _(
            "%(field)s contains characters that are not allowed.", field=labels["description"]
        )
    return description


def _clean_dates(data: dict, labels: dict, errors: dict) -> dict:
    values = {}
    for key in ("valid_from", "valid_to"):
        try:
            values[key] = parse_date_field(data.get(key), labels[key])
        except ValueError as exc:
            errors[key] = str(exc)
            values[key] = None
    if (
        "valid_from" not in errors
        and "valid_to" not in errors
        and values["valid_from"] is not None
        and values["valid_to"] is not None
        and values["valid_to"] < values["valid_from"]
    ):
        errors["valid_to"] = _("The end date cannot be before the start date.")
    return values


def _clean_types(raw, errors: dict) -> list[str]:
    types = _as_list(raw)
    unknown = [str(t)[:40] for t in types if t not in FIRM_TYPES]
    if unknown:
        errors["eligible_types"] = _("Unknown firm types: %(items)s.", items=", ".join(unknown))
    elif not types:
        errors["eligible_types"] = _("Choose at least one eligible firm type.")
    # Keep the catalogue's order, without repeats.
    return [t for t in FIRM_TYPES if t in types]


def _clean_active(active) -> bool:
    if isinstance(active, bool):
        return active
    return str(active).lower() in ("1", "true", "y", "yes", "on")


def _save(code: str, tool_id: int | None) -> None:
    """Flush the tool: two people saving the same code at once is the usual refusal of a taken
    code; a version that moved meanwhile is a Conflict."""

    def refusal(exc: Exception):
        if isinstance(exc, StaleDataError):
            return Conflict(_("This policy tool was changed by someone else since you opened it."))
        other = find_by_code(code)
        if other is None or other.id == tool_id:
            return None
        return ValidationFailed(_("Please correct the marked fields."), {"code": _code_taken(code)})

    saving.flush(refusal)


def _require_maintainer(actor: User) -> None:
    if not may_maintain(actor):
        raise NotAllowedError(
            _("Only the central bank and the finance office maintain the catalogue.")
        )


# ------------------------------------------------------------------ writing
def create_tool(actor: User, data: dict) -> PolicyTool:
    _require_maintainer(actor)
    values = clean_tool_fields(data)
    tool = PolicyTool(**values)
    db.session.add(tool)
    _save(values["code"], None)
    return tool


def update_tool(
    actor: User, tool: PolicyTool, data: dict, expected_version: int | None = None
) -> PolicyTool:
    _require_maintainer(actor)
    if expected_version is not None and expected_version != tool.version:
        raise Conflict(_("This policy tool was changed by someone else since you opened it."))
    values = clean_tool_fields(data, existing=tool)
    for key, value in values.items():
        if key == "eligible_types":
            if list(tool.eligible_types or []) != value:
                tool.eligible_types = list(value)  # a new list: JSON columns track assignment
        elif getattr(tool, key) != value:
            setattr(tool, key, value)
    _save(values["code"], tool.id)
    return tool


def set_active(
    actor: User, tool: PolicyTool, active: bool, expected_version: int | None = None
) -> PolicyTool:
    """Switch a tool on or off (advisors see only active tools)."""
    _require_maintainer(actor)
    if expected_version is not None and expected_version != tool.version:
        raise Conflict(_("This policy tool was changed by someone else since you opened it."))
    if tool.active != bool(active):
        tool.active = bool(active)
        db.session.flush()
    return tool


def seed_catalogue() -> int:
    """Insert the catalogue entries whose code is missing; returns how many were inserted.
    Idempotent: existing entries (possibly edited by the central bank) are left alone."""
    have = set(db.session.execute(select(PolicyTool.code)).scalars())
    inserted = 0
    for entry in CATALOGUE:
        if entry["code"] in have:
            continue
        db.session.add(
            PolicyTool(**{**entry, "eligible_types": list(entry["eligible_types"])}, active=True)
        )
        inserted += 1
    if inserted:
        db.session.flush()
    return inserted
