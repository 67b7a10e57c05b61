"""Administration of sign-in throttling: the accounts and addresses being delayed, and "clear".

Admins only. The rules are in :mod:`advisors.throttling`; clearing marks the counted failures
as cleared (they stay on record) and is written to the audit trail.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import AnyOf, Length, Optional

from advisors import throttling
from advisors.errors import ValidationFailed
from advisors.permissions import allow_blueprint

bp = Blueprint("throttling", __name__, url_prefix="/admin/throttling")
allow_blueprint(bp, "admin")


class ClearForm(FlaskForm):
    """One "clear" button: which key, and the CSRF token."""

    scope = HiddenField(validators=[AnyOf(throttling.SCOPES)])
    username = HiddenField(validators=[Optional(), Length(max=throttling.USERNAME_MAX)])
    ip = HiddenField(validators=[Optional(), Length(max=throttling.IP_MAX)])
    kind = HiddenField(validators=[AnyOf(throttling.KINDS)])


def _describe(scope: str, username: str | None, ip: str | None) -> str:
    if scope == throttling.PAIR:
        return _("%(username)s from %(ip)s", username=username, ip=ip)
    if scope == throttling.ACCOUNT:
        return _("account %(username)s", username=username)
    return _("address %(ip)s", ip=ip)


@bp.route("/")
def index():
    return render_template(
        "admin/throttling.html",
        overview=throttling.overview(),
        kind_labels={
            throttling.SIGN_IN: _("Sign-in"),
            throttling.PASSWORD: _("Password change"),
        },
    )


@bp.route("/clear", methods=["POST"])
def clear():
    form = ClearForm()
    if not form.validate_on_submit():
        flash(_("Nothing was cleared: the request was not valid. Reload the page."), "danger")
        return redirect(url_for("throttling.index"))
    scope, username, ip = form.scope.data, form.username.data, form.ip.data
    try:
        cleared = throttling.clear(scope, username, ip, form.kind.data)
    except ValidationFailed as exc:  # refused before anything is written
        flash(" ".join([exc.message, *exc.fields.values()]), "danger")
        return redirect(url_for("throttling.index"))
    if cleared:
        flash(
            ngettext(
                "Cleared %(num)s failed attempt of %(what)s.",
                "Cleared %(num)s failed attempts of %(what)s.",
                cleared,
                what=_describe(scope, username, ip),
            ),
            "success",
        )
    else:
        flash(_("Nothing to clear for %(what)s.", what=_describe(scope, username, ip)), "info")
    return redirect(url_for("throttling.index"))
