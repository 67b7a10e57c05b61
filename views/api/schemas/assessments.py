"""Assessments: compile, publish, adjust; an assessment as the caller may see it, the periods,
one advisor's breakdown.

The assessment service gives its figures as JSON values already (decimals as strings, times
in +08:00: :func:`advisors.services.assessments.to_api`); these schemas declare that shape and
dump it unchanged. A period's format and an adjustment's points and reason are the service's
to check.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from models import ASSESSMENT_STATUSES, PERIOD_KINDS

from .fields import BodySchema, Username, Version

_GIVE_PERIOD = _l("Give the period, such as 2026-07, 2026-Q3 or 2026.")

_DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}


def _decimal(description: str = "A decimal as a string", **kwargs) -> fields.String:
    return fields.String(metadata={**_DECIMAL, "description": description}, **kwargs)


def _metric_map(description: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        values=fields.String(allow_none=True, metadata=_DECIMAL),
        required=True,
        metadata={"description": description},
    )


# ----------------------------------------------------------------------------- input
class CompileSchema(BodySchema):
    not_object_field = "period"
    whole_unicode = True

    period = fields.String(
        required=True,
        validate=validate.Regexp(r"\s*\S", error=_GIVE_PERIOD),  # not blank
        error_messages={"required": _GIVE_PERIOD, "null": _GIVE_PERIOD, "invalid": _GIVE_PERIOD},
        metadata={"description": "2026-07, 2026-Q3 or 2026"},
    )


class PublishSchema(BodySchema):
    """An optional body: the route reads anything but an object as none."""

    version = Version()
    doc_number = fields.Raw(
        allow_none=True,
        metadata={
            "type": "integer",
            "minimum": 1,
            "maximum": 99999,
            "description": "The notice's number in the year (文号); left out: the next one. "
            "422 when already used that year",
        },
    )


class AdjustmentSchema(BodySchema):
    not_object_field = "adjustment"
    whole_unicode = True
    checked_by_service = ("points", "reason")

    advisor = Username(unicode=False)  # the whole body is checked
    points = fields.Raw(
        required=True,
        metadata={
            "type": ["number", "string"],
            "description": "Not 0, at most 2 decimals, within the rubric's adjustment_bound "
            "either way (10 by default), and so the sum of the advisor's adjustments",
        },
    )
    reason = fields.Raw(required=True, metadata={"type": "string", "maxLength": 500})


# ----------------------------------------------------------------------------- output
class AdjustmentLineSchema(Schema):
    id = fields.Integer(required=True)
    points = _decimal(required=True)
    reason = fields.String(required=True)
    at = fields.String(required=True, metadata={"format": "date-time"})
    by = fields.String(required=True, allow_none=True)
    withdrawn_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    withdrawn_by = fields.String(allow_none=True)


class AssessmentRowSchema(Schema):
    advisor = fields.String(required=True, metadata={"description": "Username"})
    name = fields.String(metadata={"description": "Display name"})
    institution = fields.String(required=True, allow_none=True)
    score = _decimal(required=True)
    rank = fields.Integer(required=True, allow_none=True)
    institution_rank = fields.Integer(required=True, allow_none=True)
    metrics = _metric_map("Metric key -> raw value (null: no data)")
    computed = _decimal("The rubric's points")
    adjustment = _decimal("Sum of the adjustments")
    points = _metric_map("Metric key -> points (null: not applicable, no data)")
    not_applicable = fields.List(fields.String())
    adjustments = fields.List(fields.Nested(AdjustmentLineSchema))


class AssessmentInstitutionSchema(Schema):
    institution = fields.String(required=True)
    name = fields.String()
    advisors = fields.Integer()
    total = _decimal()
    average = _decimal()
    rank = fields.Integer(allow_none=True)


class CommentSchema(Schema):
    author = fields.String()
    advisor = fields.String(allow_none=True)
    body = fields.String()
    at = fields.String(metadata={"format": "date-time"})


class AssessmentSchema(Schema):
    period = fields.String(required=True)
    kind = fields.String(validate=validate.OneOf(PERIOD_KINDS))
    status = fields.String(required=True, validate=validate.OneOf(ASSESSMENT_STATUSES))
    rubric_version = fields.Integer(required=True)
    compiled_at = fields.String(required=True, metadata={"format": "date-time"})
    compile_count = fields.Integer()
    published_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    version = fields.Integer()
    in_progress = fields.Boolean(metadata={"description": "Compiled before the period ended"})
    ends_on = fields.String(metadata={"format": "date"})
    adjustment_bound = _decimal("The rubric's bound on adjustments, either way")
    document_number = fields.String(allow_none=True, metadata={"description": "文号"})
    rows = fields.List(fields.Nested(AssessmentRowSchema), required=True)
    institutions = fields.List(fields.Nested(AssessmentInstitutionSchema))
    comments = fields.List(fields.Nested(CommentSchema))


class AssessmentPeriodSchema(Schema):
    period = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(ASSESSMENT_STATUSES))
    compiled_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    rubric_version = fields.Integer(allow_none=True)


class AssessmentPeriodListSchema(Schema):
    items = fields.List(fields.Nested(AssessmentPeriodSchema), required=True)


class BreakdownMetricSchema(Schema):
    key = fields.String(required=True)
    label = fields.String()
    source = fields.String()
    raw = _decimal(allow_none=True)
    points = _decimal(allow_none=True)
    applicable = fields.Boolean()
    no_data = fields.String(validate=validate.OneOf(("not_applicable", "zero")))
    weight = _decimal()
    effective_weight = _decimal(allow_none=True)
    cap = _decimal(allow_none=True)
    rule = fields.String()
    rule_label = fields.String()
    params = fields.Raw(metadata={"type": "object", "description": "The rule's parameters"})
    total = fields.Integer(metadata={"description": "How many records produced it"})
    records = fields.Raw(
        metadata={
            "type": "array",
            "maxItems": 200,
            "items": {"type": "object"},
            "description": "The visits, referrals, financing steps, risk reports or ratings "
            "that counted (or did not)",
        }
    )


class BreakdownSchema(Schema):
    period = fields.String(required=True)
    metrics = fields.List(fields.Nested(BreakdownMetricSchema), required=True)
