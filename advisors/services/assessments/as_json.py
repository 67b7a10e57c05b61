"""The assessments as the API's JSON (decimals as strings, times ISO in Asia/Shanghai)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from ...i18n import SHANGHAI
from .reading import AssessmentView, PeriodSummary, ViewRow


def _num(value: Decimal | int | None) -> str | None:
    """A decimal as a plain string without trailing zeros (like the API's money)."""
    if value is None:
        return None
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(SHANGHAI).isoformat(timespec="seconds") if at is not None else None


def to_api(view: AssessmentView) -> dict:
    """The contract's assessment JSON (decimals as strings), with extensions: per row the
    computed points, the adjustment and its lines, the points per metric; the institutions;
    the comments (office roles)."""
    a = view.assessment
    keys = view.spec.keys
    return {
        "period": view.period.key,
        "kind": view.period.kind,
        "status": a.status,
        "rubric_version": view.rubric_number,
        "compiled_at": _iso(a.compiled_at),
        "compile_count": a.compile_count,
        "published_at": _iso(a.published_at),
        "version": a.version,
        # Compiled before the period ended (the current period): not final figures.
        "in_progress": view.in_progress,
        "ends_on": view.period.last_day.isoformat(),
        "adjustment_bound": _num(view.spec.adjustment_bound),
        "document_number": a.notice_number,
        "rows": [_row_to_api(r, keys) for r in view.rows],
        "institutions": [
            {
                "institution": i.code,
                "name": i.name,
                "advisors": i.advisors,
                "total": _num(i.total),
                "average": _num(i.average),
                "rank": i.rank,
            }
            for i in view.institutions
        ],
        "comments": [
            {
                "author": c.author_name,
                "advisor": c.advisor_name,
                "body": c.body,
                "at": _iso(c.created_at),
            }
            for c in view.comments
        ],
    }


def _row_to_api(r: ViewRow, keys) -> dict:
    return {
        "advisor": r.username,
        "name": r.name,
        "institution": r.org_code,
        "score": _num(r.score),
        "rank": r.rank,
        "institution_rank": r.institution_rank,
        "metrics": {k: _num(r.metrics[k].raw) if k in r.metrics else None for k in keys},
        "computed": _num(r.computed),
        "adjustment": _num(r.adjustment),
        "points": {k: _num(r.metrics[k].points) if k in r.metrics else None for k in keys},
        "not_applicable": r.not_applicable,
        "adjustments": [
            {
                "id": adj.id,
                "points": _num(adj.points),
                "reason": adj.reason,
                "at": _iso(adj.created_at),
                "by": adj.created_by,
                "withdrawn_at": _iso(adj.withdrawn_at),
                "withdrawn_by": adj.withdrawn_by,
            }
            for adj in r.adjustments
        ],
    }


def periods_to_api(items: list[PeriodSummary]) -> list[dict]:
    """:func:`.reading.periods` as JSON."""
    return [
        {
            "period": p.period,
            "status": p.status,
            "compiled_at": _iso(p.compiled_at),
            "rubric_version": p.rubric_number,
        }
        for p in items
    ]


def breakdown_to_api(items: list[dict]) -> list[dict]:
    """:func:`.evidence.breakdown` as JSON (decimals as strings, dates ISO)."""

    def plain(value):
        if isinstance(value, Decimal):
            return _num(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return [plain(item) for item in items]
