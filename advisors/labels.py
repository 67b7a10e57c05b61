"""Every enumerated value's label, in one place: the words a user reads for a stored code.

A vocabulary is a kind ("referral_status", "role", ...) mapping each code (the contract's keys)
to an English msgid, translated when asked for in the user's language. ``labels(kind)`` is the
one way to read them: services, views, templates (the ``labels`` Jinja global) and the API's
``one_of`` messages. Translations are looked up once per process and language, because a list
page shows dozens of labels and every lookup goes through the request context.

To add a vocabulary, add it to ``_VOCABULARIES`` (and its Chinese to translations/zh).
"""

from __future__ import annotations

from types import MappingProxyType

from flask_babel import get_locale
from flask_babel import gettext as _

from advisors.scoring.rubric import AVERAGE, FIRM_FIRST, NOT_APPLICABLE, ZERO_POINTS
from advisors.sizing import INDUSTRIES


def N_(message: str) -> str:
    """Mark a msgid for extraction; it is translated when the vocabulary is read."""
    return message


_VOCABULARIES: dict[str, dict[str, str]] = {
    # -- people and organisations
    "role": {
        "admin": N_("Administrator"),
        "finance_office": N_("Finance office"),
        "pboc": N_("Central bank"),
        "bureau": N_("Bureau staff"),
        "advisor": N_("Advisor"),
        "liaison": N_("Institution liaison"),
    },
    "org_type": {
        "finance_office": N_("Finance office"),
        "pboc": N_("Central-bank branch"),
        "bureau": N_("Referring bureau"),
        "bank": N_("Bank"),
        "insurer": N_("Insurer"),
    },
    # -- firms
    "industry": dict(INDUSTRIES),
    "size": {
        "micro": N_("Micro"),
        "small": N_("Small"),
        "medium": N_("Medium"),
        "large": N_("Large"),
        "unknown": N_("Size unknown"),
    },
    "firm_type": {
        "enterprise": N_("Enterprise"),
        "individual_business": N_("Individual business"),
        "cooperative": N_("Farmers' cooperative"),
        "farmer": N_("Farm household"),
    },
    "policy_validity": {
        "valid": N_("In force"),
        "expired": N_("Expired"),
        "not_yet": N_("Not yet in force"),
    },
    # -- referrals (cases)
    "referral_status": {
        "submitted": N_("Submitted"),
        "assigned": N_("Assigned"),
        "in_service": N_("In service"),
        "resolved": N_("Resolved"),
        "closed": N_("Closed"),
        "rejected": N_("Rejected"),
        "withdrawn": N_("Withdrawn"),
    },
    "need": {
        "financing": N_("Financing"),
        "policy": N_("Policy"),
        "guidance": N_("Guidance"),
        "insurance": N_("Insurance"),
    },
    "outcome": {
        "financed": N_("Financed"),
        "not_financed": N_("Not financed"),
        "policy_delivered": N_("Policy delivered"),
        "no_need": N_("No financing need"),
        "declined": N_("Declined by the firm"),
    },
    "referral_event": {
        "created": N_("Referred"),
        "co_referred": N_("Co-referred by another bureau"),
        "assigned": N_("Assigned"),
        "reassigned": N_("Reassigned"),
        "rejected": N_("Rejected"),
        "withdrawn": N_("Withdrawn"),
        "co_withdrawn": N_("A co-referring bureau withdrew"),
        "first_contact": N_("First contact"),
        "resolved": N_("Outcome recorded"),
        "closed": N_("Outcome confirmed, case closed"),
    },
    "sla": {"overdue": N_("Overdue"), "due_soon": N_("Due soon")},
    # -- advisor work
    "visit_mode": {
        "onsite": N_("On site"),
        "phone": N_("Phone"),
        "online": N_("Online"),
        "event": N_("Event or meeting"),
    },
    "visit_role": {
        "policy": N_("Policy promoter"),
        "guidance": N_("Development guide"),
        "financing": N_("Financing servicer"),
        "information": N_("Information gatherer"),
    },
    "stage": {
        "applied": N_("Applied"),
        "approved": N_("Approved (credit granted)"),
        "disbursed": N_("Disbursed"),
        "declined": N_("Declined"),
    },
    "risk_type": {
        "illegal_fundraising": N_("Suspected illegal fundraising"),
        "illegal_deposit": N_("Suspected illegal deposit-taking"),
        "fraud": N_("Suspected fraud"),
        "other": N_("Other risk"),
    },
    "risk_status": {
        "open": N_("New"),
        "acknowledged": N_("Acknowledged"),
        "closed": N_("Closed"),
    },
    "feedback_status": {
        "active": N_("Active"),
        "used": N_("Rated"),
        "expired": N_("Expired"),
        "revoked": N_("Revoked"),
    },
    # -- assessments
    "period_kind": {"month": N_("Month"), "quarter": N_("Quarter"), "year": N_("Year")},
    "period_kind_lower": {"month": N_("month"), "quarter": N_("quarter"), "year": N_("year")},
    "assessment_status": {"draft": N_("Draft"), "published": N_("Published")},
    "no_data": {
        NOT_APPLICABLE: N_("Not applicable (weight spread over the others)"),
        ZERO_POINTS: N_("0 points"),
    },
    "case_rating": {
        FIRM_FIRST: N_("Counts once: the firm's own rating, else the bureau's"),
        AVERAGE: N_("Counts once: the average of the firm's and the bureau's ratings"),
    },
    "evidence_kind": {
        "visit": N_("Visit"),
        "referral": N_("Case"),
        "financing": N_("Loan"),
        "risk_report": N_("Risk report"),
        "rating": N_("Rating"),
    },
    # -- institution indicators
    "indicator_unit": {"yi_yuan": N_("100 million yuan"), "count": N_("Count")},
    "indicator_ranked_on": {"growth": N_("Year-on-year growth")},
    "indicator_month_status": {"draft": N_("Draft"), "published": N_("Published")},
    "supervision_kind": {"inspection": N_("On-site inspection"), "interview": N_("Interview")},
    "supervision_status": {"open": N_("Following up"), "closed": N_("Closed")},
    # -- scheduled jobs
    "job": {
        "housekeeping": N_("Housekeeping"),
        "sla_overdue_sweep": N_("Overdue first-contact sweep"),
        "assessment_monthly": N_("Monthly assessment"),
        "assessment_quarterly": N_("Quarterly assessment"),
        "assessment_annual": N_("Annual assessment"),
        "weekly_digest": N_("Weekly bureau digest"),
    },
    "job_trigger": {
        "schedule": N_("Schedule"),
        "catch_up": N_("Catch-up"),
        "manual": N_("Run now"),
        "cli": N_("Command line"),
    },
    "job_status": {
        "running": N_("Running"),
        "ok": N_("Done"),
        "failed": N_("Failed"),
        "skipped": N_("Skipped"),
    },
    "job_count": {
        "login_attempts": N_("login attempts purged"),
        "sessions": N_("sessions purged"),
        "form_drafts": N_("form drafts purged"),
        "overdue": N_("overdue cases"),
        "notifications": N_("notifications"),
        "bureaus": N_("bureaus"),
        "advisors": N_("advisors"),
        "compile_count": N_("times compiled"),
    },
}

# When each job runs, in words (Asia/Shanghai): msgids with the time as a parameter.
_JOB_SCHEDULES: dict[str, tuple[str, str]] = {
    "housekeeping": (N_("Daily at %(time)s"), "03:30"),
    "sla_overdue_sweep": (N_("Daily at %(time)s"), "08:30"),
    "assessment_monthly": (N_("On the 2nd of every month at %(time)s"), "06:00"),
    "assessment_quarterly": (N_("On 2 January, April, July and October at %(time)s"), "06:00"),
    "assessment_annual": (N_("On 2 January at %(time)s"), "06:00"),
    "weekly_digest": (N_("Mondays at %(time)s"), "08:00"),
}

KINDS = frozenset(_VOCABULARIES) | {"job_schedule"}

_CACHE: dict[tuple[str, str], MappingProxyType] = {}


def _translate(kind: str) -> dict[str, str]:
    if kind == "job_schedule":
        return {key: _(msgid, time=at) for key, (msgid, at) in _JOB_SCHEDULES.items()}
    return {key: _(msgid) for key, msgid in _VOCABULARIES[kind].items()}


def labels(kind: str) -> MappingProxyType:
    """Code -> label of one vocabulary in the current language (read-only, in the
    vocabulary's order). An unknown ``kind`` is a programming error: KeyError."""
    if kind not in KINDS:
        raise KeyError(kind)
    key = (str(get_locale()), kind)
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = MappingProxyType(_translate(kind))
    return found


def label(kind: str, code: str | None, default: str | None = None) -> str:
    """One code's label; an unknown code shows as itself (or ``default``)."""
    if code is None:
        return default or ""
    return labels(kind).get(code, code if default is None else default)


def codes(kind: str) -> tuple[str, ...]:
    """The codes of one vocabulary, in order (e.g. for a form's choices)."""
    return tuple(_JOB_SCHEDULES if kind == "job_schedule" else _VOCABULARIES[kind])


def one_of(field: str, choices) -> str:
    """ "<field> must be one of: <the choices as the user reads them>." — never the codes."""
    locale = get_locale()
    sep = "、" if locale is not None and locale.language == "zh" else ", "
    return _("%(field)s must be one of: %(choices)s.", field=field, choices=sep.join(choices))
