"""Read side of the advisors' work record: the visit log and the financing pipeline (lists,
filters, keyset pages, totals, export rows) and the institution view a liaison (or the office)
reads: per-advisor figures, overdue first contacts, recent visits and the pipeline by stage.

Every query selects through ``scoped(Visit | FinancingApplication | Referral | User, actor)``:
an advisor sees the work they did and the work on the cases now assigned to them, a liaison the
work of its institution (``org_id``), the office roles everything, a bureau nothing. Pure query
helpers: callers pass plain values (a mapping of strings, a cursor); nothing here reads the
HTTP request.

A list page runs a fixed number of queries whatever its size: the page's rows (one select of
plain columns with their joins) and the small lookups of the filter form (the advisors and, for
the office roles, the institutions). Keyset pagination newest first (:mod:`advisors.paging`):
visits on (visited_on, id) — served by ``ix_visit_advisor_visited`` / ``ix_visit_org_visited``
/ ``ix_visit_visited`` — and applications on (applied_on, id). No COUNT over the table.

The modules, by job: :mod:`.choices` and :mod:`.filters` (the filter form), :mod:`.shared`
(cursor, page and export shapes), :mod:`.visit_list`, :mod:`.pipeline_list` and
:mod:`.institutions`. Import from this package, not from the modules.
"""

from __future__ import annotations

from ...params import PAGE_SIZE
from ...params import parse_limit as parse_limit
from .choices import (
    INSTITUTION_TYPES,
    AdvisorChoice,
    InstitutionChoice,
    advisor_choices,
    institution_choices,
)
from .filters import (
    MAX_QUERY,
    PipelineFilters,
    VisitFilters,
    echo_values,
    iter_filter_notes,
    parse_pipeline_filters,
    parse_visit_filters,
)
from .institutions import (
    AdvisorLine,
    Figures,
    InstitutionLine,
    InstitutionView,
    OverdueCase,
    find_institution,
    institution_totals,
    institution_view,
    institutions_overview,
    month_bounds,
)
from .label_sets import pipeline_filter_labels, visit_filter_labels
from .pipeline_list import (
    ApplicationRow,
    StageTotal,
    Totals,
    pipeline_export_headers,
    pipeline_export_rows,
    pipeline_page,
    pipeline_totals,
)
from .shared import EXPORT_CAP, MAX_LIMIT, Cursor, Export, Page, decode_cursor, encode_cursor
from .visit_list import (
    VisitRow,
    recent_visits,
    visit_export_headers,
    visit_export_rows,
    visit_page,
)

__all__ = [
    "EXPORT_CAP",
    "INSTITUTION_TYPES",
    "MAX_LIMIT",
    "MAX_QUERY",
    "PAGE_SIZE",
    "AdvisorChoice",
    "AdvisorLine",
    "ApplicationRow",
    "Cursor",
    "Export",
    "Figures",
    "InstitutionChoice",
    "InstitutionLine",
    "InstitutionView",
    "OverdueCase",
    "Page",
    "PipelineFilters",
    "StageTotal",
    "Totals",
    "VisitFilters",
    "VisitRow",
    "advisor_choices",
    "decode_cursor",
    "echo_values",
    "encode_cursor",
    "find_institution",
    "institution_choices",
    "institution_totals",
    "institution_view",
    "institutions_overview",
    "iter_filter_notes",
    "month_bounds",
    "parse_limit",
    "parse_pipeline_filters",
    "parse_visit_filters",
    "pipeline_export_headers",
    "pipeline_export_rows",
    "pipeline_filter_labels",
    "pipeline_page",
    "pipeline_totals",
    "recent_visits",
    "visit_export_headers",
    "visit_export_rows",
    "visit_filter_labels",
    "visit_page",
]
