"""The signed-in user's own page: profile, API tokens, open sessions."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from advisors import security
from advisors.permissions import SIGNED_IN, allow_blueprint

from ._forms import no_control_chars
from ._http import form_view

bp = Blueprint("account", __name__, url_prefix="/account")
allow_blueprint(bp, SIGNED_IN)


class TokenForm(FlaskForm):
    name = StringField(
        _l("Token name"), validators=[DataRequired(), Length(max=60), no_control_chars]
    )


class ConfirmForm(FlaskForm):
    """An action button: only the CSRF token."""


@bp.route("/")
@form_view
def profile():
    return _render_profile()


def _render_profile(new_token: str | None = None, token_form: TokenForm | None = None):
    user = current_user._get_current_object()
    return render_template(
        "account/profile.html",
        user=user,
        tokens=security.tokens_of(user),
        sessions=security.open_sessions_of(user),
        current_hash=security.digest(user.get_id() or ""),
        token_form=token_form or TokenForm(formdata=None),
        confirm=ConfirmForm(),
        new_token=new_token,
    )


@bp.route("/tokens", methods=["POST"])
@form_view
def create_token():
    form = TokenForm()
    if not form.validate_on_submit():
        return _render_profile(token_form=form), 422
    _row, secret = security.issue_token(current_user._get_current_object(), form.name.data.strip())
    # Shown once, in this response only (never stored, not even in the session); we keep its hash.
    flash(_("API token created. Copy it now: it will not be shown again."), "success")
    return _render_profile(new_token=secret)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(token_id: int):
    form = ConfirmForm()
    if form.validate_on_submit() and security.revoke_token(
        current_user._get_current_object(), token_id
    ):
        flash(_("Token revoked."), "success")
    return redirect(url_for("account.profile"))


@bp.route("/sessions/revoke-others", methods=["POST"])
def revoke_other_sessions():
    form = ConfirmForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        security.revoke_all_sessions(user, "signed_out_elsewhere", keep_token=user.get_id())
        flash(_("All your other sessions have been signed out."), "success")
    return redirect(url_for("account.profile"))
