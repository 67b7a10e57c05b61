"""The referral lists' keyset position: (created_at, id), newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ... import paging


# ------------------------------------------------------------------ cursor
@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: int


def encode_cursor(created_at: datetime, referral_id: int) -> str:
    return paging.encode(created_at, referral_id)


def decode_cursor(raw) -> Cursor | None:
    """The position after which the next page starts; None for anything we did not issue
    (a web list then shows the first page, the API answers 400)."""
    position = paging.decode(raw, datetime, int)
    return Cursor(*position) if position is not None else None
