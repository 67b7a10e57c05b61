"""The assessment rubric as data: which metrics count, how each one scores, and for how much.

A rubric is a list of :class:`MetricSpec` whose weights add up to 100 points. Each metric names
its scoring rule (see :mod:`advisors.scoring.rules`) and the rule's parameters. Targets are
written for a month; :func:`scale_for_period` turns them into a quarter's (x3) or a year's (x12)
for metrics that count or sum things (``scales_with_period``); shares and averages never scale.

The rubric version table stores :meth:`RubricSpec.to_dict` as JSON (every number as a decimal
string, so nothing passes through a float) and reads it back with :func:`load_rubric`, which
also validates. A published result keeps the rubric version it was compiled with, and the rule
names in it, so it can always be recomputed exactly.

Metric keys are stable identifiers: the compile computes each key's raw value in SQL, results
store points per key, and translations of labels and source descriptions hang off them.

Besides its metrics a rubric states three rules of fairness, versioned with it:

- per metric, what *no data* means (``no_data``): a share or an average with nothing to divide
  by (no firms assigned, nothing due, no rating) is either ``not_applicable`` — the metric is
  left out for that advisor and its weight spread over the metrics that apply, in proportion to
  their weights, so every advisor is still scored out of 100 — or ``zero``;
- ``adjustment_bound``: the most points the finance office may add or take away by adjustments
  (each one, and their sum for one advisor), 10 unless set;
- ``case_rating``: how a case rated both by the firm (its feedback link) and by the referring
  bureau (when it confirmed the outcome) counts for satisfaction — once either way:
  ``firm_first`` (the firm's own rating, else the bureau's) or ``average`` (of the two).

A stored version written before these settings existed reads them as the defaults above
(:data:`DEFAULT_RUBRIC`'s ``no_data`` for each metric it knows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from types import MappingProxyType
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from . import rules
from .rules import ParamsError, ScoreContext, UnknownRuleError, to_decimal

TOTAL = Decimal(100)
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
LABEL_MAX = 100
SOURCE_MAX = 1000
PERIOD_FACTORS = {"month": 1, "quarter": 3, "year": 12}
NOT_APPLICABLE, ZERO_POINTS = "not_applicable", "zero"
NO_DATA_CHOICES = (NOT_APPLICABLE, ZERO_POINTS)
FIRM_FIRST, AVERAGE = "firm_first", "average"
CASE_RATING_CHOICES = (FIRM_FIRST, AVERAGE)
DEFAULT_ADJUSTMENT_BOUND = Decimal(10)
DEFAULT_CASE_RATING = FIRM_FIRST


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark a message for extraction; it is translated where it is shown (``gettext(label)``)."""
    return message


class RubricFormatError(ValueError):
    """The stored or submitted rubric is not shaped like one; ``fields`` names each problem."""

    def __init__(self, fields: Mapping[str, Any]):
        self.fields = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))


def _canonical_params(rule_name: str, params: Mapping | None) -> Mapping:
    """The rule's canonical parameters (Decimals, tuples) when they are valid; otherwise the
    parameters as given, for :func:`validate_rubric` to report."""
    params = {} if params is None else params
    try:
        parsed = rules.get(rule_name).parse(params)
    except (UnknownRuleError, ParamsError):
        parsed = dict(params) if isinstance(params, Mapping) else params
    return MappingProxyType(parsed) if isinstance(parsed, dict) else parsed


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the rubric.

    ``label`` and ``source`` are English msgids (translated where shown: :meth:`display_label`,
    :meth:`display_source`); ``source`` says what the compile counts, for the editor and the
    drill-down. ``weight`` is the points at full achievement (the rubric's weights add up to
    100); ``cap`` the most points the metric may give (``None``: the weight; above the weight
    only if a rule can reward over-achievement, e.g. a top tier worth more than the weight).
    ``no_data`` is what a missing raw value means: ``zero`` (0 points) or ``not_applicable``
    (the metric is left out for that advisor, its weight spread over the others).
    """

    key: str
    label: str
    source: str
    rule: str
    params: Mapping = field(default_factory=dict, hash=False)
    weight: Decimal = Decimal(0)
    cap: Decimal | None = None
    scales_with_period: bool = False
    no_data: str = ZERO_POINTS

    def __post_init__(self):
        object.__setattr__(self, "weight", to_decimal(self.weight))
        if self.cap is not None:
            object.__setattr__(self, "cap", to_decimal(self.cap))
        object.__setattr__(self, "params", _canonical_params(self.rule, self.params))

    @property
    def ceiling(self) -> Decimal:
        return self.weight if self.cap is None else self.cap

    @property
    def may_not_apply(self) -> bool:
        """True when no data leaves the metric out rather than scoring 0."""
        return self.no_data == NOT_APPLICABLE

    def display_label(self) -> str:
        return gettext(self.label)

    def display_source(self) -> str:
        return gettext(self.source)

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "source": self.source,
            "rule": self.rule,
            "params": _jsonable(self.params),
            "weight": str(self.weight),
            "cap": None if self.cap is None else str(self.cap),
            "scales_with_period": self.scales_with_period,
            "no_data": self.no_data,
        }


@dataclass(frozen=True)
class RubricSpec:
    """The metrics of a rubric, in display order; their weights add up to :data:`TOTAL`. With
    them the bound on adjustments and the rule for a case rated twice (see the module)."""

    metrics: tuple[MetricSpec, ...]
    adjustment_bound: Decimal = DEFAULT_ADJUSTMENT_BOUND
    case_rating: str = DEFAULT_CASE_RATING

    def __post_init__(self):
        object.__setattr__(self, "metrics", tuple(self.metrics))

    @property
    def total(self) -> Decimal:
        return TOTAL

    @property
    def keys(self) -> list[str]:
        return [m.key for m in self.metrics]

    def metric(self, key: str) -> MetricSpec:
        for m in self.metrics:
            if m.key == key:
                return m
        raise KeyError(key)

    def to_dict(self) -> dict:
        """A JSON-able dict (numbers as decimal strings)."""
        return {
            "total": str(TOTAL),
            "metrics": [m.to_dict() for m in self.metrics],
            "adjustment_bound": str(self.adjustment_bound),
            "case_rating": self.case_rating,
        }

    @classmethod
    def from_dict(cls, data: Any) -> RubricSpec:
        """Read a dict made by :meth:`to_dict` (or submitted by the editor). Raises
        :class:`RubricFormatError` when it is not shaped like a rubric; the values themselves
        are checked by :func:`validate_rubric`."""
        errors: dict[str, Any] = {}
        if not isinstance(data, Mapping):
            raise RubricFormatError({"rubric": _l("The rubric must be a set of named values.")})
        bound, case_rating = _whole_from_dict(data, errors)
        items = data.get("metrics")
        if not isinstance(items, list | tuple):
            errors["metrics"] = _l("Enter the list of metrics.")
            raise RubricFormatError(errors)
        metrics = []
        for i, item in enumerate(items):
            metric = _metric_from_dict(item, f"metrics.{i}", errors)
            if metric is not None:
                metrics.append(metric)
        if errors:
            raise RubricFormatError(errors)
        return cls(
            tuple(metrics),
            adjustment_bound=DEFAULT_ADJUSTMENT_BOUND if bound is None else bound,
            case_rating=case_rating.strip(),
        )


_METRIC_FIELDS = frozenset(
    {"key", "label", "source", "rule", "params", "weight", "cap", "scales_with_period", "no_data"}
)


def _whole_from_dict(data: Mapping, errors: dict) -> tuple[Decimal | None, str]:
    """The rubric's own fields of a dict (the total checked): (adjustment bound, case rating)."""
    total = data.get("total")
    if total is not None:
        try:
            ok = to_decimal(total) == TOTAL
        except ValueError:
            ok = False
        if not ok:
            errors["total"] = _l("A rubric totals %(n)s points.", n=TOTAL)
    bound = _number(data.get("adjustment_bound"), "adjustment_bound", errors, required=False)
    case_rating = data.get("case_rating")
    if case_rating is None or (isinstance(case_rating, str) and not case_rating.strip()):
        case_rating = DEFAULT_CASE_RATING
    elif not isinstance(case_rating, str):
        errors["case_rating"] = _l("Enter text.")
        case_rating = DEFAULT_CASE_RATING
    return bound, case_rating


def _metric_from_dict(item: Any, where: str, errors: dict) -> MetricSpec | None:
    """One metric of a rubric dict, or None with its errors (``where``: ``metrics.<i>``)."""
    if not isinstance(item, Mapping):
        errors[where] = _l("Each metric must be a set of named values.")
        return None
    for name in sorted(map(str, set(item) - _METRIC_FIELDS)):
        errors[f"{where}.{name}"] = _l("Unknown field.")
    texts = {}
    for name in ("key", "label", "source", "rule"):
        value = item.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[f"{where}.{name}"] = _l("Enter text.")
        texts[name] = value.strip() if isinstance(value, str) else ""
    params = item.get("params") or {}
    if not isinstance(params, Mapping):
        errors[f"{where}.params"] = _l("The parameters must be a set of named values.")
        params = {}
    weight = _number(item.get("weight"), f"{where}.weight", errors, required=True)
    cap = _number(item.get("cap"), f"{where}.cap", errors, required=False)
    scales = item.get("scales_with_period", False)
    if not isinstance(scales, bool):
        errors[f"{where}.scales_with_period"] = _l("Enter yes or no.")
        scales = False
    no_data = _no_data_from_dict(item.get("no_data"), texts["key"], where, errors)
    if any(k.startswith(where + ".") or k == where for k in errors):
        return None
    return MetricSpec(
        key=texts["key"],
        label=texts["label"],
        source=texts["source"],
        rule=texts["rule"],
        params=params,
        weight=weight,
        cap=cap,
        scales_with_period=scales,
        no_data=no_data.strip(),
    )


def _no_data_from_dict(no_data: Any, key: str, where: str, errors: dict) -> str:
    if no_data is None or (isinstance(no_data, str) and not no_data.strip()):
        return default_no_data(key)
    if not isinstance(no_data, str):
        errors[f"{where}.no_data"] = _l("Enter text.")
        return ZERO_POINTS
    return no_data


def default_no_data(key: str) -> str:
    """What no data means for a metric when a rubric does not say: the default rubric's setting
    for the metrics it knows, else 0 points."""
    for m in DEFAULT_RUBRIC.metrics:
        if m.key == key:
            return m.no_data
    return ZERO_POINTS


def _number(value: Any, where: str, errors: dict, *, required: bool) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[where] = _l("Required.")
        return None
    try:
        return to_decimal(value)
    except ValueError:
        errors[where] = _l("Enter a number.")
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def validate_rubric(spec: RubricSpec, known_keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Field -> message for everything wrong with the rubric ({} when it may be saved).

    Fields are ``metrics.<i>.<field>`` (``i`` the metric's position, from 0; parameters as
    ``metrics.<i>.params.<name>``), ``metrics`` and ``weights`` for the whole. ``known_keys``
    limits the keys to the metrics the compilation can compute (default :data:`METRIC_KEYS`)."""
    known = set(METRIC_KEYS if known_keys is None else known_keys)
    errors: dict[str, Any] = {}
    if not spec.metrics:
        errors["metrics"] = _l("Add at least one metric.")
        return errors
    seen: set[str] = set()
    total = Decimal(0)
    for i, m in enumerate(spec.metrics):
        total += _metric_errors(m, f"metrics.{i}", known, seen, errors)
    if not any(k.endswith(".weight") for k in errors) and total != TOTAL:
        errors["weights"] = _l(
            "The weights add up to %(sum)s; they must add up to %(total)s.",
            sum=total,
            total=TOTAL,
        )
    _whole_errors(spec, errors)
    return errors


def _metric_errors(m: MetricSpec, where: str, known: set, seen: set, errors: dict) -> Decimal:
    """Record what is wrong with one metric; the weight it adds to the total (0 if invalid)."""
    _key_errors(m.key, where, known, seen, errors)
    if not isinstance(m.label, str) or not m.label.strip():
        errors[f"{where}.label"] = _l("Required.")
    elif len(m.label) > LABEL_MAX:
        errors[f"{where}.label"] = _l("At most %(n)s characters.", n=LABEL_MAX)
    if not isinstance(m.source, str) or len(m.source) > SOURCE_MAX:
        errors[f"{where}.source"] = _l("At most %(n)s characters.", n=SOURCE_MAX)
    weight = Decimal(0)
    if m.weight <= 0:
        errors[f"{where}.weight"] = _l("The weight must be more than 0.")
    elif _decimals(m.weight) > 2:
        errors[f"{where}.weight"] = _l("At most two decimal places.")
    else:
        weight = m.weight
    _cap_errors(m.cap, where, errors)
    param_errors = rules.validate_params(m.rule, m.params)
    if "rule" in param_errors:
        errors[f"{where}.rule"] = param_errors.pop("rule")
    for name, message in param_errors.items():
        errors[f"{where}.params.{name}"] = message
    if m.no_data not in NO_DATA_CHOICES:
        errors[f"{where}.no_data"] = _l("Choose “not applicable” or “0 points”.")
    if m.rule == "tiers_v1" and not param_errors and f"{where}.rule" not in errors:
        top = max((points for _t, points in m.params["tiers"]), default=Decimal(0))
        if top > m.ceiling:
            errors[f"{where}.params.tiers"] = _l(
                "A tier gives %(points)s points, more than the metric's maximum of %(max)s.",
                points=top,
                max=m.ceiling,
            )
    return weight


def _key_errors(key: Any, where: str, known: set, seen: set, errors: dict) -> None:
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        errors[f"{where}.key"] = _l(
            "Use 1 to 40 lower-case letters, digits or underscores, starting with a letter."
        )
    elif key in seen:
        errors[f"{where}.key"] = _l("This metric appears twice.")
    elif key not in known:
        errors[f"{where}.key"] = _l("The compilation does not know this metric.")
    if isinstance(key, str):
        seen.add(key)


def _cap_errors(cap: Decimal | None, where: str, errors: dict) -> None:
    if cap is None:
        return
    if cap < 0:
        errors[f"{where}.cap"] = _l("The cap must not be negative.")
    elif cap > TOTAL:  # no metric gives more than the whole score
        errors[f"{where}.cap"] = _l("The cap must be at most %(n)s.", n=TOTAL)
    elif _decimals(cap) > 2:
        errors[f"{where}.cap"] = _l("At most two decimal places.")


def _whole_errors(spec: RubricSpec, errors: dict) -> None:
    """The rubric's own fields: the bound on adjustments and the rule for a case rated twice."""
    bound = spec.adjustment_bound
    if not isinstance(bound, Decimal) or not 0 < bound <= TOTAL:
        errors["adjustment_bound"] = _l(
            "The bound on adjustments is more than 0 and at most %(total)s points.", total=TOTAL
        )
    elif _decimals(bound) > 2:
        errors["adjustment_bound"] = _l("At most two decimal places.")
    if spec.case_rating not in CASE_RATING_CHOICES:
        errors["case_rating"] = _l("Choose how a case rated by the firm and the bureau counts.")


def load_rubric(data: Any, known_keys: Iterable[str] | None = None):
    """``(spec, {})`` for a valid rubric dict, ``(None, errors)`` otherwise."""
    try:
        spec = RubricSpec.from_dict(data)
    except RubricFormatError as exc:
        return None, exc.fields
    errors = validate_rubric(spec, known_keys)
    return (None, errors) if errors else (spec, {})


# --- periods and scoring -----------------------------------------------------------------------


def period_factor(kind: str) -> int:
    """How many months of targets a period of ``kind`` holds: month 1, quarter 3, year 12."""
    try:
        return PERIOD_FACTORS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown period kind {kind!r}; use month, quarter or year") from None


def scale_metric(metric: MetricSpec, kind: str) -> MetricSpec:
    """The metric with its monthly targets turned into the period's (only if it scales)."""
    factor = period_factor(kind)
    if factor == 1 or not metric.scales_with_period:
        return metric
    return replace(metric, params=rules.get(metric.rule).scale(metric.params, factor))


def scale_for_period(spec: RubricSpec, kind: str) -> RubricSpec:
    """The rubric as it applies to a period of ``kind`` (``month``, ``quarter``, ``year``):
    count and amount targets (metrics with ``scales_with_period``) x3 for a quarter and x12 for
    a year; shares, averages and relative metrics unchanged."""
    period_factor(kind)
    return replace(spec, metrics=tuple(scale_metric(m, kind) for m in spec.metrics))


def applicable_factor(spec: RubricSpec, not_applicable: Iterable[str]) -> Decimal | None:
    """How many times each metric that applies counts when the metrics ``not_applicable`` are
    left out: the rubric's total weight over the weight that applies (1 when all apply; None
    when none does). Exact to 28 digits whatever the caller's decimal context."""
    left_out = set(not_applicable)
    if not left_out:
        return Decimal(1)
    whole = sum((m.weight for m in spec.metrics), Decimal(0))
    applies = sum((m.weight for m in spec.metrics if m.key not in left_out), Decimal(0))
    if applies <= 0:
        return None
    with localcontext() as dc:
        dc.prec = 28
        dc.rounding = ROUND_HALF_EVEN
        return whole / applies


def not_applicable_keys(spec: RubricSpec, raws: Mapping[str, Any]) -> list[str]:
    """The metrics left out for an advisor with these raw values: no data (a missing key or
    ``None``) on a metric whose rubric setting is "not applicable"."""
    return [m.key for m in spec.metrics if m.may_not_apply and raws.get(m.key) is None]


def score_row(
    spec: RubricSpec,
    raws: Mapping[str, Any],
    bests: Mapping[str, Any] | None = None,
    period_kind: str = "month",
) -> dict[str, Decimal | None]:
    """Points per metric key for one advisor. ``raws`` holds the advisor's raw values (a missing
    key or ``None``: no data — 0 points, or ``None`` when the metric's rubric setting is "not
    applicable", its weight then spread over the metrics that apply, so the full marks are
    still the rubric's total); ``bests`` the best raw value per key among the advisors compared
    (for relative rules). ``period_kind`` scales the monthly targets."""
    bests = bests or {}
    scaled = scale_for_period(spec, period_kind)
    left_out = set(not_applicable_keys(scaled, raws))
    factor = applicable_factor(scaled, left_out) or Decimal(1)
    points: dict[str, Decimal | None] = {}
    for m in scaled.metrics:
        if m.key in left_out:
            points[m.key] = None
            continue
        ctx = ScoreContext(weight=m.weight, cap=m.cap, best=bests.get(m.key), factor=factor)
        points[m.key] = rules.get(m.rule)(raws.get(m.key), m.params, ctx)
    return points


def total(points: Mapping[str, Decimal | None] | Iterable[Decimal | None]) -> Decimal:
    """The total of a row's points (already at 0.01, so the sum is exact); a metric that does
    not apply (``None``) adds nothing."""
    values = points.values() if isinstance(points, Mapping) else points
    return sum((to_decimal(v) for v in values if v is not None), Decimal("0.00")).quantize(
        rules.CENT
    )


def best_value(values: Iterable[Any]) -> Decimal:
    """The best (highest) of one metric's raw values, negatives and missing values read as 0."""
    best = Decimal(0)
    for raw in values:
        value = rules.normalize_raw(raw)
        if value is not None and value > best:
            best = value
    return best


def best_values(spec: RubricSpec, rows: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """The best raw value per metric among ``rows`` (one mapping of raws per advisor), as
    :func:`best_value` — the ``bests`` of :func:`score_row`."""
    rows = list(rows)
    return {m.key: best_value(raws.get(m.key) for raws in rows) for m in spec.metrics}


# --- the default rubric ------------------------------------------------------------------------
#
# Drawn from published city programmes (REFERENCE.md §5): visit coverage, logs filed on time,
# policy promotion, financing (count and amount), first-time borrowers, information and risk
# reports, and firm satisfaction — "often the main one", so it weighs most (20). Targets are for a
# month; counts and amounts scale x3 for a quarter and x12 for a year. Weights add up to 100:
#   coverage 15 + first contact 10 + visits 10 + policy 8 + firms financed 8 + amount 10
#   + first loans 6 + information 6 + satisfaction 20 + logs on time 7.
# A period's raw values are computed on Asia/Shanghai dates within the period.
#
# What no data means, per metric. Counts and amounts always have a value (nothing done is a real
# 0: visits logged with firms assigned, loans, reports). Shares and averages can have nothing to
# divide by; whether that is the advisor's doing decides the setting:
#   coverage with no firms assigned, first contact with nothing due, satisfaction with no rating
#     — not applicable: the finance office assigns the firms and sets the clock, and the firm or
#     the bureau decides whether to rate; none of it is the advisor's work left undone;
#   logs on time with no visit logged — 0 points: the ledger (台账) is the advisor's to keep, and
#     "not applicable" would reward not visiting at all over visiting and logging late.
# An adjustment moves a score by at most 10 points either way: enough for a commendation or a
# lapse the figures do not show, never enough to overturn the ranking the rubric gives.

DEFAULT_RUBRIC = RubricSpec(
    (
        # Coverage (走访覆盖率) is the first thing every programme checks: each assigned firm must
        # be visited. Cumulative (visited at least once since assignment), so it is a share that
        # does not scale; full points at 100%, nothing at or below half.
        MetricSpec(
            key="visit_coverage",
            label=N_("Visit coverage of assigned firms"),
            source=N_(
                "Share of the cases assigned to the advisor by the period's last day (not "
                "rejected or withdrawn) that had at least one visit by that day."
            ),
            rule="ratio_target_v1",
            params={"target": Decimal("1"), "floor": Decimal("0.5")},
            weight=Decimal(15),
            no_data=NOT_APPLICABLE,
        ),
        # The service-level clock (FIRST_CONTACT_WORKING_DAYS working days after assignment): a
        # 95% target leaves room for one slip in twenty; below half earns nothing.
        MetricSpec(
            key="first_contact_on_time",
            label=N_("First contact within the service-level clock"),
            source=N_(
                "Share of the advisor's cases whose first-contact deadline fell in the period "
                "that were first visited on or before the deadline."
            ),
            rule="ratio_target_v1",
            params={"target": Decimal("0.95"), "floor": Decimal("0.5")},
            weight=Decimal(10),
            no_data=NOT_APPLICABLE,
        ),
        # Visits by role: a visit in two roles is two pieces of work. 16 a month is about four a
        # week for an advisor seconded part-time from a bank.
        MetricSpec(
            key="visits_logged",
            label=N_("Visits logged (by role)"),
            source=N_(
                "Visits the advisor logged with a visit date in the period, counted once per "
                "role exercised (policy, guidance, financing, information)."
            ),
            rule="target_v1",
            params={"target": Decimal(16), "floor": Decimal(0)},
            weight=Decimal(10),
            scales_with_period=True,
        ),
        # Policy promotion delivered: six visits a month explaining a catalogue tool.
        MetricSpec(
            key="policy_promotion",
            label=N_("Policy promotion delivered"),
            source=N_(
                "Visits in the period in the policy-promoter role (each records the policy "
                "tools of the catalogue it explained, at least one)."
            ),
            rule="target_v1",
            params={"target": Decimal(6), "floor": Decimal(0)},
            weight=Decimal(8),
            scales_with_period=True,
        ),
        # Firms financed: getting one firm its loan is the big step, so the first tier gives
        # half the points; three firms a month earn them all.
        MetricSpec(
            key="firms_financed",
            label=N_("Firms financed"),
            source=N_("Distinct firms with a loan disbursed in the period (disbursement date)."),
            rule="tiers_v1",
            params={
                "tiers": (
                    (Decimal(1), Decimal(4)),
                    (Decimal(2), Decimal(6)),
                    (Decimal(3), Decimal(8)),
                )
            },
            weight=Decimal(8),
            scales_with_period=True,
        ),
        # Amounts range from a 50万 micro loan to a 2,000万 project, so no fixed target fits every
        # institution: relative to the period's best advisor (who gets full points).
        MetricSpec(
            key="amount_disbursed",
            label=N_("Amount disbursed"),
            source=N_(
                "Sum of the amounts disbursed in the period (万元) on the advisor's financing "
                "applications, relative to the best advisor of the period."
            ),
            rule="relative_best_v1",
            params={},
            weight=Decimal(10),
        ),
        # First-time borrowers (首贷户) are rare and prized: one a month earns most of the points.
        MetricSpec(
            key="first_loans",
            label=N_("First-time borrowers"),
            source=N_(
                "Firms whose first loan ever (marked first loan) was disbursed in the period."
            ),
            rule="tiers_v1",
            params={"tiers": ((Decimal(1), Decimal(4)), (Decimal(2), Decimal(6)))},
            weight=Decimal(6),
            scales_with_period=True,
        ),
        # Information gathering and risk signals: four a month.
        MetricSpec(
            key="info_reports",
            label=N_("Information and risk reports"),
            source=N_(
                "Visits in the period in the information-gatherer role, plus risk reports the "
                "advisor filed in the period."
            ),
            rule="target_v1",
            params={"target": Decimal(4), "floor": Decimal(0)},
            weight=Decimal(6),
            scales_with_period=True,
        ),
        # Satisfaction (企业满意度), the main indicator: average 1-5 rating; a neutral 3 earns
        # nothing, 4.5 and above full points. An average does not scale.
        MetricSpec(
            key="satisfaction",
            label=N_("Firm satisfaction"),
            source=N_(
                "Average rating (1 to 5) of the advisor's service, one rating per case: the "
                "rating the firm gave through a feedback link answered in the period, or the "
                "satisfaction the referring bureau confirmed when it closed the case in the "
                "period; a case rated by both counts once, as the rubric's rule for such cases "
                "says."
            ),
            rule="target_v1",
            params={"target": Decimal("4.5"), "floor": Decimal(3)},
            weight=Decimal(20),
            no_data=NOT_APPLICABLE,
        ),
        # Logs filed on time (台账上报): a visit is logged no later than 3 days after it took
        # place. A share: full points at 100%, nothing at or below 60%.
        MetricSpec(
            key="logs_on_time",
            label=N_("Logs filed on time"),
            source=N_(
                "Share of the visits dated in the period that were logged no later than 3 days "
                "after the visit date."
            ),
            rule="ratio_target_v1",
            params={"target": Decimal("1"), "floor": Decimal("0.6")},
            weight=Decimal(7),
            no_data=ZERO_POINTS,
        ),
    ),
    adjustment_bound=DEFAULT_ADJUSTMENT_BOUND,
    case_rating=FIRM_FIRST,
)

# The metrics the compilation knows how to compute (a rubric may use any subset).
METRIC_KEYS: tuple[str, ...] = tuple(DEFAULT_RUBRIC.keys)
