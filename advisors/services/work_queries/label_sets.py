"""The names of the work lists' filters."""

from __future__ import annotations

from flask_babel import gettext as _


def visit_filter_labels() -> dict[str, str]:
    return {
        "date_from": _("Visited from"),
        "date_to": _("Visited to"),
        "advisor": _("Advisor"),
        "institution": _("Institution"),
        "role": _("Role"),
        "mode": _("Mode"),
        "q": _("Firm name contains"),
    }


def pipeline_filter_labels() -> dict[str, str]:
    return {
        "stage": _("Stage"),
        "advisor": _("Advisor"),
        "institution": _("Institution"),
        "first_loan": _("First-time borrower (首贷户)"),
        "unsecured": _("Unsecured loan (信用贷款)"),
        "date_from": _("Applied from"),
        "date_to": _("Applied to"),
        "q": _("Firm name contains"),
    }
