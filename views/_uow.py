"""The unit of work of a request: one commit, or one rollback, for every route.

Every view function of the app runs inside :func:`unit_of_work` (wrapped once, at registration,
by :func:`wrap_views`), as indico's request handler does: the view validates, calls a service
and returns its response; nothing in a route commits or rolls back.

- A response under 400 (a page, a redirect, JSON, a download) commits what the services wrote,
  once, before the response leaves.
- A response of 400 or over (a form shown again with its errors, 404, 409, 422, 429) and any
  exception roll everything back: a half-done change is never kept.
- A route whose failure must still be recorded (a refused sign-in counts towards throttling)
  calls :func:`keep_writes` before it answers.

A service's :class:`~advisors.errors.DomainError` that a route does not catch is answered by
:func:`handle_domain_error`: the contract's JSON error under ``/api/``, an error page elsewhere.
Routes that show a form catch ``ValidationFailed`` themselves to put each message under its
field (:func:`views._forms.apply_errors`).
"""

from __future__ import annotations

import functools

from flask import Flask, current_app, g, render_template
from sqlalchemy.orm.exc import StaleDataError

from advisors.errors import Conflict, DomainError
from models import db

_KEEP = "_uow_keep_writes"


def keep_writes() -> None:
    """Commit this request's writes even though its response is an error (4xx)."""
    setattr(g, _KEEP, True)


def unit_of_work(view):
    """Run ``view`` in one transaction: committed once if its response is under 400 (or
    :func:`keep_writes` was called), rolled back otherwise and on any exception."""

    @functools.wraps(view)
    def run(*args, **kwargs):
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            db.session.rollback()
            raise
        if response.status_code < 400 or g.pop(_KEEP, False):
            db.session.commit()
        else:
            db.session.rollback()
        return response

    run.unit_of_work = True
    return run


def handle_domain_error(exc: DomainError):
    """A service's refusal that its route did not catch: the contract's JSON error under
    ``/api/``, a page with the message elsewhere. The view's unit of work has rolled back."""
    from ._http import api_error, is_api_request

    if is_api_request():
        return api_error(exc.status, exc.code, exc.message, exc.fields or None)
    return render_template("errors/generic.html", status=exc.status, message=exc.message), (
        exc.status
    )


def handle_stale(exc: StaleDataError):
    """Two saves of the same record raced (its version moved under us): 409."""
    from flask_babel import gettext as _

    return handle_domain_error(Conflict(_("The record was changed by someone else.")))


def wrap_views(app: Flask) -> None:
    """Put every registered view (static files aside) in its unit of work and answer the
    domain errors no route caught. Called once, after all blueprints are registered."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint == "static" or endpoint.endswith(".static"):
            continue
        if not getattr(view, "unit_of_work", False):
            app.view_functions[endpoint] = unit_of_work(view)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(StaleDataError, handle_stale)
