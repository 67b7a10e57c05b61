"""Visits: the visit an advisor logs, and a visit as read back.

A visit's rules (dates, roles and what each needs, stages that never go back) are the visit
service's (:func:`advisors.services.visits.log_visit`), which the web form shares: the input
schema stops what is not a JSON object or not valid Unicode and describes the rest.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from models import FINANCING_STAGES, RISK_STATUSES, RISK_TYPES, VISIT_MODES, VISIT_ROLES

from .fields import BodySchema, Day, LocalDateTime, Money

_DATE = {"type": "string", "format": "date"}
_MONEY_IN = {"type": ["number", "string"], "description": "万元: a number or a decimal string"}


def _described(**schema) -> fields.Raw:
    """A field the visit service reads and checks; its description only."""
    return fields.Raw(metadata=schema)


class VisitInSchema(BodySchema):
    """Each role's fields are required only when that role is in ``roles``."""

    not_object_field = "visit"
    not_object = _l("Send the visit as a JSON object.")
    whole_unicode = True
    bad_text = _l("The visit contains characters that are not valid Unicode.")

    referral_id = _described(type="integer", description="A case assigned to the caller")
    visited_on = _described(**_DATE, description="Not in the future, not before the referral")
    mode = _described(type="string", enum=list(VISIT_MODES))
    roles = _described(
        type="array", minItems=1, items={"type": "string", "enum": list(VISIT_ROLES)}
    )
    summary = _described(type="string", maxLength=5000)
    policies = _described(
        type="array",
        items={"type": ["integer", "string"]},
        description="Catalogue ids or codes (role policy)",
    )
    policy_note = _described(type="string", maxLength=500)
    guidance_topic = _described(type="string", maxLength=100)
    guidance_advice = _described(type="string", maxLength=5000)
    financing = _described(
        type="object",
        required=["stage"],
        description="Role financing. Opens an application, or moves on the one named by "
        "`application_id` (or the case's only open one with the same lender). Stages never "
        "go back.",
        properties={
            "stage": {"type": "string", "enum": list(FINANCING_STAGES)},
            "amount_wan": _MONEY_IN,
            "institution": {"type": "string", "description": "Lender's org code"},
            "first_loan": {"type": "boolean"},
            "unsecured": {"type": "boolean"},
            "application_id": {"type": "integer"},
            "product": {"type": "string", "maxLength": 100},
            "purpose": {"type": "string", "maxLength": 200},
            "term_months": {"type": "integer", "minimum": 1, "maximum": 600},
            "reason": {"type": "string", "maxLength": 500},
        },
    )
    information = _described(
        type="object",
        required=["note"],
        properties={
            "note": {"type": "string", "maxLength": 5000},
            "risk_signal": {"type": "boolean"},
            "risk_type": {"type": "string", "enum": list(RISK_TYPES)},
        },
    )
    next_visit_on = _described(**_DATE)


class VisitCreatedSchema(Schema):
    id = fields.Integer(required=True)


class VisitListQuerySchema(Schema):
    referral_id = fields.Integer(required=True, validate=validate.Range(min=1))


class PolicyRefSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class FinancingStepSchema(Schema):
    application_id = fields.Integer(required=True)
    stage = fields.String(required=True, validate=validate.OneOf(FINANCING_STAGES))
    on = Day(required=True)
    amount_wan = Money(required=True, allow_none=True)
    first_loan = fields.Boolean(allow_none=True)
    unsecured = fields.Boolean(allow_none=True)


class RiskRefSchema(Schema):
    id = fields.Integer(required=True)
    risk_type = fields.String(required=True, validate=validate.OneOf(RISK_TYPES))
    status = fields.String(required=True, validate=validate.OneOf(RISK_STATUSES))


class InformationSchema(Schema):
    note = fields.String(allow_none=True)
    risk_signal = fields.Boolean(required=True)
    risk_reports = fields.List(
        fields.Nested(RiskRefSchema),
        required=True,
        metadata={"description": "Only for the reporter and the office roles"},
    )


class VisitSchema(Schema):
    """A visit, from the values :func:`views.api.visits.visit_rows` gathers."""

    id = fields.Integer(required=True)
    referral_id = fields.Integer(required=True)
    visited_on = Day(required=True)
    mode = fields.String(required=True, validate=validate.OneOf(VISIT_MODES))
    roles = fields.List(fields.String(validate=validate.OneOf(VISIT_ROLES)), required=True)
    summary = fields.String(required=True)
    advisor = fields.String(required=True, allow_none=True)
    institution = fields.String(required=True, allow_none=True)
    policies = fields.List(fields.Nested(PolicyRefSchema), required=True)
    policy_note = fields.String(allow_none=True)
    guidance_topic = fields.String(allow_none=True)
    guidance_advice = fields.String(allow_none=True)
    information = fields.Nested(InformationSchema, required=True, allow_none=True)
    financing = fields.List(fields.Nested(FinancingStepSchema), required=True)
    next_visit_on = Day(allow_none=True)
    created_at = LocalDateTime(required=True)
    updated_at = LocalDateTime(allow_none=True)
    corrected_at = LocalDateTime(allow_none=True)
    correction_reason = fields.String(allow_none=True)
    version = fields.Integer(required=True)


class VisitPageSchema(Schema):
    items = fields.List(fields.Nested(VisitSchema), required=True)
