"""How referrals come in from the web: the one-firm form and the list upload (.xlsx / .csv),
with the upload report, its rejected-rows workbook and the templates. Both go through
:func:`advisors.services.referrals.submit`, the rule set the JSON API uses too."""

from __future__ import annotations

import io
import re

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from advisors.errors import Conflict, ValidationFailed
from advisors.i18n import current_locale, fmt_date
from advisors.labels import labels
from advisors.permissions import allow_blueprint
from advisors.services import firm_queries, saving, upload_queue
from advisors.services import referral_import as import_service
from advisors.services import referrals as referral_service
from advisors.sizing import INDUSTRIES
from advisors.xlsx import XLSX_MIMETYPE
from models import NEEDS

from ._forms import restore_pending
from ._http import form_view

bp = Blueprint("intake", __name__)
allow_blueprint(bp, "bureau")

REPORT_ROWS_SHOWN = 500
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# ------------------------------------------------------------------ forms
class _Marked:
    """Shows the asterisk; the service does the checking so every problem comes in one round."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        return None


def _no_control_chars(form, field):
    if isinstance(field.data, str) and _CONTROL_RE.search(field.data):
        raise ValidationError(_("This field contains characters that are not allowed."))


class ReferralForm(FlaskForm):
    credit_code = StringField(
        _l("Credit code"),
        validators=[_Marked(), _no_control_chars],
        render_kw={"autocomplete": "off", "spellcheck": "false", "maxlength": 40},
    )
    name = StringField(_l("Firm name"), validators=[_Marked(), _no_control_chars])
    industry = SelectField(_l("Industry"), validators=[_Marked()], validate_choice=False)
    # Free text offered the city's list: a township the city has not listed is kept as written.
    township = StringField(
        _l("Township"),
        validators=[_no_control_chars],
        render_kw={"list": "township-options", "autocomplete": "off", "maxlength": 60},
    )
    address = StringField(_l("Address"), validators=[_no_control_chars])
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
    contact_name = StringField(_l("Contact person"), validators=[_no_control_chars])
    contact_phone = StringField(
        _l("Contact phone"), validators=[_no_control_chars], render_kw={"inputmode": "tel"}
    )
    needs = SelectMultipleField(
        _l("Needs"),
        validators=[_Marked()],
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    amount_wan = StringField(
        _l("Amount needed (万元)"),
        validators=[_no_control_chars],
        render_kw={"inputmode": "decimal"},
    )
    purpose = StringField(_l("Purpose"), validators=[_no_control_chars])
    note = TextAreaField(_l("Note"), validators=[_no_control_chars], render_kw={"rows": 3})

    ITEM_FIELDS = (
        "credit_code",
        "name",
        "industry",
        "township",
        "address",
        "employees",
        "revenue_wan",
        "assets_wan",
        "contact_name",
        "contact_phone",
        "needs",
        "amount_wan",
        "purpose",
        "note",
    )

    def item(self) -> dict:
        """The contract's ITEM, as typed."""
        return {key: self[key].data for key in self.ITEM_FIELDS}


class UploadForm(FlaskForm):
    file = FileField(
        _l("List of firms (.xlsx or .csv)"),
        validators=[FileRequired(_l("Choose a file to upload."))],
        render_kw={"accept": ".xlsx,.csv"},
    )


def _prepare(form: ReferralForm) -> ReferralForm:
    form.industry.choices = [("", _("Choose an industry"))] + [
        (key, _(label)) for key, label in INDUSTRIES.items()
    ]
    form.township_options = [t.name for t in firm_queries.townships()]
    needs = labels("need")
    form.needs.choices = [(n, needs[n]) for n in NEEDS]
    return form


def _render_new(form: ReferralForm, duplicate=None):
    return render_template("intake/new.html", form=form, duplicate=duplicate)


def _apply_errors(form: ReferralForm, errors: dict[str, str]) -> None:
    for key, message in errors.items():
        key = {"township_id": "township"}.get(key, key)
        field = getattr(form, key, None) if key in ReferralForm.ITEM_FIELDS else None
        if field is None:
            form.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]


# ------------------------------------------------------------------ one firm
@bp.route("/referrals/new", methods=["GET", "POST"])
@form_view
def new():
    user = current_user._get_current_object()
    form = _prepare(ReferralForm())
    if request.method != "POST":
        restore_pending(form)
        return _render_new(form)
    if not form.validate():
        return _render_new(form), 422
    try:
        with saving.attempt(
            _("This firm was referred by someone else at the same moment. Submit again.")
        ):
            [result] = referral_service.submit(user, [form.item()], source="form")
    except ValidationFailed as exc:
        _apply_errors(form, exc.fields or {"item": exc.message})
        return _render_new(form), 422
    except Conflict as exc:
        # Another bureau opened a case for this firm at the same moment: nothing was saved.
        form.form_errors.append(exc.message)
        return _render_new(form), 409
    if result.status == "rejected":
        _apply_errors(form, result.errors)
        return _render_new(form), 422
    for message in result.warnings.values():
        flash(message, "warning")
    if result.status == "duplicate":
        # Nothing new; the firm details typed still updated the registry. The form stays filled.
        return _render_new(form, duplicate=result)
    if result.status == "merged":
        flash(
            _("Another bureau already referred this firm; your bureau now follows it too."),
            "info",
        )
    else:
        flash(
            _(
                "%(name)s was referred to the advisor team (case %(id)s).",
                name=(form.name.data or "").strip(),
                id=result.referral_id,
            ),
            "success",
        )
    return redirect(url_for("referrals.detail", referral_id=result.referral_id))


# ------------------------------------------------------------------ list upload
def _render_upload(form: UploadForm, status: int = 200):
    user = current_user._get_current_object()
    return render_template(
        "intake/upload.html",
        form=form,
        uploads=import_service.uploads_of(user),
        max_mb=_max_mb(),
        max_rows=_max_rows(),
        inline_rows=int(current_app.config.get("UPLOAD_INLINE_ROWS", 500)),
    ), status


def _max_mb() -> int:
    return max(1, (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024))


def _max_rows() -> int:
    return int(current_app.config.get("MAX_UPLOAD_ROWS", 20000))


def _already_uploaded(upload) -> None:
    flash(
        _(
            "This file was already uploaded on %(date)s; nothing new was created.",
            date=fmt_date(upload.created_at),
        ),
        "warning",
    )


@bp.route("/referrals/upload", methods=["GET", "POST"])
@form_view
def upload():
    user = current_user._get_current_object()
    form = UploadForm()
    if request.method != "POST":
        return _render_upload(form)
    if not form.validate():
        return _render_upload(form, 422)
    storage = form.file.data
    data = storage.read()
    try:
        with saving.attempt(
            _(
                "Someone changed the same firms at the same moment. Nothing was saved; "
                "upload the file again."
            )
        ):
            # A short list is imported now; a longer one is queued for the scheduler process.
            result = upload_queue.receive(
                user, storage.filename or "", data, locale=current_locale()
            )
    except ValidationFailed as exc:
        form.file.errors = [*form.file.errors, exc.fields.get("file", exc.message)]
        return _render_upload(form, 422)
    except Conflict as exc:
        earlier = import_service.find_repeat(user, import_service.fingerprint(data))
        if earlier is None:
            form.file.errors = [*form.file.errors, exc.message]
            return _render_upload(form, 409)
        _already_uploaded(earlier)
        return redirect(url_for("intake.report", upload_id=earlier.id))
    if getattr(result, "repeat", False):
        _already_uploaded(result)
    elif result.status == "queued":
        flash(
            _(
                "The list is long, so it is imported in the background. This page shows how "
                "far it has got, and you will get a notification when it is done."
            ),
            "info",
        )
    else:
        counts = result.counts
        flash(
            _(
                "%(rows)s rows read: %(created)s new referrals, %(merged)s co-referrals, "
                "%(duplicate)s duplicates, %(rejected)s rejected.",
                rows=result.rows,
                created=counts.get("created", 0),
                merged=counts.get("merged", 0),
                duplicate=counts.get("duplicate", 0),
                rejected=counts.get("rejected", 0),
            ),
            "success" if not counts.get("rejected") else "warning",
        )
    return redirect(url_for("intake.report", upload_id=result.id))


def _upload_or_404(upload_id: int):  # the route's <int:…> already refuses ids beyond MAX_ID
    upload = import_service.get_upload(current_user._get_current_object(), upload_id)
    if upload is None:
        abort(404)
    return upload


REFRESH_SECONDS = 3  # how often the page of an upload being imported reloads itself


@bp.route("/referrals/uploads/<int:upload_id>")
def report(upload_id: int):
    upload = _upload_or_404(upload_id)
    if upload.status in ("queued", "running"):
        # Reloads itself (a Refresh header: no script) until the import is done.
        page = render_template("intake/report.html", upload=upload, entries=[], hidden=0)
        return page, 200, {"Refresh": str(REFRESH_SECONDS)}
    entries = upload.rejected or []
    return render_template(
        "intake/report.html",
        upload=upload,
        entries=entries[:REPORT_ROWS_SHOWN],
        hidden=max(0, len(entries) - REPORT_ROWS_SHOWN),
        rejected_count=sum(1 for e in entries if e.get("status") == "rejected"),
        blank_run=import_service.BLANK_RUN,
        result_labels={
            "rejected": _("Not accepted"),
            "duplicate": _("Duplicate"),
            "warning": _("Saved; please check"),
        },
    )


def _xlsx_response(data: bytes, name: str):
    return send_file(
        io.BytesIO(data), mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=name
    )


@bp.route("/referrals/uploads/<int:upload_id>/rejected.xlsx")
def rejected_xlsx(upload_id: int):
    upload = _upload_or_404(upload_id)
    stem = upload.filename.rsplit(".", 1)[0] or "upload"
    return _xlsx_response(import_service.rejected_workbook(upload), f"{stem}-错误行.xlsx")


@bp.route("/referrals/template.xlsx")
def template_xlsx():
    return _xlsx_response(import_service.template_xlsx(), "企业推荐名单模板.xlsx")


@bp.route("/referrals/template.csv")
def template_csv():
    return send_file(
        io.BytesIO(import_service.template_csv()),
        mimetype="text/csv; charset=utf-8",
        as_attachment=True,
        download_name="企业推荐名单模板.csv",
    )
