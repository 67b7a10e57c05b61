"""The API's own field types and how a schema's refusal becomes the contract's ``fields``.

Input fields only check what the services cannot read (a list where text belongs, a lone
surrogate); the rules themselves (a credit code's check characters, an industry's key, the
lengths) stay with the services, which the web forms and the list upload share. Every message
is an English msgid translated when it is raised, in the user's language, naming the field by
its label as the forms do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load

from advisors.i18n import SHANGHAI
from advisors.params import MAX_ID


def unicode_ok(value) -> bool:
    """False when a string anywhere in ``value`` holds a lone surrogate: JSON can spell one
    ("\\ud800"), but it is not text any database can store."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


def bad_unicode(label: str) -> str:
    return _("%(field)s contains characters that are not valid Unicode.", field=label)


def field_messages(messages) -> dict[str, str]:
    """marshmallow's ``{field: [message, …]}`` (nested for nested schemas) as the contract's
    ``{field: message}``: the first message of each field, nested names joined by dots."""
    if not isinstance(messages, dict):
        return {"_schema": str(messages[0] if isinstance(messages, list) else messages)}
    out: dict[str, str] = {}
    for key, value in messages.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in field_messages(value).items()})
        else:
            out[str(key)] = str(value[0] if isinstance(value, list) else value)
    return out


# ----------------------------------------------------------------------------- input
class BodySchema(Schema):
    """A JSON object body. Not an object (or not JSON at all) -> ``{not_object_field:
    not_object}``; with ``whole_unicode`` a lone surrogate anywhere -> ``{not_object_field:
    bad_text}``. Keys the schema does not declare are left to the service."""

    class Meta:
        unknown = EXCLUDE

    not_object_field = "body"
    not_object = _l("Send a JSON object.")
    whole_unicode = False
    bad_text = _l("The request contains text that is not valid.")
    # Documented as required, but reported missing by the service, in its words.
    checked_by_service: tuple[str, ...] = ()

    def read(self, body) -> dict:
        """``body`` loaded, or ValidationError with the contract's field messages."""
        return self.load(body, partial=self.checked_by_service)

    @pre_load
    def _an_object(self, data, **kwargs):
        if not isinstance(data, dict):
            raise ValidationError({self.not_object_field: [str(self.not_object)]})
        if self.whole_unicode and not unicode_ok(data):
            raise ValidationError({self.not_object_field: [str(self.bad_text)]})
        return data


class Version(fields.Field):
    """The version the caller saw (optimistic lock): a whole number, or null/absent."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_none", True)
        kwargs.setdefault("metadata", {"description": "Expected version; 409 when it changed"})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not int or not 0 < value <= MAX_ID:
            raise ValidationError(_("The version must be a whole number."))
        return value


class Checked(fields.Field):
    """Any JSON value (null too) whose strings are valid Unicode; subclasses narrow the type.

    ``label``: a callable giving the field's label in the user's language (messages name it).
    """

    def __init__(self, label: Callable[[], str], **kwargs):
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)
        self.label = label

    def _deserialize(self, value, attr, data, **kwargs):
        if not unicode_ok(value):
            raise ValidationError(bad_unicode(self.label()))
        return value


class Text(Checked):
    """Text; with ``numbers=True`` a JSON number is read as its text too (a phone, a code)."""

    def __init__(self, label, *, numbers: bool = False, **kwargs):
        super().__init__(label, **kwargs)
        self.numbers = numbers

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        allowed = (str, int, float) if self.numbers else (str,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise ValidationError(_("%(field)s must be text.", field=self.label()))
        return value


class Township(Checked):
    """A township's name or code, any other text, or a whole number (a code sent as one)."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not (isinstance(value, str) or type(value) is int):
            raise ValidationError(
                _("%(field)s must be a township name or code.", field=self.label())
            )
        return value


class Username(fields.Field):
    """An advisor's username: text that is not blank once ``tidy`` (``str.strip`` or
    :func:`~advisors.services.firms.clean_text`) has had it; with ``unicode`` checked for lone
    surrogates, under the label "Advisor"."""

    def __init__(self, tidy: Callable[[str], str] = str.strip, unicode: bool = True, **kwargs):
        message = _l("Give the advisor's username.")
        kwargs.setdefault("required", True)
        kwargs.setdefault("error_messages", {"required": message, "null": message})
        kwargs.setdefault("metadata", {"type": "string", "description": "Username"})
        super().__init__(**kwargs)
        self.tidy = tidy
        self.unicode = unicode

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not self.tidy(value):
            raise ValidationError(_("Give the advisor's username."))
        if self.unicode and not unicode_ok(value):
            raise ValidationError(bad_unicode(_("Advisor")))
        return value


class MoneyIn(Checked):
    """万元 as a JSON number or a decimal string (the service reads and checks it)."""


# ----------------------------------------------------------------------------- output
class Money(fields.Field):
    """万元 as a plain decimal string without trailing zeros: 100.1 -> "100.1", 800 -> "800"."""

    def _serialize(self, value: Decimal | None, attr, obj, **kwargs):
        return None if value is None else format(value.normalize(), "f")


class LocalDateTime(fields.Field):
    """A stored UTC timestamp as ISO 8601 in Asia/Shanghai (with its +08:00 offset)."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(SHANGHAI).isoformat(timespec="seconds")


class Day(fields.Field):
    """A date as ``YYYY-MM-DD``."""

    def _serialize(self, value: date | None, attr, obj, **kwargs):
        return value.isoformat() if value is not None else None


# How apispec describes the fields above (marshmallow's own fields it knows already).
OPENAPI_TYPES: dict[type, tuple[str | None, str | None]] = {
    Checked: (None, None),
    Version: ("integer", None),
    Username: ("string", None),
    Text: ("string", None),
    Township: ("string", None),
    MoneyIn: (None, None),
    Money: ("string", None),
    LocalDateTime: ("string", "date-time"),
    Day: ("string", "date"),
}
