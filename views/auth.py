"""Sign in, sign out, change password."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_timedelta
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

from ._http import form_view
from ._uow import keep_writes

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


def wait_text(seconds: int) -> str:
    """A wait as words in the user's language ("45 seconds", "3 minutes"), never shorter than
    the real wait: an attempt made too early is refused and makes the next wait longer."""
    if seconds < 60:
        delta = timedelta(seconds=max(1, seconds))
    else:
        delta = timedelta(minutes=-(-seconds // 60))
    return format_timedelta(delta, threshold=1)


def _next_try(seconds: int) -> str:
    return _(
        "Too many failed attempts: wait %(wait)s before the next one. Trying earlier makes "
        "the wait longer.",
        wait=wait_text(seconds),
    )


def _throttled(body: str, retry_after: int):
    """A refused attempt: 429 with the page and a Retry-After header."""
    response = make_response(body, 429)
    response.headers["Retry-After"] = str(max(1, retry_after))
    return response


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
            keep_writes()  # the refused attempt counts too (the answer is a 429)
            form.username.errors.append(
                _(
                    "Too many failed sign-ins. Please wait %(wait)s, then try again; "
                    "trying earlier makes the wait longer.",
                    wait=wait_text(result.retry_after),
                )
            )
            return _throttled(render_template("auth/login.html", form=form), result.retry_after)
        if result.user is None:
            keep_writes()  # keep the failed attempt for throttling
            form.password.errors.append(
                _("Wrong username or password, or the account is inactive.")
            )
            if result.retry_after:
                form.password.errors.append(_next_try(result.retry_after))
            return render_template("auth/login.html", form=form), 200
        kept = {k: session[k] for k in ("pending_form", "lang") if k in session}
        session.clear()  # a fresh session on sign-in (no fixation)
        session.update(kept)
        security.open_session(result.user, ip, request.headers.get("User-Agent"))
        login_user(result.user)
        session.permanent = True
        return redirect(_safe_next(request.args.get("next")) or url_for("main.home"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@allow(SIGNED_IN)
def logout():
    security.revoke_session(current_user.get_id(), "logout")
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
        check = security.check_current_password(
            user, form.current_password.data, request.remote_addr or "-"
        )
        if check.locked:
            keep_writes()  # the refused attempt counts too (the answer is a 429)
            form.current_password.errors.append(
                _(
                    "Too many wrong current passwords. Please wait %(wait)s, then try again; "
                    "trying earlier makes the wait longer.",
                    wait=wait_text(check.retry_after),
                )
            )
            return _throttled(render_template("auth/password.html", form=form), check.retry_after)
        if not check.ok:
            keep_writes()  # keep the failed attempt for throttling
            form.current_password.errors.append(_("The current password is wrong."))
            if check.retry_after:
                form.current_password.errors.append(_next_try(check.retry_after))
        else:
            try:
                revoked = user_service.set_password(
                    user, form.new_password.data, keep_token=user.get_id()
                )
            except ValidationFailed as exc:
                # 422: nothing of this attempt is kept (as before: the new password is refused
                # before anything changes, and the right current password is not recorded).
                form.new_password.errors.append(exc.fields.get("new_password", exc.message))
                return render_template("auth/password.html", form=form), 422
            else:
                flash(_("Password changed. Your other sessions have been signed out."), "success")
                if revoked:
                    flash(
                        _("Your API tokens were revoked; create new ones under My account."),
                        "warning",
                    )
                return redirect(url_for("account.profile"))
    return render_template("auth/password.html", form=form)
