"""Audit trail: every insert, update and delete of an audited model writes an ``AuditLog`` row
in the same transaction, with who, when, and old/new values.

Models opt in with ``__audited__ = True`` (and may list ``__audit_exclude__`` columns, such as
password hashes). The actor is set per request (or per CLI command / job) with ``acting_as``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
from contextlib import contextmanager

from sqlalchemy import event, inspect
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


def _plain(value):
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


def _column_changes(obj, action: str) -> dict:
    state = inspect(obj)
    exclude = set(getattr(obj, "__audit_exclude__", ())) | {"created_at", "updated_at", "version"}
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
        if excluded in ("created_at", "updated_at", "version"):
            continue
        if action == "update" and state.attrs[excluded].history.has_changes():
            changes[excluded] = ["***", "***"]
    return changes


@event.listens_for(Session, "after_flush")
def _write_audit_rows(session: Session, flush_context) -> None:
    actor_id, label, ip = current_actor()
    at = utcnow()
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
                {
                    "at": at,
                    "actor_id": actor_id,
                    "actor_label": label[:80],
                    "action": action,
                    "table_name": type(obj).__table__.name,
                    "record_id": _record_id(obj)[:60],
                    "changes": changes,
                    "ip": ip,
                }
            )
    if rows:
        session.execute(AuditLog.__table__.insert(), rows)


_SCALARS = frozenset({str, int, bool, float, type(None)})  # kept as they are by _plain


def _plain_fast(value):
    return value if type(value) in _SCALARS else _plain(value)


def _bulk_row(actor, at, action: str, table_name: str, record_id, changes: dict) -> dict:
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
    actor, at, plain = current_actor(), utcnow(), _plain_fast
    rows = []
    for record_id, values in records:
        if action == "insert":
            changes = {k: [None, plain(v)] for k, v in values.items() if v is not None}
        else:
            changes = {k: [plain(v[0]), plain(v[1])] for k, v in values.items()}
        rows.append(_bulk_row(actor, at, action, table_name, record_id, changes))
    for start in range(0, len(rows), 1000):
        db.session.execute(AuditLog.__table__.insert(), rows[start : start + 1000])


def bulk_insert_entries(
    table_name: str, rows: list[dict], *, id_key: str = "id", skip: tuple[str, ...] = ()
) -> list[dict]:
    """The ``audit_log`` rows (to write with :func:`advisors.dbutil.append_rows` or a
    :class:`~advisors.dbutil.BulkWriter`) for rows inserted in bulk, straight from
    the inserted values: the same entries as ``record_bulk("insert", ...)``, with each row's
    ``id_key`` as the record id and every non-empty column except ``id_key``, ``skip`` and the
    bookkeeping columns (created_at, updated_at, version), which the flush listener leaves out
    too. Who and when are taken now."""
    if not rows:
        return []
    actor, at, plain = current_actor(), utcnow(), _plain_fast
    leave_out = {id_key, "created_at", "updated_at", "version", *skip}
    return [
        _bulk_row(
            actor,
            at,
            "insert",
            table_name,
            row[id_key],
            {k: [None, plain(v)] for k, v in row.items() if v is not None and k not in leave_out},
        )
        for row in rows
    ]
