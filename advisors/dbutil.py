"""Small portable database helpers (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from models import db

CHUNK = 1000


def chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignoring_conflicts(table: Table, rows: Iterable[dict]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, in chunks: a repeated job run adds nothing twice."""
    rows = list(rows)
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    for part in chunks(rows):
        db.session.execute(module.insert(table).on_conflict_do_nothing(), list(part))
