"""The JSON API (``/api/v1``): bearer tokens only, errors in the contract's shape."""

from __future__ import annotations

from flask import Blueprint, g, request
from flask_babel import gettext as _

from advisors.errors import DomainError
from advisors.security import user_for_token

from .._http import api_error

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def authenticate_bearer() -> None:
    """Set the current user from ``Authorization: Bearer <token>``. The session cookie is never
    honoured here, which is why the API needs no CSRF token."""
    header = request.headers.get("Authorization", "")
    user = None
    if header[:7].lower() == "bearer ":
        user = user_for_token(header[7:].strip())
    # Flask-Login reads the current user from g._login_user; setting it here (even to None,
    # meaning anonymous) stops it from falling back to the session cookie.
    from advisors.extensions import login_manager

    g._login_user = user if user is not None else login_manager.anonymous_user()


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError):
    return api_error(exc.status, exc.code, exc.message, exc.fields or None)


def bad_request(fields: dict[str, str]):
    return api_error(422, "invalid", _("Some fields are not valid."), fields)


from . import assessments, core, openapi, referrals, visits  # noqa: E402,F401  (routes register on bp)
