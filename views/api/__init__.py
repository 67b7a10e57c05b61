"""The JSON API (``/api/v1``): bearer tokens only (:mod:`views._bearer`), errors in the
contract's shape, request and response shapes declared once in :mod:`.schemas`.

The routes register on :data:`bp` (defined in :mod:`._common`) when their modules load."""

from __future__ import annotations

from . import assessments, core, indicators, openapi, referrals, visits  # noqa: F401  (routes register on bp)
from ._common import bp

__all__ = ["bp"]
