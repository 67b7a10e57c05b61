"""Who am I, the firm registry, the policy catalogue, the townships, and the error shape."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from advisors.sizing import INDUSTRIES
from models import ROLES, SIZE_CLASSES

from .fields import Day


class ErrorBodySchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "Field -> message (422)"},
    )


class ErrorSchema(Schema):
    """The contract's error: ``{"error": {"code", "message", "fields"?}}``."""

    error = fields.Nested(ErrorBodySchema, required=True)


class MeSchema(Schema):
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    org = fields.Function(
        lambda user: user.org.code if user.org else None,
        required=True,
        allow_none=True,
        metadata={"type": "string", "description": "Org code"},
    )


class EnterpriseSchema(Schema):
    id = fields.Integer(required=True)
    credit_code = fields.String(required=True, validate=validate.Length(18, 18))
    name = fields.String(required=True)
    industry = fields.String(required=True, validate=validate.OneOf(INDUSTRIES))
    township = fields.Function(
        lambda firm: firm.township.name if firm.township else firm.township_text,
        allow_none=True,
        metadata={"type": "string"},
    )
    township_matched = fields.Function(
        lambda firm: firm.township is not None if firm.township_text is None else False,
        metadata={"type": "boolean"},
    )
    employees = fields.Integer(allow_none=True)
    # As stored (two places): "800.00".
    revenue_wan = fields.String(allow_none=True, metadata={"description": "万元"})
    assets_wan = fields.String(allow_none=True, metadata={"description": "万元"})
    size_class = fields.String(required=True, validate=validate.OneOf(SIZE_CLASSES))
    code_override_reason = fields.String(allow_none=True)


class EnterpriseListSchema(Schema):
    items = fields.List(fields.Nested(EnterpriseSchema), required=True)


class EnterpriseQuerySchema(Schema):
    q = fields.String()
    limit = fields.Integer(validate=validate.Range(1, 200), metadata={"default": 50})


class PolicyToolSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    valid_from = Day(required=True, allow_none=True)
    valid_to = Day(required=True, allow_none=True)
    eligible_types = fields.List(fields.String())
    active = fields.Boolean(required=True)


class PolicyToolListSchema(Schema):
    items = fields.List(fields.Nested(PolicyToolSchema), required=True)


class TownshipSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    active = fields.Boolean(required=True)


class TownshipListSchema(Schema):
    items = fields.List(fields.Nested(TownshipSchema), required=True)


class OpenApiDocumentSchema(Schema):
    openapi = fields.String(required=True)
    paths = fields.Dict(required=True)
