"""Reviewing a draft — adjustments (with their reasons, within the rubric's bound), their
withdrawal, comments — and publishing it, which freezes it (:mod:`.ranking`) and gives the
notice its document number (文号)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from models import (
    Assessment,
    AssessmentAdjustment,
    AssessmentComment,
    AssessmentRow,
    RubricVersion,
    User,
    db,
    utcnow,
)

from ... import clock
from ... import periods as periods_module
from ...dbutil import chunks
from ...errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..firms import clean_text
from ..notifications import notify
from . import ranking
from .compiling import _rank
from .core import (
    COMMENT_MAX,
    COMMENT_ROLES,
    COMPILER_ROLES,
    MAX_ADJUSTMENT,
    REASON_MAX,
    _load,
    _lock,
    _lock_writers,
    not_compiled,
    parse_period,
)
from .raw import CENT
from .rubrics import _spec_of

DOC_NUMBER_MAX = 99999
NOTICE_LOCK_KEY = 1  # the notices' numbering (period keys are 200001 and up)


def _draft_for_change(actor: User | None, period: periods_module.Period, roles: Iterable[str]):
    if actor is not None and actor.role not in roles:
        raise Forbidden(_("Your role may not change assessments."))
    _lock(period)
    return ranking.draft_of(
        _load(period),
        missing=not_compiled(period),
        frozen=_(
            "The assessment for %(period)s is published and can no longer be changed.",
            period=period.key,
        ),
    )


def publish(
    actor: User | None,
    period_key: str,
    expected_version: int | None = None,
    doc_number: Any = None,
    doc_prefix: str | None = None,
) -> Assessment:
    """Publish a draft (the finance office; ``actor`` None: the command line). It is frozen from
    then on; the advisors assessed and their institutions' liaisons are notified.

    The notice gets its document number (文号) now, kept from then on: ``doc_number`` as the
    office's register gives it (a whole number from 1, unique in the year), or — left out —
    the next after the highest of the year's notices; the year is the year of publishing
    (Asia/Shanghai) and the text ``{doc_prefix}〔{year}〕{number}号`` (``doc_prefix`` None: the
    configured ``NOTICE_DOC_PREFIX``)."""
    period = parse_period(period_key)
    if actor is not None and actor.role not in COMPILER_ROLES:
        raise Forbidden(_("Only the finance office may publish assessments."))
    seq = _doc_number(doc_number)
    _lock(period)
    assessment = ranking.draft_of(
        _load(period),
        missing=not_compiled(period),
        frozen=_("The assessment for %(period)s is already published.", period=period.key),
    )
    ranking.check_version(
        assessment,
        expected_version,
        _("The assessment was recompiled or changed since you opened it; review it again."),
    )
    year = clock.today().year
    seq = _notice_seq(year, seq)
    ranking.mark_published(assessment, actor.id if actor is not None else None)
    assessment.notice_year = year
    assessment.notice_seq = seq
    if doc_prefix is None:
        doc_prefix = current_app.config.get("NOTICE_DOC_PREFIX", "")
    assessment.notice_number = notice_number_text(doc_prefix, year, seq)
    db.session.flush()
    _notify_published(assessment, period)
    return assessment


def _notice_seq(year: int, seq: int | None) -> int:
    """The notice's number in ``year``: ``seq`` when it is free, the next one when None —
    behind the numbering's lock, so two publishers never take the same."""
    _lock_writers(
        "UPDATE assessment SET compile_count = compile_count WHERE id = 0", {}, NOTICE_LOCK_KEY
    )
    taken = db.session.execute(
        select(Assessment.notice_seq, Assessment.period).where(Assessment.notice_year == year)
    ).all()
    used = dict(taken)
    if seq is None:
        return max(used, default=0) + 1
    if seq in used:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "doc_number": _(
                    "No. %(n)s of %(year)s is already the notice for %(period)s.",
                    n=seq,
                    year=year,
                    period=used[seq],
                )
            },
        )
    return seq


def _notify_published(assessment: Assessment, period: periods_module.Period) -> None:
    """The advisors assessed and the active liaisons of their institutions."""
    people = db.session.execute(
        select(AssessmentRow.advisor_id, AssessmentRow.org_id).where(
            AssessmentRow.assessment_id == assessment.id
        )
    ).all()
    recipients = {aid for aid, _org in people}
    org_ids = sorted({org for _aid, org in people if org is not None})
    for part in chunks(org_ids):
        recipients.update(
            db.session.execute(
                select(User.id).where(
                    User.role == "liaison", User.active.is_(True), User.org_id.in_(part)
                )
            ).scalars()
        )
    notify(recipients, "assessment_published", params={"period": period.key})


def _doc_number(raw: Any) -> int | None:
    """A document number as given (None: the next one), or ValidationFailed on ``doc_number``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    value = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        value = int(raw.strip()) if len(raw.strip()) <= 9 else None
    if value is None or not 1 <= value <= DOC_NUMBER_MAX:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "doc_number": _(
                    "Enter the document number as a whole number from 1 to %(max)s, or leave "
                    "it empty for the next one.",
                    max=DOC_NUMBER_MAX,
                )
            },
        )
    return value


def notice_number_text(prefix: str | None, year: int, seq: int) -> str:
    """The document number as written on a notice: 江金办〔2026〕12号 (the year in the
    hexagonal brackets 〔〕, never parentheses; no leading zeros)."""
    return f"{(prefix or '').strip()}〔{year}〕{seq}号"


def next_doc_number(year: int | None = None) -> int:
    """The number the next notice published this year (Asia/Shanghai) would get."""
    year = clock.today().year if year is None else year
    highest = db.session.scalar(
        select(func.max(Assessment.notice_seq)).where(Assessment.notice_year == year)
    )
    return (highest or 0) + 1


def _points(raw: Any) -> Decimal:
    if isinstance(raw, bool) or raw is None:
        raise ValueError
    if isinstance(raw, float):
        raw = repr(raw)
    value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    if not value.is_finite():
        raise ValueError
    return value


def adjustment_bound(assessment: Assessment) -> Decimal:
    """The most points adjustments may move a score in this assessment, either way: its
    rubric version's ``adjustment_bound``."""
    version = db.session.get(RubricVersion, assessment.rubric_id)
    return _spec_of(version).adjustment_bound if version is not None else MAX_ADJUSTMENT


def _fmt_points(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def advisor_id_by_username(username: str) -> int | None:
    """The id of the advisor with this username (whom the API's adjustment names), or None."""
    if not username.isprintable():  # (a NUL byte would not even reach a PostgreSQL comparison)
        return None
    return db.session.execute(
        select(User.id).where(User.username == username.strip(), User.role == "advisor")
    ).scalar_one_or_none()


def add_adjustment(
    actor: User, period_key: str, advisor_id: int, points: Any, reason: str | None
) -> AssessmentAdjustment:
    """An adjustment to one advisor's score in a draft (the finance office), with its reason:
    ``points`` not 0, at most two decimals, within the rubric's bound either way
    (``adjustment_bound``, 10 by default) — and so must be the sum of the advisor's
    adjustments with it (those not withdrawn). The row's score and the ranks follow at
    once."""
    period = parse_period(period_key)
    if actor is None or actor.role not in COMPILER_ROLES:
        raise Forbidden(_("Only the finance office may adjust scores."))
    assessment = _draft_for_change(actor, period, COMPILER_ROLES)
    bound = adjustment_bound(assessment)
    value, reason = _adjustment_input(points, reason, bound)
    if isinstance(advisor_id, bool) or not isinstance(advisor_id, int):
        raise NotFound(_("This advisor is not in the assessment."))
    _check_total(assessment.id, advisor_id, value, bound)
    adjustment = AssessmentAdjustment(
        assessment_id=assessment.id,
        advisor_id=advisor_id,
        points=value.quantize(CENT),
        reason=reason,
        created_at=utcnow(),
        created_by_id=actor.id,
    )
    db.session.add(adjustment)
    db.session.flush()
    _apply_adjustments(assessment.id, advisor_id)
    return adjustment


def _adjustment_input(points: Any, reason: str | None, bound: Decimal) -> tuple[Decimal, str]:
    """The points and the reason of an adjustment, checked (ValidationFailed per field)."""
    errors: dict[str, str] = {}
    try:
        value = _points(points)
    except (ValueError, TypeError, InvalidOperation):
        value = None
        errors["points"] = _("Enter the points as a number, such as 2 or -1.5.")
    if value is not None:
        if value == 0:
            errors["points"] = _("An adjustment of 0 points changes nothing.")
        elif not -bound <= value <= bound:
            errors["points"] = _(
                "Points: an adjustment is at most %(bound)s points either way (the rubric's "
                "bound, from -%(bound)s to +%(bound)s).",
                bound=_fmt_points(bound),
            )
        elif value != value.quantize(CENT):
            errors["points"] = _("At most two decimal places.")
    reason = clean_text(reason) if isinstance(reason, str) else ""  # without control characters
    if not reason:
        errors["reason"] = _("Give the reason for the adjustment.")
    elif len(reason) > REASON_MAX:
        errors["reason"] = _("At most %(n)s characters.", n=REASON_MAX)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return value, reason


def _check_total(assessment_id: int, advisor_id: int, value: Decimal, bound: Decimal) -> None:
    """NotFound when the advisor has no row; ValidationFailed when the advisor's adjustments
    (not withdrawn) with ``value`` would add up to more than ``bound`` either way."""
    row_exists = db.session.execute(
        select(AssessmentRow.id).where(
            AssessmentRow.assessment_id == assessment_id, AssessmentRow.advisor_id == advisor_id
        )
    ).first()
    if row_exists is None:
        raise NotFound(_("This advisor is not in the assessment."))
    before = db.session.scalar(
        select(func.coalesce(func.sum(AssessmentAdjustment.points), 0)).where(
            AssessmentAdjustment.assessment_id == assessment_id,
            AssessmentAdjustment.advisor_id == advisor_id,
            AssessmentAdjustment.withdrawn_at.is_(None),
        )
    )
    after = Decimal(before or 0) + value.quantize(CENT)
    if not -bound <= after <= bound:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {
                "points": _(
                    "Points: the adjustments to one advisor add up to at most %(bound)s points "
                    "either way (the rubric's bound); with this one they would come to "
                    "%(total)s.",
                    bound=_fmt_points(bound),
                    total=_fmt_points(after),
                )
            },
        )


def _apply_adjustments(assessment_id: int, advisor_id: int) -> None:
    """The advisor's row takes the sum of their adjustments not withdrawn; the ranks follow."""
    total = (
        select(func.coalesce(func.sum(AssessmentAdjustment.points), 0))
        .where(
            AssessmentAdjustment.assessment_id == assessment_id,
            AssessmentAdjustment.advisor_id == advisor_id,
            AssessmentAdjustment.withdrawn_at.is_(None),
        )
        .scalar_subquery()
    )
    db.session.execute(
        AssessmentRow.__table__.update()
        .where(
            AssessmentRow.__table__.c.assessment_id == assessment_id,
            AssessmentRow.__table__.c.advisor_id == advisor_id,
        )
        .values(
            adjustment=total,
            score=AssessmentRow.__table__.c.computed + total,
        )
    )
    _rank(assessment_id)


def withdraw_adjustment(actor: User, period_key: str, adjustment_id: Any) -> AssessmentAdjustment:
    """Withdraw an adjustment while the period is a draft (the finance office): it is kept,
    marked with who withdrew it and when (audited), and no longer counts; the advisor's score
    and the ranks follow at once. NotFound for an adjustment not in this period, Conflict once
    the period is published or when it was already withdrawn."""
    period = parse_period(period_key)
    if actor is None or actor.role not in COMPILER_ROLES:
        raise Forbidden(_("Only the finance office may withdraw adjustments."))
    assessment = _draft_for_change(actor, period, COMPILER_ROLES)
    adjustment = None
    if isinstance(adjustment_id, int) and not isinstance(adjustment_id, bool):
        adjustment = db.session.execute(
            select(AssessmentAdjustment).where(
                AssessmentAdjustment.id == adjustment_id,
                AssessmentAdjustment.assessment_id == assessment.id,
            )
        ).scalar_one_or_none()
    if adjustment is None:
        raise NotFound(_("This adjustment is not in the assessment."))
    if adjustment.withdrawn_at is not None:
        raise Conflict(_("This adjustment was already withdrawn."))
    adjustment.withdrawn_at = utcnow()
    adjustment.withdrawn_by_id = actor.id
    db.session.flush()
    _apply_adjustments(assessment.id, adjustment.advisor_id)
    return adjustment


def add_comment(
    actor: User, period_key: str, body: str | None, advisor_id: int | None = None
) -> AssessmentComment:
    """A comment on a draft (the central bank or the finance office), on the whole period or
    on one advisor's row."""
    period = parse_period(period_key)
    errors: dict[str, str] = {}
    body = clean_text(body) if isinstance(body, str) else ""  # without control characters
    if not body:
        errors["body"] = _("Write the comment.")
    elif len(body) > COMMENT_MAX:
        errors["body"] = _("At most %(n)s characters.", n=COMMENT_MAX)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    if actor is None or actor.role not in COMMENT_ROLES:
        raise Forbidden(_("Your role may not comment on assessments."))
    assessment = ranking.draft_of(
        _load(period),
        missing=not_compiled(period),
        frozen=_(
            "Comments are closed: the assessment for %(period)s is published.", period=period.key
        ),
    )
    if advisor_id is not None:
        _check_commented_row(assessment.id, advisor_id)
    comment = AssessmentComment(
        assessment_id=assessment.id,
        advisor_id=advisor_id,
        author_id=actor.id,
        body=body,
        created_at=utcnow(),
    )
    db.session.add(comment)
    db.session.flush()
    return comment


def _check_commented_row(assessment_id: int, advisor_id: Any) -> None:
    row = None
    if isinstance(advisor_id, int) and not isinstance(advisor_id, bool):
        row = db.session.execute(
            select(AssessmentRow.id).where(
                AssessmentRow.assessment_id == assessment_id,
                AssessmentRow.advisor_id == advisor_id,
            )
        ).first()
    if row is None:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"advisor_id": _("This advisor is not in the assessment.")},
        )
