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
    },
}


@bp.route("/openapi.json")
@allow(PUBLIC)
def openapi_document():
    return jsonify(SPEC)
