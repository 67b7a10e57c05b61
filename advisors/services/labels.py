"""Display labels of the advisor-work vocabularies (visit modes and roles, financing stages,
risk types and statuses), in the user's language. Keys are the contract's."""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import gettext as _


def one_of(field: str, labels) -> str:
    """ "<field> must be one of: <the choices as the user reads them>." — never the codes."""
    locale = get_locale()
    sep = "、" if locale is not None and locale.language == "zh" else ", "
    return _("%(field)s must be one of: %(choices)s.", field=field, choices=sep.join(labels))


def visit_mode_labels() -> dict[str, str]:
    return {
        "onsite": _("On site"),
        "phone": _("Phone"),
        "online": _("Online"),
        "event": _("Event or meeting"),
    }


def visit_role_labels() -> dict[str, str]:
    return {
        "policy": _("Policy promoter"),
        "guidance": _("Development guide"),
        "financing": _("Financing servicer"),
        "information": _("Information gatherer"),
    }


def stage_labels() -> dict[str, str]:
    return {
        "applied": _("Applied"),
        "approved": _("Approved (credit granted)"),
        "disbursed": _("Disbursed"),
        "declined": _("Declined"),
    }


def risk_type_labels() -> dict[str, str]:
    return {
        "illegal_fundraising": _("Suspected illegal fundraising"),
        "illegal_deposit": _("Suspected illegal deposit-taking"),
        "fraud": _("Suspected fraud"),
        "other": _("Other risk"),
    }


def risk_status_labels() -> dict[str, str]:
    return {
        "open": _("New"),
        "acknowledged": _("Acknowledged"),
        "closed": _("Closed"),
    }


def guidance_topic_suggestions() -> list[str]:
    """Suggestions offered in the form; the topic itself is free text."""
    return [
        _("Financial management"),
        _("Credit repair"),
        _("Listing preparation"),
        _("Insurance planning"),
        _("Digital transformation"),
        _("Tax and accounting"),
    ]
