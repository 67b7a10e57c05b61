"""Compiling a period: one transaction behind the period's lock — the advisors' sums in SQL
(:mod:`.aggregates`), their raw values (:mod:`.raw`) scored by the rubric's pure rules once per
distinct raw value, the rows written and ranked by the generic ranking machinery
(:mod:`.ranking`: upserts under (assessment, advisor) that leave unchanged rows untouched,
window-function ranks overall and within the institution, the institutions' lines)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from models import Assessment, AssessmentAdjustment, AssessmentRow, RubricVersion, User, db, utcnow

from ... import clock
from ... import periods as periods_module
from ...audit import record_bulk
from ...dbutil import custom_plans
from ...errors import Forbidden, ValidationFailed
from ...scoring import rules
from ...scoring.rubric import RubricSpec, applicable_factor, best_value, scale_for_period
from . import ranking
from .aggregates import _aggregates, _Work
from .core import COMPILER_ROLES, _load, _lock, parse_period
from .raw import _SOURCES, ONE, _decimal, _hundredths, millionths_text, points_text
from .rubrics import _spec_of, current_rubric

# An assessment's rows: (advisor_id, org_id, computed, adjustment, score, metrics JSON text),
# the points in hundredths, unique per (assessment, advisor). Ranks: overall, and within the
# institution (none without one); the institutions' lines sum their advisors' scores.
ROWS = ranking.RankedRows(
    model=AssessmentRow,
    parent="assessment_id",
    key="advisor_id",
    columns=(
        ("org_id", "integer"),
        ("computed", "bigint"),
        ("adjustment", "bigint"),
        ("score", "bigint"),
    ),
    document="metrics",
    score="score",
    ranks=(ranking.Rank("rank", "overall"), ranking.Rank("institution_rank", "within", "org_id")),
    groups=(ranking.GroupLines("assessment_institution", "org_id", count="advisors"),),
)


def compile_period(period_key: str, actor: User | None = None) -> Assessment:
    """Compile (or recompile a draft of) a month, quarter or year. ``actor`` None is the
    scheduler (or the command line). Raises ValidationFailed (``period``), Forbidden (not the
    finance office), Conflict (published, or another writer holds the period too long)."""
    period = parse_period(period_key)
    if actor is not None and actor.role not in COMPILER_ROLES:
        raise Forbidden(_("Only the finance office may compile assessments."))
    if period.first_day > clock.today():
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"period": _("%(period)s has not started yet.", period=period.key)},
        )
    _lock(period)
    existing = _load(period)
    ranking.refuse_frozen(
        existing,
        _(
            "The assessment for %(period)s is published; it can no longer be compiled.",
            period=period.key,
        ),
    )
    rubric = current_rubric()
    spec = _spec_of(rubric)
    assessment_id = _upsert_assessment(period, rubric, actor, existing)

    with custom_plans():  # planned for this period's bounds, never a generic plan
        assessed = _aggregates(period, spec.case_rating)
    computed, metrics = _score(spec, period.kind, [work for _aid, _org, work in assessed])
    # A period compiled for the first time has nothing stored yet: no adjustments, no rows.
    fresh = existing is None
    adjustments = {} if fresh else _adjustment_sums(assessment_id)

    rows = []
    for (aid, org_id, _work), points, text_ in zip(assessed, computed, metrics, strict=True):
        adjustment = adjustments.get(aid, 0)
        rows.append((aid, org_id, points, adjustment, points + adjustment, text_))
    ranked = _write(assessment_id, rows, fresh)
    _rank(assessment_id, rows_ranked=ranked, fresh=fresh)
    db.session.flush()
    return _load(period)


def _upsert_assessment(
    period: periods_module.Period,
    rubric: RubricVersion,
    actor: User | None,
    existing: Assessment | None,
) -> int:
    now = utcnow()
    values = {
        "period": period.key,
        "kind": period.kind,
        "starts_on": period.first_day,
        "ends_on": period.last_day,
        "status": ranking.DRAFT,
        "rubric_id": rubric.id,
        "compiled_at": now,
        "compiled_by_id": actor.id if actor is not None else None,
        "compile_count": 1,
        "version": 1,
    }
    assessment_id = ranking.upsert_draft(
        Assessment.__table__,
        values,
        replaced=("rubric_id", "compiled_at", "compiled_by_id"),
        incremented=("compile_count", "version"),
    )
    if existing is None:
        audit = {k: v for k, v in values.items() if k != "version"}
        record_bulk("insert", "assessment", [(assessment_id, audit)])
    else:
        changes = {
            "compile_count": [existing.compile_count, existing.compile_count + 1],
            "compiled_at": [existing.compiled_at, now],
        }
        if existing.rubric_id != rubric.id:
            changes["rubric_id"] = [existing.rubric_id, rubric.id]
        if existing.compiled_by_id != values["compiled_by_id"]:
            changes["compiled_by_id"] = [existing.compiled_by_id, values["compiled_by_id"]]
        record_bulk("update", "assessment", [(assessment_id, changes)])
    return assessment_id


def _score(spec: RubricSpec, kind: str, works: list[_Work]) -> tuple[list[int], list[str]]:
    """For each advisor's aggregates (in order): the computed points (in hundredths) and the
    ``metrics`` JSON text stored on the row — the rubric's rules, with the targets scaled to
    the period and the best raw values among the advisors assessed. A metric with no data that
    the rubric calls "not applicable" is stored as ``[null, null]`` and its weight spread over
    the advisor's other metrics (each scaled by :func:`applicable_factor`).

    Advisors are many and their aggregates repeat (a month's counts are small numbers), so
    each metric's raw value is formed once per distinct set of sums it comes from (a cheaply
    hashed key), and scored and formatted once per distinct raw value (and, where some metric
    does not apply to some advisors, per distinct factor)."""
    scaled = scale_for_period(spec, kind)
    if not scaled.metrics:
        return [0] * len(works), ["{}"] * len(works)
    columns: list[tuple[Any, list[Any], dict[Any, int | None]]] = []
    for m in scaled.metrics:
        source = _SOURCES.get(m.key)
        if source is None:  # a metric this compilation does not compute: no data
            keys: list[Any] = [None] * len(works)
            raw_of: dict[Any, int | None] = {None: None}
        else:
            keys = list(map(source.key(), works))
            raw_of = {key: source.millionths(key) for key in set(keys)}
        columns.append((m, keys, raw_of))
    factors = _factors(scaled, columns)

    point_columns: list[list[int]] = []
    text_columns: list[list[str]] = []
    for m, keys, raw_of in columns:
        head = json.dumps(m.key) + ":["
        rule = rules.get(m.rule)
        best = best_value(_decimal(raw) for raw in set(raw_of.values()))
        left_out = m.may_not_apply
        if factors is None:
            cells = _cells(rule, m, head, set(raw_of.values()), best, ONE, left_out)
            cell_of = {key: cells[raw] for key, raw in raw_of.items()}
            point_columns.append([cell_of[key][0] for key in keys])
            text_columns.append([cell_of[key][1] for key in keys])
            continue
        by_factor: dict[Decimal, set] = {}
        for key, factor in set(zip(keys, factors, strict=True)):
            by_factor.setdefault(factor, set()).add(raw_of[key])
        scored = {
            factor: _cells(rule, m, head, raws, best, factor, left_out)
            for factor, raws in by_factor.items()
        }
        pairs = [scored[f][raw_of[k]] for k, f in zip(keys, factors, strict=True)]
        point_columns.append([cell[0] for cell in pairs])
        text_columns.append([cell[1] for cell in pairs])
    computed = [sum(row) for row in zip(*point_columns, strict=True)]
    texts = ["{" + ",".join(row) + "}" for row in zip(*text_columns, strict=True)]
    return computed, texts


def _cells(rule, m, head: str, raws, best: Decimal, factor: Decimal, left_out: bool) -> dict:
    """Raw value (millionths or None) -> (points in hundredths, the metric's JSON member) for
    one metric at one factor: a missing value of a metric that may not apply is ``null``
    points, else the rule's points times ``factor``."""
    raws = list(raws)
    scorable = [raw for raw in raws if raw is not None or not left_out]
    ctx = rules.ScoreContext(weight=m.weight, cap=m.cap, best=best, factor=factor)
    scored = rule.score_many([_decimal(raw) for raw in scorable], m.params, ctx)
    cells = {}
    for raw, points in zip(scorable, scored, strict=True):
        shown = "null" if raw is None else f'"{millionths_text(raw)}"'
        cells[raw] = (_hundredths(points), f'{head}{shown},"{points_text(points)}"]')
    if left_out and None in raws:
        cells[None] = (0, f"{head}null,null]")
    return cells


def _factors(scaled: RubricSpec, columns) -> list[Decimal] | None:
    """Each advisor's factor (:func:`applicable_factor`) when a metric does not apply to some
    of them; None when every metric applies to everyone (factor 1 for all)."""
    optional = [
        (m.key, {key for key, raw in raw_of.items() if raw is None}, keys)
        for m, keys, raw_of in columns
        if m.may_not_apply and None in raw_of.values()
    ]
    if not optional:
        return None
    masks = zip(*([key in missing for key in keys] for _k, missing, keys in optional), strict=True)
    names = [name for name, _missing, _keys in optional]
    factor_of: dict[tuple[bool, ...], Decimal] = {}
    out = []
    for mask in masks:
        factor = factor_of.get(mask)
        if factor is None:
            left_out = [name for name, out_ in zip(names, mask, strict=True) if out_]
            factor = factor_of[mask] = applicable_factor(scaled, left_out) or ONE
        out.append(factor)
    if set(factor_of.values()) <= {ONE}:
        return None
    return out


def _adjustment_sums(assessment_id: int) -> dict[int, int]:
    """advisor id -> the sum of the advisor's adjustments (those not withdrawn), in
    hundredths."""
    return {
        aid: _hundredths(total)
        for aid, total in db.session.execute(
            select(AssessmentAdjustment.advisor_id, func.sum(AssessmentAdjustment.points))
            .where(
                AssessmentAdjustment.assessment_id == assessment_id,
                AssessmentAdjustment.withdrawn_at.is_(None),
            )
            .group_by(AssessmentAdjustment.advisor_id)
        )
    }


def _write(assessment_id: int, rows: list[tuple], fresh: bool = False) -> bool:
    """Write the rows (:data:`ROWS`): what is new or changed is upserted (:func:`_upsert`),
    what is unchanged is not touched (a recompilation on the same data writes nothing), and
    the rows of advisors no longer assessed are deleted. ``fresh``: the assessment was just
    created. True when the rows were all new and written with their final ranks (a first
    compile on PostgreSQL)."""
    return ranking.write(ROWS, assessment_id, rows, fresh, upsert_with=lambda _r, c: _upsert(c))


def _upsert(rows: list[tuple]) -> None:
    """Upsert the rows that are new or changed, as (assessment_id, advisor_id, org_id,
    computed, adjustment, score, metrics) (:func:`.ranking.upsert`)."""
    ranking.upsert(ROWS, rows)


def _rank(assessment_id: int, rows_ranked: bool = False, fresh: bool = False) -> None:
    """Ranks (overall and within the institution), the institutions' lines and their ranks
    (:func:`.ranking.rank`)."""
    ranking.rank(ROWS, assessment_id, rows_ranked=rows_ranked, fresh=fresh)
