"""Sign in, sign out, change password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from advisors import security
from advisors.errors import ValidationFailed
from advisors.permissions import PUBLIC, SIGNED_IN, allow
from advisors.services import users as user_service
from models import db

from ._http import form_view

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=60)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The passwords differ."))],
    )


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@allow(PUBLIC)
@form_view
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        ip = request.remote_addr or "-"
        result = security.authenticate(form.username.data, form.password.data, ip)
        if result.locked:
            db.session.commit()
            form.username.errors.append(
                _(
                    "Too many failed sign-ins. Please wait %(minutes)s minutes and try again.",
                    minutes=result.retry_after_minutes,
                )
            )
            return render_template("auth/login.html", form=form), 429
        if result.user is None:
            db.session.commit()  # keep the failed attempt for throttling
            form.password.errors.append(
                _("Wrong username or password, or the account is inactive.")
            )
            return render_template("auth/login.html", form=form), 200
        kept = {k: session[k] for k in ("pending_form", "lang") if k in session}
        session.clear()  # a fresh session on sign-in (no fixation)
        session.update(kept)
        security.open_session(result.user, ip, request.headers.get("User-Agent"))
        db.session.commit()
        login_user(result.user)
        session.permanent = True
        return redirect(_safe_next(request.args.get("next")) or url_for("main.home"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@allow(SIGNED_IN)
def logout():
    security.revoke_session(current_user.get_id(), "logout")
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@allow(SIGNED_IN)
@form_view
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if not security.verify_password(user, form.current_password.data):
            form.current_password.errors.append(_("The current password is wrong."))
        else:
            try:
                user_service.set_password(user, form.new_password.data, keep_token=user.get_id())
            except ValidationFailed as exc:
                form.new_password.errors.append(exc.fields.get("new_password", exc.message))
            else:
                db.session.commit()
                flash(_("Password changed. Your other sessions have been signed out."), "success")
                return redirect(url_for("account.profile"))
    return render_template("auth/password.html", form=form)
