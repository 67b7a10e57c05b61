"""Administration: organisations, user accounts and advisor profiles.

Admins manage everything here. The finance office and the central-bank branch read the lists
and keep advisor profiles (the office may edit them); a liaison sees its own institution's people;
an advisor keeps their own profile.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from advisors.errors import ValidationFailed
from advisors.labels import labels
from advisors.params import MAX_ID, parse_id
from advisors.permissions import GLOBAL_ROLES, allow, allow_blueprint, get_scoped
from advisors.services import admin_queries as queries
from advisors.services import orgs as org_service
from advisors.services import users as user_service
from advisors.sizing import INDUSTRIES
from models import ORG_TYPES, ROLES, AdvisorProfile, Organisation, User

from ._forms import no_control_chars, restore_pending
from ._http import form_view

bp = Blueprint("admin", __name__, url_prefix="/admin")
allow_blueprint(bp, "admin")

USERS_PER_PAGE = 50
ORGS_PER_PAGE = 100
PROFILE_EDITORS = ("admin", "finance_office")
_PHONE_RE = r"^[0-9+()\- ]*$"
_EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


# ------------------------------------------------------------------ forms
class ConfirmForm(FlaskForm):
    """An action button: only the CSRF token."""


class OrgForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40), no_control_chars])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120), no_control_chars])
    short_name = StringField(
        _l("Short name"), validators=[Optional(), Length(max=40), no_control_chars]
    )
    type = SelectField(_l("Type"), validators=[InputRequired()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.type.choices = [("", _("Choose…")), *labels("org_type").items()]


class OrgEditForm(OrgForm):
    active = BooleanField(_l("Active"))
    version = HiddenField()


class UserForm(FlaskForm):
    display_name = StringField(
        _l("Display name"), validators=[DataRequired(), Length(max=60), no_control_chars]
    )
    role = SelectField(_l("Role"), validators=[InputRequired()])
    org = SelectField(_l("Organisation"))
    phone = StringField(
        _l("Phone"),
        validators=[
            Optional(),
            Length(max=30),
            Regexp(_PHONE_RE, message=_l("Use digits, spaces, '+', '-' and brackets only.")),
        ],
    )
    email = StringField(
        _l("Email"),
        validators=[
            Optional(),
            Length(max=120),
            no_control_chars,
            Regexp(_EMAIL_RE, message=_l("Enter an email address such as name@example.com.")),
        ],
    )

    def set_choices(self, current_org: Organisation | None = None) -> None:
        self.role.choices = [("", _("Choose…")), *labels("role").items()]
        self.org.choices = _org_choices(current_org)


class UserNewForm(UserForm):
    username = StringField(
        _l("Username"), validators=[DataRequired(), Length(max=60), no_control_chars]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class UserEditForm(UserForm):
    active = BooleanField(_l("Active"))
    version = HiddenField()


class SetPasswordForm(FlaskForm):
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The passwords differ."))],
    )


class CheckboxesField(SelectMultipleField):
    """A multiple choice shown as a list of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class AdvisorProfileForm(FlaskForm):
    title = StringField(_l("Title"), validators=[Optional(), Length(max=60), no_control_chars])
    capacity = IntegerField(
        _l("Capacity (firms served at a time)"),
        validators=[
            InputRequired(),
            NumberRange(min=0, max=500, message=_l("Enter a whole number from 0 to 500.")),
        ],
    )
    accepting = BooleanField(_l("Taking new firms"))
    specialties = CheckboxesField(_l("Industries"))
    townships = CheckboxesField(_l("Townships served"), coerce=int)
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000), no_control_chars])
    version = HiddenField()

    def set_choices(self, profile: AdvisorProfile) -> None:
        self.specialties.choices = [(key, _(label)) for key, label in INDUSTRIES.items()]
        choices = [(t.id, t.name) for t in queries.active_townships()]
        # Keep townships the advisor already serves even if since deactivated.
        have = {tid for tid, _name in choices}
        for t in profile.townships:
            if t.id not in have:
                choices.append((t.id, _("%(name)s (inactive)", name=t.name)))
        self.townships.choices = choices


# ------------------------------------------------------------------ helpers
def _org_choices(current: Organisation | None = None) -> list[tuple[str, str]]:
    types = labels("org_type")
    orgs = queries.active_orgs()
    if current is not None and not current.active:
        orgs.append(current)
    return [("", _("— none —"))] + [
        (str(o.id), f"{o.name} · {types.get(o.type, o.type)}") for o in orgs
    ]


def _arg(name: str, limit: int = 100) -> str:
    """A query-string value, trimmed and bounded (NUL bytes would upset PostgreSQL)."""
    return (request.args.get(name) or "").replace("\x00", "").strip()[:limit]


def _user_or_404(user_id: int) -> User:
    """A user the current user may see, or 404 (also for ids no column could hold)."""
    user = get_scoped(User, current_user, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        abort(404)
    return user


def _org_from(form: UserForm) -> Organisation | None:
    return queries.org_by_id(int(form.org.data)) if form.org.data else None


def _show_errors(form: FlaskForm, exc: ValidationFailed) -> None:
    """Put a service's field messages on the form's fields; the rest becomes a flash. The page
    is then shown again with 422, so the unit of work rolls back whatever the service began."""
    for name, message in exc.fields.items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
        else:
            flash(message, "danger")
    if not exc.fields:
        flash(exc.message, "danger")


def _stale(form: FlaskForm, record) -> bool:
    """True when ``record`` was saved by someone else after this form was loaded. The user's
    input stays; the form takes the current version so a second submit overwrites knowingly."""
    if form.version.data == str(record.version):
        return False
    form.version.data = str(record.version)
    flash(
        _(
            "Someone else saved this record while you were editing it. Nothing was saved: "
            "check your input and save again to replace their changes."
        ),
        "warning",
    )
    return True


def _status(form: FlaskForm) -> int:
    return 422 if form.is_submitted() else 200


# ------------------------------------------------------------------ organisations
@bp.route("/orgs")
@allow("admin", "finance_office", "pboc")
def orgs():
    filters = {"type": _arg("type"), "q": _arg("q")}
    if filters["type"] not in ORG_TYPES:
        filters["type"] = ""
    rows = queries.list_orgs(
        current_user,
        type_=filters["type"],
        q=filters["q"],
        after=_arg("after", 40),
        limit=ORGS_PER_PAGE + 1,
    )
    next_url = None
    if len(rows) > ORGS_PER_PAGE:
        rows = rows[:ORGS_PER_PAGE]
        next_url = url_for(
            "admin.orgs", type=filters["type"] or None, q=filters["q"] or None, after=rows[-1].code
        )
    counts = queries.member_counts([o.id for o in rows])
    return render_template(
        "admin/orgs.html",
        orgs=rows,
        counts=counts,
        filters=filters,
        type_labels=labels("org_type"),
        next_url=next_url,
    )


@bp.route("/orgs/new", methods=["GET", "POST"])
@form_view
def org_new():
    form = OrgForm()
    if request.method == "GET":
        restore_pending(form)
    if form.validate_on_submit():
        try:
            org = org_service.create_org(
                form.code.data, form.name.data, form.type.data, short_name=form.short_name.data
            )
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            flash(_("Organisation %(code)s created.", code=org.code), "success")
            return redirect(url_for("admin.orgs"))
    return render_template("admin/org_form.html", form=form, org=None), _status(form)


@bp.route("/orgs/<int:org_id>/edit", methods=["GET", "POST"])
@form_view
def org_edit(org_id: int):
    org = get_scoped(Organisation, current_user, org_id) if 0 < org_id <= MAX_ID else None
    if org is None:
        abort(404)
    form = OrgEditForm() if request.method == "POST" else OrgEditForm(obj=org)
    if request.method == "GET":
        restore_pending(form)
    status = _status(form)
    if form.validate_on_submit():
        if _stale(form, org):
            status = 409
        else:
            try:
                org_service.update_org(
                    org,
                    code=form.code.data,
                    name=form.name.data,
                    type=form.type.data,
                    short_name=form.short_name.data,
                    active=form.active.data,
                )
            except ValidationFailed as exc:
                _show_errors(form, exc)
            else:
                flash(_("Organisation %(code)s saved.", code=org.code), "success")
                return redirect(url_for("admin.orgs"))
    return render_template("admin/org_form.html", form=form, org=org), status


# ------------------------------------------------------------------ users
@bp.route("/users")
@allow("admin", "finance_office", "pboc", "liaison")
def users():
    filters = {
        "role": _arg("role"),
        "org": parse_id(request.args.get("org")),
        "q": _arg("q"),
        "active": _arg("active"),
    }
    if filters["role"] not in ROLES:
        filters["role"] = ""
    if filters["active"] not in ("1", "0"):
        filters["active"] = ""
    rows = queries.list_users(
        current_user,
        role=filters["role"],
        org_id=filters["org"],
        q=filters["q"],
        active=filters["active"],
        after=parse_id(request.args.get("after")),
        limit=USERS_PER_PAGE + 1,
    )
    next_url = None
    if len(rows) > USERS_PER_PAGE:
        rows = rows[:USERS_PER_PAGE]
        next_url = url_for(
            "admin.users",
            **{k: v for k, v in filters.items() if v},
            after=rows[-1].id,
        )
    org_options = queries.all_orgs() if current_user.role in GLOBAL_ROLES else []
    return render_template(
        "admin/users.html",
        users=rows,
        filters=filters,
        org_options=org_options,
        next_url=next_url,
    )


@bp.route("/users/new", methods=["GET", "POST"])
@form_view
def user_new():
    form = UserNewForm()
    form.set_choices()
    if request.method == "GET":
        restore_pending(form)
    if form.validate_on_submit():
        try:
            user = user_service.create_user(
                username=form.username.data,
                password=form.password.data,
                role=form.role.data,
                org=_org_from(form),
                display_name=form.display_name.data,
                phone=form.phone.data,
                email=form.email.data,
                must_change_password=True,
            )
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            flash(
                _(
                    "User %(username)s created. They must choose their own password at first "
                    "sign-in.",
                    username=user.username,
                ),
                "success",
            )
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=None), _status(form)


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@form_view
def user_edit(user_id: int):
    user = _user_or_404(user_id)
    if request.method == "POST":
        form = UserEditForm()
    else:
        form = UserEditForm(obj=user)
        form.org.data = str(user.org_id) if user.org_id else ""
        restore_pending(form)
    form.set_choices(user.org)
    status = _status(form)
    if form.validate_on_submit():
        is_self = user.id == current_user.id
        if is_self and not form.active.data:
            form.active.errors.append(_("You cannot deactivate your own account."))
        elif is_self and form.role.data != user.role:
            form.role.errors.append(_("You cannot change your own role."))
        elif _stale(form, user):
            status = 409
        else:
            try:
                user_service.update_user(
                    user,
                    display_name=form.display_name.data,
                    role=form.role.data,
                    org=_org_from(form),
                    phone=form.phone.data,
                    email=form.email.data,
                    active=form.active.data,
                )
            except ValidationFailed as exc:
                _show_errors(form, exc)
            else:
                flash(_("User %(username)s saved.", username=user.username), "success")
                return redirect(url_for("admin.users"))
    return render_template(
        "admin/user_form.html", form=form, user=user, confirm=ConfirmForm()
    ), status


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
def user_deactivate(user_id: int):
    user = _user_or_404(user_id)
    form = ConfirmForm()
    if user.id == current_user.id:
        flash(_("You cannot deactivate your own account."), "danger")
    elif form.validate_on_submit():
        user_service.deactivate_user(user)
        flash(
            _(
                "%(username)s is deactivated and has been signed out everywhere.",
                username=user.username,
            ),
            "success",
        )
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/activate", methods=["POST"])
def user_activate(user_id: int):
    user = _user_or_404(user_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            user_service.update_user(
                user,
                display_name=user.display_name,
                role=user.role,
                org=user.org,
                phone=user.phone,
                email=user.email,
                active=True,
            )
        except ValidationFailed as exc:  # refused before any change: nothing to undo
            for message in exc.fields.values() or [exc.message]:
                flash(message, "danger")
        else:
            flash(_("%(username)s is active again.", username=user.username), "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@form_view
def user_password(user_id: int):
    user = _user_or_404(user_id)
    form = SetPasswordForm()
    if form.validate_on_submit():
        is_self = user.id == current_user.id
        keep = current_user.get_id() if is_self else None
        try:
            revoked = user_service.set_password(
                user, form.new_password.data, keep_token=keep, temporary=not is_self
            )
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            if is_self:
                flash(_("Password changed. Your other sessions have been signed out."), "success")
                if revoked:
                    flash(
                        _("Your API tokens were revoked; create new ones under My account."),
                        "warning",
                    )
            else:
                flash(
                    _(
                        "New password set for %(username)s. Their sessions have been signed out "
                        "and their API tokens revoked; they must choose their own password at "
                        "their next sign-in.",
                        username=user.username,
                    ),
                    "success",
                )
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return render_template("admin/user_password.html", form=form, user=user), _status(form)


# ------------------------------------------------------------------ advisor profiles
@bp.route("/advisors/<int:user_id>/profile", methods=["GET", "POST"])
@allow("admin", "finance_office", "pboc", "liaison", "advisor")
@form_view
def advisor_profile(user_id: int):
    user = _user_or_404(user_id)  # scope: a liaison its org, an advisor only themself
    profile = queries.advisor_profile(user)
    if profile is None:
        abort(404)
    can_edit = current_user.role in PROFILE_EDITORS or current_user.id == user.id
    if request.method == "POST" and not can_edit:
        abort(403)
    if request.method == "POST":
        form = AdvisorProfileForm()
    else:
        form = AdvisorProfileForm(obj=profile)
        form.townships.data = [t.id for t in profile.townships]
        restore_pending(form)
    form.set_choices(profile)
    status = _status(form)
    if can_edit and form.validate_on_submit():
        if _stale(form, profile):
            status = 409
        else:
            try:
                user_service.update_advisor_profile(
                    profile,
                    title=form.title.data,
                    capacity=form.capacity.data,
                    accepting=form.accepting.data,
                    specialties=form.specialties.data or [],
                    township_ids=form.townships.data or [],
                    note=form.note.data,
                )
            except ValidationFailed as exc:
                _show_errors(form, exc)
            else:
                flash(_("Advisor profile saved."), "success")
                return redirect(url_for("admin.advisor_profile", user_id=user.id))
    return render_template(
        "admin/advisor_profile.html", form=form, user=user, profile=profile, can_edit=can_edit
    ), status
