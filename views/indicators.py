"""Institution indicators in the browser: the yearly growth targets (更多 → 指标目标). The office
roles read them; the finance office edits them: a city-wide target per indicator and optional
overrides for one institution. Every save is a new version; the history lists them all."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from advisors import clock
from advisors.errors import Conflict, DomainError, Forbidden, ValidationFailed
from advisors.permissions import allow, allow_blueprint
from advisors.services import saving
from advisors.services.indicators import catalogue
from advisors.services.indicators import targets as service

from ._http import form_view

bp = Blueprint("indicators", __name__, url_prefix="/indicators")
allow_blueprint(bp, "admin", "finance_office", "pboc")

_DIGITS = re.compile(r"^[0-9]{1,6}$")


class TargetsForm(FlaskForm):
    """The note and the CSRF token; the targets' inputs are one per indicator and override."""

    note = StringField(render_kw={"maxlength": service.NOTE_MAX})


@dataclass
class Posted:
    """The targets as typed: the items for the service, the input each item came from, the
    typed values (to show them again) and the messages per input."""

    items: list[dict] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _year_arg(text: str | None) -> int:
    if text is None:
        return clock.today().year
    number = int(text) if _DIGITS.match(text) else 0
    if not service.YEAR_MIN <= number <= service.YEAR_MAX:
        abort(404)
    return number


def _current_values(lines: list[service.Line]) -> dict[str, str]:
    values = {}
    for line in lines:
        values[
            _input_name(line.indicator.code, line.institution.code if line.institution else None)
        ] = str(line.growth_pct)
    return values


def _input_name(code: str, org_code: str | None) -> str:
    return f"override.{org_code}.{code}" if org_code else f"city.{code}"


def _render(year: int, form=None, posted: Posted | None = None, status: int = 200):
    latest = service.latest(year)
    shown = latest
    wanted = request.args.get("version")
    if wanted is not None and posted is None:
        if not _DIGITS.match(wanted):
            abort(404)
        try:
            shown = service.version_of(year, int(wanted))
        except DomainError:
            abort(404)
    lines = service.lines(shown)
    history = service.versions(year)
    return render_template(
        "indicators/targets.html",
        year=year,
        latest=latest,
        shown=shown,
        lines=lines,
        overrides=[line for line in lines if line.institution is not None],
        indicators=catalogue.indicators(),
        name_of=catalogue.name_of,
        institutions=service.institutions(),
        history=history,
        saved_by=service.saved_by_names(history),
        form=form or TargetsForm(),
        values=posted.values if posted else _current_values(lines),
        errors=posted.errors if posted else {},
        editable=current_user.role == "finance_office" and shown is latest,
    ), status


@bp.route("/targets")
def targets():
    return _render(_year_arg(request.args.get("year")))


def _read_form() -> Posted:
    """The posted inputs as the service's items, in the page's order."""
    posted = Posted()
    for key, value in request.form.items():
        if key.startswith(("city.", "override.")):
            posted.values[key] = value.strip()
    for key, value in posted.values.items():
        if not value:
            continue  # left empty: no target
        if key.startswith("city."):
            code, org = key[len("city.") :], None
        else:
            org, _sep, code = key[len("override.") :].partition(".")
        posted.items.append({"indicator": code, "growth_pct": value, "institution": org})
        posted.inputs.append(key)
    new = {
        k: (request.form.get(f"new_{k}") or "").strip()
        for k in ("institution", "indicator", "growth_pct")
    }
    posted.values.update({f"new_{k}": v for k, v in new.items()})
    if any(new.values()):
        posted.items.append({**new, "institution": new["institution"] or None})
        posted.inputs.append("new")
    return posted


def _place_errors(posted: Posted, exc: ValidationFailed) -> list[str]:
    """Each message under the input it is about; the others for the top of the form."""
    general = []
    for key, message in exc.fields.items():
        parts = key.split(".")
        if parts[0] == "targets" and len(parts) == 3 and parts[1].isdigit():
            source = posted.inputs[int(parts[1])]
            name = f"new_{parts[2]}" if source == "new" else source
            posted.errors.setdefault(name, message)
        elif key == "note":
            posted.errors["note"] = message
        else:
            general.append(message)
    return general


@bp.route("/targets/<int:year>", methods=["POST"])
@allow("finance_office")
@form_view
def save_targets(year: int):
    if not service.YEAR_MIN <= year <= service.YEAR_MAX:
        abort(404)
    form = TargetsForm()
    posted = _read_form()
    if not form.validate():
        return _render(year, form, posted, status=422)
    try:
        with saving.attempt(
            _("Someone saved the targets at the same moment; check them and save again.")
        ):
            version = service.save(
                current_user._get_current_object(), year, posted.items, form.note.data
            )
    except ValidationFailed as exc:
        form.form_errors.extend(_place_errors(posted, exc) or [exc.message])
        return _render(year, form, posted, status=422)
    except Forbidden:
        abort(403)
    except Conflict as exc:  # a save at the same moment
        form.form_errors.append(exc.message)
        return _render(year, form, posted, status=409)
    flash(
        _("Targets for %(year)s saved as version %(n)s.", year=year, n=version.version), "success"
    )
    return redirect(url_for("indicators.targets", year=year))
