"""Audit trail: every insert, update and delete of an audited model writes an ``AuditLog`` row
in the same transaction, with who, when, and old/new values.

Models opt in with ``__audited__ = True`` (and may list ``__audit_exclude__`` columns, such as
password hashes). The actor is set per request (or per CLI command / job) with ``acting_as``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
from collections.abc import Sequence
from contextlib import contextmanager

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import Session

from models import AuditLog, db, utcnow

_actor: contextvars.ContextVar[tuple[int | None, str, str | None]] = contextvars.ContextVar(
    "audit_actor", default=(None, "system", None)
)


def set_actor(actor_id: int | None, label: str, ip: str | None = None):
    return _actor.set((actor_id, label, ip))


def reset_actor(token) -> None:
    _actor.reset(token)


def current_actor() -> tuple[int | None, str, str | None]:
    return _actor.get()


@contextmanager
def acting_as(user=None, label: str | None = None, ip: str | None = None):
    """Attribute the writes inside the block to ``user`` (or to a label such as ``cli``)."""
    token = set_actor(
        user.id if user is not None else None,
        label or (user.username if user is not None else "system"),
        ip,
    )
    try:
        yield
    finally:
        reset_actor(token)


_SCALARS = frozenset({str, int, bool, float, type(None)})  # kept as they are


def _plain(value):
    """A column value as the audit row's JSON keeps it."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _record_id(obj) -> str:
    # In after_flush new rows have their primary key values but no identity key yet.
    key = inspect(obj).mapper.primary_key_from_instance(obj)
    return "/".join(str(part) for part in key)


_BOOKKEEPING = frozenset({"created_at", "updated_at", "version"})


def _left_out(model) -> set[str]:
    """The columns an audit row does not list: the model's ``__audit_exclude__`` (shown as
    "***" when changed) and the bookkeeping ones."""
    return set(getattr(model, "__audit_exclude__", ())) | _BOOKKEEPING


def _column_changes(obj, action: str) -> dict:
    state = inspect(obj)
    exclude = _left_out(obj)
    changes = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in exclude:
            continue
        hist = state.attrs[key].history
        if action == "insert":
            value = getattr(obj, key)
            if value is not None:
                changes[key] = [None, _plain(value)]
        elif action == "delete":
            value = (
                hist.unchanged[0] if hist.unchanged else (hist.deleted[0] if hist.deleted else None)
            )
            if value is not None:
                changes[key] = [_plain(value), None]
        elif hist.has_changes():
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            if old != new:
                changes[key] = [_plain(old), _plain(new)]
    for key in getattr(obj, "__audit_collections__", ()):
        hist = state.attrs[key].history
        if action == "update" and (hist.added or hist.deleted):
            old = sorted(str(o) for o in list(hist.unchanged) + list(hist.deleted))
            new = sorted(str(o) for o in list(hist.unchanged) + list(hist.added))
            changes[key] = [old, new]
    for excluded in exclude & {c.key for c in state.mapper.column_attrs}:
        if excluded in _BOOKKEEPING:
            continue
        if action == "update" and state.attrs[excluded].history.has_changes():
            changes[excluded] = ["***", "***"]
    return changes


@event.listens_for(Session, "after_flush")
def _write_audit_rows(session: Session, flush_context) -> None:
    actor, at = current_actor(), utcnow()
    rows = []
    for action, objects in (
        ("insert", session.new),
        ("update", session.dirty),
        ("delete", session.deleted),
    ):
        for obj in objects:
            if not getattr(type(obj), "__audited__", False):
                continue
            if action == "update" and not session.is_modified(obj):
                continue
            changes = _column_changes(obj, action)
            if action == "update" and not changes:
                continue
            rows.append(
                entry(actor, at, action, type(obj).__table__.name, _record_id(obj), changes)
            )
    if rows:
        session.execute(AuditLog.__table__.insert(), rows)


def entry(actor, at, action: str, table_name: str, record_id, changes: dict) -> dict:
    """One ``audit_log`` row: the shape every audit path writes (the flush listener,
    :func:`record_bulk`, :func:`insert_entries`). ``actor``: :func:`current_actor`."""
    actor_id, label, ip = actor
    return {
        "at": at,
        "actor_id": actor_id,
        "actor_label": label[:80],
        "action": action,
        "table_name": table_name,
        "record_id": str(record_id)[:60],
        "changes": changes,
        "ip": ip,
    }


def record_bulk(action: str, table_name: str, records: list[tuple[object, dict]]) -> None:
    """Audit rows for writes made with bulk statements (which bypass the flush listener):
    ``records`` is a list of (record id, {column: value or [old, new]})."""
    if not records:
        return
    actor, at = current_actor(), utcnow()
    rows = []
    for record_id, values in records:
        if action == "insert":
            changes = {k: [None, _plain(v)] for k, v in values.items() if v is not None}
        else:
            changes = {k: [_plain(v[0]), _plain(v[1])] for k, v in values.items()}
        rows.append(entry(actor, at, action, table_name, record_id, changes))
    for start in range(0, len(rows), 1000):
        db.session.execute(AuditLog.__table__.insert(), rows[start : start + 1000])


def insert_entries(table: Table, rows: Sequence[dict]) -> list[dict]:
    """The ``audit_log`` rows for ``rows`` inserted into ``table`` in bulk (written by
    :mod:`advisors.bulk`), the ones the flush listener would write for the same rows: the
    record id is the primary key's values joined by "/", the changes every non-empty column but
    those the listener leaves out. None when the table's model is not audited. Who and when are
    taken now."""
    model = _model_of(table)
    if not rows or model is None or not getattr(model, "__audited__", False):
        return []
    # Every row shares who, when, the action and the table: the shape is built once by
    # entry() and copied per row (a str, not SQLAlchemy's quoted_name, which the driver would
    # inspect attribute by attribute on every row). Thousands of rows per call: the speed matters.
    shape = entry(current_actor(), utcnow(), "insert", str(table.name), "", {})
    leave_out = _left_out(model)
    record_id = _row_key(table)
    plain, scalars = _plain, _SCALARS
    return [
        {
            **shape,
            "record_id": record_id(row)[:60],
            "changes": {
                k: [None, v if type(v) in scalars else plain(v)]
                for k, v in row.items()
                if v is not None and k not in leave_out
            },
        }
        for row in rows
    ]


def _row_key(table: Table):
    """A function of a row dict giving its record id: the primary key's values joined by "/"."""
    key = [c.name for c in table.primary_key.columns]
    if len(key) == 1:
        only = key[0]
        return lambda row: str(row[only])
    return lambda row: "/".join(str(row[k]) for k in key)


def _model_of(table: Table):
    """The mapped class whose table is ``table``, or None."""
    for mapper in db.Model.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_
    return None
