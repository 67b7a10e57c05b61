"""The policy-tool catalogue: every signed-in role reads it; the central bank, the finance office
and the administrator maintain it."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectMultipleField, StringField, TextAreaField

from advisors import clock
from advisors.errors import Conflict, ValidationFailed
from advisors.labels import labels
from advisors.params import MAX_ID, parse_id
from advisors.permissions import SIGNED_IN, allow, allow_blueprint
from advisors.services import policies as policy_service
from advisors.services import saving
from models import FIRM_TYPES, PolicyTool

from ._forms import apply_errors, form_version, restore_pending
from ._http import form_view

bp = Blueprint("policies", __name__, url_prefix="/policies")
allow_blueprint(bp, SIGNED_IN)

PAGE_SIZE = 100  # the catalogue is short: one page keeps every #tool-<id> anchor reachable


class _Marked:
    """Shows the required asterisk; the service checks (one round, the API's messages)."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        return None


class PolicyForm(FlaskForm):
    code = StringField(
        _l("Code"), validators=[_Marked()], render_kw={"autocomplete": "off", "spellcheck": "false"}
    )
    name = StringField(_l("Name"), validators=[_Marked()])
    description = TextAreaField(_l("Description"), render_kw={"rows": 4})
    valid_from = StringField(_l("Valid from"), render_kw={"type": "date"})
    valid_to = StringField(_l("Valid to"), render_kw={"type": "date"})
    eligible_types = SelectMultipleField(
        _l("Eligible firm types"), validators=[_Marked()], validate_choice=False
    )
    active = BooleanField(_l("Active (shown to advisors)"), default=True)
    version = HiddenField()

    def service_data(self) -> dict:
        return {
            "code": self.code.data,
            "name": self.name.data,
            "description": self.description.data,
            "valid_from": self.valid_from.data,
            "valid_to": self.valid_to.data,
            "eligible_types": list(self.eligible_types.data or []),
            "active": bool(self.active.data),
        }


def _prepare(form: PolicyForm) -> PolicyForm:
    types = labels("firm_type")
    form.eligible_types.choices = [(key, types[key]) for key in FIRM_TYPES]
    return form


def _initial(tool: PolicyTool) -> dict:
    return {
        "code": tool.code,
        "name": tool.name,
        "description": tool.description or "",
        "valid_from": tool.valid_from.isoformat() if tool.valid_from else "",
        "valid_to": tool.valid_to.isoformat() if tool.valid_to else "",
        "eligible_types": list(tool.eligible_types or []),
        "active": tool.active,
        "version": str(tool.version),
    }


def _render_form(form: PolicyForm, tool: PolicyTool | None = None, conflict: list | None = None):
    return render_template("policies/form.html", form=form, tool=tool, conflict=conflict)


def _tool_or_404(tool_id: int) -> PolicyTool:
    tool = policy_service.get(tool_id) if tool_id <= MAX_ID else None
    if tool is None:
        abort(404)
    return tool


# ------------------------------------------------------------------ list
@bp.route("/")
def index():
    user = current_user._get_current_object()
    maintainer = policy_service.may_maintain(user)
    after = parse_id(request.args.get("after"))
    tools = policy_service.list_tools(
        user, include_inactive=maintainer, limit=PAGE_SIZE + 1, after_id=after
    )
    next_url = None
    if len(tools) > PAGE_SIZE:
        tools = tools[:PAGE_SIZE]
        next_url = url_for("policies.index", after=tools[-1].id)
    today = clock.today()
    return render_template(
        "policies/index.html",
        tools=tools,
        validity={t.id: policy_service.validity(t, today) for t in tools},
        validity_labels=labels("policy_validity"),
        type_labels=labels("firm_type"),
        today=today,
        maintainer=maintainer,
        after=after,
        next_url=next_url,
    )


# ------------------------------------------------------------------ create
@bp.route("/new", methods=["GET", "POST"])
@allow("admin", "finance_office", "pboc")
@form_view
def new():
    user = current_user._get_current_object()
    form = _prepare(PolicyForm())
    if request.method != "POST":
        restore_pending(form)
        return _render_form(form)
    if not form.validate():
        return _render_form(form), 422
    try:
        with saving.attempt():
            tool = policy_service.create_tool(user, form.service_data())
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_form(form), 422
    flash(_("Policy tool %(name)s added.", name=tool.name), "success")
    return redirect(url_for("policies.index", _anchor=f"tool-{tool.id}"))


# ------------------------------------------------------------------ edit
def _conflict_rows(tool: PolicyTool, form: PolicyForm) -> list[dict]:
    fields = policy_service.field_labels()
    type_labels = labels("firm_type")
    stored = _initial(tool)
    typed = form.service_data()
    rows = []
    for key in policy_service.FIELDS:
        if key == "eligible_types":
            current = _(", ").join(type_labels.get(t, t) for t in stored[key])
            differs = sorted(stored[key]) != sorted(typed[key])
        elif key == "active":
            current = _("Yes") if stored[key] else _("No")
            differs = stored[key] != typed[key]
        else:
            current = stored[key]
            differs = (typed[key] or "").strip() != stored[key].strip()
        rows.append({"label": fields[key], "current": current, "differs": differs})
    return rows


def _render_conflict(tool_id: int, form: PolicyForm, message: str):
    tool = _tool_or_404(tool_id)
    form.version.data = str(tool.version)  # saving again now overwrites, knowingly
    form.form_errors.append(message)
    form.form_errors.append(
        _("Their values are shown beside the form. Check yours and save again to keep them.")
    )
    return _render_form(form, tool, conflict=_conflict_rows(tool, form)), 409


@bp.route("/<int:tool_id>/edit", methods=["GET", "POST"])
@allow("admin", "finance_office", "pboc")
@form_view
def edit(tool_id: int):
    user = current_user._get_current_object()
    tool = _tool_or_404(tool_id)
    if request.method != "POST":
        form = _prepare(PolicyForm(data=_initial(tool)))
        restore_pending(form)
        return _render_form(form, tool)
    form = _prepare(PolicyForm())
    if not form.validate():
        return _render_form(form, tool), 422
    try:
        with saving.attempt():
            policy_service.update_tool(
                user, tool, form.service_data(), expected_version=form_version(form.version.data)
            )
    except Conflict as exc:
        return _render_conflict(tool_id, form, exc.message)
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render_form(form, _tool_or_404(tool_id)), 422
    flash(_("Policy tool %(name)s saved.", name=tool.name), "success")
    return redirect(url_for("policies.index", _anchor=f"tool-{tool.id}"))
