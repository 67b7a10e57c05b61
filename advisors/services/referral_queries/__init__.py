"""Read side of referrals for the web pages and the API list: filters, keyset pages, list rows,
the case page, the bureau dashboard, export rows and inbox reads.

Writes go through :mod:`advisors.services.referrals`. Every query selects through
``scoped(Referral, actor)``, so a case outside the actor's scope is never listed or found.
Pure query helpers: the caller passes plain values (a mapping of filter strings, a cursor);
nothing here reads the HTTP request.

A list page runs a fixed number of queries whatever its size: one select of plain columns with
its joins (firm, township, advisor, institution, and for the office roles the read marker), one
:func:`advisors.services.referrals.bureaus_of` call for the page, and the small lookups of the
filter form (bureaus, townships, calendar overrides). Keyset pagination on (created_at, id),
newest first (:mod:`advisors.paging`), served by ``ix_referral_created_id`` and
``ix_referral_status_created_id``; no COUNT over the table.

The modules, by job: :mod:`.filters` (what a query string may ask for), :mod:`.cursor` and
:mod:`.statements` (the keyset position and the SQL), :mod:`.listing` (the web page and the
API page), :mod:`.case_view`, :mod:`.dashboard`, :mod:`.export`, :mod:`.lookups` and
:mod:`.label_sets`. Import from this package, not from the modules.
"""

from __future__ import annotations

from ...params import PAGE_SIZE
from ...params import parse_limit as parse_limit
from .case_view import BureauLine, CaseView, EventLine, ProposalLine, case_view
from .cursor import Cursor, decode_cursor, encode_cursor
from .dashboard import Dashboard, bureau_dashboard
from .export import EXPORT_CAP, Export, export_headers, export_rows, iter_filter_notes
from .filters import (
    FILTER_KEYS,
    MAX_QUERY,
    UNMATCHED,
    ReferralFilters,
    default_status,
    echo_values,
    parse_filters,
)
from .label_sets import filter_labels
from .listing import MAX_LIMIT, ListRow, Page, list_page, referral_for_api, referral_page
from .lookups import bureau_orgs, in_scope, mark_read, timelines_of, townships

__all__ = [
    "EXPORT_CAP",
    "FILTER_KEYS",
    "MAX_LIMIT",
    "MAX_QUERY",
    "PAGE_SIZE",
    "UNMATCHED",
    "BureauLine",
    "CaseView",
    "Cursor",
    "Dashboard",
    "EventLine",
    "Export",
    "ListRow",
    "Page",
    "ProposalLine",
    "ReferralFilters",
    "bureau_dashboard",
    "bureau_orgs",
    "case_view",
    "decode_cursor",
    "default_status",
    "echo_values",
    "encode_cursor",
    "export_headers",
    "export_rows",
    "filter_labels",
    "in_scope",
    "iter_filter_notes",
    "list_page",
    "mark_read",
    "parse_filters",
    "parse_limit",
    "referral_for_api",
    "referral_page",
    "timelines_of",
    "townships",
]
