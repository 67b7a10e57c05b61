"""The enterprise registry pages: list and search, register, detail, edit."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField

from advisors import credit_code
from advisors.errors import Conflict, ValidationFailed
from advisors.i18n import fmt_wan
from advisors.params import MAX_ID, parse_id
from advisors.permissions import allow_blueprint
from advisors.services import firm_queries, saving
from advisors.services import firms as firm_service
from advisors.sizing import INDUSTRIES, measures_for
from models import SIZE_CLASSES, Enterprise

from ._forms import form_version, restore_pending
from ._forms import no_control_chars as _no_control_chars
from ._http import form_view

bp = Blueprint("firms", __name__, url_prefix="/firms")
allow_blueprint(bp, "admin", "finance_office", "pboc", "bureau")

MAX_QUERY = 200


# ------------------------------------------------------------------ form
class _Marked:
    """Marks a field as required in the page (the asterisk); the service does the checking, so
    every problem is reported in one round with the same message as the API gives."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        return None


class FirmForm(FlaskForm):
    credit_code = StringField(
        _l("Credit code"),
        validators=[_Marked(), _no_control_chars],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    name = StringField(_l("Firm name"), validators=[_Marked(), _no_control_chars])
    industry = SelectField(_l("Industry"), validators=[_Marked()], validate_choice=False)
    township = SelectField(_l("Township"))
    address = StringField(_l("Address"), validators=[_no_control_chars])
    contact_name = StringField(_l("Contact person"), validators=[_no_control_chars])
    contact_phone = StringField(
        _l("Contact phone"), validators=[_no_control_chars], render_kw={"inputmode": "tel"}
    )
    employees = StringField(
        _l("Employees"), validators=[_no_control_chars], render_kw={"inputmode": "numeric"}
    )
    revenue_wan = StringField(
        _l("Revenue (万元)"), validators=[_no_control_chars], render_kw={"inputmode": "decimal"}
    )
    assets_wan = StringField(
        _l("Total assets (万元)"),
        validators=[_no_control_chars],
        render_kw={"inputmode": "decimal"},
    )
    override_reason = TextAreaField(
        _l("Override reason"), validators=[_no_control_chars], render_kw={"rows": 2}
    )
    version = HiddenField()

    # The township choices' records by choice value (filled by _prepare): the service takes the
    # chosen township itself, or the text kept for a firm whose township is not matched yet.
    township_values: dict = {}

    def service_data(self) -> dict:
        data = {key: self[key].data for key in firm_service.FIRM_FIELDS}
        data["township"] = self.township_values.get(data["township"])
        return data

    def override_text(self) -> str | None:
        field = getattr(self, "override_reason", None)
        return field.data if field is not None else None


def _prepare(form: FirmForm, user, firm: Enterprise | None = None) -> FirmForm:
    """Fill the select choices (translated at request time) and drop what this role may not use."""
    form.industry.choices = [("", _("Choose an industry"))] + [
        (key, _(label)) for key, label in INDUSTRIES.items()
    ]
    current_township = firm.township_id if firm is not None else None
    townships = firm_queries.townships(current_township)
    form.township.choices = [("", "—")] + [(str(t.id), t.name) for t in townships]
    form.township_values = {str(t.id): t for t in townships}
    if firm is not None and firm.township_text:
        key = "text:" + firm.township_text
        label = _("%(name)s (not matched)", name=firm.township_text)
        form.township.choices.insert(1, (key, label))
        form.township_values[key] = firm.township_text
    if user.role not in firm_service.OVERRIDE_ROLES:
        del form.override_reason
    return form


def _initial(firm: Enterprise) -> dict:
    def text(value):
        return "" if value is None else str(value)

    return {
        "credit_code": firm.credit_code,
        "name": firm.name,
        "industry": firm.industry,
        "township": text(firm.township_id)
        if firm.township_id or not firm.township_text
        else "text:" + firm.township_text,
        "address": text(firm.address),
        "contact_name": text(firm.contact_name),
        "contact_phone": text(firm.contact_phone),
        "employees": text(firm.employees),
        "revenue_wan": text(firm.revenue_wan),
        "assets_wan": text(firm.assets_wan),
        "override_reason": text(firm.code_override_reason),
        "version": str(firm.version),
    }


def _add_error(form: FirmForm, key: str, message: str) -> None:
    key = {"township_id": "township"}.get(key, key)
    if key == "override_reason" and getattr(form, "override_reason", None) is None:
        key = "credit_code"
    field = getattr(form, key, None)
    if field is None or not hasattr(field, "errors"):
        form.form_errors.append(message)
        return
    field.errors = [*field.errors, message]


def _apply(form: FirmForm, exc: ValidationFailed) -> None:
    for key, message in exc.fields.items():
        _add_error(form, key, message)
    if not exc.fields:
        form.form_errors.append(exc.message)


def _measure_labels() -> dict[str, str]:
    labels = firm_service.field_labels()
    return {m: labels[m] for m in ("employees", "revenue_wan", "assets_wan")}


def _measures_table() -> list[tuple[str, str, list[str]]]:
    """(key, industry label, figure labels) for every industry: which figures set the size."""
    labels = _measure_labels()
    return [
        (key, _(label), [labels[m] for m in measures_for(key)]) for key, label in INDUSTRIES.items()
    ]


def _render_form(form: FirmForm, firm: Enterprise | None = None, conflict: list | None = None):
    chosen = form.industry.data if form.industry.data in INDUSTRIES else None
    labels = _measure_labels()
    return render_template(
        "firms/form.html",
        form=form,
        firm=firm,
        measures=_measures_table(),
        chosen_measures=[labels[m] for m in measures_for(chosen)] if chosen else None,
        conflict=conflict,
    )


def _firm_or_404(user, firm_id: int) -> Enterprise:
    if firm_id > MAX_ID:
        abort(404)
    firm = firm_service.get(user, firm_id)
    if firm is None:
        abort(404)
    return firm


# ------------------------------------------------------------------ list
@bp.route("/")
def index():
    user = current_user._get_current_object()
    q = request.args.get("q", "").replace("\x00", "").strip()[:MAX_QUERY]
    industry = firm_queries.valid_industry(request.args.get("industry"))
    size = firm_queries.valid_size(request.args.get("size"))
    township = parse_id(request.args.get("township"))
    after = parse_id(request.args.get("after"))
    rows = firm_queries.list_firms(
        user,
        q=q,
        industry=industry,
        size=size,
        township_id=township,
        limit=firm_queries.PAGE_SIZE + 1,
        after_id=after,
    )
    next_url = None
    if len(rows) > firm_queries.PAGE_SIZE:
        rows = rows[: firm_queries.PAGE_SIZE]
        next_url = url_for(
            "firms.index",
            q=q or None,
            industry=industry,
            size=size,
            township=township,
            after=rows[-1].id,
        )
    return render_template(
        "firms/index.html",
        firms=rows,
        q=q,
        industry=industry,
        size=size,
        township=township,
        after=after,
        townships=firm_queries.townships(active_only=False),
        size_classes=SIZE_CLASSES,
        next_url=next_url,
    )


# ------------------------------------------------------------------ register
@bp.route("/new", methods=["GET", "POST"])
@form_view
def new():
    user = current_user._get_current_object()
    form = _prepare(FirmForm(), user)
    if request.method != "POST":
        restore_pending(form)
        return _render_form(form)
    if not form.validate():
        return _render_form(form), 422
    try:
        with saving.attempt():
            firm = firm_service.register_firm(user, form.service_data(), form.override_text())
    except ValidationFailed as exc:
        _apply(form, exc)
        return _render_form(form), 422
    flash(_("Firm %(name)s registered.", name=firm.name), "success")
    return redirect(url_for("firms.detail", firm_id=firm.id))


# ------------------------------------------------------------------ detail
@bp.route("/<int:firm_id>")
def detail(firm_id: int):
    user = current_user._get_current_object()
    card = firm_queries.firm_card(user, firm_id) if firm_id <= MAX_ID else None
    if card is None:
        abort(404)
    labels = _measure_labels()
    return render_template(
        "firms/detail.html",
        card=card,
        firm=card.firm,
        measure_labels=[labels[m] for m in card.measures],
        missing_labels=[labels[m] for m in card.missing],
        may_audit=user.role in ("admin", "finance_office"),
    )


# ------------------------------------------------------------------ edit
def _conflict_rows(firm: Enterprise, form: FirmForm) -> list[dict]:
    """The stored values beside what the user typed, for the 409 page."""
    labels = firm_service.field_labels()
    stored = _initial(firm)
    shown = dict(stored)
    shown["industry"] = (
        _(INDUSTRIES[firm.industry]) if firm.industry in INDUSTRIES else firm.industry
    )
    shown["township"] = firm.township.name if firm.township is not None else ""
    shown["revenue_wan"] = fmt_wan(firm.revenue_wan)
    shown["assets_wan"] = fmt_wan(firm.assets_wan)
    rows = []
    for key in firm_service.FIRM_FIELDS:
        typed = form[key].data if isinstance(form[key].data, str) else ""
        rows.append(
            {
                "key": key,
                "label": labels[key],
                "current": shown[key],
                "differs": not _same(key, typed, stored[key]),
            }
        )
    return rows


def _same(key: str, typed: str, stored: str) -> bool:
    typed = typed.strip()
    if key == "credit_code":
        typed = credit_code.normalize(typed)
    if key in ("employees", "revenue_wan", "assets_wan") and typed and stored:
        try:
            return Decimal(typed.replace(",", "")) == Decimal(stored)
        except InvalidOperation:
            return False
    return typed == stored


def _render_conflict(user, firm_id: int, form: FirmForm, message: str):
    firm = _firm_or_404(user, firm_id)  # the stored state (the failed save was rolled back)
    form.version.data = str(firm.version)  # saving again now overwrites, knowingly
    form.form_errors.append(message)
    form.form_errors.append(
        _("Their values are shown beside the form. Check yours and save again to keep them.")
    )
    return _render_form(form, firm, conflict=_conflict_rows(firm, form)), 409


@bp.route("/<int:firm_id>/edit", methods=["GET", "POST"])
@form_view
def edit(firm_id: int):
    user = current_user._get_current_object()
    firm = _firm_or_404(user, firm_id)
    if request.method != "POST":
        form = _prepare(FirmForm(data=_initial(firm)), user, firm)
        restore_pending(form)
        return _render_form(form, firm)
    form = _prepare(FirmForm(), user, firm)
    if not form.validate():
        return _render_form(form, firm), 422
    try:
        with saving.attempt():
            firm_service.update_firm(
                user,
                firm,
                form.service_data(),
                form.override_text(),
                expected_version=form_version(form.version.data),
            )
    except Conflict as exc:
        return _render_conflict(user, firm_id, form, exc.message)
    except ValidationFailed as exc:
        _apply(form, exc)
        return _render_form(form, _firm_or_404(user, firm_id)), 422
    flash(_("Changes to %(name)s saved.", name=firm.name), "success")
    return redirect(url_for("firms.detail", firm_id=firm.id))
