"""``GET /api/v1/openapi.json``: the API described in OpenAPI 3.1, written from the routes
themselves. Every ``/api/v1`` rule of the app is a path; each route says what it reads and
answers with :func:`operation` (the marshmallow schemas it loads and dumps), and apispec's
marshmallow plugin turns those schemas into the document. Nothing is written by hand twice.

To document a new route: decorate it with ``@operation(summary, body=…, ok=…, errors=…)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app, jsonify

from advisors.permissions import PUBLIC, allow

from ._common import bp
from .schemas import OPENAPI_TYPES
from .schemas.core import ErrorSchema, OpenApiDocumentSchema

_ERRORS = {
    401: "Missing or bad token",
    403: "Role not allowed",
    404: "Not found or outside the caller's scope",
    409: "Conflict",
    422: "Invalid input; `fields` names each bad field",
}
_PARAM = re.compile(r"<(?:([^:<>]+):)?([^<>]+)>")


@dataclass
class Operation:
    summary: str
    description: str | None = None
    body: type | None = None  # a marshmallow Schema class
    body_required: bool = True
    query: type | None = None
    ok: type | None = None
    status: int = 200
    errors: tuple[int, ...] = (401,)
    params: dict = field(default_factory=dict)  # path parameter -> extra description
    public: bool = False


_OPERATIONS: dict[str, Operation] = {}


def operation(summary: str, **kwargs):
    """Describe the decorated route of the API blueprint for the document."""

    def decorate(view):
        _OPERATIONS[f"{bp.name}.{view.__name__}"] = Operation(summary, **kwargs)
        return view

    return decorate


def _json(schema) -> dict:
    return {"application/json": {"schema": schema}}


def _parameters(rule: str, op: Operation) -> list[dict]:
    params = []
    for converter, name in _PARAM.findall(rule):
        schema = {"type": "integer", "minimum": 1} if converter == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        params[-1].update(op.params.get(name, {}))
    if op.query is not None:
        params.append({"in": "query", "schema": op.query})
    return params


def _operation(rule: str, op: Operation) -> dict:
    responses = {str(op.status): {"description": "OK"}}
    if op.ok is not None:
        responses[str(op.status)]["content"] = _json(op.ok)
    for code in op.errors:
        responses[str(code)] = {"description": _ERRORS[code], "content": _json(ErrorSchema)}
    out: dict = {"summary": op.summary, "responses": responses}
    if op.description:
        out["description"] = op.description
    if params := _parameters(rule, op):
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required, "content": _json(op.body)}
    if op.public:
        out["security"] = []
    return out


def build_document(app: Flask) -> dict:
    """The OpenAPI document of every ``/api/v1`` route of ``app``."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Financial-advisor team case management API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "Bearer-token API. Money in 万元 (decimal strings), dates YYYY-MM-DD."
        },
        security=[{"bearer": []}],
    )
    for field_cls, type_format in OPENAPI_TYPES.items():
        plugin.converter.map_to_openapi_type(field_cls, *type_format)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(bp.url_prefix):
            continue
        op = _OPERATIONS.get(rule.endpoint) or Operation(rule.endpoint)
        path = _PARAM.sub(r"{\2}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule.rule, op)
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path])
    return spec.to_dict()


def document(app: Flask) -> dict:
    """:func:`build_document`, once per app."""
    if "api_openapi" not in app.extensions:
        app.extensions["api_openapi"] = build_document(app)
    return app.extensions["api_openapi"]


@bp.route("/openapi.json")
@allow(PUBLIC)
@operation("This document", ok=OpenApiDocumentSchema, errors=(), public=True)
def openapi_document():
    return jsonify(document(current_app))
