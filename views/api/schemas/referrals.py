"""Referrals: the bureau push (ITEM and its result), REFERRAL, a page of them, assignment.

The vocabularies come from their single sources (:data:`advisors.sizing.INDUSTRIES`,
:data:`models.STATUSES`, …); the ITEM's rules are the referral rule set's
(:func:`advisors.services.referrals.clean_item`), which the web form and the list upload share:
:class:`ReferralItemSchema` only stops what that rule set cannot read.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from advisors.services import referrals as service
from advisors.services.firms import clean_text
from advisors.sizing import INDUSTRIES
from models import NEEDS, OUTCOMES, SIZE_CLASSES, STATUSES

from .fields import (
    BodySchema,
    Checked,
    Day,
    LocalDateTime,
    Money,
    MoneyIn,
    Text,
    Township,
    Username,
    Version,
    bad_unicode,
    field_messages,
    unicode_ok,
)

RESULT_STATUSES = tuple(service.counts([]))  # created, merged, duplicate, rejected
SLA_FLAGS = ("overdue", "due_soon")
_MONEY_IN = {
    "type": ["number", "string"],
    "description": "万元: a number or a decimal string",
}


def _label(key: str):
    return lambda: service.item_labels()[key]


# ----------------------------------------------------------------------------- push (input)
class ReferralItemSchema(Schema):
    """One firm referred by a bureau (the contract's ITEM). Checked with ``partial=True``:
    a missing field, an unknown industry, a bad credit code are the rule set's to report."""

    class Meta:
        unknown = EXCLUDE

    credit_code = Text(
        _label("credit_code"),
        required=True,
        metadata={"description": "统一社会信用代码 (18 characters, check characters validated)"},
    )
    name = Text(_label("name"), numbers=True, required=True, metadata={"maxLength": 200})
    industry = Text(_label("industry"), required=True, metadata={"enum": list(INDUSTRIES)})
    township = Township(
        _label("township"),
        metadata={
            "type": ["string", "integer"],
            "description": "A listed township's name or code, or any other text (kept as "
            "written, with a warning in the result)",
        },
    )
    address = Text(_label("address"), numbers=True, metadata={"maxLength": 200})
    employees = Checked(_label("employees"), metadata={"type": ["integer", "string"]})
    revenue_wan = MoneyIn(_label("revenue_wan"), metadata=_MONEY_IN)
    assets_wan = MoneyIn(_label("assets_wan"), metadata=_MONEY_IN)
    contact_name = Text(_label("contact_name"), numbers=True, metadata={"maxLength": 60})
    contact_phone = Text(_label("contact_phone"), numbers=True, metadata={"maxLength": 30})
    override_reason = Checked(
        _label("override_reason"), metadata={"description": "Not used by the push"}
    )
    needs = Checked(
        _label("needs"),
        required=True,
        metadata={
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "enum": list(NEEDS)},
            "description": "`insurance` is an extension of the contract's three needs",
        },
    )
    amount_wan = MoneyIn(
        _label("amount_wan"),
        metadata={**_MONEY_IN, "description": "万元; required when needs has financing"},
    )
    purpose = Text(_label("purpose"), numbers=True, metadata={"maxLength": 200})
    note = Text(_label("note"), numbers=True, metadata={"maxLength": 2000})


class ReferralPushSchema(Schema):
    """``{"items": [ITEM, …]}``: 1 to 1000 items, each answered on its own (so the envelope
    is read by :func:`push_items` and each item checked by :func:`shape_errors`)."""

    items = fields.List(
        fields.Nested(ReferralItemSchema),
        required=True,
        validate=validate.Length(min=1, max=service.MAX_ITEMS),
    )


def push_items(body) -> list:
    """The push's raw items, or ValidationError naming ``items``."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ValidationError({"items": [_('Send a JSON object {"items": [...]} with a list.')]})
    if not 1 <= len(items) <= service.MAX_ITEMS:
        raise ValidationError(
            {"items": [_("Send from 1 to %(n)s items per call.", n=service.MAX_ITEMS)]}
        )
    return items


_ITEM = ReferralItemSchema()


def shape_errors(item) -> dict[str, str]:
    """The fields of one ITEM the rule set cannot read (text where it expects text, a
    township as text or a whole number, no lone surrogate anywhere): ``{field: message}``,
    empty when it can read them all. A non-object is the rule set's to refuse."""
    if not isinstance(item, dict):
        return {}
    return field_messages(_ITEM.validate(item, partial=True))


# ----------------------------------------------------------------------------- push (output)
class ReferralResultSchema(Schema):
    index = fields.Integer(required=True, metadata={"description": "Position in `items`"})
    status = fields.String(required=True, validate=validate.OneOf(RESULT_STATUSES))
    referral_id = fields.Integer(required=True, allow_none=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "Field -> message; empty for created items"},
    )
    warnings = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "Field -> message for what was accepted but needs attention "
            "(`township`: not on the city's list, kept as written)"
        },
    )


class ReferralCountsSchema(Schema):
    created = fields.Integer(required=True)
    merged = fields.Integer(required=True)
    duplicate = fields.Integer(required=True)
    rejected = fields.Integer(required=True)


class ReferralPushResultSchema(Schema):
    results = fields.List(fields.Nested(ReferralResultSchema), required=True)
    counts = fields.Nested(ReferralCountsSchema, required=True)


# ----------------------------------------------------------------------------- REFERRAL
class TownshipRefSchema(Schema):
    code = fields.String(required=True, allow_none=True)
    name = fields.String(required=True)
    matched = fields.Boolean(required=True)


class ReferralFirmSchema(Schema):
    credit_code = fields.String(required=True)
    name = fields.String(required=True)
    industry = fields.String(required=True, validate=validate.OneOf(INDUSTRIES))
    size_class = fields.String(required=True, validate=validate.OneOf(SIZE_CLASSES))
    township = fields.Nested(TownshipRefSchema, allow_none=True)


class TimelineEventSchema(Schema):
    at = LocalDateTime(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    by = fields.String(required=True, metadata={"description": "Who made the change"})
    note = fields.String(required=True, allow_none=True)
    kind = fields.String(metadata={"description": "created, co_referred, assigned, …"})


class OutcomeSchema(Schema):
    result = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    amount_wan = Money(required=True, allow_none=True)
    note = fields.String(required=True, allow_none=True)


class ReferralSchema(Schema):
    """REFERRAL, from the values :func:`views.api.referrals.referral_rows` gathers."""

    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    enterprise = fields.Nested(ReferralFirmSchema, required=True)
    referrers = fields.List(
        fields.String(), required=True, metadata={"description": "Referring bureaus' codes"}
    )
    advisor = fields.String(required=True, allow_none=True, metadata={"description": "Username"})
    needs = fields.List(fields.String(validate=validate.OneOf(NEEDS)), required=True)
    amount_wan = Money(required=True, allow_none=True)
    created_at = LocalDateTime(required=True)
    timeline = fields.List(fields.Nested(TimelineEventSchema), required=True)
    outcome = fields.Nested(OutcomeSchema, required=True, allow_none=True)
    # Extensions of the contract
    institution = fields.String(allow_none=True, metadata={"description": "Advisor's org"})
    purpose = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    rejected_reason = fields.String(allow_none=True)
    assigned_at = LocalDateTime(allow_none=True)
    first_contact_due = Day(allow_none=True)
    first_contact_on = Day(allow_none=True)
    sla = fields.String(allow_none=True, validate=validate.OneOf(SLA_FLAGS))
    version = fields.Integer(metadata={"description": "Optimistic-lock version"})


class ReferralPageSchema(Schema):
    items = fields.List(fields.Nested(ReferralSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class ReferralListQuerySchema(Schema):
    """The list's query string (read by the list's paging; described here)."""

    status = fields.String(validate=validate.OneOf(STATUSES))
    cursor = fields.String(metadata={"description": "`next_cursor` of the previous page"})
    limit = fields.Integer(validate=validate.Range(1, 200), metadata={"default": 50})


# ----------------------------------------------------------------------------- assignment
class _Note(fields.Field):
    """The assignment's note: text of at most 500 characters once tidied, or null."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(_("The note must be text."))
        if not unicode_ok(value):
            raise ValidationError(bad_unicode(_("Note")))
        note = clean_text(value) or None
        if note is not None and len(note) > 500:
            raise ValidationError(_("At most %(n)s characters.", n=500))
        return note


class AssignSchema(BodySchema):
    """``{"advisor": username, "note": …, "version": …}``."""

    not_object_field = "advisor"
    not_object = _l('Send a JSON object {"advisor": "<username>"}.')

    advisor = Username(tidy=clean_text)
    note = _Note(allow_none=True, metadata={"type": "string", "maxLength": 500})
    version = Version()
