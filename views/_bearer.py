"""Who calls the JSON API: the user of the ``Authorization: Bearer <token>`` header.

The access gate (:mod:`views._http`) calls :func:`authenticate_bearer` for every ``/api/``
request before it checks the route's rule. It lives outside ``views/api`` so that the gate
imports it without importing the API's routes (which import the gate's ``api_error``).
"""

from __future__ import annotations

from flask import g, request

from advisors.extensions import login_manager
from advisors.security import user_for_token


def authenticate_bearer() -> None:
    """Set the current user from ``Authorization: Bearer <token>``. The session cookie is never
    honoured here, which is why the API needs no CSRF token."""
    header = request.headers.get("Authorization", "")
    user = None
    if header[:7].lower() == "bearer ":
        user = user_for_token(header[7:].strip())
    # Flask-Login reads the current user from g._login_user; setting it here (even to None,
    # meaning anonymous) stops it from falling back to the session cookie.
    g._login_user = user if user is not None else login_manager.anonymous_user()
