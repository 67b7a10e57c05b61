"""``GET /api/v1/openapi.json``: the API described in OpenAPI 3.1. A test keeps it and the
routes in step (every route documented, every documented route real)."""

from __future__ import annotations

from flask import jsonify

from advisors.permissions import PUBLIC, allow

from . import bp

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict:
    text = {
        401: "Missing or bad token",
        403: "Role not allowed",
        404: "Not found or outside the caller's scope",
        409: "Conflict",
        422: "Invalid input; `fields` names each bad field",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": _ERROR}}}
        for c in codes
    }


def _ok(schema: dict, description: str = "OK") -> dict:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}}
    }


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


_MONEY = {
    "type": "string",
    "pattern": r"^[0-9]+(\.[0-9]+)?$",
    "description": "万元 as a decimal string (no trailing zeros)",
}
_MONEY_IN = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}],
    "description": "万元: a JSON number or a decimal string",
}
_INDUSTRIES = [
    "agriculture",
    "industry",
    "construction",
    "wholesale",
    "retail",
    "transport",
    "warehousing",
    "postal",
    "accommodation",
    "catering",
    "information_transmission",
    "software_it",
    "real_estate",
    "property_management",
    "leasing_business",
    "other",
]
_STATUSES = [
    "submitted",
    "assigned",
    "in_service",
    "resolved",
    "closed",
    "rejected",
    "withdrawn",
]
_REFERRAL_ID = {
    "name": "referral_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}

REFERRAL_SCHEMAS: dict = {
    "ReferralItem": {
        "type": "object",
        "description": "One firm referred by a bureau (the contract's ITEM).",
        "required": ["credit_code", "name", "industry", "needs"],
        "properties": {
            "credit_code": {
                "type": "string",
                "description": "统一社会信用代码 (18 characters, check characters validated)",
            },
            "name": {"type": "string", "maxLength": 200},
            "industry": {"type": "string", "enum": _INDUSTRIES},
            "township": {
                "type": ["string", "integer"],
                "maxLength": 60,
                "description": "A listed township's name or code, or any other text (kept as "
                "written, with a warning in the result)",
            },
            "address": {"type": "string", "maxLength": 200},
            "employees": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]},
            "revenue_wan": _MONEY_IN,
            "assets_wan": _MONEY_IN,
            "contact_name": {"type": "string", "maxLength": 60},
            "contact_phone": {"type": "string", "maxLength": 30},
            "needs": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "string",
                    "enum": ["financing", "policy", "guidance", "insurance"],
                },
                "description": "`insurance` is an extension of the contract's three needs",
            },
            "amount_wan": {**_MONEY_IN, "description": "万元; required when needs has financing"},
            "purpose": {"type": "string", "maxLength": 200},
            "note": {"type": "string", "maxLength": 2000},
        },
    },
    "ReferralResult": {
        "type": "object",
        "required": ["index", "status", "referral_id", "errors"],
        "properties": {
            "index": {"type": "integer", "description": "Position of the item in `items`"},
            "status": {"type": "string", "enum": ["created", "merged", "duplicate", "rejected"]},
            "referral_id": {"type": ["integer", "null"]},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Field -> message; empty for created items",
            },
            "warnings": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Field -> message for what was accepted but needs attention "
                "(`township`: not on the city's list, kept as written)",
            },
        },
    },
    "ReferralCounts": {
        "type": "object",
        "required": ["created", "merged", "duplicate", "rejected"],
        "properties": {
            k: {"type": "integer"} for k in ("created", "merged", "duplicate", "rejected")
        },
    },
    "ReferralSubmitResponse": {
        "type": "object",
        "required": ["results", "counts"],
        "properties": {
            "results": {"type": "array", "items": _ref("ReferralResult")},
            "counts": _ref("ReferralCounts"),
        },
    },
    "TimelineEvent": {
        "type": "object",
        "required": ["at", "status", "by", "note"],
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": _STATUSES},
            "by": {"type": "string", "description": "Who made the change (display name)"},
            "note": {"type": ["string", "null"]},
            "kind": {
                "type": "string",
                "description": "created, co_referred, assigned, reassigned, rejected, …",
            },
        },
    },
    "Outcome": {
        "type": "object",
        "required": ["result", "amount_wan", "note"],
        "properties": {
            "result": {
                "type": "string",
                "enum": ["financed", "not_financed", "policy_delivered", "no_need", "declined"],
            },
            "amount_wan": _nullable(_MONEY),
            "note": {"type": ["string", "null"]},
        },
    },
    "Referral": {
        "type": "object",
        "required": [
            "id",
            "status",
            "enterprise",
            "referrers",
            "advisor",
            "needs",
            "amount_wan",
            "created_at",
            "timeline",
            "outcome",
        ],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": _STATUSES},
            "enterprise": {
                "type": "object",
                "required": ["credit_code", "name", "industry", "size_class"],
                "properties": {
                    "credit_code": {"type": "string"},
                    "name": {"type": "string"},
                    "industry": {"type": "string", "enum": _INDUSTRIES},
                    "size_class": {
                        "type": "string",
                        "enum": ["micro", "small", "medium", "large", "unknown"],
                    },
                    "township": {
                        "type": ["object", "null"],
                        "required": ["code", "name", "matched"],
                        "properties": {
                            "code": {"type": ["string", "null"]},
                            "name": {"type": "string"},
                            "matched": {"type": "boolean"},
                        },
                    },
                },
            },
            "referrers": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Codes of the referring bureaus, first referrer first",
            },
            "advisor": {"type": ["string", "null"], "description": "Username"},
            "needs": {"type": "array", "items": {"type": "string"}},
            "amount_wan": _nullable(_MONEY),
            "created_at": {"type": "string", "format": "date-time", "description": "+08:00"},
            "timeline": {"type": "array", "items": _ref("TimelineEvent")},
            "outcome": _nullable(_ref("Outcome")),
            "institution": {"type": ["string", "null"], "description": "Advisor's org code"},
            "purpose": {"type": ["string", "null"]},
            "note": {"type": ["string", "null"]},
            "rejected_reason": {"type": ["string", "null"]},
            "assigned_at": {"type": ["string", "null"], "format": "date-time"},
            "first_contact_due": {"type": ["string", "null"], "format": "date"},
            "first_contact_on": {"type": ["string", "null"], "format": "date"},
            "sla": {
                "type": ["string", "null"],
                "enum": ["overdue", "due_soon", None],
                "description": "First-contact clock (working days, Chinese calendar)",
            },
            "version": {"type": "integer", "description": "Optimistic-lock version"},
        },
    },
    "ReferralPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref("Referral")},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
}

REFERRAL_PATHS: dict = {
    "/api/v1/referrals": {
        "post": {
            "summary": "Push firms for the advisor team (bureau)",
            "description": (
                "1 to 1000 items. Every item gets exactly one result; accepted items are "
                "saved even when others are rejected."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 1000,
                                    "items": _ref("ReferralItem"),
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                **_ok(_ref("ReferralSubmitResponse")),
                **_errors(401, 403, 409, 422),
            },
        },
        "get": {
            "summary": "Referrals in the caller's scope, newest first (keyset pagination)",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": _STATUSES}},
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "`next_cursor` of the previous page (opaque)",
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                },
            ],
            "responses": {**_ok(_ref("ReferralPage")), **_errors(401, 422)},
        },
    },
    "/api/v1/referrals/{referral_id}": {
        "get": {
            "summary": "One referral (in scope)",
            "parameters": [_REFERRAL_ID],
            "responses": {**_ok(_ref("Referral")), **_errors(401, 404)},
        }
    },
    "/api/v1/referrals/{referral_id}/assign": {
        "post": {
            "summary": "Assign or reassign the case to an advisor (finance office)",
            "parameters": [_REFERRAL_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["advisor"],
                            "properties": {
                                "advisor": {"type": "string", "description": "Username"},
                                "note": {"type": "string", "maxLength": 500},
                                "version": {
                                    "type": "integer",
                                    "description": "Expected version; 409 when it changed",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                **_ok(_ref("Referral")),
                **_errors(401, 403, 404, 409, 422),
            },
        }
    },
}

_VISIT_ID = {
    "name": "visit_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_DATE = {"type": "string", "format": "date"}

VISIT_SCHEMAS: dict = {
    "VisitIn": {
        "type": "object",
        "required": ["referral_id", "visited_on", "mode", "roles", "summary"],
        "description": "Each role's fields are required only when that role is in `roles`.",
        "properties": {
            "referral_id": {"type": "integer", "description": "A case assigned to the caller"},
            "visited_on": {**_DATE, "description": "Not in the future, not before the referral"},
            "mode": {"type": "string", "enum": ["onsite", "phone", "online", "event"]},
            "roles": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "string",
                    "enum": ["policy", "guidance", "financing", "information"],
                },
            },
            "summary": {"type": "string", "maxLength": 5000},
            "policies": {
                "type": "array",
                "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "description": "Catalogue ids or codes (role policy)",
            },
            "policy_note": {"type": "string", "maxLength": 500},
            "guidance_topic": {"type": "string", "maxLength": 100},
            "guidance_advice": {"type": "string", "maxLength": 5000},
            "financing": {
                "type": "object",
                "required": ["stage"],
                "description": (
                    "Role financing. Opens an application, or moves on the one named by "
                    "`application_id` (or the case's only open one with the same lender). "
                    "Stages never go back."
                ),
                "properties": {
                    "stage": {
                        "type": "string",
                        "enum": ["applied", "approved", "disbursed", "declined"],
                    },
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
            },
            "information": {
                "type": "object",
                "required": ["note"],
                "properties": {
                    "note": {"type": "string", "maxLength": 5000},
                    "risk_signal": {"type": "boolean"},
                    "risk_type": {
                        "type": "string",
                        "enum": ["illegal_fundraising", "illegal_deposit", "fraud", "other"],
                    },
                },
            },
            "next_visit_on": _DATE,
        },
    },
    "Visit": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "referral_id": {"type": "integer"},
            "visited_on": _DATE,
            "mode": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "summary": {"type": "string"},
            "advisor": {"type": ["string", "null"]},
            "institution": {"type": ["string", "null"]},
            "policies": {"type": "array", "items": {"type": "object"}},
            "policy_note": {"type": ["string", "null"]},
            "guidance_topic": {"type": ["string", "null"]},
            "guidance_advice": {"type": ["string", "null"]},
            "information": {
                "type": ["object", "null"],
                "description": "Risk reports appear only to the reporter and the office roles",
            },
            "financing": {"type": "array", "items": {"type": "object"}},
            "next_visit_on": {"type": ["string", "null"], "format": "date"},
            "created_at": {"type": "string"},
            "version": {"type": "integer"},
        },
    },
}

VISIT_PATHS: dict = {
    "/api/v1/visits": {
        "post": {
            "summary": "Log a visit (the advisor the case is assigned to)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("VisitIn")}},
            },
            "responses": {
                "201": {
                    "description": "Created",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {"id": {"type": "integer"}},
                            }
                        }
                    },
                },
                **_errors(401, 403, 404, 409, 422),
            },
        },
        "get": {
            "summary": "A case's visits in the caller's scope, newest first",
            "parameters": [
                {
                    "name": "referral_id",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }
            ],
            "responses": {
                **_ok(
                    {
                        "type": "object",
                        "properties": {"items": {"type": "array", "items": _ref("Visit")}},
                    }
                ),
                **_errors(401, 403, 422),
            },
        },
    },
    "/api/v1/visits/{visit_id}": {
        "get": {
            "summary": "One visit (in scope)",
            "parameters": [_VISIT_ID],
            "responses": {**_ok(_ref("Visit")), **_errors(401, 403, 404)},
        }
    },
}

_PERIOD = {
    "name": "period",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": r"^[0-9]{4}(-[0-9]{2}|-[Qq][1-4])?$"},
    "description": "2026-07 (month), 2026-Q3 (quarter) or 2026 (year)",
}
_DECIMAL = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "A decimal as a string (no trailing zeros)",
}
_METRIC_MAP = {
    "type": "object",
    "additionalProperties": _nullable(_DECIMAL),
    "description": "Metric key -> value (null: no data)",
}

ASSESSMENT_SCHEMAS: dict = {
    "AssessmentRow": {
        "type": "object",
        "required": ["advisor", "institution", "score", "rank", "institution_rank", "metrics"],
        "properties": {
            "advisor": {"type": "string", "description": "Username"},
            "name": {"type": "string", "description": "Display name"},
            "institution": {"type": ["string", "null"], "description": "Org code"},
            "score": _DECIMAL,
            "rank": {"type": ["integer", "null"]},
            "institution_rank": {"type": ["integer", "null"]},
            "metrics": {**_METRIC_MAP, "description": "Metric key -> raw value"},
            "computed": {**_DECIMAL, "description": "The rubric's points"},
            "adjustment": {**_DECIMAL, "description": "Sum of the adjustments"},
            "points": {
                **_METRIC_MAP,
                "description": "Metric key -> points (null: not applicable, no data)",
            },
            "not_applicable": {
                "type": "array",
                "items": {"type": "string"},
                "description": (
                    "Metrics with no data that the rubric counts as not applicable: their "
                    "weight is spread over the others in proportion"
                ),
            },
            "adjustments": {
                "type": "array",
                "description": "Withdrawn ones too (withdrawn_at set); only the others count",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "points": _DECIMAL,
                        "reason": {"type": "string"},
                        "at": {"type": "string", "format": "date-time"},
                        "by": {"type": "string"},
                        "withdrawn_at": {"type": ["string", "null"], "format": "date-time"},
                        "withdrawn_by": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
    "AssessmentInstitution": {
        "type": "object",
        "properties": {
            "institution": {"type": "string", "description": "Org code"},
            "name": {"type": "string"},
            "advisors": {"type": "integer"},
            "total": _DECIMAL,
            "average": _DECIMAL,
            "rank": {"type": ["integer", "null"]},
        },
    },
    "Assessment": {
        "type": "object",
        "required": ["period", "status", "rubric_version", "compiled_at", "rows"],
        "properties": {
            "period": {"type": "string"},
            "kind": {"type": "string", "enum": ["month", "quarter", "year"]},
            "status": {"type": "string", "enum": ["draft", "published"]},
            "rubric_version": {"type": "integer"},
            "compiled_at": {"type": "string", "format": "date-time", "description": "+08:00"},
            "compile_count": {"type": "integer"},
            "published_at": {"type": ["string", "null"], "format": "date-time"},
            "version": {"type": "integer", "description": "Optimistic-lock version"},
            "in_progress": {
                "type": "boolean",
                "description": (
                    "Compiled before the period ended (the current period): the figures change "
                    "until it ends and it is compiled again"
                ),
            },
            "ends_on": {"type": "string", "format": "date"},
            "adjustment_bound": {
                **_DECIMAL,
                "description": "The rubric's bound on adjustments, either way",
            },
            "document_number": {
                "type": ["string", "null"],
                "description": "The notice's document number (文号), given when published",
            },
            "rows": {
                "type": "array",
                "items": _ref("AssessmentRow"),
                "description": "In rank order; only the rows the caller may see",
            },
            "institutions": {"type": "array", "items": _ref("AssessmentInstitution")},
            "comments": {
                "type": "array",
                "description": "Review comments (office roles only)",
                "items": {
                    "type": "object",
                    "properties": {
                        "author": {"type": "string"},
                        "advisor": {"type": ["string", "null"]},
                        "body": {"type": "string"},
                        "at": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    },
    "AssessmentPeriod": {
        "type": "object",
        "properties": {
            "period": {"type": "string"},
            "status": {"type": "string", "enum": ["draft", "published"]},
            "compiled_at": {"type": "string", "format": "date-time"},
            "rubric_version": {"type": "integer"},
        },
    },
    "BreakdownMetric": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "label": {"type": "string"},
            "source": {"type": "string", "description": "What the compile counts"},
            "raw": _nullable(_DECIMAL),
            "points": _nullable(_DECIMAL),
            "applicable": {
                "type": "boolean",
                "description": "False: no data, and the rubric counts it as not applicable",
            },
            "no_data": {"type": "string", "enum": ["not_applicable", "zero"]},
            "weight": _DECIMAL,
            "effective_weight": {
                **_nullable(_DECIMAL),
                "description": "The weight it counts with, the weights of metrics that do "
                "not apply spread over those that do",
            },
            "cap": _nullable(_DECIMAL),
            "rule": {"type": "string"},
            "rule_label": {"type": "string"},
            "params": {"type": "object", "description": "The rule's parameters for the period"},
            "total": {"type": "integer", "description": "How many records produced it"},
            "records": {
                "type": "array",
                "maxItems": 200,
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {
                            "type": "string",
                            "enum": ["visit", "referral", "financing", "risk_report", "rating"],
                        },
                        "id": {"type": "integer"},
                        "referral_id": {"type": ["integer", "null"]},
                        "date": {"type": ["string", "null"], "format": "date"},
                        "firm": {"type": "string"},
                        "counted": {"type": "boolean"},
                        "value": {"description": "What counted (roles, days, amount, rating)"},
                        "note": {"type": "string"},
                    },
                },
            },
        },
    },
}

ASSESSMENT_PATHS: dict = {
    "/api/v1/assessments": {
        "get": {
            "summary": "The compiled periods the caller may open, latest first",
            "responses": {
                **_ok(
                    {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": _ref("AssessmentPeriod")}
                        },
                    }
                ),
                **_errors(401, 403),
            },
        },
        "post": {
            "summary": "Compile a period, or recompile its draft (finance office)",
            "description": (
                "Recompiling gives the same result for the same data; a published period is "
                "not changed (409)."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["period"],
                            "properties": {
                                "period": {
                                    "type": "string",
                                    "description": "2026-07, 2026-Q3 or 2026",
                                }
                            },
                        }
                    }
                },
            },
            "responses": {**_ok(_ref("Assessment")), **_errors(401, 403, 409, 422)},
        },
    },
    "/api/v1/assessments/{period}": {
        "get": {
            "summary": "A period's assessment as the caller may see it",
            "description": (
                "Office roles and admins: every row, drafts too; an advisor: their own row of "
                "a published period; a liaison: its institution's rows; bureaus: 403."
            ),
            "parameters": [_PERIOD],
            "responses": {**_ok(_ref("Assessment")), **_errors(401, 403, 404, 422)},
        }
    },
    "/api/v1/assessments/{period}/publish": {
        "post": {
            "summary": "Publish a draft (finance office); it is frozen from then on",
            "parameters": [_PERIOD],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "version": {
                                    "type": "integer",
                                    "description": "Expected version; 409 when it changed",
                                },
                                "doc_number": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "maximum": 99999,
                                    "description": (
                                        "The notice's number in the year (文号); left out: "
                                        "the next one. 422 when already used that year"
                                    ),
                                },
                            },
                        }
                    }
                },
            },
            "responses": {**_ok(_ref("Assessment")), **_errors(401, 403, 404, 409, 422)},
        }
    },
    "/api/v1/assessments/{period}/adjustments": {
        "post": {
            "summary": "Adjust an advisor's score in a draft, with the reason (finance office)",
            "parameters": [_PERIOD],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["advisor", "points", "reason"],
                            "properties": {
                                "advisor": {"type": "string", "description": "Username"},
                                "points": {
                                    "anyOf": [{"type": "number"}, {"type": "string"}],
                                    "description": (
                                        "Not 0, at most 2 decimals, within the rubric's "
                                        "adjustment_bound either way (10 by default), and so "
                                        "the sum of the advisor's adjustments; else 422"
                                    ),
                                },
                                "reason": {"type": "string", "maxLength": 500},
                            },
                        }
                    }
                },
            },
            "responses": {**_ok(_ref("Assessment")), **_errors(401, 403, 404, 409, 422)},
        }
    },
    "/api/v1/assessments/{period}/adjustments/{adjustment_id}/withdraw": {
        "post": {
            "summary": "Withdraw an adjustment while the period is a draft (finance office)",
            "description": (
                "The adjustment is kept, marked with who withdrew it and when (audited), and "
                "no longer counts; 409 once the period is published or when it was already "
                "withdrawn."
            ),
            "parameters": [
                _PERIOD,
                {
                    "name": "adjustment_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                },
            ],
            "responses": {**_ok(_ref("Assessment")), **_errors(401, 403, 404, 409, 422)},
        }
    },
    "/api/v1/assessments/{period}/advisors/{user_id}": {
        "get": {
            "summary": "What produced each metric of one advisor's row (the breakdown)",
            "parameters": [
                _PERIOD,
                {
                    "name": "user_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                    "description": "The advisor's user id",
                },
            ],
            "responses": {
                **_ok(
                    {
                        "type": "object",
                        "properties": {
                            "period": {"type": "string"},
                            "metrics": {"type": "array", "items": _ref("BreakdownMetric")},
                        },
                    }
                ),
                **_errors(401, 403, 404, 422),
            },
        }
    },
}

SPEC: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "Financial-advisor team case management API",
        "version": "1.0.0",
        "description": "Bearer-token API. Money in 万元 (decimal strings), dates YYYY-MM-DD.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "fields": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    }
                },
            },
            "Enterprise": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "credit_code": {"type": "string", "minLength": 18, "maxLength": 18},
                    "name": {"type": "string"},
                    "industry": {"type": "string"},
                    "township": {"type": ["string", "null"]},
                    "township_matched": {"type": "boolean"},
                    "employees": {"type": ["integer", "null"]},
                    "revenue_wan": {"type": ["string", "null"]},
                    "assets_wan": {"type": ["string", "null"]},
                    "size_class": {
                        "type": "string",
                        "enum": ["micro", "small", "medium", "large", "unknown"],
                    },
                    "code_override_reason": {"type": ["string", "null"]},
                },
            },
            "PolicyTool": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "code": {"type": "string"},
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "valid_from": {"type": ["string", "null"], "format": "date"},
                    "valid_to": {"type": ["string", "null"], "format": "date"},
                    "eligible_types": {"type": "array", "items": {"type": "string"}},
                    "active": {"type": "boolean"},
                },
            },
            **REFERRAL_SCHEMAS,
            **VISIT_SCHEMAS,
            **ASSESSMENT_SCHEMAS,
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": _ok({"type": "object"}),
            }
        },
        "/api/v1/me": {
            "get": {
                "summary": "The token's user",
                "responses": {
                    **_ok(
                        {
                            "type": "object",
                            "properties": {
                                "username": {"type": "string"},
                                "display_name": {"type": "string"},
                                "role": {"type": "string"},
                                "org": {"type": ["string", "null"]},
                            },
                        }
                    ),
                    **_errors(401),
                },
            }
        },
        "/api/v1/enterprises": {
            "get": {
                "summary": "Search the firm registry by credit code or name (in scope)",
                "parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}},
                ],
                "responses": {
                    **_ok(
                        {
                            "type": "object",
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Enterprise"},
                                }
                            },
                        }
                    ),
                    **_errors(401, 403, 422),
                },
            }
        },
        "/api/v1/enterprises/{code}": {
            "get": {
                "summary": "One firm by credit code (in scope)",
                "parameters": [
                    {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    **_ok({"$ref": "#/components/schemas/Enterprise"}),
                    **_errors(401, 403, 404),
                },
            }
        },
        "/api/v1/policy-tools": {
            "get": {
                "summary": "The policy-tool catalogue",
                "responses": {
                    **_ok(
                        {
                            "type": "object",
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/PolicyTool"},
                                }
                            },
                        }
                    ),
                    **_errors(401),
                },
            }
        },
        "/api/v1/townships": {
            "get": {
                "summary": "The city's townships and streets",
                "responses": {
                    **_ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["code", "name", "active"],
                                        "properties": {
                                            "code": {"type": "string"},
                                            "name": {"type": "string"},
                                            "active": {"type": "boolean"},
                                        },
                                    },
                                }
                            },
                        }
                    ),
                    **_errors(401),
                },
            }
        },
        **REFERRAL_PATHS,
        **VISIT_PATHS,
        **ASSESSMENT_PATHS,
    },
}


@bp.route("/openapi.json")
@allow(PUBLIC)
def openapi_document():
    return jsonify(SPEC)
