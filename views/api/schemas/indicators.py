"""Institution indicators: the catalogue and the yearly targets.

The targets' body is only read as a list of objects here; every rule (a known code, a bank or
insurer that reports the indicator, the range and places of the growth) is the service's, shared
with the page, the command line and the file import, and reported per ``targets.N.FIELD``.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models import INDICATOR_RANKED_ON, INDICATOR_REPORTERS, INDICATOR_UNITS

from .fields import BodySchema, LocalDateTime

_PCT = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$"}


class IndicatorSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "In the caller's language"})
    unit = fields.String(
        required=True,
        validate=validate.OneOf(INDICATOR_UNITS),
        metadata={"description": "yi_yuan: 亿元 (decimal); count: a whole number"},
    )
    reported_by = fields.List(
        fields.String(validate=validate.OneOf(INDICATOR_REPORTERS)), required=True
    )
    ranked_on = fields.String(required=True, validate=validate.OneOf(INDICATOR_RANKED_ON))


class IndicatorListSchema(Schema):
    items = fields.List(fields.Nested(IndicatorSchema), required=True)


_TARGET_IN = {
    "type": "object",
    "required": ["indicator", "growth_pct"],
    "properties": {
        "indicator": {"type": "string", "description": "An indicator's code"},
        "growth_pct": {
            "type": ["string", "number"],
            "description": "Percent: above -100, at most 1000, at most 2 decimals",
        },
        "institution": {
            "type": ["string", "null"],
            "description": "An active bank's or insurer's org code; null or left out: city-wide",
        },
    },
}


class TargetsBodySchema(BodySchema):
    """The whole set of the year's targets; the service checks each one."""

    not_object_field = "targets"
    checked_by_service = ("targets",)

    targets = fields.Raw(
        required=True,
        metadata={"type": "array", "items": _TARGET_IN},
    )
    note = fields.Raw(allow_none=True, metadata={"type": ["string", "null"], "maxLength": 500})


class TargetSchema(Schema):
    indicator = fields.String(required=True)
    growth_pct = fields.String(required=True, metadata=_PCT)
    institution = fields.String(required=True, allow_none=True)


class TargetsSchema(Schema):
    year = fields.Integer(required=True)
    version = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: no targets saved yet"}
    )
    saved_at = LocalDateTime(required=True, allow_none=True, metadata={"type": ["string", "null"]})
    saved_by = fields.String(required=True, allow_none=True)
    note = fields.String(required=True, allow_none=True)
    targets = fields.List(fields.Nested(TargetSchema), required=True)
