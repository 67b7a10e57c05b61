"""Assessment scoring: the registry of named, pure scoring rules and the rubric as data.

Nothing here touches the database or needs an application context; the compilation computes
each metric's raw values in SQL and scores them with these functions.
"""

from .rubric import (
    DEFAULT_RUBRIC,
    METRIC_KEYS,
    MetricSpec,
    RubricFormatError,
    RubricSpec,
    best_value,
    best_values,
    load_rubric,
    period_factor,
    scale_for_period,
    score_row,
    total,
    validate_rubric,
)
from .rules import (
    ParamsError,
    Rule,
    ScoreContext,
    UnknownRuleError,
    competition_ranks,
    get,
    names,
    register,
    validate_params,
)

__all__ = [
    "DEFAULT_RUBRIC",
    "METRIC_KEYS",
    "MetricSpec",
    "ParamsError",
    "Rule",
    "RubricFormatError",
    "RubricSpec",
    "ScoreContext",
    "UnknownRuleError",
    "best_value",
    "best_values",
    "competition_ranks",
    "get",
    "load_rubric",
    "names",
    "period_factor",
    "register",
    "scale_for_period",
    "score_row",
    "total",
    "validate_params",
    "validate_rubric",
]
