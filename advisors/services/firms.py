"""The enterprise registry: validation shared by the web form, the API and list uploads."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.orm.exc import StaleDataError

from models import Enterprise, Township, User, db, utcnow

from .. import credit_code
from ..errors import Conflict, ValidationFailed
from ..permissions import get_scoped, scoped
from ..sizing import INDUSTRIES
from . import saving
from . import townships as township_service

# Problems an authorised user may override with a reason: the code is well-formed but a
# check character or a prefix does not match (some real registered firms carry such codes).
OVERRIDABLE = {"org_check", "check", "division", "registration"}
OVERRIDE_ROLES = ("admin", "finance_office", "pboc")
MAX_WAN = Decimal("100000000")  # 1 万亿元 in 万元: anything above is a typo
PHONE_RE = re.compile(r"^[0-9+\-() ]{5,30}$")

FIRM_FIELDS = (
    "credit_code",
    "name",
    "industry",
    "township",
    "address",
    "contact_name",
    "contact_phone",
    "employees",
    "revenue_wan",
    "assets_wan",
)


def clean_text(value) -> str:
    """Strip and drop NUL and other control characters (PostgreSQL refuses NUL in text)."""
    text = str(value)
    if text.isprintable():  # no control character at all: the common case, checked in C
        return text.strip()
    return "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32).strip()


def code_problems(raw: str) -> tuple[str, list[credit_code.CodeProblem]]:
    code = credit_code.normalize(raw)
    return code, credit_code.validate(code)


def describe(problems: list[credit_code.CodeProblem]) -> str:
    return "；".join(_(p.message, **p.params).rstrip("。.") for p in problems) + "。"


def parse_wan(raw, field_label: str) -> Decimal | None:
    """A money figure in 万元: a decimal number, not negative, at most 6 decimals."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, float):
        raw = repr(raw)  # JSON numbers arrive as float: take their shortest decimal form
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(_("%(field)s must be a number (万元).", field=field_label)) from None
    if not value.is_finite():
        raise ValueError(_("%(field)s must be a number (万元).", field=field_label))
    if value < 0:
        raise ValueError(_("%(field)s cannot be negative.", field=field_label))
    if value > MAX_WAN:
        raise ValueError(_("%(field)s is too large; amounts are in 万元.", field=field_label))
    if value.as_tuple().exponent < -6:
        raise ValueError(_("%(field)s has too many decimals.", field=field_label))
    return value


def parse_int(raw, field_label: str, maximum: int = 10_000_000) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise ValueError(_("%(field)s must be a whole number.", field=field_label))
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(_("%(field)s must be a whole number.", field=field_label)) from None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(_("%(field)s must be a whole number.", field=field_label))
    if value < 0:
        raise ValueError(_("%(field)s cannot be negative.", field=field_label))
    if value > maximum:
        raise ValueError(_("%(field)s is too large.", field=field_label))
    return int(value)


def field_labels() -> dict[str, str]:
    return {
        "credit_code": _("Credit code"),
        "name": _("Firm name"),
        "industry": _("Industry"),
        "township": _("Township"),
        "address": _("Address"),
        "contact_name": _("Contact person"),
        "contact_phone": _("Contact phone"),
        "employees": _("Employees"),
        "revenue_wan": _("Revenue (万元)"),
        "assets_wan": _("Total assets (万元)"),
        "override_reason": _("Override reason"),
    }


_TEXT_FIELDS = ("credit_code", "name", "industry", "address", "contact_name", "contact_phone")
_CODED_FIELDS = ("credit_code", "industry")


def _screen_types(data: dict, labels: dict) -> tuple[dict, dict]:
    """JSON and spreadsheets carry anything: lists, booleans, numbers where text belongs, or
    strings with lone surrogates that no database stores. Whole numbers in plain text fields
    (a phone number typed as a number) are read as text; other odd values get a field message
    and are dropped before the field checks run."""
    data = dict(data)
    errors: dict[str, str] = {}
    for key in (*_TEXT_FIELDS, "township"):
        value = data.get(key)
        if value is None or isinstance(value, Township):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and key not in _CODED_FIELDS:
            data[key] = value = str(value)
            continue
        if not isinstance(value, str):
            errors[key] = _("%(field)s must be text.", field=labels[key])
            data[key] = None
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            errors[key] = _(
                "%(field)s contains characters that are not valid Unicode.", field=labels[key]
            )
            data[key] = None
    return data, errors


def _township_fields(raw, matcher, labels: dict, errors: dict, warnings: dict) -> dict:
    """The firm's township: a listed one (a :class:`Township` chosen on a form, or text that is
    a listed name, code or mapped text), or text kept as written with a warning."""
    if raw is None or isinstance(raw, Township):
        return {"township_id": raw.id if raw is not None else None, "township_text": None}
    text = raw if isinstance(raw, str) else ""
    if not text.strip():
        return {"township_id": None, "township_text": None}
    if not text.isprintable():
        errors["township"] = _(
            "%(field)s contains characters that are not allowed.", field=labels["township"]
        )
        return {"township_id": None, "township_text": None}
    matcher = matcher or township_service.Matcher.load()
    found = matcher.match(text)
    if found is not None:
        return {"township_id": found.id, "township_text": None}
    if len(text) > township_service.MAX_NAME:
        errors["township"] = _(
            "%(field)s must be at most %(n)s characters.",
            field=labels["township"],
            n=township_service.MAX_NAME,
        )
        return {"township_id": None, "township_text": None}
    warnings["township"] = township_service.unmatched_warning(text, matcher.suggest(text))
    return {"township_id": None, "township_text": text}


def clean_firm_fields(
    data: dict,
    *,
    override_reason: str | None = None,
    may_override: bool = False,
    labels: dict[str, str] | None = None,
    townships: township_service.Matcher | None = None,
) -> tuple[dict, dict, list[str], dict]:
    """Validate raw firm fields (strings or JSON values). Returns (values, errors, overridden,
    warnings) where ``errors`` maps field -> translated message, ``overridden`` lists the check
    problems accepted because of a valid override reason, and ``warnings`` maps a field to what
    was accepted but needs the office's eye (a township not on the list). ``townships``: the
    listed townships read once, for a caller checking many firms."""
    labels = labels or field_labels()
    errors: dict[str, str] = {}
    warnings: dict[str, str] = {}
    data, screen_errors = _screen_types(data, labels)
    code, overridden = _clean_code(data.get("credit_code"), override_reason, may_override, errors)
    values: dict = {
        "credit_code": code,
        "name": _clean_name(data.get("name"), labels, errors),
        "industry": _clean_industry(data.get("industry"), labels, errors),
    }
    values.update(_township_fields(data.get("township"), townships, labels, errors, warnings))
    values.update(_contact_fields(data, labels, errors))
    values.update(_size_figures(data, labels, errors))
    errors.update(screen_errors)  # the type problem is the one to report
    if "township" in errors:
        warnings.pop("township", None)
    return values, errors, overridden, warnings


def _clean_code(
    raw, override_reason: str | None, may_override: bool, errors: dict
) -> tuple[str, list[str]]:
    """The credit code and the check problems an override reason accepts."""
    code, problems = code_problems(raw or "")
    if not problems:
        return code, []
    hard = [p for p in problems if p.code not in OVERRIDABLE]
    reason = (override_reason or "").strip()
    if hard or not may_override or not reason:
        message = describe(problems)
        if not hard and may_override and not reason:
            message += " " + _("If the code is real, give an override reason.")
        errors["credit_code"] = message
    elif len(reason) < 4:
        errors["override_reason"] = _("Override reason must say why (at least 4 characters).")
    else:
        return code, [p.code for p in problems]
    return code, []


def _clean_name(raw, labels: dict, errors: dict) -> str:
    name = clean_text(raw or "")
    if not name:
        errors["name"] = _("%(field)s is required.", field=labels["name"])
    elif len(name) > 200:
        errors["name"] = _(
            "%(field)s must be at most %(n)s characters.", field=labels["name"], n=200
        )
    return name


def _clean_industry(raw, labels: dict, errors: dict) -> str:
    industry = (raw or "").strip()
    if industry not in INDUSTRIES:
        errors["industry"] = _(
            "%(field)s must be one of the SME standard's industries.", field=labels["industry"]
        )
    return industry


def _contact_fields(data: dict, labels: dict, errors: dict) -> dict:
    values = {}
    for key, limit in (("address", 200), ("contact_name", 60)):
        text = clean_text(data.get(key) or "")
        if len(text) > limit:
            errors[key] = _(
                "%(field)s must be at most %(n)s characters.", field=labels[key], n=limit
            )
        values[key] = text or None
    phone = clean_text(data.get("contact_phone") or "")
    if phone and not PHONE_RE.match(phone):
        errors["contact_phone"] = _(
            "%(field)s may contain only digits, spaces, '+', '-' and brackets.",
            field=labels["contact_phone"],
        )
    values["contact_phone"] = phone or None
    return values


def _size_figures(data: dict, labels: dict, errors: dict) -> dict:
    """Employees, revenue and assets: the figures the size class is computed from."""
    values = {}
    try:
        values["employees"] = parse_int(data.get("employees"), labels["employees"])
    except ValueError as exc:
        errors["employees"] = str(exc)
    for key in ("revenue_wan", "assets_wan"):
        try:
            values[key] = parse_wan(data.get(key), labels[key])
        except ValueError as exc:
            errors[key] = str(exc)
    return values


def _duplicate(code: str, existing_id: int | None) -> ValidationFailed | None:
    """The refusal when another firm holds ``code`` (None when it is free)."""
    other = db.session.execute(
        select(Enterprise.id).where(Enterprise.credit_code == code)
    ).scalar_one_or_none()
    if other is None or other == existing_id:
        return None
    return ValidationFailed(
        _("Please correct the marked fields."),
        {"credit_code": _("A firm with credit code %(code)s is already registered.", code=code)},
    )


def _check_unique(code: str, existing: Enterprise | None) -> None:
    error = _duplicate(code, existing.id if existing is not None else None)
    if error is not None:
        raise error


def _save(code: str, existing_id: int | None) -> None:
    """Flush the firm: a concurrent registration of the same credit code (the unique key) is
    the same refusal as one seen before; a version that moved meanwhile is a Conflict."""

    def refusal(exc: Exception):
        if isinstance(exc, StaleDataError):
            return Conflict(_("This firm was changed by someone else since you opened it."))
        return _duplicate(code, existing_id)

    saving.flush(refusal)


def register_firm(actor: User, data: dict, override_reason: str | None = None) -> Enterprise:
    values, errors, overridden, _warnings = clean_firm_fields(
        data, override_reason=override_reason, may_override=actor.role in OVERRIDE_ROLES
    )
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    _check_unique(values["credit_code"], None)
    firm = Enterprise(**values, registered_by_org_id=actor.org_id)
    if overridden:
        firm.code_override_reason = override_reason.strip()[:200]
        firm.code_override_by_id = actor.id
        firm.code_override_at = utcnow()
    db.session.add(firm)
    _save(values["credit_code"], None)
    return firm


def update_firm(
    actor: User,
    firm: Enterprise,
    data: dict,
    override_reason: str | None = None,
    expected_version: int | None = None,
) -> Enterprise:
    if expected_version is not None and expected_version != firm.version:
        raise Conflict(_("This firm was changed by someone else since you opened it."))
    values, errors, overridden, _warnings = clean_firm_fields(
        data,
        override_reason=override_reason or firm.code_override_reason,
        may_override=actor.role in OVERRIDE_ROLES
        or (firm.code_override_reason is not None and data.get("credit_code") == firm.credit_code),
    )
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    _check_unique(values["credit_code"], firm)
    for key, value in values.items():
        setattr(firm, key, value)
    if (
        overridden
        and override_reason
        and override_reason.strip() != (firm.code_override_reason or "")
    ):
        firm.code_override_reason = override_reason.strip()[:200]
        firm.code_override_by_id = actor.id
        firm.code_override_at = utcnow()
    elif not overridden:
        firm.code_override_reason = None
        firm.code_override_by_id = None
        firm.code_override_at = None
    _save(values["credit_code"], firm.id)
    return firm


def search(actor: User, q: str, limit: int = 50, after_id: int | None = None) -> list[Enterprise]:
    """Firms in the actor's scope matching a credit code (prefix) or a name (substring)."""
    stmt = scoped(Enterprise, actor)
    q = clean_text(q or "")[:200]
    if q:
        code_like = credit_code.normalize(q).upper()
        stmt = stmt.where(
            or_(
                Enterprise.credit_code.startswith(code_like, autoescape=True),
                Enterprise.name.contains(q, autoescape=True),
            )
        )
    if after_id is not None:
        stmt = stmt.where(Enterprise.id < after_id)
    stmt = stmt.order_by(Enterprise.id.desc()).limit(limit)
    return list(db.session.execute(stmt).scalars())


def get(actor: User, firm_id: int) -> Enterprise | None:
    return get_scoped(Enterprise, actor, firm_id)


def get_by_code(actor: User, code: str) -> Enterprise | None:
    code = clean_text(credit_code.normalize(code)).upper()
    if len(code) != credit_code.CODE_LENGTH:
        return None
    return db.session.execute(
        scoped(Enterprise, actor).where(func.upper(Enterprise.credit_code) == code)
    ).scalar_one_or_none()
