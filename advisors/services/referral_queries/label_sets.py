"""The referral list's filter names (the enumerated values' labels are in
:mod:`advisors.labels`)."""

from __future__ import annotations

from flask_babel import gettext as _


def filter_labels() -> dict[str, str]:
    return {
        "bureau": _("Referring bureau"),
        "industry": _("Industry"),
        "township": _("Township"),
        "size": _("Size class"),
        "need": _("Need"),
        "amount_min": _("Amount from (万元)"),
        "amount_max": _("Amount to (万元)"),
        "status": _("Status"),
        "date_from": _("Referred from"),
        "date_to": _("Referred to"),
        "q": _("Firm name or credit code"),
    }
