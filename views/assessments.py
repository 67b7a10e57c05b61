"""Assessment pages: the periods, compiling one, the ranking with its review (adjustments,
comments, recompile, publish), an advisor's drill-down, the ranking notice (printable page,
.xlsx, PDF) and the rubric editor.

Routes are thin: parse -> call :mod:`advisors.services.assessments` -> render or redirect (the
request's unit of work, ``views/_uow.py``, commits once). Who sees what is the service's rule
(office roles every period, drafts too; an advisor their own published row; a liaison its
institution's rows); bureaus are refused here.
"""

from __future__ import annotations

from decimal import Decimal
from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)

from advisors import charts, clock
from advisors import periods as periods_module
from advisors.errors import Conflict, Forbidden, NotFound, ValidationFailed
from advisors.i18n import fmt_wan
from advisors.labels import labels
from advisors.params import MAX_ID, parse_id, parse_int
from advisors.permissions import allow, allow_blueprint
from advisors.scoring import (
    DEFAULT_RUBRIC,
    METRIC_KEYS,
    ZERO_POINTS,
    RubricSpec,
    load_rubric,
)
from advisors.scoring import rules as scoring_rules
from advisors.services import assessments as svc
from advisors.services import notice as notice_service
from advisors.services import saving
from advisors.xlsx import XLSX_MIMETYPE

from ._forms import form_version
from ._http import form_view

bp = Blueprint("assessments", __name__, url_prefix="/assessments")
allow_blueprint(bp, "admin", "finance_office", "pboc", "advisor", "liaison")

OFFICE = ("admin", "finance_office", "pboc")
PERIOD_MAX = 16
# The parameters each registered rule takes, as simple fields of the rubric editor.
RULE_PARAMS = {
    "target_v1": ("target", "floor"),
    "ratio_target_v1": ("target", "floor"),
    "tiers_v1": ("tiers",),
    "relative_best_v1": (),
}
TIER_SEPARATORS = (",", "，", ";", "；", "\n", "、")


# ------------------------------------------------------------------ forms
class CompileForm(FlaskForm):
    period = StringField(
        _l("Period"),
        render_kw={"maxlength": PERIOD_MAX, "placeholder": "2026-07", "autocomplete": "off"},
    )


class ActionForm(FlaskForm):
    """Recompile / publish: the version of the assessment the page showed."""

    version = HiddenField()


class PublishForm(ActionForm):
    """Publish, with the notice's document number from the office's register (empty: the next
    number of the year)."""

    doc_number = StringField(
        _l("Document number"),
        render_kw={"inputmode": "numeric", "maxlength": 5, "autocomplete": "off"},
    )


class WithdrawForm(FlaskForm):
    origin = HiddenField()


class AdjustForm(FlaskForm):
    advisor = SelectField(_l("Advisor"), validate_choice=False)
    points = StringField(_l("Points (+ or -)"), render_kw={"inputmode": "decimal", "maxlength": 10})
    reason = TextAreaField(
        _l("Reason (shown beside the score)"),
        render_kw={"rows": 2, "maxlength": svc.REASON_MAX},
    )
    origin = HiddenField()
    offset = HiddenField()  # the ranking page it was posted from


class CommentForm(FlaskForm):
    body = TextAreaField(
        _l("Your comment on the draft"), render_kw={"rows": 3, "maxlength": svc.COMMENT_MAX}
    )
    advisor = HiddenField()
    origin = HiddenField()


class MetricRowForm(Form):
    """One metric line of the rubric editor (a sub-form: the CSRF token is the parent's)."""

    key = HiddenField()
    include = BooleanField(_l("Counts"))
    weight = StringField(_l("Weight"), render_kw={"inputmode": "decimal", "maxlength": 8})
    cap = StringField(_l("Cap"), render_kw={"inputmode": "decimal", "maxlength": 8})
    rule = SelectField(_l("Rule"), validate_choice=False)
    target = StringField(_l("Target"), render_kw={"inputmode": "decimal", "maxlength": 12})
    floor = StringField(_l("Floor"), render_kw={"inputmode": "decimal", "maxlength": 12})
    tiers = StringField(_l("Tiers"), render_kw={"maxlength": 300})
    no_data = SelectField(_l("No data"), validate_choice=False)


class RubricForm(FlaskForm):
    metrics = FieldList(FormField(MetricRowForm), max_entries=len(METRIC_KEYS) + 5)
    adjustment_bound = StringField(
        _l("Adjustments: at most ± points"),
        render_kw={"inputmode": "decimal", "maxlength": 8},
    )
    case_rating = SelectField(
        _l("A case rated by the firm and by the bureau"), validate_choice=False
    )
    note = TextAreaField(
        _l("What changed and why"), render_kw={"rows": 2, "maxlength": svc.NOTE_MAX}
    )


# ------------------------------------------------------------------ helpers
def _error_pages(view):
    """A POST view re-run by the CSRF error handler (``form_view``) runs inside that handler,
    where an ``abort(404)`` would no longer become the error page: turn it into one here."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except HTTPException as exc:
            if exc.code is None or exc.code < 400:
                raise
            return current_app.handle_http_exception(exc)

    return wrapper


def _me():
    return current_user._get_current_object()


def _period_key(period: str) -> str:
    """The canonical key of a period in a URL, or 404."""
    if not isinstance(period, str) or len(period) > PERIOD_MAX:
        abort(404)
    try:
        return periods_module.parse(period).key
    except ValueError:
        abort(404)


def _page_or_error(
    period: str, *, offset: int = 0, advisor_id: int | None = None
) -> notice_service.RankingPage:
    """One page of the ranking as the caller may see it (``advisor_id``: that advisor's row);
    404 for a period that is not compiled, malformed or out of the caller's sight."""
    key = _period_key(period)
    try:
        if advisor_id is not None:
            return notice_service.read(_me(), key, advisor_id=advisor_id, limit=None)
        return notice_service.read(_me(), key, offset=offset, limit=notice_service.PAGE_SIZE)
    except (NotFound, ValidationFailed):
        abort(404)
    except Forbidden:
        abort(403)


def _offset_arg(raw=None) -> int:
    """A ranking page's offset (the query string's unless given); 0 when it is not one."""
    raw = request.args.get("offset", "") if raw is None else raw
    return parse_int(raw, 0, 999_999_999) or 0


def _apply(form: FlaskForm, exc: ValidationFailed, aliases: dict[str, str] | None = None):
    """Service field errors onto the form's fields; the rest as form-level errors."""
    for key, message in exc.fields.items():
        name = (aliases or {}).get(key, key)
        target = getattr(form, name, None)
        if target is None or not hasattr(target, "errors") or name == "csrf_token":
            form.form_errors.append(str(message))
        else:
            target.errors = [*target.errors, str(message)]
    if not exc.fields:
        form.form_errors.append(exc.message)


def raw_text(key: str, rule: str, raw) -> str:
    """A metric's raw value as people read it: shares as percentages, amounts in 万元."""
    if raw is None:
        return "—"
    value = Decimal(raw)
    if rule == "ratio_target_v1" or key in ("visit_coverage", "first_contact_on_time"):
        return f"{(value * 100).quantize(Decimal('0.1'))}%"
    if key == "amount_disbursed":
        return _("%(amount)s 万元", amount=fmt_wan(value))
    if key == "satisfaction":
        return f"{value.quantize(Decimal('0.01'))}"
    return charts.fmt(value)


def rule_text(rule: str, params: dict) -> str:
    """What a rule with its parameters does, in a line."""
    try:
        label = str(scoring_rules.get(rule).label)
    except scoring_rules.UnknownRuleError:
        label = rule
    if rule == "ratio_target_v1":
        return _(
            "%(rule)s: full points at %(target)s%%, none at or below %(floor)s%%",
            rule=label,
            target=charts.fmt(Decimal(params.get("target", 0)) * 100),
            floor=charts.fmt(Decimal(params.get("floor", 0)) * 100),
        )
    if rule == "target_v1":
        return _(
            "%(rule)s: full points at %(target)s, none at or below %(floor)s",
            rule=label,
            target=charts.fmt(Decimal(params.get("target", 0))),
            floor=charts.fmt(Decimal(params.get("floor", 0))),
        )
    if rule == "tiers_v1":
        tiers = ", ".join(
            _("%(threshold)s → %(points)s pts", threshold=charts.fmt(t), points=charts.fmt(p))
            for t, p in params.get("tiers", ())
        )
        return f"{label}: {tiers}"
    if rule == "relative_best_v1":
        return _("%(rule)s: the best advisor of the period gets full points", rule=label)
    return label


def _points(value) -> str:
    return "" if value is None else f"{Decimal(value):.2f}"


def _target() -> Decimal:
    return notice_service.target_score(current_app.config)


def progress_note(view: svc.AssessmentView) -> str:
    """The notice on a result compiled before its period ended ('' when it is final)."""
    if not view.in_progress:
        return ""
    if view.period_open:
        return _(
            "%(period)s is not over: these figures will change until it ends on %(end)s. "
            "Compile it again after that for the final result.",
            period=view.period.key,
            end=view.period.last_day.isoformat(),
        )
    return _(
        "This was compiled before %(period)s ended (%(end)s): compile it again for the final "
        "figures.",
        period=view.period.key,
        end=view.period.last_day.isoformat(),
    )


def _helpers() -> dict:
    return {
        "status_labels": labels("assessment_status"),
        "kind_labels": labels("period_kind"),
        "raw_text": raw_text,
        "rule_text": rule_text,
        "pts": _points,
        "num": charts.fmt,
        "signed": notice_service.signed,
        "no_data_labels": labels("no_data"),
        "case_rating_labels": labels("case_rating"),
    }


# ------------------------------------------------------------------ the periods
def _render_index(form: CompileForm | None = None, errors=None, status: int = 200):
    user = _me()
    try:
        items = svc.periods(user)
    except Forbidden:
        abort(403)
    may_compile = user.role == "finance_office"
    if may_compile and form is None:
        last_month = periods_module.month_of(clock.today()).previous()
        form = CompileForm(formdata=None, period=last_month.key)
    return render_template(
        "assessments/index.html",
        items=items,
        form=form if may_compile else None,
        errors=errors or [],
        office=user.role in OFFICE,
        **_helpers(),
    ), status


@bp.route("/")
def index():
    return _render_index()


def _changed_meanwhile() -> str:
    return _("The assessment was changed at the same moment; try again.")


def _compile(period_key: str):
    """Compile; the error message and status, or None."""
    try:
        with saving.attempt(
            _("The assessment was being compiled at the same moment; try again."),
            saving.WITH_LOCKS,
        ):
            svc.compile_period(period_key, _me())
    except Conflict as exc:
        return exc.message, 409
    except Forbidden:
        abort(403)
    return None


@bp.route("/compile", methods=["POST"])
@allow("finance_office")
@form_view
@_error_pages
def compile_new():
    form = CompileForm()
    if not form.validate():
        return _render_index(form, status=422)
    raw = (form.period.data or "").strip()
    if len(raw) > PERIOD_MAX:
        form.period.errors = [_("Enter a period such as 2026-07, 2026-Q3 or 2026.")]
        return _render_index(form, status=422)
    try:
        failed = _compile(raw)
    except ValidationFailed as exc:
        _apply(form, exc)
        return _render_index(form, status=422)
    if failed:
        return _render_index(form, [failed[0]], failed[1])
    key = periods_module.parse(raw).key
    flash(_("The assessment for %(period)s was compiled.", period=key), "success")
    return redirect(url_for("assessments.ranking", period=key))


# ------------------------------------------------------------------ the ranking
def _distribution(page: notice_service.RankingPage, user):
    """The chart of how many advisors scored in each band (for those who see all, or a
    liaison their institution's); None on an empty ranking."""
    view = page.view
    if not page.total or not (view.sees_all or user.role == "liaison"):
        return None
    return charts.histogram_of_counts(
        notice_service.score_bands(view, None if view.sees_all else user),
        title=_("Score distribution, %(period)s", period=view.period.key),
        desc=_(
            "How many advisors scored in each band of 10 points (final scores, %(n)s advisors).",
            n=page.total,
        ),
        x_label=_("Final score"),
        y_label=_("Advisors"),
        bar_title=_("{range} points: {count} advisor(s)"),
        id_prefix="score-distribution",
    )


def _ranking_lines(view: svc.AssessmentView, target: Decimal) -> list[dict]:
    """One line of the ranking table per advisor row."""
    keys = [m.key for m in view.spec.metrics]
    na = Markup('<td class="text-muted small" title="{}">{}</td>').format(  # noqa: S704
        _("No data: not applicable; its weight is spread over the other metrics"), _("n/a")
    )

    def cell(r, k) -> str:
        if k not in r.metrics:
            return "<td>—</td>"
        points = r.metrics[k].points
        return na if points is None else f"<td>{points:.2f}</td>"

    return [
        {
            "row": r,
            "computed": f"{r.computed:.2f}",
            "adjustment": notice_service.signed(r.adjustment),
            "score": f"{r.score:.2f}",
            "below": r.score < target,
            # The metric cells, joined here: figures only (formatted numbers or a dash), and
            # hundreds of cells per page are cheaper as one string than one by one in Jinja.
            "cells": Markup("".join(cell(r, k) for k in keys)),  # noqa: S704
        }
        for r in view.rows
    ]


def _pager(page: notice_service.RankingPage, key: str) -> dict:
    """Where this page of the ranking sits, and the links to its neighbours."""
    rows = page.view.rows
    return {
        "first": page.offset + 1 if rows else 0,
        "last": page.offset + len(rows),
        "total": page.total,
        "previous": (
            url_for("assessments.ranking", period=key, offset=page.previous_offset or None)
            + "#ranking"
            if page.previous_offset is not None
            else None
        ),
        "next": (
            url_for("assessments.ranking", period=key, offset=page.next_offset) + "#ranking"
            if page.next_offset is not None
            else None
        ),
    }


def _render_ranking(
    page: notice_service.RankingPage,
    *,
    adjust_form: AdjustForm | None = None,
    comment_form: CommentForm | None = None,
    publish_form: PublishForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
):
    user = _me()
    view = page.view
    a = view.assessment
    key = view.period.key
    target = _target()
    may_review = user.role == "finance_office" and view.is_draft
    may_comment = user.role in svc.COMMENT_ROLES and view.is_draft
    if may_review and adjust_form is None:
        adjust_form = AdjustForm(formdata=None, origin="ranking", offset=str(page.offset))
    if may_comment and comment_form is None:
        comment_form = CommentForm(formdata=None, origin="ranking")
    return render_template(
        "assessments/ranking.html",
        view=view,
        lines=_ranking_lines(view, target),
        pager=_pager(page, key),
        advisor_base=url_for("assessments.advisor", period=key, user_id=0)[:-1],
        chosen_advisor=parse_id(adjust_form.advisor.data) if adjust_form else None,
        a=a,
        metrics=view.spec.metrics,
        may_review=may_review,
        may_comment=may_comment,
        office=user.role in OFFICE,
        action_form=ActionForm(formdata=None, version=str(a.version)),
        publish_form=publish_form
        or PublishForm(formdata=None, version=str(a.version), doc_number=""),
        next_doc_number=svc.next_doc_number() if may_review else None,
        today_year=clock.today().year,
        doc_prefix=current_app.config.get("NOTICE_DOC_PREFIX", ""),
        progress=progress_note(view),
        adjust_form=adjust_form if may_review else None,
        comment_form=comment_form if may_comment else None,
        action_errors=errors or [],
        distribution=_distribution(page, user),
        target=target,
        **_helpers(),
    ), status


@bp.route("/<period>")
def ranking(period: str):
    return _render_ranking(_page_or_error(period, offset=_offset_arg()))


@bp.route("/<period>/compile", methods=["POST"])
@allow("finance_office")
@form_view
@_error_pages
def recompile(period: str):
    page = _page_or_error(period)
    key = page.view.period.key
    form = ActionForm()
    if not form.validate():
        return _render_ranking(page, status=422)
    try:
        failed = _compile(key)
    except ValidationFailed as exc:
        return _render_ranking(page, errors=[str(m) for m in exc.fields.values()], status=422)
    if failed:
        return _render_ranking(_page_or_error(period), errors=[failed[0]], status=failed[1])
    flash(_("The assessment for %(period)s was recompiled.", period=key), "success")
    return redirect(url_for("assessments.ranking", period=key))


@bp.route("/<period>/publish", methods=["POST"])
@allow("finance_office")
@form_view
@_error_pages
def publish(period: str):
    page = _page_or_error(period)
    key = page.view.period.key
    form = PublishForm()
    if not form.validate():
        return _render_ranking(page, publish_form=form, status=422)
    try:
        with saving.attempt(_changed_meanwhile(), saving.WITH_LOCKS):
            svc.publish(
                _me(),
                key,
                expected_version=form_version(form.version.data),
                doc_number=form.doc_number.data,
                doc_prefix=current_app.config.get("NOTICE_DOC_PREFIX", ""),
            )
    except ValidationFailed as exc:
        _apply(form, exc)
        return _render_ranking(_page_or_error(period), publish_form=form, status=422)
    except Conflict as exc:
        return _render_ranking(_page_or_error(period), errors=[exc.message], status=409)
    except Forbidden:
        abort(403)
    flash(
        _(
            "The assessment for %(period)s is published; the advisors and liaisons were notified.",
            period=key,
        ),
        "success",
    )
    return redirect(url_for("assessments.ranking", period=key))


def _back_to(period: str, origin: str, advisor_id: int | None, **forms):
    """Re-show the page the form was posted from, as it now is."""
    status = forms.pop("status", 422)
    errors = forms.pop("errors", None)
    offset = forms.pop("offset", 0)
    if origin == "advisor" and advisor_id is not None:
        page = _page_or_error(period, advisor_id=advisor_id)
        if page.view.row_for(advisor_id) is not None:
            return _render_advisor(page, advisor_id, errors=errors, status=status, **forms)
    page = _page_or_error(period, offset=offset)
    return _render_ranking(page, errors=errors, status=status, **forms)


def _origin(form) -> str:
    return form.origin.data if form.origin.data in ("ranking", "advisor") else "ranking"


@bp.route("/<period>/adjustments", methods=["POST"])
@allow("finance_office")
@form_view
@_error_pages
def adjust(period: str):
    key = _period_key(period)
    form = AdjustForm()
    origin, advisor_id = _origin(form), parse_id(form.advisor.data)
    offset = _offset_arg(form.offset.data)
    if not form.validate():
        return _back_to(period, origin, advisor_id, adjust_form=form, offset=offset)
    try:
        with saving.attempt(_changed_meanwhile(), saving.WITH_LOCKS):
            if advisor_id is None:
                raise NotFound(_("Choose an advisor of this assessment."))
            svc.add_adjustment(_me(), key, advisor_id, form.points.data, form.reason.data)
    except ValidationFailed as exc:
        _apply(form, exc)
        return _back_to(period, origin, advisor_id, adjust_form=form, offset=offset)
    except NotFound:
        _page_or_error(period)  # the period itself missing: 404
        form.advisor.errors = [_("Choose an advisor of this assessment.")]
        return _back_to(period, origin, advisor_id, adjust_form=form, offset=offset)
    except Conflict as exc:
        return _back_to(
            period,
            origin,
            advisor_id,
            adjust_form=form,
            offset=offset,
            errors=[exc.message],
            status=409,
        )
    except Forbidden:
        abort(403)
    flash(_("Adjustment recorded; the score and the ranks were updated."), "success")
    return _after_adjustment(key, origin, advisor_id, offset)


def _after_adjustment(key: str, origin: str, advisor_id: int, offset: int | None = None):
    """Back to the page the adjustment was made (or withdrawn) on."""
    if origin == "advisor":
        return redirect(
            url_for("assessments.advisor", period=key, user_id=advisor_id) + "#adjustments"
        )
    return redirect(url_for("assessments.ranking", period=key, offset=offset or None) + "#ranking")


@bp.route("/<period>/adjustments/<int:adjustment_id>/withdraw", methods=["POST"])
@allow("finance_office")
@form_view
@_error_pages
def withdraw_adjustment(period: str, adjustment_id: int):
    key = _period_key(period)
    if adjustment_id > MAX_ID:
        abort(404)
    form = WithdrawForm()
    origin = _origin(form)
    if not form.validate():
        return _back_to(period, "ranking", None, errors=[_("Your form had expired; try again.")])
    try:
        with saving.attempt(_changed_meanwhile(), saving.WITH_LOCKS):
            advisor_id = svc.withdraw_adjustment(_me(), key, adjustment_id).advisor_id
    except NotFound:
        abort(404)
    except Conflict as exc:
        return _back_to(period, "ranking", None, errors=[exc.message], status=409)
    except Forbidden:
        abort(403)
    flash(_("Adjustment withdrawn; the score and the ranks were updated."), "success")
    return _after_adjustment(key, origin, advisor_id)


@bp.route("/<period>/comments", methods=["POST"])
@allow("finance_office", "pboc")
@form_view
@_error_pages
def comment(period: str):
    key = _period_key(period)
    form = CommentForm()
    origin, advisor_id = _origin(form), parse_id(form.advisor.data)
    if not form.validate():
        return _back_to(period, origin, advisor_id, comment_form=form)
    try:
        with saving.attempt():
            svc.add_comment(_me(), key, form.body.data, advisor_id)
    except ValidationFailed as exc:
        _apply(form, exc, {"advisor_id": "body"})
        return _back_to(period, origin, advisor_id, comment_form=form)
    except NotFound:
        abort(404)
    except Conflict as exc:
        return _back_to(period, origin, advisor_id, errors=[exc.message], status=409)
    except Forbidden:
        abort(403)
    flash(_("Comment added."), "success")
    if origin == "advisor" and advisor_id is not None:
        return redirect(
            url_for("assessments.advisor", period=key, user_id=advisor_id) + "#comments"
        )
    return redirect(url_for("assessments.ranking", period=key) + "#comments")


# ------------------------------------------------------------------ the drill-down
def record_url(record: dict) -> str | None:
    kind, rid = record.get("kind"), record.get("id")
    if kind == "visit":
        return url_for("visits.detail", visit_id=rid)
    if kind == "referral":
        return url_for("referrals.detail", referral_id=rid)
    if kind == "financing":
        return url_for("visits.application", application_id=rid)
    if kind == "risk_report":
        return url_for("risks.detail", risk_id=rid)
    if kind == "rating" and record.get("referral_id"):
        return url_for("referrals.detail", referral_id=record["referral_id"])
    return None


def _advisor_trend_chart(user, view: svc.AssessmentView, row, user_id: int):
    """The advisor's final score over the periods of this kind (None without history)."""
    trend = notice_service.advisor_trend(user, view, user_id)
    if not trend.labels:
        return None
    return charts.line_chart(
        list(trend.labels),
        [(name, list(values)) for name, values in trend.series],
        title=_("%(name)s's score over the periods", name=row.name),
        desc=_(
            "Final score in each %(kind)s from %(first)s to %(last)s.",
            kind=labels("period_kind")[view.period.kind].lower(),
            first=trend.labels[0],
            last=trend.labels[-1],
        ),
        y_max=100,
        target=_target(),
        target_label=_("Target %(n)s", n=charts.fmt(_target())),
        id_prefix="advisor-trend",
    )


def _render_advisor(
    page: notice_service.RankingPage,
    user_id: int,
    *,
    adjust_form: AdjustForm | None = None,
    comment_form: CommentForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
):
    user = _me()
    view = page.view
    row = view.row_for(user_id)
    if row is None:
        abort(404)
    try:
        items = svc.breakdown(user, view.period.key, user_id)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    may_review = user.role == "finance_office" and view.is_draft
    may_comment = user.role in svc.COMMENT_ROLES and view.is_draft
    if may_review and adjust_form is None:
        adjust_form = AdjustForm(formdata=None, origin="advisor", advisor=str(user_id))
    if may_comment and comment_form is None:
        comment_form = CommentForm(formdata=None, origin="advisor", advisor=str(user_id))
    trend_chart = _advisor_trend_chart(user, view, row, user_id)
    return render_template(
        "assessments/advisor.html",
        view=view,
        a=view.assessment,
        row=row,
        items=items,
        progress=progress_note(view),
        withdraw_form=WithdrawForm(formdata=None, origin="advisor") if may_review else None,
        bound=svc.adjustment_bound(view.assessment) if may_review else None,
        comments=[c for c in view.comments if c.advisor_id == user_id],
        may_review=may_review,
        may_comment=may_comment,
        adjust_form=adjust_form if may_review else None,
        comment_form=comment_form if may_comment else None,
        action_errors=errors or [],
        trend_chart=trend_chart,
        record_url=record_url,
        record_kinds=labels("evidence_kind"),
        **_helpers(),
    ), status


@bp.route("/<period>/advisors/<int:user_id>")
def advisor(period: str, user_id: int):
    if user_id > MAX_ID:
        abort(404)
    return _render_advisor(_page_or_error(period, advisor_id=user_id), user_id)


# ------------------------------------------------------------------ the notice
def _notice(period: str, *, whole: bool) -> notice_service.Notice:
    """The notice: ``whole`` every advisor (the downloads), else the page's bounded summary."""
    key = _period_key(period)
    issuer = notice_service.notice_issuer(current_app.config)
    try:
        if whole:
            return notice_service.build(_me(), key, _target(), issuer=issuer)
        return notice_service.build_summary(_me(), key, _target(), issuer=issuer)
    except (NotFound, ValidationFailed):
        abort(404)
    except Forbidden:
        abort(403)


@bp.route("/<period>/notice")
@allow(*OFFICE)
def notice(period: str):
    n = _notice(period, whole=False)
    trend_chart = None
    if n.trend.labels and n.trend.series:
        trend_chart = charts.line_chart(
            list(n.trend.labels),
            [(name, list(values)) for name, values in n.trend.series],
            title=_("Institutions' average score over the periods"),
            desc=_(
                "Average final score of each institution's advisors in each %(kind)s from "
                "%(first)s to %(last)s.",
                kind=labels("period_kind")[n.kind].lower(),
                first=n.trend.labels[0],
                last=n.trend.labels[-1],
            ),
            y_max=100,
            target=n.target,
            target_label=_("Target %(n)s", n=charts.fmt(n.target)),
            id_prefix="institution-trend",
        )
    return render_template(
        "assessments/notice.html",
        n=n,
        title=n.title,
        period_label=notice_service.period_label(n.kind, n.starts_on),
        number_line=notice_service.number_line(n),
        progress=notice_service.progress_text(n),
        trend_chart=trend_chart,
        **_helpers(),
    )


@bp.route("/<period>/notice.xlsx")
@allow(*OFFICE)
def notice_xlsx(period: str):
    n = _notice(period, whole=True)
    return Response(
        notice_service.xlsx_bytes(n),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{n.filename}.xlsx"'},
    )


@bp.route("/<period>/notice.pdf")
@allow(*OFFICE)
def notice_pdf(period: str):
    n = _notice(period, whole=True)
    try:
        pdf = notice_service.pdf_bytes(n, current_app.config)
    except notice_service.NoticeFontMissing as exc:
        current_app.logger.error("notice PDF: %s", exc.message)
        return render_template("errors/generic.html", status=503, message=exc.message), 503
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{n.filename}.pdf"'},
    )


# ------------------------------------------------------------------ the rubric
def _rule_choices() -> list[tuple[str, str]]:
    out = []
    for name in scoring_rules.names():
        out.append((name, str(scoring_rules.get(name).label)))
    return out


def _tiers_text(params) -> str:
    return ", ".join(f"{charts.fmt(t)}:{charts.fmt(p)}" for t, p in params.get("tiers", ()))


def _editor_lines(spec: RubricSpec) -> list[dict]:
    """Every metric the compilation knows: the rubric's own first (in its order), then the
    others (not counted), with the default rubric's settings."""
    lines = []
    seen = set()
    for m in spec.metrics:
        lines.append({"metric": m, "include": True})
        seen.add(m.key)
    for m in DEFAULT_RUBRIC.metrics:
        if m.key not in seen:
            lines.append({"metric": m, "include": False})
    return lines


def _fill(form: RubricForm, spec: RubricSpec) -> None:
    for line in _editor_lines(spec):
        m = line["metric"]
        params = m.params
        form.metrics.append_entry(
            {
                "key": m.key,
                "include": line["include"],
                "weight": charts.fmt(m.weight),
                "cap": "" if m.cap is None else charts.fmt(m.cap),
                "rule": m.rule,
                "target": charts.fmt(params["target"]) if "target" in params else "",
                "floor": charts.fmt(params["floor"]) if params.get("floor") is not None else "",
                "tiers": _tiers_text(params) if "tiers" in params else "",
                "no_data": m.no_data,
            }
        )
    form.adjustment_bound.data = charts.fmt(spec.adjustment_bound)
    form.case_rating.data = spec.case_rating


def _choices(form: RubricForm) -> None:
    """The select fields' options (set on every request: they are translated)."""
    for entry in form.metrics.entries:
        entry.form.rule.choices = _rule_choices()
        entry.form.no_data.choices = list(labels("no_data").items())
    form.case_rating.choices = list(labels("case_rating").items())


def _parse_tiers(text: str) -> list[list[str]] | None:
    """``"1:4, 2:6"`` -> ``[["1", "4"], ["2", "6"]]``; None when it is not shaped so."""
    text = (text or "").strip()
    for sep in TIER_SEPARATORS[1:]:
        text = text.replace(sep, ",")
    pairs = []
    for part in text.split(","):
        part = part.strip().replace("：", ":").replace("=", ":")
        if not part:
            continue
        bits = [b.strip() for b in part.split(":")]
        if len(bits) != 2 or not all(bits):
            return None
        pairs.append(bits)
    return pairs or None


def _spec_data(form: RubricForm, base: RubricSpec) -> tuple[dict, list[int], dict]:
    """The submitted rubric as the service takes it, which form line each metric came from,
    and the errors found while reading (form line -> field -> message)."""
    known = {m.key: m for m in DEFAULT_RUBRIC.metrics}
    known.update({m.key: m for m in base.metrics})
    metrics, lines, errors = [], [], {}
    for n, entry in enumerate(form.metrics.entries):
        f = entry.form
        if not f.include.data:
            continue
        key = (f.key.data or "").strip()
        model = known.get(key)
        rule = (f.rule.data or "").strip()
        params: dict = {}
        names = RULE_PARAMS.get(rule, ())
        if "target" in names:
            params["target"] = (f.target.data or "").strip()
            if (f.floor.data or "").strip():
                params["floor"] = f.floor.data.strip()
        if "tiers" in names:
            tiers = _parse_tiers(f.tiers.data)
            if tiers is None:
                errors.setdefault(n, {})["tiers"] = _(
                    "Write the tiers as threshold:points, separated by commas, such as "
                    "1:4, 2:6, 3:8."
                )
            params["tiers"] = tiers or []
        no_data = (f.no_data.data or "").strip()
        if key not in svc.MAY_LACK_DATA or not no_data:
            # Counts always have a value: the setting changes nothing; keep what it was.
            no_data = model.no_data if model else ZERO_POINTS
        metrics.append(
            {
                "key": key,
                "label": model.label if model else key,
                "source": model.source if model else "",
                "rule": rule,
                "params": params,
                "weight": (f.weight.data or "").strip(),
                "cap": (f.cap.data or "").strip() or None,
                "scales_with_period": model.scales_with_period if model else False,
                "no_data": no_data,
            }
        )
        lines.append(n)
    data = {
        "metrics": metrics,
        "adjustment_bound": (form.adjustment_bound.data or "").strip() or None,
        "case_rating": (form.case_rating.data or "").strip() or base.case_rating,
    }
    return data, lines, errors


def _apply_rubric_errors(
    form: RubricForm, fields: dict, lines: list[int]
) -> tuple[list[str], str | None]:
    """Service errors (``metrics.<i>.<field>``, ``metrics.<i>.params.<name>``, ``weights``,
    ``note``) onto the editor's fields; returns the whole-rubric ones and the weights' sum
    error (shown under the weight column)."""
    general = []
    weights = None
    for key, message in fields.items():
        message = str(message)
        parts = key.split(".")
        if key == "weights":
            weights = message
            continue
        if key in ("note", "adjustment_bound", "case_rating"):
            target = getattr(form, key)
            target.errors = [*target.errors, message]
            continue
        if parts[0] == "metrics" and len(parts) >= 3 and parts[1].isdigit():
            i = int(parts[1])
            name = parts[-1] if parts[2] == "params" else parts[2]
            if name == "params":
                name = "target"
            if i < len(lines):
                sub = form.metrics.entries[lines[i]].form
                target = getattr(sub, name, None)
                if target is not None and name in (
                    "weight",
                    "cap",
                    "rule",
                    "target",
                    "floor",
                    "tiers",
                    "no_data",
                ):
                    target.errors = [*target.errors, message]
                else:
                    sub.weight.errors = [*sub.weight.errors, message]
                continue
        general.append(message)
    return general, weights


def _weight_sum(form: RubricForm) -> str:
    """The sum of the counted metrics' weights as typed ("?" when one is not a number)."""
    total = Decimal(0)
    for entry in form.metrics.entries:
        if not entry.form.include.data:
            continue
        try:
            total += Decimal((entry.form.weight.data or "").strip())
        except ArithmeticError:
            return "?"
    return charts.fmt(total) if total.is_finite() else "?"


def _render_rubric(
    form: RubricForm | None = None,
    *,
    general: list[str] | None = None,
    weights_error: str | None = None,
    status: int = 200,
):
    user = _me()
    version = svc.current_rubric()
    spec = svc.rubric_spec(version)
    may_edit = user.role == "finance_office"
    if may_edit and form is None:
        form = RubricForm(formdata=None)
        _fill(form, spec)
    if form is not None:
        _choices(form)
    labels = {m.key: m for m in DEFAULT_RUBRIC.metrics}
    labels.update({m.key: m for m in spec.metrics})
    history = notice_service.rubric_history()  # version 1 may just have been created
    return render_template(
        "assessments/rubric.html",
        version=version,
        spec=spec,
        form=form if may_edit else None,
        general=general or [],
        weights_error=weights_error,
        weight_sum=_weight_sum(form) if form is not None else None,
        metric_of=labels,
        may_lack_data=svc.MAY_LACK_DATA,
        history=history,
        by=next((h.created_by for h in history if h.id == version.id), None),
        **_helpers(),
    ), status


@bp.route("/rubric")
@allow(*OFFICE)
def rubric():
    return _render_rubric()


@bp.route("/rubric", methods=["POST"])
@allow("finance_office")
@form_view
@_error_pages
def save_rubric():
    form = RubricForm()
    _choices(form)
    if not form.validate():
        return _render_rubric(form, status=422)
    base = svc.rubric_spec(svc.current_rubric())
    data, lines, errors = _spec_data(form, base)
    if errors:
        for n, fields in errors.items():
            sub = form.metrics.entries[n].form
            for name, message in fields.items():
                getattr(sub, name).errors = [message]
    try:
        with saving.attempt(
            _("Someone saved the rubric at the same moment; check it and save again."),
            saving.WITH_LOCKS,
        ):
            if errors:
                # The tiers could not be read: report them with everything else that is wrong.
                _spec, others = load_rubric(data)
                raise ValidationFailed(_("Please correct the marked fields."), others)
            version = svc.save_rubric(_me(), data, form.note.data)
    except ValidationFailed as exc:
        general, weights = _apply_rubric_errors(form, exc.fields, lines)
        return _render_rubric(form, general=general, weights_error=weights, status=422)
    except Forbidden:
        abort(403)
    except Conflict as exc:
        return _render_rubric(form, general=[exc.message], status=409)
    flash(
        _(
            "Rubric version %(n)s saved. The next compile of a draft uses it; published "
            "results keep theirs.",
            n=version.number,
        ),
        "success",
    )
    return redirect(url_for("assessments.rubric"))


@bp.route("/rubric/<int:rubric_id>")
@allow(*OFFICE)
def rubric_version(rubric_id: int):
    if rubric_id > MAX_ID:
        abort(404)
    try:
        version = notice_service.rubric_version(rubric_id)
    except NotFound:
        abort(404)
    spec = svc.rubric_spec(version)
    history = notice_service.rubric_history()
    return render_template(
        "assessments/rubric_version.html",
        version=version,
        spec=spec,
        history=history,
        by=next((h.created_by for h in history if h.id == version.id), None),
        **_helpers(),
    )
