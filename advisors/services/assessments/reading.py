"""Read models: what one user may see of a period's assessment (:func:`get_view`, in a fixed
number of queries), the periods they may open (:func:`periods`), and who sees what — the
finance office, the central bank and admins every period, drafts too; an advisor only their own
row of a published period; a liaison the rows of its institution's advisors in a published
period; bureaus nothing (403)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from flask_babel import gettext as _
from sqlalchemy import exists, false, select, true
from sqlalchemy.orm import aliased

from models import (
    Assessment,
    AssessmentAdjustment,
    AssessmentComment,
    AssessmentInstitution,
    AssessmentRow,
    Organisation,
    RubricVersion,
    User,
    db,
)

from ... import clock
from ... import periods as periods_module
from ...errors import Forbidden, NotFound
from ...i18n import SHANGHAI
from ...scoring.rubric import RubricSpec
from .core import VIEW_ALL_ROLES, parse_period
from .rubrics import _spec_of


@dataclass(frozen=True)
class MetricValue:
    raw: Decimal | None
    points: Decimal | None  # None: the metric did not apply (no data, "not applicable")

    @property
    def applicable(self) -> bool:
        return self.points is not None


def metric_values(stored: dict | None) -> dict[str, MetricValue]:
    """A row's stored ``metrics`` (:func:`_score`'s JSON, parsed: {key: [raw, points]}) as
    ``MetricValue``s. The rule of each is the metric's in the period's rubric version."""
    return {
        key: MetricValue(
            raw=None if raw is None else Decimal(raw),
            points=None if points is None else Decimal(points),
        )
        for key, (raw, points) in (stored or {}).items()
    }


@dataclass(frozen=True)
class AdjustmentLine:
    id: int
    advisor_id: int
    points: Decimal
    reason: str
    created_at: datetime
    created_by: str  # display name
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None  # display name

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


@dataclass
class ViewRow:
    advisor_id: int
    username: str
    name: str
    org_id: int | None
    org_code: str | None
    org_name: str | None
    computed: Decimal
    adjustment: Decimal
    score: Decimal
    rank: int | None
    institution_rank: int | None
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    adjustments: list[AdjustmentLine] = field(default_factory=list)  # withdrawn ones too

    @property
    def active_adjustments(self) -> list[AdjustmentLine]:
        """The adjustments that count (not withdrawn)."""
        return [a for a in self.adjustments if a.withdrawn_at is None]

    @property
    def not_applicable(self) -> list[str]:
        """The metrics that did not apply to the advisor (no data, "not applicable")."""
        return [key for key, m in self.metrics.items() if m.points is None]


@dataclass(frozen=True)
class ViewInstitution:
    org_id: int
    code: str
    name: str
    advisors: int
    total: Decimal
    average: Decimal
    rank: int | None


@dataclass(frozen=True)
class ViewComment:
    id: int
    advisor_id: int | None
    advisor_name: str | None
    author_name: str
    author_role: str
    body: str
    created_at: datetime


@dataclass
class AssessmentView:
    """What one user may see of a period's assessment."""

    assessment: Assessment
    period: periods_module.Period
    rubric_number: int
    spec: RubricSpec
    rows: list[ViewRow]
    institutions: list[ViewInstitution]
    comments: list[ViewComment]
    sees_all: bool  # office roles: every row, drafts too

    @property
    def status(self) -> str:
        return self.assessment.status

    @property
    def is_draft(self) -> bool:
        return self.assessment.status == "draft"

    def row_for(self, advisor_id: int) -> ViewRow | None:
        return next((r for r in self.rows if r.advisor_id == advisor_id), None)

    @property
    def in_progress(self) -> bool:
        """Compiled before the period ended: the figures change until it ends and the period is
        compiled again."""
        return compiled_in_progress(self.assessment)

    @property
    def period_open(self) -> bool:
        """The period has not ended yet (it contains today, Asia/Shanghai)."""
        return clock.today() <= self.period.last_day


def compiled_in_progress(assessment: Assessment) -> bool:
    """True when the assessment was compiled on or before its period's last day (Asia/Shanghai):
    the current, unfinished period — its figures are not final."""
    compiled = _shanghai_day(assessment.compiled_at)
    return compiled is not None and compiled <= assessment.ends_on


def row_scope(actor: User, assessment: Assessment):
    """The condition on AssessmentRow for what ``actor`` may see, or an error."""
    if actor is None or actor.role == "bureau":
        raise Forbidden(_("Your role may not see assessments."))
    if actor.role in VIEW_ALL_ROLES:
        return true()
    if assessment.status != "published":
        raise NotFound(_("The page or record was not found."))
    if actor.role == "advisor":
        return AssessmentRow.advisor_id == actor.id
    if actor.role == "liaison" and actor.org_id is not None:
        return AssessmentRow.org_id == actor.org_id
    raise Forbidden(_("Your role may not see assessments."))


def period_head(
    actor: User, period_key: str
) -> tuple[periods_module.Period, Assessment, RubricVersion]:
    """The period, its assessment and rubric version, for a caller who may see assessments."""
    if actor is None or actor.role == "bureau":
        raise Forbidden(_("Your role may not see assessments."))
    period = parse_period(period_key)
    found = db.session.execute(
        select(Assessment, RubricVersion)
        .join(RubricVersion, RubricVersion.id == Assessment.rubric_id)
        .where(Assessment.period == period.key)
    ).first()
    if found is None:
        raise NotFound(_("The page or record was not found."))
    return period, found[0], found[1]


# Built once: an alias is costly to construct, and a statement using the same one caches.
_WRITER, _SUBJECT, _WITHDRAWER = aliased(User), aliased(User), aliased(User)


def adjustment_line(
    adj: AssessmentAdjustment, by: str, withdrawn_by: str | None = None
) -> AdjustmentLine:
    return AdjustmentLine(
        id=adj.id,
        advisor_id=adj.advisor_id,
        points=adj.points,
        reason=adj.reason,
        created_at=adj.created_at,
        created_by=by,
        withdrawn_at=adj.withdrawn_at,
        withdrawn_by=withdrawn_by,
    )


def view_institutions(assessment_id: int, actor: User, sees_all: bool) -> list[ViewInstitution]:
    """The institutions' lines of an assessment in rank order: all of them for the office
    roles (``sees_all``), else the caller's institution's only."""
    stmt = (
        select(AssessmentInstitution, Organisation.code, Organisation.name)
        .join(Organisation, Organisation.id == AssessmentInstitution.org_id)
        .where(AssessmentInstitution.assessment_id == assessment_id)
        .order_by(AssessmentInstitution.rank, Organisation.code)
    )
    if not sees_all:
        stmt = stmt.where(AssessmentInstitution.org_id == actor.org_id if actor.org_id else false())
    return [
        ViewInstitution(
            org_id=i.org_id,
            code=code,
            name=name,
            advisors=i.advisors,
            total=i.total,
            average=i.average,
            rank=i.rank,
        )
        for i, code, name in db.session.execute(stmt)
    ]


def view_comments(assessment_id: int, advisor_id: int | None = None) -> list[ViewComment]:
    """The comments on an assessment (``advisor_id``: those on that advisor), oldest first —
    for the office roles only: the caller checks."""
    cond = true() if advisor_id is None else AssessmentComment.advisor_id == advisor_id
    writer, subject = _WRITER, _SUBJECT
    return [
        ViewComment(
            id=c.id,
            advisor_id=c.advisor_id,
            advisor_name=advisor_name,
            author_name=author_name,
            author_role=author_role,
            body=c.body,
            created_at=c.created_at,
        )
        for c, author_name, author_role, advisor_name in db.session.execute(
            select(AssessmentComment, writer.display_name, writer.role, subject.display_name)
            .join(writer, writer.id == AssessmentComment.author_id)
            .outerjoin(subject, subject.id == AssessmentComment.advisor_id)
            .where(AssessmentComment.assessment_id == assessment_id, cond)
            .order_by(AssessmentComment.created_at, AssessmentComment.id)
        )
    ]


def get_view(actor: User, period_key: str) -> AssessmentView:
    """The period's assessment as ``actor`` may see it, in a fixed number of queries (six)
    whatever the number of rows. Rows are in rank order."""
    period, assessment, rubric = period_head(actor, period_key)
    scope = row_scope(actor, assessment)
    sees_all = actor.role in VIEW_ALL_ROLES
    aid = assessment.id
    rows = _view_rows(aid, scope)
    if not sees_all and not rows:
        raise NotFound(_("The page or record was not found."))
    _attach_adjustments(aid, scope, sees_all, rows)
    institutions = view_institutions(aid, actor, sees_all)
    comments = view_comments(aid) if sees_all else []
    return AssessmentView(
        assessment=assessment,
        period=period,
        rubric_number=rubric.number,
        spec=_spec_of(rubric),
        rows=rows,
        institutions=institutions,
        comments=comments,
        sees_all=sees_all,
    )


def view_row_columns(with_metrics: bool = False) -> tuple:
    """The columns of a :class:`ViewRow` (the stored metrics first when asked for): one list for
    every reader of a period's rows (this module's view, the notice's bounded page)."""
    metrics = (AssessmentRow.metrics,) if with_metrics else ()
    return (
        *metrics,
        AssessmentRow.advisor_id,
        AssessmentRow.org_id,
        AssessmentRow.computed,
        AssessmentRow.adjustment,
        AssessmentRow.score,
        AssessmentRow.rank,
        AssessmentRow.institution_rank,
        User.username,
        User.display_name,
        Organisation.code,
        Organisation.name,
    )


def _view_rows(assessment_id: int, scope) -> list[ViewRow]:
    """The rows in ``scope``, in rank order (one query)."""
    return [
        ViewRow(
            advisor_id=r.advisor_id,
            username=r.username,
            name=r.display_name,
            org_id=r.org_id,
            org_code=r.code,
            org_name=r.name,
            computed=r.computed,
            adjustment=r.adjustment,
            score=r.score,
            rank=r.rank,
            institution_rank=r.institution_rank,
            metrics=metric_values(r.metrics),
        )
        for r in db.session.execute(
            select(*view_row_columns(with_metrics=True))
            .join(User, User.id == AssessmentRow.advisor_id)
            .outerjoin(Organisation, Organisation.id == AssessmentRow.org_id)
            .where(AssessmentRow.assessment_id == assessment_id, scope)
            .order_by(AssessmentRow.rank, User.username)
        )
    ]


def _attach_adjustments(assessment_id: int, scope, sees_all: bool, rows: list[ViewRow]) -> None:
    """Each row's adjustments, withdrawn ones too, oldest first (one query)."""
    by_advisor = {row.advisor_id: row for row in rows}
    author, withdrawer = _WRITER, _WITHDRAWER
    adj_stmt = (
        select(AssessmentAdjustment, author.display_name, withdrawer.display_name)
        .join(author, author.id == AssessmentAdjustment.created_by_id)
        .outerjoin(withdrawer, withdrawer.id == AssessmentAdjustment.withdrawn_by_id)
        .where(AssessmentAdjustment.assessment_id == assessment_id)
        .order_by(AssessmentAdjustment.created_at, AssessmentAdjustment.id)
    )
    if not sees_all:
        adj_stmt = adj_stmt.where(
            AssessmentAdjustment.advisor_id.in_(
                select(AssessmentRow.advisor_id).where(
                    AssessmentRow.assessment_id == assessment_id, scope
                )
            )
        )
    for adj, by, withdrawn_by in db.session.execute(adj_stmt):
        row = by_advisor.get(adj.advisor_id)
        if row is not None:
            row.adjustments.append(adjustment_line(adj, by, withdrawn_by))


class PeriodSummary(NamedTuple):
    period: str
    status: str
    compiled_at: datetime
    rubric_number: int


def periods(actor: User) -> list[PeriodSummary]:
    """The periods ``actor`` may open, latest first (a month before the quarter and year
    ending with it): every compiled period for the office roles, the published ones with a row
    of theirs for advisors and liaisons."""
    if actor is None or actor.role == "bureau":
        raise Forbidden(_("Your role may not see assessments."))
    stmt = select(
        Assessment.period, Assessment.status, Assessment.compiled_at, RubricVersion.number
    ).join(RubricVersion, RubricVersion.id == Assessment.rubric_id)
    if actor.role not in VIEW_ALL_ROLES:
        # An institution has a line in a period exactly when it has rows in it.
        if actor.role == "advisor":
            mine = exists().where(
                AssessmentRow.assessment_id == Assessment.id,
                AssessmentRow.advisor_id == actor.id,
            )
        elif actor.role == "liaison" and actor.org_id is not None:
            mine = exists().where(
                AssessmentInstitution.assessment_id == Assessment.id,
                AssessmentInstitution.org_id == actor.org_id,
            )
        else:
            return []
        stmt = stmt.where(Assessment.status == "published", mine)
    stmt = stmt.order_by(Assessment.ends_on.desc(), Assessment.starts_on.desc())
    return [PeriodSummary(*row) for row in db.session.execute(stmt)]


def _shanghai_day(at: datetime | None) -> date | None:
    return at.astimezone(SHANGHAI).date() if at is not None else None
