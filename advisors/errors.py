"""Domain errors raised by services and turned into form errors, 4xx pages or API JSON by views."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(DomainError):
    """Bad input: ``fields`` maps each field name to a message naming the problem."""

    status = 422
    code = "invalid"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    """The record is in scope but this action is not open to the caller (e.g. an edit window
    that has closed)."""

    status = 403
    code = "forbidden"
