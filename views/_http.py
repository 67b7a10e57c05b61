"""Request plumbing shared by every blueprint: the access gate, errors, security headers."""

from __future__ import annotations

from flask import Flask, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from advisors.audit import reset_actor, set_actor
from advisors.extensions import csrf
from advisors.params import MAX_ID
from advisors.permissions import may_access, rule_for


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def api_error(status: int, code: str, message: str, fields: dict | None = None):
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return jsonify(body), status


def _gate():
    """Every request passes here: an endpoint without an access rule is refused."""
    endpoint = request.endpoint
    if endpoint is None:
        return None  # 404/405 follow
    if is_api_request():
        from views._bearer import authenticate_bearer

        authenticate_bearer()
    roles = rule_for(current_app, endpoint)
    if roles is None:
        current_app.logger.error("no access rule for endpoint %s: refused", endpoint)
        if is_api_request():
            return api_error(403, "forbidden", _("You do not have access to this resource."))
        return render_template("errors/403.html"), 403
    if may_access(roles, current_user):
        if current_user.is_authenticated:
            g._audit_token = set_actor(current_user.id, current_user.username, request.remote_addr)
        if not is_api_request() and _must_change_password(endpoint):
            return redirect(url_for("auth.change_password"))
        if not is_api_request() and request.method not in ("GET", "HEAD", "OPTIONS"):
            # CSRF is checked here, after access, for every state-changing browser request
            # (WTF_CSRF_CHECK_DEFAULT is off so Flask-WTF does not check before the gate).
            # The API is exempt: it accepts bearer tokens only, never the session cookie.
            csrf.protect()
        return None
    if not current_user.is_authenticated:
        if is_api_request():
            return api_error(401, "unauthorized", _("A valid API token is required."))
        return current_app.login_manager.unauthorized()
    if is_api_request():
        return api_error(403, "forbidden", _("Your role may not use this resource."))
    return render_template("errors/403.html"), 403


# What a signed-in user whose password an administrator set may still reach: the page to choose
# their own, signing out, the language switch, the health check and static files.
_OPEN_BEFORE_PASSWORD_CHANGE = frozenset(
    {"auth.change_password", "auth.logout", "main.set_language", "main.healthz", "static"}
)


def _must_change_password(endpoint: str) -> bool:
    """A browser user with a password given by an administrator is sent to choose their own
    before anything else (the API, with its bearer tokens, is not affected)."""
    if not current_user.is_authenticated or not current_user.must_change_password:
        return False
    return endpoint not in _OPEN_BEFORE_PASSWORD_CHANGE and not endpoint.endswith(".static")


def _reset_actor(exc=None):
    token = g.pop("_audit_token", None)
    if token is not None:
        reset_actor(token)


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; object-src 'none'"
)


def _security_headers(response):
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if current_user and getattr(current_user, "is_authenticated", False):
        h.setdefault("Cache-Control", "no-store")
    return response


def N_(message: str) -> str:
    """Mark a string for translation extraction without translating it."""
    return message


_MESSAGES = {
    400: N_("The request could not be understood."),
    401: N_("Please sign in."),
    403: N_("You do not have access to this page."),
    404: N_("The page or record was not found."),
    405: N_("This method is not allowed here."),
    409: N_("The record was changed by someone else."),
    413: N_("The upload is too large."),
    422: N_("Some fields are not valid."),
    429: N_("Too many requests; please wait a moment."),
    500: N_("Something went wrong on our side. The error has been logged."),
    503: N_("The service is temporarily unavailable."),
}

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid",
    429: "too_many_requests",
    500: "server_error",
    503: "unavailable",
}


def _render_error(status: int):
    message = _(_MESSAGES.get(status, _MESSAGES[500]))
    if status == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        message = _("The request body is larger than %(mb)s MB.", mb=limit)
    if is_api_request():
        return api_error(status, _CODES.get(status, "error"), message)
    template = f"errors/{status}.html" if status in (403, 404, 413, 500) else "errors/generic.html"
    return render_template(template, status=status, message=message), status


def _handle_http_error(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    return _render_error(exc.code)


def _handle_csrf_error(exc: CSRFError):
    """An expired or missing CSRF token. Form views are re-run so the form comes back filled in
    with what the user typed (their FlaskForm fails its own CSRF check and shows why)."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "redisplay_on_csrf_error", False):
        g.csrf_expired = True
        flash(
            _("Your form had expired. Nothing was saved; please check it and submit again."),
            "warning",
        )
        try:
            return view(**(request.view_args or {}))
        except HTTPException as aborted:  # e.g. a 404 for the page's record: answered as such
            return _handle_http_error(aborted)
    if is_api_request():
        return api_error(400, "csrf", _("The form has expired; please reload and try again."))
    return render_template(
        "errors/generic.html",
        status=400,
        message=_("The form has expired; please go back, reload the page and try again."),
    ), 400


def _handle_unexpected(exc: Exception):
    from models import db

    # Not a route: this also answers errors raised outside any view's unit of work (the gate in
    # before_request, a context processor), where nothing else would undo a half-done change.
    db.session.rollback()
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return _render_error(500)


# How long a client should wait before trying again when the database is unavailable.
RETRY_AFTER_SECONDS = 30


def _handle_database_error(exc: Exception):
    """The database is down, unreachable, out of connections or too slow (a statement
    timeout): 503 with ``Retry-After`` and a message that says so, as JSON under /api/ and as
    a page elsewhere. Any other database error is an unexpected one (500)."""
    from advisors.dbutil import is_unavailable

    if not is_unavailable(exc):
        if current_app.config.get("TESTING") and not current_app.config.get(
            "HANDLE_UNEXPECTED", True
        ):
            raise exc
        return _handle_unexpected(exc)
    from models import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001, S110 (the connection is broken: nothing to undo)
        pass
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    current_app.logger.error(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.path,
        type(exc).__name__,
        first[0] if first else "",
    )
    # The page must not need the database: no signed-in user (nor their navigation counts).
    g._login_user = current_app.login_manager.anonymous_user()
    message = _(
        "The database is not answering at the moment, so this could not be done. "
        "Please try again in a minute."
    )
    if is_api_request():
        response, status = api_error(503, "unavailable", message)
    else:
        response = current_app.make_response(
            (render_template("errors/503.html", status=503, message=message), 503)
        )
        status = 503
    response.status_code = status
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def form_view(view):
    """Mark a view that renders a FlaskForm: on an expired CSRF token it is re-run to re-show the
    form with the user's input (its own validation refuses the stale token, so nothing is saved)."""
    view.redisplay_on_csrf_error = True
    return view


class BoundedInt(IntegerConverter):
    """``<int:…>`` in every route: 1 to 2**31 - 1 written in ASCII digits (werkzeug's own
    accepts any Unicode digit and any size). Anything else does not match the route: 404, so a
    path id that no record can have never reaches a view or the database."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map, fixed_digits=0, min=1, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_http(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedInt
    app.before_request(_gate)
    app.teardown_request(_reset_actor)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _handle_csrf_error)
    app.register_error_handler(HTTPException, _handle_http_error)
    for failure in (OperationalError, InterfaceError, SQLAlchemyTimeoutError):
        app.register_error_handler(failure, _handle_database_error)
    if not app.config.get("TESTING") or app.config.get("HANDLE_UNEXPECTED", True):
        app.register_error_handler(Exception, _handle_unexpected)

    lm = app.login_manager
    lm.login_view = "auth.login"
    lm.login_message = None

    @lm.unauthorized_handler
    def _unauthorized():
        if is_api_request():
            return api_error(401, "unauthorized", _("A valid API token is required."))
        if request.method == "POST" and request.form:
            # The session ran out while the user was typing: keep what they typed.
            from views._forms import stash_pending_form

            stash_pending_form()
            flash(
                _("Your session has ended. Sign in again and your input will be restored."),
                "warning",
            )
        target = request.full_path if request.method == "GET" else request.path
        return redirect(url_for("auth.login", next=target.rstrip("?")))
