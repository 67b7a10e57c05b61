"""Form helpers: keep what the user typed across an expired session."""

from __future__ import annotations

import re

from flask import flash, request, session
from flask_babel import gettext as _
from wtforms.validators import ValidationError

from advisors.params import parse_id
from advisors.services import form_drafts

# Fields never kept.
_SECRET_FIELDS = {"csrf_token", "password", "new_password", "confirm", "current_password"}


def stash_pending_form() -> None:
    """Called when a POST arrives after the session ended: keep the typed text server-side (it
    may be longer than a cookie holds) and remember only a random key in the new session."""
    data = {k: request.form.getlist(k) for k in request.form if k not in _SECRET_FIELDS}
    session["pending_form"] = form_drafts.stash(request.path, data)


def restore_pending(form) -> bool:
    """Fill ``form`` from a draft stashed for this page before sign-in. True if restored."""
    token = session.get("pending_form")
    if request.method != "GET" or not token:
        return False
    data = form_drafts.take(token, request.path)
    if data is None:
        return False
    session.pop("pending_form", None)
    for name, values in data.items():
        field = getattr(form, name, None)
        if field is None or not hasattr(field, "process_formdata"):
            continue
        field.process_formdata(values)
    flash(
        _("What you typed before your session ended has been restored. Please submit again."),
        "info",
    )
    return True


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def no_control_chars(form, field):
    """A field validator: NUL and other control characters (tab and line breaks aside) are
    refused with a message (PostgreSQL cannot store NUL in text at all)."""
    if isinstance(field.data, str) and _CONTROL_RE.search(field.data):
        raise ValidationError(_("This field contains characters that are not allowed."))


def form_version(raw) -> int:
    """The record version a form was opened at. A missing or mangled value is 0, which never
    matches, so the save answers 409 rather than overwriting blindly."""
    return parse_id(raw) or 0


def apply_errors(form, exc, aliases: dict | None = None) -> None:
    """A service's ValidationFailed onto the form: each field's message under that field
    (``aliases`` maps service keys to form field names; None drops to the form level), the
    rest as form-level errors."""
    for key, message in exc.fields.items():
        name = (aliases or {}).get(key, key)
        target = getattr(form, name, None) if name else None
        if target is None or not hasattr(target, "errors") or name == "csrf_token":
            form.form_errors.append(message)
        else:
            target.errors = [*target.errors, message]
    if not exc.fields:
        form.form_errors.append(exc.message)
