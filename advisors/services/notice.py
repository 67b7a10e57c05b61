"""The ranking notice (排名通报): its data, and its .xlsx and PDF renderings.

The notice of a period holds the period and its rubric version, every advisor's rank and score
(computed, adjustments with their reasons, final), the institution table, and who is below
target: advisors whose final score and institutions whose average score is under the target
score (``ASSESSMENT_TARGET_SCORE``, 60 points unless configured), each with the gap in points
(target - score). The institution trend follows each institution's average over the recent
periods of the same kind (published ones, and the period itself).

It is a Chinese official notice (通报): the issuer (发文机关: ``NOTICE_ISSUER``, else the name of
the finance-office organisation), the document number given when the period was published
(文号, ``江金办〔2026〕12号``), the title centred (关于2026年11月金融顾问工作考核情况的通报), and
at the end, on the right, the issuer and the date in the official form (二〇二六年十二月五日;
the date of publishing, today's for a draft).

:func:`build` reads through :func:`advisors.services.assessments.get_view`, so the notice shows
exactly what the caller may see. :func:`xlsx_bytes` and :func:`pdf_bytes` render a built notice.
The PDF embeds a CJK TrueType font (reportlab's built-in CID fonts are not embedded, and a
reader without the font shows boxes): ``NOTICE_FONT_PATH`` (a .ttf, or a .ttc with
``#index``), else the first of :data:`FONT_CANDIDATES` found — Debian's fonts-wqy-zenhei,
fonts-wqy-microhei, fonts-arphic-uming —, else :class:`NoticeFontMissing` says what to install.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape as xml_escape

from babel.dates import format_skeleton
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from sqlalchemy import BigInteger, and_, case, false, func, select, true, type_coerce
from sqlalchemy.orm import aliased

from models import (
    Assessment,
    AssessmentAdjustment,
    AssessmentInstitution,
    AssessmentRow,
    Organisation,
    RubricVersion,
    User,
    db,
)

from .. import clock
from ..dbutil import among
from ..errors import DomainError, NotFound
from ..i18n import current_locale, fmt_datetime, local
from ..xlsx import safe_cell
from . import assessments

DEFAULT_TARGET = Decimal(60)
TREND_PERIODS = 12  # periods of the same kind shown in a trend, the notice's included
PAGE_SIZE = 25  # ranking rows per page (the page stays light whatever the city's size)
# Advisors listed on the printable notice, at the top of the ranking and among the lowest below
# target: a notice of a few A4 pages (the Excel and PDF downloads list every advisor).
NOTICE_ROWS = 50
BANDS = 10  # score bands of 10 points for the distribution
# CJK TrueType fonts the PDF embeds, in order of preference (Debian paths; a .ttc's first face).
# WenQuanYi Zen Hei first: GPL v2 with an explicit font-embedding exception, so embedding it in
# the notices the office sends out is plainly allowed; it covers GB 2312 and beyond, 〔〕 and 〇.
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)
CJK_FONT = "NoticeCJK"


# ------------------------------------------------------------------ the data
@dataclass(frozen=True)
class NoticeRow:
    advisor_id: int
    rank: int | None
    advisor: str
    institution: str
    computed: Decimal
    adjustment: Decimal
    score: Decimal
    institution_rank: int | None
    reasons: tuple[tuple[Decimal, str], ...] = ()  # (points, reason) of each adjustment
    points: dict[str, Decimal] = field(default_factory=dict, hash=False)

    def gap(self, target: Decimal) -> Decimal | None:
        return target - self.score if self.score < target else None

    # Two-decimal figures for the page (attributes are cheaper than calls in a template).
    @property
    def computed_text(self) -> str:
        return f"{self.computed:.2f}"

    @property
    def score_text(self) -> str:
        return f"{self.score:.2f}"

    @property
    def adjustment_text(self) -> str:
        return signed(self.adjustment)


@dataclass(frozen=True)
class NoticeInstitution:
    org_id: int
    rank: int | None
    name: str
    advisors: int
    total: Decimal
    average: Decimal

    def gap(self, target: Decimal) -> Decimal | None:
        return target - self.average if self.average < target else None


@dataclass(frozen=True)
class Trend:
    """Values per series over the x labels (``None``: no result in that period)."""

    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[Decimal | None, ...]], ...]


@dataclass(frozen=True)
class Notice:
    period: str
    kind: str
    status: str
    starts_on: date
    ends_on: date
    rubric_version: int
    compiled_at: datetime | None
    published_at: datetime | None
    target: Decimal
    metrics: tuple[tuple[str, str], ...]  # (key, label) in rubric order
    rows: tuple[NoticeRow, ...]  # in rank order; the first ``len(rows)`` of ``rows_total``
    institutions: tuple[NoticeInstitution, ...]
    trend: Trend
    below: tuple[NoticeRow, ...] = ()  # under the target, lowest first (may be the first few)
    rows_total: int = 0
    below_total: int = 0
    issuer: str = ""  # 发文机关
    document_number: str | None = None  # 文号, given when published (None: a draft)
    issued_on: date | None = None  # the notice's date: published on, or today for a draft
    in_progress: bool = False  # compiled before the period ended
    period_open: bool = False  # the period has not ended yet

    @property
    def title(self) -> str:
        """关于2026年11月金融顾问工作考核情况的通报 (in the current language)."""
        return notice_title(self.kind, self.starts_on)

    @property
    def date_text(self) -> str:
        """The notice's date as an official document writes it (二〇二六年十二月五日)."""
        return official_date(self.issued_on) if self.issued_on else ""

    @property
    def advisors_below(self) -> list[tuple[NoticeRow, Decimal]]:
        """Advisors under the target, lowest score first, with their gap in points."""
        return [(r, self.target - r.score) for r in self.below]

    @property
    def institutions_below(self) -> list[tuple[NoticeInstitution, Decimal]]:
        below = [
            (i, i.gap(self.target)) for i in self.institutions if i.gap(self.target) is not None
        ]
        return sorted(below, key=lambda item: (item[0].average, item[0].name))

    @property
    def filename(self) -> str:
        return f"notice-{self.period}"


# ------------------------------------------------------------------ the official form
_HAN_DIGITS = "〇一二三四五六七八九"


def _han_number(n: int) -> str:
    """1-31 in Chinese numerals, as a date writes them: 五, 十, 十二, 二十一, 三十."""
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _HAN_DIGITS[ones]
    head = "" if tens == 1 else _HAN_DIGITS[tens]
    return f"{head}十{_HAN_DIGITS[ones] if ones else ''}"


def chinese_date(d: date) -> str:
    """The date of an official document (成文日期): the year digit by digit with 〇, the month
    and day in Chinese numerals — 二〇二六年十二月五日 (GB/T 9704)."""
    year = "".join(_HAN_DIGITS[int(c)] for c in str(d.year))
    return f"{year}年{_han_number(d.month)}月{_han_number(d.day)}日"


def official_date(d: date) -> str:
    """The notice's date in the current language: the official Chinese form, or the long
    English date ("December 5, 2026")."""
    if current_locale() == "zh_CN":
        return chinese_date(d)
    return format_date(d, format="long")


def period_label(kind: str, starts_on: date) -> str:
    """The period as a title names it: 2026年11月 / November 2026, a quarter, a year."""
    if kind == "month":
        return format_skeleton("yMMMM", starts_on, locale=get_locale() or "zh_CN")
    if kind == "quarter":
        labels = {
            1: _("the first quarter of %(year)s", year=starts_on.year),
            2: _("the second quarter of %(year)s", year=starts_on.year),
            3: _("the third quarter of %(year)s", year=starts_on.year),
            4: _("the fourth quarter of %(year)s", year=starts_on.year),
        }
        return labels[(starts_on.month - 1) // 3 + 1]
    return _("the year %(year)s", year=starts_on.year)


def notice_title(kind: str, starts_on: date) -> str:
    """关于2026年11月金融顾问工作考核情况的通报, in the current language."""
    return _(
        "Notice on the assessment of the financial advisors' work in %(period)s",
        period=period_label(kind, starts_on),
    )


def notice_issuer(config: dict | None = None) -> str:
    """The issuer (发文机关): ``NOTICE_ISSUER`` when configured, else the name of the (first
    active) finance-office organisation, else "the finance office"."""
    configured = str((config or {}).get("NOTICE_ISSUER") or "").strip()
    if configured:
        return configured
    name = db.session.scalar(
        select(Organisation.name)
        .where(Organisation.type == "finance_office", Organisation.active.is_(True))
        .order_by(Organisation.id)
        .limit(1)
    )
    return name or _("The finance office")


def target_score(config: dict | None) -> Decimal:
    """The target score from the app config (``ASSESSMENT_TARGET_SCORE``), 60 by default."""
    raw = (config or {}).get("ASSESSMENT_TARGET_SCORE", DEFAULT_TARGET)
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        return DEFAULT_TARGET
    return value if value.is_finite() and value >= 0 else DEFAULT_TARGET


def _metric_labels(view: assessments.AssessmentView) -> tuple[tuple[str, str], ...]:
    return tuple((m.key, m.display_label()) for m in view.spec.metrics)


def _notice_row(r: assessments.ViewRow) -> NoticeRow:
    return NoticeRow(
        advisor_id=r.advisor_id,
        rank=r.rank,
        advisor=r.name,
        institution=r.org_name or "",
        computed=r.computed,
        adjustment=r.adjustment,
        score=r.score,
        institution_rank=r.institution_rank,
        reasons=tuple((adj.points, adj.reason) for adj in r.adjustments if adj.active),
        points={k: m.points for k, m in r.metrics.items()},
    )


def from_view(
    view: assessments.AssessmentView,
    target: Decimal,
    trend: Trend | None = None,
    *,
    below: list[assessments.ViewRow] | None = None,
    rows_total: int | None = None,
    below_total: int | None = None,
    issuer: str | None = None,
) -> Notice:
    """The notice of an assessment view (whatever the caller may see of it). ``below`` and
    the totals default to what the view's rows say (every row loaded); ``issuer`` to
    :func:`notice_issuer` without configuration."""
    a = view.assessment
    rows = tuple(_notice_row(r) for r in view.rows)
    if below is None:
        low = sorted((r for r in rows if r.score < target), key=lambda r: (r.score, r.advisor))
    else:
        low = [_notice_row(r) for r in below]
    institutions = tuple(
        NoticeInstitution(
            org_id=i.org_id,
            rank=i.rank,
            name=i.name,
            advisors=i.advisors,
            total=i.total,
            average=i.average,
        )
        for i in view.institutions
    )
    return Notice(
        period=view.period.key,
        kind=view.period.kind,
        status=a.status,
        starts_on=view.period.first_day,
        ends_on=view.period.last_day,
        rubric_version=view.rubric_number,
        compiled_at=a.compiled_at,
        published_at=a.published_at,
        target=target,
        metrics=_metric_labels(view),
        rows=rows,
        institutions=institutions,
        trend=trend or Trend((), ()),
        below=tuple(low),
        rows_total=len(rows) if rows_total is None else rows_total,
        below_total=len(low) if below_total is None else below_total,
        issuer=notice_issuer() if issuer is None else issuer,
        document_number=a.notice_number if a.status == "published" else None,
        issued_on=local(a.published_at).date() if a.published_at else clock.today(),
        in_progress=view.in_progress,
        period_open=view.period_open,
    )


def build(actor, period_key: str, target: Decimal, issuer: str | None = None) -> Notice:
    """The whole notice of a period as ``actor`` may see it, every advisor (for the .xlsx and
    the PDF), with the institution trend. NotFound, Forbidden as the service's."""
    view = assessments.get_view(actor, period_key)
    return from_view(view, target, institution_trend(view), issuer=issuer)


def build_summary(
    actor, period_key: str, target: Decimal, limit: int | None = None, issuer: str | None = None
) -> Notice:
    """The notice for the printable page, in a bounded number of queries whatever the number
    of advisors: the first ``limit`` advisors of the ranking and the ``limit`` lowest below
    the target (with how many there are in all), every institution, the trend. ``limit``
    defaults to :data:`NOTICE_ROWS`."""
    limit = NOTICE_ROWS if limit is None else limit
    page = read(
        actor,
        period_key,
        limit=limit,
        with_metrics=False,
        with_adjustments=False,
        with_comments=False,  # the notice shows none
    )
    below, below_total = read_below(page.view, target, limit, with_adjustments=False)
    _attach_adjustments(page.view.assessment.id, [*page.view.rows, *below])
    return from_view(
        page.view,
        target,
        institution_trend(page.view),
        below=below,
        rows_total=page.total,
        below_total=below_total,
        issuer=issuer,
    )


# ------------------------------------------------------------------ bounded reading
# ``assessments.get_view`` loads every row a caller may see: right for the downloads, too much
# for a page when a city ranks thousands of advisors. These read one page of the ranking (and
# the distribution as an aggregate) in a fixed number of queries, with the service's own
# scope rule (``period_head`` and ``row_scope``), and build the same ``AssessmentView``.


# Built once: an alias is costly to construct, and a statement using the same one caches.
_AUTHOR, _WITHDRAWER = aliased(User), aliased(User)


@dataclass
class RankingPage:
    view: assessments.AssessmentView  # ``rows``: this page's only
    total: int  # rows the caller may see in all
    offset: int
    limit: int | None

    @property
    def next_offset(self) -> int | None:
        if self.limit is None or self.offset + self.limit >= self.total:
            return None
        return self.offset + self.limit

    @property
    def previous_offset(self) -> int | None:
        if self.offset <= 0 or self.limit is None:
            return None
        return max(self.offset - self.limit, 0)


def _view_rows(stmt, *, with_metrics: bool = True) -> tuple[list[assessments.ViewRow], int | None]:
    """The rows ``stmt`` selects (``assessments.view_row_columns(with_metrics)``, plus a last
    column ``total`` when counted in the same statement with ``count(*) OVER ()``), with their
    stored metrics unless not ``with_metrics``; and that total, None when not counted or no row
    came back. The adjustments: :func:`_attach_adjustments`."""
    rows, total = [], None
    # Plain columns, in view_row_columns' order: executed on the session's connection without the
    # ORM's row handling, and unpacked by position (a page reads hundreds of rows).
    result = db.session.connection().execute(stmt)
    counted = "total" in result.keys()
    for values in result:
        metrics = assessments.metric_values(values[0]) if with_metrics else {}
        (aid, org_id, computed, adjustment, score, rank, institution_rank) = values[
            with_metrics : with_metrics + 7
        ]
        username, display_name, org_code, org_name = values[with_metrics + 7 : with_metrics + 11]
        rows.append(
            assessments.ViewRow(
                advisor_id=aid,
                username=username,
                name=display_name,
                org_id=org_id,
                org_code=org_code,
                org_name=org_name,
                computed=computed,
                adjustment=adjustment,
                score=score,
                rank=rank,
                institution_rank=institution_rank,
                metrics=metrics,
            )
        )
        if counted and total is None:
            total = values[-1]
    return rows, total


def _attach_adjustments(assessment_id: int, rows: list[assessments.ViewRow]) -> None:
    """Each row's adjustments (one query, for these advisors only; an advisor may appear in
    more than one of the rows)."""
    by_advisor: dict[int, list[assessments.ViewRow]] = {}
    for r in rows:
        by_advisor.setdefault(r.advisor_id, []).append(r)
    if not by_advisor:
        return
    author, withdrawer = _AUTHOR, _WITHDRAWER
    for adj, by, withdrawn_by in db.session.execute(
        select(AssessmentAdjustment, author.display_name, withdrawer.display_name)
        .join(author, author.id == AssessmentAdjustment.created_by_id)
        .outerjoin(withdrawer, withdrawer.id == AssessmentAdjustment.withdrawn_by_id)
        .where(
            AssessmentAdjustment.assessment_id == assessment_id,
            among(AssessmentAdjustment.advisor_id, list(by_advisor)),
        )
        .order_by(AssessmentAdjustment.created_at, AssessmentAdjustment.id)
    ):
        line = assessments.adjustment_line(adj, by, withdrawn_by)
        for r in by_advisor[adj.advisor_id]:
            r.adjustments.append(line)


def _counted(stmt, *where):
    """``stmt`` with how many rows match ``where`` (its rows before LIMIT/OFFSET) as a last
    column ``total``: an uncorrelated scalar subquery, evaluated once, so the page and the
    count are one statement without a window over the whole (wide) result."""
    count = select(func.count()).select_from(AssessmentRow).where(*where).correlate(None)
    return stmt.add_columns(count.scalar_subquery().label("total"))


def _ranked(assessment_id: int, scope, with_metrics: bool = False):
    return (
        select(*assessments.view_row_columns(with_metrics))
        .join(User, User.id == AssessmentRow.advisor_id)
        .outerjoin(Organisation, Organisation.id == AssessmentRow.org_id)
        .where(AssessmentRow.assessment_id == assessment_id, scope)
    )


def read(
    actor,
    period_key: str,
    *,
    offset: int = 0,
    limit: int | None = PAGE_SIZE,
    advisor_id: int | None = None,
    with_metrics: bool = True,
    with_adjustments: bool = True,
    with_comments: bool = True,
) -> RankingPage:
    """One page of the period's ranking as ``actor`` may see it (``limit`` None: every row;
    ``advisor_id``: that advisor's row only), with every institution line the caller may see
    and, for the office roles, the comments (all of them; ``advisor_id``: those on that
    advisor; not ``with_comments``: none). At most seven queries (the page's rows and how many
    there are in all in one). NotFound, Forbidden as :func:`assessments.get_view`."""
    period, assessment, rubric = assessments.period_head(actor, period_key)
    scope = assessments.row_scope(actor, assessment)
    sees_all = actor.role in assessments.VIEW_ALL_ROLES
    aid = assessment.id
    offset = max(offset, 0)
    stmt = _ranked(aid, scope, with_metrics).order_by(AssessmentRow.rank, User.username, User.id)
    if advisor_id is not None:
        total = _count(aid, scope)
        if not sees_all and not total:
            raise NotFound(_("The page or record was not found."))
        rows, _n = _view_rows(
            stmt.where(AssessmentRow.advisor_id == advisor_id), with_metrics=with_metrics
        )
    else:
        stmt = _counted(stmt, AssessmentRow.assessment_id == aid, scope).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        rows, total = _view_rows(stmt, with_metrics=with_metrics)
        if total is None:  # no row on this page: none at all, or an offset past the end
            total = _count(aid, scope) if offset else 0
        if not sees_all and not total:
            raise NotFound(_("The page or record was not found."))
    if with_adjustments:
        _attach_adjustments(aid, rows)

    institutions = assessments.view_institutions(aid, actor, sees_all)
    with_comments = sees_all and with_comments
    comments = assessments.view_comments(aid, advisor_id) if with_comments else []
    view = assessments.AssessmentView(
        assessment=assessment,
        period=period,
        rubric_number=rubric.number,
        spec=assessments.rubric_spec(rubric),
        rows=rows,
        institutions=institutions,
        comments=comments,
        sees_all=sees_all,
    )
    return RankingPage(view=view, total=total, offset=offset, limit=limit)


def _count(assessment_id: int, scope) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(AssessmentRow)
        .where(AssessmentRow.assessment_id == assessment_id, scope)
    )


def _scope_of(view: assessments.AssessmentView, actor=None):
    """The row scope of a view already read (the caller passed the service's checks)."""
    if view.sees_all or actor is None:
        return true()
    return assessments.row_scope(actor, view.assessment)


def read_below(
    view: assessments.AssessmentView,
    target: Decimal,
    limit: int,
    actor=None,
    *,
    with_adjustments: bool = True,
) -> tuple[list[assessments.ViewRow], int]:
    """The ``limit`` lowest final scores under ``target`` (lowest first) and how many there
    are in all (one query, plus one for their adjustments unless not ``with_adjustments``)."""
    aid = view.assessment.id
    scope, under = _scope_of(view, actor), AssessmentRow.score < target
    # Lowest score first is the ranking read from its end: the rank grows as the score falls
    # (equal scores share one), so the (assessment, rank) index gives the order.
    stmt = (
        _counted(_ranked(aid, scope), AssessmentRow.assessment_id == aid, scope, under)
        .where(under)
        .order_by(AssessmentRow.rank.desc(), User.display_name, User.id)
        .limit(limit)
    )
    rows, total = _view_rows(stmt, with_metrics=False)
    if with_adjustments:
        _attach_adjustments(aid, rows)
    return rows, total or 0


def score_bands(view: assessments.AssessmentView, actor=None, bands: int = BANDS) -> list[int]:
    """Advisors per band of ``100 / bands`` points of the final score over every row the
    caller may see (below 0 in the first band, 100 and over in the last), one grouped query.
    The same bins as :func:`advisors.charts.histogram` over 0-100."""
    width = 10000 // bands  # hundredths of a point: the column's stored integers
    hundredths = type_coerce(AssessmentRow.score, BigInteger)
    band = case(
        *[(hundredths < width * (i + 1), i) for i in range(bands - 1)], else_=bands - 1
    ).label("band")
    counts = [0] * bands
    for index, n in db.session.execute(
        select(band, func.count())
        .where(AssessmentRow.assessment_id == view.assessment.id, _scope_of(view, actor))
        .group_by(band)
    ):
        counts[int(index)] = n
    return counts


def signed(points: Decimal) -> str:
    """Points with their sign, no trailing zeros: ``+2``, ``-1.5``."""
    text = format(points.normalize(), "f") if points else "0"
    return f"+{text}" if points > 0 else text


# ------------------------------------------------------------------ trends
def _recent_ids(assessment: Assessment, published_only: bool) -> list[tuple[int, str]]:
    """(id, period) of up to TREND_PERIODS assessments of the same kind ending with this one:
    the published ones, and this one whatever its status (unless ``published_only``); oldest
    first."""
    cond = Assessment.status == "published"
    if not published_only:
        cond = cond | (Assessment.id == assessment.id)
    found = db.session.execute(
        select(Assessment.id, Assessment.period)
        .where(
            Assessment.kind == assessment.kind,
            Assessment.starts_on <= assessment.starts_on,
            cond,
        )
        .order_by(Assessment.starts_on.desc())
        .limit(TREND_PERIODS)
    ).all()
    return [(i, p) for i, p in reversed(found)]


def institution_trend(view: assessments.AssessmentView) -> Trend:
    """Each institution of the view: its average score over the recent periods of the same
    kind (one query: the recent periods, each joined to those institutions' lines)."""
    assessment = view.assessment
    org_ids = [i.org_id for i in view.institutions]
    cond = Assessment.status == "published"
    if view.sees_all:
        cond = cond | (Assessment.id == assessment.id)
    recent = (
        select(Assessment.id, Assessment.period, Assessment.starts_on)
        .where(
            Assessment.kind == assessment.kind,
            Assessment.starts_on <= assessment.starts_on,
            cond,
        )
        .order_by(Assessment.starts_on.desc())
        .limit(TREND_PERIODS)
        .subquery()
    )
    on = AssessmentInstitution.assessment_id == recent.c.id
    on = and_(on, AssessmentInstitution.org_id.in_(org_ids)) if org_ids else and_(on, false())
    periods: dict[int, str] = {}
    averages: dict[tuple[int, int], Decimal] = {}
    for aid, period, org_id, average in db.session.execute(
        select(
            recent.c.id,
            recent.c.period,
            AssessmentInstitution.org_id,
            AssessmentInstitution.average,
        )
        .select_from(recent)
        .outerjoin(AssessmentInstitution, on)
        .order_by(recent.c.starts_on)
    ):
        periods[aid] = period
        if org_id is not None:
            averages[(aid, org_id)] = average
    labels = tuple(periods.values())
    if not periods or not org_ids:
        return Trend(labels, ())
    return Trend(
        labels,
        tuple(
            (i.name, tuple(averages.get((aid, i.org_id)) for aid in periods))
            for i in view.institutions
        ),
    )


def advisor_trend(actor, view: assessments.AssessmentView, advisor_id: int) -> Trend:
    """One advisor's final score over the recent periods of the same kind (the view's period
    included), as ``actor`` may see it: office roles drafts too; an advisor their own published
    scores; a liaison the published scores the advisor earned under its institution (two
    queries)."""
    recent = _recent_ids(view.assessment, published_only=not view.sees_all)
    row = view.row_for(advisor_id)
    if not recent or row is None:
        return Trend(tuple(p for _i, p in recent), ())
    stmt = select(AssessmentRow.assessment_id, AssessmentRow.score).where(
        AssessmentRow.assessment_id.in_([aid for aid, _p in recent]),
        AssessmentRow.advisor_id == advisor_id,
    )
    if not view.sees_all:
        if actor.role == "advisor" and actor.id == advisor_id:
            pass
        elif actor.role == "liaison" and actor.org_id is not None:
            stmt = stmt.where(AssessmentRow.org_id == actor.org_id)
        else:
            return Trend(tuple(p for _i, p in recent), ())
    index = {aid: n for n, (aid, _p) in enumerate(recent)}
    values: list[Decimal | None] = [None] * len(recent)
    for aid, score in db.session.execute(stmt):
        values[index[aid]] = score
    return Trend(tuple(p for _i, p in recent), ((row.name, tuple(values)),))


# ------------------------------------------------------------------ rubric history
@dataclass(frozen=True)
class RubricLine:
    id: int
    number: int
    created_at: datetime
    created_by: str | None
    note: str | None


def rubric_history() -> list[RubricLine]:
    """Every rubric version, newest first, with the name of whoever saved it (one query)."""
    return [
        RubricLine(id=i, number=n, created_at=at, created_by=by, note=note)
        for i, n, at, by, note in db.session.execute(
            select(
                RubricVersion.id,
                RubricVersion.number,
                RubricVersion.created_at,
                User.display_name,
                RubricVersion.note,
            )
            .outerjoin(User, User.id == RubricVersion.created_by_id)
            .order_by(RubricVersion.number.desc())
        )
    ]


def rubric_version(rubric_id: int) -> RubricVersion:
    """One rubric version by id (NotFound otherwise)."""
    version = db.session.get(RubricVersion, rubric_id)
    if version is None:
        raise NotFound(_("The page or record was not found."))
    return version


# ------------------------------------------------------------------ .xlsx
def _status_label(status: str) -> str:
    return _("Published") if status == "published" else _("Draft")


def _d(value: Decimal | None) -> Decimal | None:
    """A points figure for a cell (exact, as a number)."""
    return value


def number_line(notice: Notice) -> str:
    """The document number, or what stands in its place on a draft."""
    return notice.document_number or _("Draft: the document number is given when published")


def progress_text(notice: Notice) -> str:
    """The warning for a notice compiled before its period ended ('' when it is final)."""
    if not notice.in_progress:
        return ""
    if notice.period_open:
        return _(
            "The period is not over: these figures will change until it ends on %(end)s and "
            "it is compiled again.",
            end=notice.ends_on.isoformat(),
        )
    return _(
        "Compiled before the period ended (%(end)s): compile it again for the final figures.",
        end=notice.ends_on.isoformat(),
    )


def _text_width(value) -> int:
    """Display width of a cell's text: a CJK (wide) character counts two."""
    if value is None:
        return 0
    if isinstance(value, Decimal):
        return len(f"{value:.2f}")
    text = str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _sheet(wb, name: str, notice: Notice, headers, rows, *, freeze: str = "A4", number_from=0):
    """One sheet of the notice workbook: the notice's title (merged across, centred), its
    number, issuer and date, the header row, the rows; column widths from the contents; the
    header frozen; printed on A4 (landscape when wide), fitted to the width, the header row
    repeated on every page and the page number in the footer. ``number_from``: the first
    column (0-based) holding points, shown with two decimals."""
    from openpyxl.cell import WriteOnlyCell

    ws = wb.create_sheet(title=name[:31])
    rows = [[safe_cell(v) for v in row] for row in rows]
    _sheet_layout(ws, headers, rows, freeze)
    _sheet_head(ws, notice, headers)
    for row in rows:
        if number_from:
            cells = []
            for i, value in enumerate(row):
                if i >= number_from and isinstance(value, Decimal):
                    cell = WriteOnlyCell(ws, value=value)
                    cell.number_format = "0.00"
                    cells.append(cell)
                else:
                    cells.append(value)
            ws.append(cells)
        else:
            ws.append(row)
    return ws


def _sheet_layout(ws, headers, rows, freeze: str) -> None:
    """Column widths from the contents, the title rows merged, the header frozen, the print
    setup (A4, fitted to the width, header repeated, page numbers)."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties
    from openpyxl.worksheet.worksheet import Worksheet

    columns = max(len(headers), 2)
    widths = [_text_width(h) for h in headers] + [0] * (columns - len(headers))
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _text_width(value))
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 6), 48)
    last = get_column_letter(columns)
    ws.merged_cells.add(f"A1:{last}1")
    ws.merged_cells.add(f"A2:{last}2")
    ws.freeze_panes = freeze
    ws.print_title_rows = "3:3"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if sum(widths) > 100 else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as needed
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_options.horizontalCentered = True
    ws.oddFooter.center.text = _("Page &P of &N")
    ws.oddFooter.center.size = 9
    ws.evenFooter.center.text = ws.oddFooter.center.text
    ws.row_dimensions[1].height = 30
    ws.row_dimensions[2].height = 18


def _sheet_head(ws, notice: Notice, headers) -> None:
    """The title row, the particulars row and the header row."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill

    title = WriteOnlyCell(ws, value=safe_cell(notice.title))
    title.font = Font(bold=True, size=16)
    title.alignment = Alignment(horizontal="center", vertical="center")
    ws.append([title])
    parts = [number_line(notice), notice.issuer, notice.date_text, _status_label(notice.status)]
    if notice.in_progress:
        parts.append(progress_text(notice))
    sub = WriteOnlyCell(ws, value=safe_cell(" · ".join(p for p in parts if p)))
    sub.alignment = Alignment(horizontal="center", vertical="center")
    ws.append([sub])
    fill = PatternFill("solid", fgColor="E9ECEF")
    header_cells = []
    for text in headers:
        cell = WriteOnlyCell(ws, value=safe_cell(text))
        cell.font = Font(bold=True)
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        header_cells.append(cell)
    ws.append(header_cells)


def _na() -> str:
    return _("not applicable")


def _ranking_sheet(notice: Notice, sep: str, left: str, right: str) -> list[list]:
    """The ranking sheet's rows: every metric's points ("not applicable" where it did not
    apply), the adjustment reasons joined."""
    na = _na()

    def metric_cell(r: NoticeRow, key: str):
        if key not in r.points:
            return None
        value = r.points[key]
        return na if value is None else _d(value)

    return [
        [
            r.rank,
            r.advisor,
            r.institution,
            _d(r.computed),
            _d(r.adjustment),
            sep.join(f"{why}{left}{signed(points)}{right}" for points, why in r.reasons),
            _d(r.score),
            r.institution_rank,
            *[metric_cell(r, key) for key, _label in notice.metrics],
        ]
        for r in notice.rows
    ]


def _about_sheet(notice: Notice) -> list[list]:
    """The notice's particulars, one per row."""
    about = [
        [_("Issuer"), notice.issuer],
        [_("Document number"), number_line(notice)],
        [_("Date"), notice.date_text],
        [_("Period"), notice.period],
        [_("From"), notice.starts_on],
        [_("To"), notice.ends_on],
        [_("Status"), _status_label(notice.status)],
        [_("Rubric version"), notice.rubric_version],
        [_("Compiled"), fmt_datetime(notice.compiled_at)],
        [_("Published"), fmt_datetime(notice.published_at) if notice.published_at else ""],
        [_("Target score"), notice.target],
        [_("Advisors"), len(notice.rows)],
    ]
    if notice.in_progress:
        about.append([_("Figures"), progress_text(notice)])
    return about


def xlsx_bytes(notice: Notice) -> bytes:
    """The notice as a workbook: the ranking (with every metric's points; "not applicable"
    where a metric did not apply), the institutions, those below target, and the notice's
    particulars — each sheet under the notice's title, number and date, ready to print. Names
    are formula-escaped."""
    from openpyxl import Workbook

    ranking_headers = [
        _("Rank"),
        _("Advisor"),
        _("Institution"),
        _("Computed"),
        _("Adjustment"),
        _("Adjustment reasons"),
        _("Final score"),
        _("Rank in institution"),
        *[label for _key, label in notice.metrics],
    ]
    chinese = str(get_locale() or "zh_CN").startswith("zh")
    sep, left, right = ("；", "（", "）") if chinese else ("; ", " (", ")")
    ranking = _ranking_sheet(notice, sep, left, right)
    institutions = [
        [i.rank, i.name, i.advisors, _d(i.total), _d(i.average)] for i in notice.institutions
    ]
    below = [
        [_("Institution"), i.name, _d(i.average), _d(gap)] for i, gap in notice.institutions_below
    ] + [
        [
            _("Advisor"),
            f"{r.advisor}{left}{r.institution}{right}" if r.institution else r.advisor,
            _d(r.score),
            _d(gap),
        ]
        for r, gap in notice.advisors_below
    ]
    about = _about_sheet(notice)
    wb = Workbook(write_only=True)
    _sheet(wb, _("Ranking"), notice, ranking_headers, ranking, freeze="C4", number_from=3)
    _sheet(
        wb,
        _("Institutions"),
        notice,
        [_("Rank"), _("Institution"), _("Advisors"), _("Total"), _("Average")],
        institutions,
        number_from=3,
    )
    _sheet(
        wb,
        _("Below target"),
        notice,
        [_("Type"), _("Name"), _("Score"), _("Gap (points)")],
        below,
        number_from=2,
    )
    _sheet(wb, _("Notice"), notice, [_("Item"), _("Value")], about)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ------------------------------------------------------------------ PDF
class NoticeFontMissing(DomainError):
    """No CJK TrueType font to embed in the PDF (the message says what to install or set)."""

    status = 503
    code = "font_missing"


_REGISTERED: dict[tuple[str, int], str] = {}


def font_file(config: dict | None = None) -> tuple[str, int]:
    """(path, face index) of the CJK TrueType font the PDF embeds: ``NOTICE_FONT_PATH``
    ("/path/font.ttf" or "/path/fonts.ttc#1") when set, else the first of
    :data:`FONT_CANDIDATES` installed. :class:`NoticeFontMissing` when there is none."""
    configured = str((config or {}).get("NOTICE_FONT_PATH") or "").strip()
    if configured:
        path, _sep, index = configured.partition("#")
        face = int(index) if index.strip().isdigit() else 0
        if not os.path.isfile(path):
            raise NoticeFontMissing(
                _(
                    "NOTICE_FONT_PATH names %(path)s, which is not a file: set it to a TrueType "
                    "font (.ttf, or .ttc with #index) with Chinese characters.",
                    path=path,
                )
            )
        return path, face
    for path, face in FONT_CANDIDATES:
        if os.path.isfile(path):
            return path, face
    raise NoticeFontMissing(
        _(
            "The PDF needs a Chinese TrueType font to embed, and none is installed: install "
            "Debian's fonts-wqy-zenhei (apt-get install fonts-wqy-zenhei), or set "
            "NOTICE_FONT_PATH to a .ttf or .ttc font file."
        )
    )


def register_font(config: dict | None = None) -> str:
    """The reportlab name of the embedded CJK font (registered once per process)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    path, face = font_file(config)
    name = _REGISTERED.get((path, face))
    if name is None:
        name = f"{CJK_FONT}{len(_REGISTERED) + 1}"
        try:
            pdfmetrics.registerFont(TTFont(name, path, subfontIndex=face))
        except (TTFError, OSError, ValueError) as exc:
            raise NoticeFontMissing(
                _(
                    "The font %(path)s cannot be embedded (%(error)s): use a TrueType font "
                    "(not PostScript outlines) with Chinese characters.",
                    path=path,
                    error=exc,
                )
            ) from None
        _REGISTERED[(path, face)] = name
    return name


def _p(text: object, style) -> object:
    from reportlab.platypus import Paragraph

    lines = ("" if text is None else str(text)).split("\n")
    return Paragraph("<br/>".join(xml_escape(line) for line in lines), style)


def _pts(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


RED = "#C00000"  # the issuer and the rule under the number are red (红头)


def pdf_bytes(notice: Notice, config: dict | None = None) -> bytes:
    """The notice as an A4 PDF laid out as an official notice: the issuer in red, centred, the
    document number under it, a red rule, the title centred; the salutation and the opening
    line; who is below target with the gap, the institution table and the advisors' ranking;
    at the end, on the right, the issuer and the date (落款). The CJK font is embedded (a subset:
    :func:`register_font`), the pages numbered "— 1 —" at the foot (odd pages right, even pages
    left, as GB/T 9704 places them)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, SimpleDocTemplate, Spacer

    kit = _PdfKit(register_font(config))
    story = _pdf_head(notice, kit) + _pdf_below(notice, kit) + _pdf_tables(notice, kit)
    # 落款: the issuer and the date, on the right, kept together at the end.
    story.append(
        KeepTogether(
            [
                Spacer(1, 12 * mm),
                _p(notice.issuer, kit.signature),
                _p(notice.date_text, kit.signature),
            ]
        )
    )

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=20 * mm,
        bottomMargin=20 * mm,
        title=notice.title,
        subject=notice.document_number or notice.period,
        author=notice.issuer,
        creator=_("Financial Advisor Team"),
        # Every font on the pages is the embedded one (reportlab would otherwise name its
        # standard Helvetica, which is never embedded, as each page's starting font).
        initialFontName=kit.font,
    )
    page_number = _page_numberer(kit.font)
    doc.build(story, onFirstPage=page_number, onLaterPages=page_number)
    return out.getvalue()


class _PdfKit:
    """The notice PDF's font, paragraph styles and tables."""

    def __init__(self, font: str):
        from reportlab.lib import colors
        from reportlab.lib.enums import TA_CENTER, TA_RIGHT
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.lib.units import mm

        self.font = font
        body = self.body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=17)
        self.small = ParagraphStyle("small", parent=body, fontSize=8, leading=10)
        self.issuer = ParagraphStyle(
            "issuer",
            parent=body,
            fontSize=24,
            leading=32,
            alignment=TA_CENTER,
            textColor=colors.HexColor(RED),
        )
        self.number = ParagraphStyle(
            "number", parent=body, fontSize=11, leading=16, alignment=TA_CENTER
        )
        self.heading = ParagraphStyle(
            "h1", parent=body, fontSize=17, leading=26, alignment=TA_CENTER, spaceBefore=6
        )
        self.h2 = ParagraphStyle(
            "h2", parent=body, fontSize=12, leading=18, spaceBefore=8, spaceAfter=4
        )
        self.signature = ParagraphStyle(
            "signature",
            parent=body,
            fontSize=11,
            leading=20,
            alignment=TA_RIGHT,
            rightIndent=8 * mm,
        )
        self.warning = ParagraphStyle("warning", parent=body, textColor=colors.HexColor(RED))

    def cell(self, value, width):
        """Plain text when it fits on one line (fast); a wrapping paragraph otherwise."""
        from reportlab.pdfbase.pdfmetrics import stringWidth

        text = "" if value is None else str(value)
        if "\n" not in text and stringWidth(text, self.font, 8) <= width - 6:
            return text
        return _p(text, self.small)

    def table(self, headers, rows, widths):
        from reportlab.lib import colors
        from reportlab.platypus import Table, TableStyle

        data = [[_p(h, self.small) for h in headers]] + [
            [self.cell(value, w) for value, w in zip(row, widths, strict=True)] for row in rows
        ]
        t = Table(data, colWidths=widths, repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("FONT", (0, 0), (-1, -1), self.font, 8),
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9ecef")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return t


def _pdf_head(notice: Notice, kit: _PdfKit) -> list:
    """The red issuer, the number, the red rule, the title; the draft and in-progress
    warnings; the salutation and the opening lines."""
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import HRFlowable, Spacer

    # Its own message, so the extractor sees it (a call nested in another one is not read).
    published = (
        _("; published %(at)s", at=fmt_datetime(notice.published_at)) if notice.published_at else ""
    )
    story = [
        _p(notice.issuer, kit.issuer),
        Spacer(1, 2 * mm),
        _p(number_line(notice), kit.number),
        HRFlowable(width="100%", thickness=1.5, color=colors.HexColor(RED), spaceBefore=2 * mm),
        Spacer(1, 4 * mm),
        _p(notice.title, kit.heading),
        Spacer(1, 4 * mm),
    ]
    if notice.status != "published":
        story.append(_p(_("DRAFT — not published; figures may still change."), kit.h2))
    if notice.in_progress:
        story.append(_p(progress_text(notice), kit.warning))
    story += [
        _p(_("To the financial institutions and the financial advisors:"), kit.body),
        _p(
            _(
                "The work of the financial advisors in %(period)s (%(start)s to %(end)s) has "
                "been assessed under rubric version %(version)s. The results are announced as "
                "follows.",
                period=period_label(notice.kind, notice.starts_on),
                start=notice.starts_on.isoformat(),
                end=notice.ends_on.isoformat(),
                version=notice.rubric_version,
            ),
            kit.body,
        ),
        _p(
            _(
                "Compiled %(compiled)s%(published)s. Target score: %(target)s points.",
                compiled=fmt_datetime(notice.compiled_at),
                published=published,
                target=notice.target,
            ),
            kit.small,
        ),
    ]
    return story


def _pdf_below(notice: Notice, kit: _PdfKit) -> list:
    """Who is below target, with the gap."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    story = [_p(_("Below target"), kit.h2)]
    if notice.institutions_below:
        story.append(
            kit.table(
                [_("Institution"), _("Average"), _("Gap (points)")],
                [[i.name, _pts(i.average), _pts(gap)] for i, gap in notice.institutions_below],
                [100 * mm, 35 * mm, 35 * mm],
            )
        )
        story.append(Spacer(1, 4 * mm))
    if notice.advisors_below:
        story.append(
            kit.table(
                [_("Advisor"), _("Institution"), _("Final score"), _("Gap (points)")],
                [
                    [r.advisor, r.institution, _pts(r.score), _pts(gap)]
                    for r, gap in notice.advisors_below
                ],
                [45 * mm, 75 * mm, 25 * mm, 25 * mm],
            )
        )
    if not notice.institutions_below and not notice.advisors_below:
        story.append(_p(_("Every institution and advisor reached the target."), kit.body))
    return story


def _pdf_tables(notice: Notice, kit: _PdfKit) -> list:
    """The institution table and the advisors' ranking."""
    from reportlab.lib.units import mm

    institutions = kit.table(
        [_("Rank"), _("Institution"), _("Advisors"), _("Total"), _("Average")],
        [
            [i.rank or "", i.name, i.advisors, _pts(i.total), _pts(i.average)]
            for i in notice.institutions
        ],
        [15 * mm, 85 * mm, 20 * mm, 25 * mm, 25 * mm],
    )
    ranking = kit.table(
        [
            _("Rank"),
            _("Advisor"),
            _("Institution"),
            _("Computed"),
            _("Adjustment"),
            _("Final score"),
            _("Rank in institution"),
        ],
        [
            [
                r.rank or "",
                r.advisor,
                r.institution,
                _pts(r.computed),
                _pts(r.adjustment)
                + "".join(f"\n{signed(points)}: {why}" for points, why in r.reasons),
                _pts(r.score),
                r.institution_rank or "",
            ]
            for r in notice.rows
        ],
        [12 * mm, 28 * mm, 40 * mm, 20 * mm, 32 * mm, 20 * mm, 18 * mm],
    )
    return [
        _p(_("Institutions"), kit.h2),
        institutions,
        _p(_("Advisors' ranking"), kit.h2),
        ranking,
    ]


def _page_numberer(font: str):
    """— 1 — at the foot: odd pages on the right, even pages on the left (GB/T 9704)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm

    def page_number(canvas, document):
        canvas.saveState()
        canvas.setFont(font, 10)
        text = f"— {document.page} —"
        y = 10 * mm
        if document.page % 2:
            canvas.drawRightString(A4[0] - 20 * mm, y, text)
        else:
            canvas.drawString(20 * mm, y, text)
        canvas.restoreState()

    return page_number
