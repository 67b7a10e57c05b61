"""The referral list as spreadsheet rows, and the notes describing its filters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from flask_babel import gettext as _

from models import (
    User,
    db,
)

from ... import clock
from ... import labels as vocab
from ...permissions import OFFICE_ROLES
from ...sizing import INDUSTRIES
from .. import referrals as svc
from .filters import UNMATCHED, ReferralFilters
from .label_sets import filter_labels
from .listing import _FlagMemo, _rows
from .statements import _decorate, _newest_first, _select, _values

EXPORT_CAP = 50_000


# ------------------------------------------------------------------ export
def export_headers() -> list[str]:
    return [
        _("Case"),
        _("Firm name"),
        _("Credit code"),
        _("Industry"),
        _("Township"),
        _("Size class"),
        _("Referring bureaus"),
        _("Needs"),
        _("Amount needed (万元)"),
        _("Purpose"),
        _("Status"),
        _("Advisor"),
        _("Institution"),
        _("First contact due"),
        _("Service-level flag"),
        _("First contact"),
        _("Outcome"),
        _("Amount financed (万元)"),
        _("Outcome note"),
        _("Rejection reason"),
        _("Satisfaction"),
        _("Referred at"),
    ]


@dataclass
class Export:
    rows: list[list]
    truncated: bool


def export_rows(actor: User, filters: ReferralFilters, cap: int = EXPORT_CAP) -> Export:
    """Every case matching ``filters`` (up to ``cap``), as spreadsheet rows, newest first."""
    office = actor.role in OFFICE_ROLES
    inner = _newest_first(_select(actor, filters)).limit(cap + 1)
    rows = _rows(db.session.execute(_decorate(actor, inner), _values(filters)), office)
    truncated = len(rows) > cap
    rows = rows[:cap]
    bureaus = svc.bureaus_of([r.id for r in rows]) if rows else {}
    cal = svc.calendar()
    today = clock.today()
    statuses = vocab.labels("referral_status")
    needs = vocab.labels("need")
    outcomes = vocab.labels("outcome")
    sizes = vocab.labels("size")
    flags = vocab.labels("sla")
    out = []
    flag_of = _FlagMemo(cal, today)
    for r in rows:
        flag = flag_of(r)
        out.append(
            [
                r.id,
                r.firm_name,
                r.credit_code,
                _(INDUSTRIES[r.industry]) if r.industry in INDUSTRIES else r.industry,
                r.township,
                sizes.get(r.size_class, r.size_class),
                ", ".join(bureaus.get(r.id, [])),
                ", ".join(needs.get(n, n) for n in r.needs),
                r.amount_wan,
                r.purpose,
                statuses.get(r.status, r.status),
                r.advisor_name,
                r.institution,
                r.first_contact_due,
                flags.get(flag) if flag else None,
                r.first_contact_on,
                outcomes.get(r.outcome_result, r.outcome_result) if r.outcome_result else None,
                r.outcome_amount_wan,
                r.outcome_note,
                r.rejected_reason,
                r.satisfaction,
                r.created_at,
            ]
        )
    return Export(out, truncated)


def iter_filter_notes(
    filters: ReferralFilters,
    bureau_names: Mapping[str, str],
    township_names: Mapping[int, str],
) -> Iterator[tuple[str, str]]:
    """(label, value) pairs describing the filters of an export, for its notes sheet."""
    labels = filter_labels()
    statuses = vocab.labels("referral_status")
    needs = vocab.labels("need")
    sizes = vocab.labels("size")

    for key, value in filters.as_args().items():
        if key == "status":
            yield labels[key], statuses.get(value, value) if value else _("All statuses")
        elif key == "industry":
            yield labels[key], _(INDUSTRIES[value]) if value in INDUSTRIES else value
        elif key == "need":
            yield labels[key], needs.get(value, value)
        elif key == "size":
            yield labels[key], sizes.get(value, value)
        elif key == "bureau":
            yield labels[key], bureau_names.get(value.lower(), value)
        elif key == "township" and filters.township == UNMATCHED:
            yield labels[key], _("Not on the city's list")
        elif key == "township":
            yield labels[key], township_names.get(filters.township, value)
        else:
            yield labels[key], value
