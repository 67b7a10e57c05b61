"""The city's townships and streets (乡镇/街道): the administrator and the finance office keep the
list (add, rename, merge, deactivate, import) and match the township names bureaus wrote that
are not on it."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField, StringField

from advisors.errors import DomainError, ValidationFailed
from advisors.params import MAX_ID, parse_id
from advisors.permissions import allow_blueprint
from advisors.services import saving
from advisors.services import townships as service

from ._forms import apply_errors
from ._http import form_view
from ._uow import keep_writes

bp = Blueprint("townships", __name__, url_prefix="/townships")
allow_blueprint(bp, "admin", "finance_office")


class TownshipForm(FlaskForm):
    code = StringField(
        _l("Code"),
        render_kw={"maxlength": 20, "autocomplete": "off", "spellcheck": "false"},
        description=_l("1-20 letters or digits, usually the 9-digit township code."),
    )
    name = StringField(_l("Name"), render_kw={"maxlength": 60})


class RenameForm(FlaskForm):
    name = StringField(_l("Name"), render_kw={"maxlength": 60})


class MergeForm(FlaskForm):
    target = SelectField(_l("Merge into"), validate_choice=False)


class ImportForm(FlaskForm):
    file = FileField(
        _l("File (.xlsx or .csv)"),
        validators=[FileRequired(_l("Choose a file to upload."))],
        render_kw={"accept": ".xlsx,.csv"},
    )


class MapForm(FlaskForm):
    text = HiddenField()
    township = SelectField(_l("Listed township"), validate_choice=False)


class ActionForm(FlaskForm):
    """A button that only needs the CSRF token."""


def _user():
    return current_user._get_current_object()


def _township_or_404(township_id: int):
    township = service.get(township_id) if township_id <= MAX_ID else None
    if township is None:
        abort(404)
    return township


def _choices(exclude_id: int | None = None) -> list[tuple[str, str]]:
    return [("", _("Choose…"))] + [
        (str(t.id), f"{t.name}（{t.code}）") for t in service.listed() if t.id != exclude_id
    ]


def _chosen(field) -> object | None:
    township_id = parse_id(field.data)
    if township_id is None:
        return None
    township = service.get(township_id)
    return township if township is not None and township.active else None


def _render_index(form=None, import_form=None, status: int = 200):
    return render_template(
        "townships/index.html",
        rows=service.overview(),
        form=form or TownshipForm(),
        import_form=import_form or ImportForm(),
        unmatched=service.unmatched_count(),
    ), status


@bp.route("/")
def index():
    return _render_index()


@bp.route("/new", methods=["POST"])
@form_view
def create():
    form = TownshipForm()
    if not form.validate():
        return _render_index(form, status=422)
    try:
        with saving.attempt():
            township = service.create(_user(), form.code.data, form.name.data)
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_index(form, status=422)
    flash(_("Township %(name)s added.", name=township.name), "success")
    return redirect(url_for("townships.index"))


@bp.route("/import", methods=["POST"])
@form_view
def import_file():
    form = ImportForm()
    if not form.validate():
        return _render_index(import_form=form, status=422)
    storage = form.file.data
    try:
        with saving.attempt():
            report = service.import_file(_user(), storage.filename or "", storage.read())
    except ValidationFailed as exc:
        apply_errors(form, exc, aliases={"file": "file"})
        return _render_index(import_form=form, status=422)
    if report.rejected:
        keep_writes()  # the good rows are saved; the page lists the rows refused
    return render_template(
        "townships/import_report.html", report=report, filename=storage.filename
    ), (200 if not report.rejected else 422)


def _render_edit(township, rename_form=None, merge_form=None, status: int = 200):
    rename_form = rename_form or RenameForm(data={"name": township.name})
    merge_form = merge_form or MergeForm()
    merge_form.target.choices = _choices(exclude_id=township.id)
    row = next(r for r in service.overview() if r.township.id == township.id)
    return render_template(
        "townships/edit.html",
        township=township,
        row=row,
        aliases=service.aliases_of(township.id),
        rename_form=rename_form,
        merge_form=merge_form,
        action_form=ActionForm(),
    ), status


@bp.route("/<int:township_id>")
def edit(township_id: int):
    return _render_edit(_township_or_404(township_id))


@bp.route("/<int:township_id>/rename", methods=["POST"])
@form_view
def rename(township_id: int):
    township = _township_or_404(township_id)
    form = RenameForm()
    if not form.validate():
        return _render_edit(township, rename_form=form, status=422)
    try:
        with saving.attempt():
            service.rename(_user(), township, form.name.data)
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_edit(_township_or_404(township_id), rename_form=form, status=422)
    flash(_("Township renamed to %(name)s.", name=township.name), "success")
    return redirect(url_for("townships.edit", township_id=township_id))


@bp.route("/<int:township_id>/active", methods=["POST"])
def set_active(township_id: int):
    township = _township_or_404(township_id)
    form = ActionForm()
    if not form.validate():
        abort(400)
    active = request.form.get("active") == "1"
    try:
        with saving.attempt():
            service.set_active(_user(), township, active)
    except DomainError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("townships.edit", township_id=township_id))
    flash(
        _("%(name)s is active again.", name=township.name)
        if active
        else _("%(name)s was deactivated; its firms keep it.", name=township.name),
        "success",
    )
    return redirect(url_for("townships.edit", township_id=township_id))


@bp.route("/<int:township_id>/merge", methods=["POST"])
@form_view
def merge(township_id: int):
    township = _township_or_404(township_id)
    form = MergeForm()
    form.target.choices = _choices(exclude_id=township.id)
    target = _chosen(form.target) if form.validate() else None
    if target is None:
        form.target.errors = [*form.target.errors, _("Choose the township to merge into.")]
        return _render_edit(township, merge_form=form, status=422)
    try:
        with saving.attempt():
            service.merge(_user(), township, target)
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_edit(_township_or_404(township_id), merge_form=form, status=422)
    flash(
        _("%(source)s was merged into %(target)s.", source=township.name, target=target.name),
        "success",
    )
    return redirect(url_for("townships.edit", township_id=target.id))


@bp.route("/aliases/<int:alias_id>/delete", methods=["POST"])
def delete_alias(alias_id: int):
    form = ActionForm()
    if not form.validate() or alias_id > MAX_ID:
        abort(400 if alias_id <= MAX_ID else 404)
    township_id = service.alias_township_id(alias_id)
    if township_id is None:
        abort(404)
    service.remove_alias(_user(), alias_id)
    flash(_("The mapped name was removed; firms already matched keep their township."), "info")
    return redirect(url_for("townships.edit", township_id=township_id))


# ------------------------------------------------------------------ names not on the list
def _render_unmatched(status: int = 200, failed: MapForm | None = None):
    choices = _choices()
    return render_template(
        "townships/unmatched.html",
        rows=service.unmatched(),
        choices=choices,
        failed=failed,
        action_form=ActionForm(),
    ), status


@bp.route("/unmatched")
def unmatched():
    return _render_unmatched()


@bp.route("/unmatched/map", methods=["POST"])
@form_view
def map_text():
    form = MapForm()
    form.township.choices = _choices()
    township = _chosen(form.township) if form.validate() else None
    if township is None:
        flash(_("Choose the listed township this name means."), "danger")
        return _render_unmatched(422, failed=form)
    try:
        with saving.attempt():
            moved = service.map_text(_user(), form.text.data or "", township)
    except ValidationFailed as exc:
        flash(exc.fields.get("text") or exc.message, "danger")
        return _render_unmatched(422, failed=form)
    flash(
        ngettext(
            "“%(text)s” now means %(name)s: %(num)s firm matched; later referrals with this "
            "name match it too.",
            "“%(text)s” now means %(name)s: %(num)s firms matched; later referrals with this "
            "name match it too.",
            moved,
            text=form.text.data,
            name=township.name,
        ),
        "success",
    )
    return redirect(url_for("townships.unmatched"))
