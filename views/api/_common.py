"""What every route of the JSON API shares: the blueprint, reading the body, the contract's
error answers (422 with ``fields``, 404, 409) and the caller.

The route modules import from here (and from :mod:`.schemas`), never from one another.
"""

from __future__ import annotations

import functools
import json

from flask import Blueprint, request
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError

from advisors.services import saving
from models import User

from .._http import api_error
from .schemas import field_messages

bp = Blueprint("api", __name__, url_prefix="/api/v1")

NOT_JSON = object()


def caller() -> User:
    """The token's user (a plain object, not Flask-Login's proxy)."""
    return current_user._get_current_object()


def json_body():
    """The request body parsed as JSON whatever its content type, or :data:`NOT_JSON`."""
    try:
        return json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
        return NOT_JSON


def bad_request(fields: dict[str, str]):
    """422 in the contract's shape, one message per field."""
    return api_error(422, "invalid", _("Some fields are not valid."), fields)


def invalid(error: ValidationError):
    """A schema's refusal as the contract's 422 (see :func:`.schemas.field_messages`)."""
    return bad_request(field_messages(error.messages))


def not_found():
    return api_error(404, "not_found", _("The page or record was not found."))


def conflicts(message, *errors: type[Exception]):
    """Answer ``errors`` raised by the route's service (a race with another request: a unique
    key taken, a row changed, a lock not had) with 409 and ``message`` (a lazy string). The
    writes are flushed here (:func:`advisors.services.saving.attempt`) so that a race shows
    now, not at the unit of work's commit; it becomes a :class:`~advisors.errors.Conflict`,
    which the unit of work rolls back and answers with the contract's 409."""

    def decorate(view):
        @functools.wraps(view)
        def run(*args, **kwargs):
            with saving.attempt(str(message), errors):
                return view(*args, **kwargs)

        return run

    return decorate
