"""The JSON API's request and response shapes, declared once (marshmallow): they validate
what comes in, serialise what goes out, and :mod:`views.api.openapi` reads them (apispec) to
write ``/api/v1/openapi.json``. One module per area; the field types are in :mod:`.fields`."""

from .fields import OPENAPI_TYPES, field_messages, unicode_ok

__all__ = ["OPENAPI_TYPES", "field_messages", "unicode_ok"]
