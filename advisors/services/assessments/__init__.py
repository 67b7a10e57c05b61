"""Assessments: compile a period in SQL, review it (adjustments, comments), publish it.

A package with one module per job; this face re-exports their public names
(``from advisors.services import assessments`` then ``assessments.compile_period`` …):

- :mod:`.ranking` — the monthly ranking machinery, generic (it knows nothing of advisors):
  the period's lock, the draft header's upsert and the publish/freeze guard, rows upserted
  under their unique key writing only what changed, competition ranks by window functions
  (overall and within a partition), group lines. Reused by other monthly rankings.
- :mod:`.core` — roles, limits, :func:`parse_period`, the period's lock and header row.
- :mod:`.rubrics` — the rubric's versions.
- :mod:`.aggregates` — per advisor, the sums every metric is formed from: one statement, the
  advisors joined to one grouped aggregate per source table over the period's bounds.
- :mod:`.raw` — the raw values formed from those sums, exact in integer millionths.
- :mod:`.compiling` — :func:`compile_period`: lock, aggregate, score with the rubric's pure
  rules (:mod:`advisors.scoring`), write and rank the rows (through :mod:`.ranking`).
- :mod:`.review` — adjustments, their withdrawal, comments, publishing (and the notice's
  document number, 文号).
- :mod:`.reading` — read models: :func:`get_view`, :func:`periods`, who sees what.
- :mod:`.evidence` — :func:`breakdown`: the records behind each metric of a row.
- :mod:`.as_json` — the API's JSON.

A compiled period is a draft until it is published; publishing freezes it (compiles,
adjustments, withdrawals and comments are refused, 409). The caller commits.
"""

from .aggregates import LOG_ON_TIME_DAYS, NOT_WORK_STATUSES, _aggregates, _Work
from .as_json import breakdown_to_api, periods_to_api, to_api
from .compiling import _score, _upsert, compile_period
from .core import (
    COMMENT_MAX,
    COMMENT_ROLES,
    COMPILER_ROLES,
    LOCK_NAMESPACE,
    MAX_ADJUSTMENT,
    NOTE_MAX,
    REASON_MAX,
    VIEW_ALL_ROLES,
    _lock,
    parse_period,
)
from .evidence import RECORD_CAP, breakdown
from .ranking import LOCK_WAIT
from .raw import (
    CENT,
    MAY_LACK_DATA,
    MILLION,
    ONE,
    RAW_QUANTUM,
    _share,
    millionths_text,
    points_text,
    raw_text,
    raw_values,
)
from .reading import (
    AdjustmentLine,
    AssessmentView,
    MetricValue,
    PeriodSummary,
    ViewComment,
    ViewInstitution,
    ViewRow,
    adjustment_line,
    compiled_in_progress,
    get_view,
    metric_values,
    period_head,
    periods,
    row_scope,
    view_comments,
    view_institutions,
    view_row_columns,
)
from .review import (
    DOC_NUMBER_MAX,
    NOTICE_LOCK_KEY,
    add_adjustment,
    add_comment,
    adjustment_bound,
    advisor_id_by_username,
    next_doc_number,
    notice_number_text,
    publish,
    withdraw_adjustment,
)
from .rubrics import RUBRIC_LOCK_KEY, current_rubric, rubric_spec, rubric_versions, save_rubric

__all__ = [
    "CENT",
    "COMMENT_MAX",
    "COMMENT_ROLES",
    "COMPILER_ROLES",
    "DOC_NUMBER_MAX",
    "LOCK_NAMESPACE",
    "LOCK_WAIT",
    "LOG_ON_TIME_DAYS",
    "MAX_ADJUSTMENT",
    "MAY_LACK_DATA",
    "MILLION",
    "NOTE_MAX",
    "NOTICE_LOCK_KEY",
    "NOT_WORK_STATUSES",
    "ONE",
    "RAW_QUANTUM",
    "REASON_MAX",
    "RECORD_CAP",
    "RUBRIC_LOCK_KEY",
    "VIEW_ALL_ROLES",
    "AdjustmentLine",
    "AssessmentView",
    "MetricValue",
    "PeriodSummary",
    "ViewComment",
    "ViewInstitution",
    "ViewRow",
    "_Work",
    "_aggregates",
    "_lock",
    "_score",
    "_share",
    "_upsert",
    "add_adjustment",
    "add_comment",
    "adjustment_bound",
    "adjustment_line",
    "advisor_id_by_username",
    "breakdown",
    "breakdown_to_api",
    "compile_period",
    "compiled_in_progress",
    "current_rubric",
    "get_view",
    "metric_values",
    "millionths_text",
    "next_doc_number",
    "notice_number_text",
    "parse_period",
    "period_head",
    "periods",
    "periods_to_api",
    "points_text",
    "publish",
    "raw_text",
    "raw_values",
    "row_scope",
    "rubric_spec",
    "rubric_versions",
    "save_rubric",
    "to_api",
    "view_comments",
    "view_institutions",
    "view_row_columns",
    "withdraw_adjustment",
]
