"""Bulk writes: many new rows at once, by one path.

The list upload and the API push save their new firms, cases, bureau links and timeline events
here instead of through the ORM. :func:`writing` is the way in: it gives a :class:`BulkWriter`
for the length of the work (and, for a long upload, pauses the cyclic garbage collector). The
caller hands it rows with :meth:`BulkWriter.add_new` (rows that get new ids) and
:meth:`BulkWriter.add` (rows whose keys are known), then :meth:`BulkWriter.write`. What the
ORM's flush would have added to those rows is added here, once, by the same rules:

* derived columns (the SME size class of a new firm: :func:`advisors.sizing.classify`, the
  function :mod:`advisors.lifecycle` applies on every ORM write);
* audit rows (:func:`advisors.audit.insert_entries`: the same rows the flush listener writes).

How the rows reach the database: one COPY on PostgreSQL (psycopg 3), in a helper thread while
Python goes on reading the next part of the list; one executemany on the sqlite3 connection;
chunked Core executemany elsewhere (:func:`append_rows`). :func:`copy_stored` is the COPY of
rows already in their stored form (assessment snapshots).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter

from sqlalchemy import Table, event, select, text
from sqlalchemy import types as sqltypes
from sqlalchemy.exc import DBAPIError

from models import AuditLog, Enterprise, db

from . import audit
from .dbutil import chunks, is_postgresql
from .sizing import classify


# ----------------------------------------------------------------------------- the way in
@contextmanager
def writing(*, background: bool | None = None, pause_gc: bool = True) -> Iterator[BulkWriter]:
    """A :class:`BulkWriter` for the block (closed at its end, whatever happens). ``background``:
    see :class:`BulkWriter`. ``pause_gc``: the cyclic garbage collector is paused for the block
    (see :func:`gc_paused`); worth it for a list of thousands of rows, not for a short push."""
    with gc_paused() if pause_gc else nullcontext():
        writer = BulkWriter(background)
        try:
            yield writer
        finally:
            writer.close()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block. An import allocates hundreds of
    thousands of objects (rows, items, audit entries), and the collector would otherwise walk
    the live ones again and again. Reference counting still frees everything at once; the
    collector is switched back on (if it was on) even when the block fails."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ----------------------------------------------------------------------------- derived columns
def _derive_firm_columns(rows: Sequence[dict]) -> None:
    """A new firm's size class, from its figures (as :mod:`advisors.lifecycle` derives it on
    every ORM write)."""
    for row in rows:
        row["size_class"] = classify(
            row["industry"], row["employees"], row["revenue_wan"], row["assets_wan"]
        )


# table name -> what fills its derived columns in rows written in bulk
_DERIVED: dict[str, Callable[[Sequence[dict]], None]] = {
    Enterprise.__tablename__: _derive_firm_columns,
}


def insert_new_rows(table: Table, rows: list[dict], key: str, *where) -> list[tuple]:
    """New rows of ``table``: sets each row's ``"id"``. On PostgreSQL the ids are drawn from the
    table's sequence and the rows are returned as a batch for the writer (nothing to read
    back); elsewhere they are inserted now by executemany (Core: the ORM bulk path splits
    batches on NULL patterns, and SQLite cannot return ids in parameter order) and the ids read
    back by ``key``, which is unique among the table's rows matching ``where``."""
    if is_postgresql():
        for row, new_id in zip(rows, next_ids(table, len(rows)), strict=True):
            row["id"] = new_id
        return [(table, rows)]
    column = table.c[key]
    ids = {}
    for part in chunks(rows):
        append_rows(table, part)
        ids.update(
            db.session.execute(
                select(column, table.c.id).where(column.in_([r[key] for r in part]), *where)
            ).all()
        )
    for row in rows:
        row["id"] = ids[row[key]]
    return []


# ----------------------------------------------------------------------------- writing rows
def next_ids(table: Table, count: int) -> list[int]:
    """``count`` new primary-key values for ``table``, drawn from its own sequence in one
    statement (PostgreSQL only): rows written with :func:`append_rows` can then carry their ids,
    so nothing has to be read back. The values are the ones an INSERT would have taken."""
    if count <= 0:
        return []
    (pk,) = table.primary_key.columns
    return list(
        db.session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, :column))"
                " FROM generate_series(1, :n)"
            ),
            {"table": table.name, "column": pk.name, "n": count},
        ).scalars()
    )


def append_rows(table: Table, rows: Sequence[dict]) -> None:
    """INSERT many new rows (dicts with the same keys) in the session's transaction, in as few
    round trips as the database allows: one COPY on PostgreSQL (psycopg 3), one executemany on
    the sqlite3 connection (both without SQLAlchemy's per-row overhead), chunked Core
    executemany elsewhere.

    Values go through the columns' own types exactly as an INSERT would bind them (money,
    UTC timestamps, JSON); columns left out get their server defaults, not the model's Python
    defaults, so pass every value the model would fill in. Constraints, unique indexes
    (including partial ones) and foreign keys are checked as for an INSERT; a violation raises
    the usual :class:`sqlalchemy.exc.IntegrityError`."""
    if not rows:
        return
    connection = db.session.connection()
    raw, dialect = connection.connection.driver_connection, connection.dialect
    if _can_copy(connection):
        _copy_rows(raw, dialect, table, rows)
    elif dialect.driver == "pysqlite":
        _sqlite_insert_rows(raw, dialect, table, rows)
    else:
        for part in chunks(rows):
            db.session.execute(table.insert(), list(part))


def copy_stored(table: Table, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """One COPY into ``table`` (PostgreSQL with psycopg 3 only) of rows already in the form
    the database stores — the columns' types are not applied: integers for ``Money`` and
    ``Points``, JSON columns as their JSON text —, in the session's transaction. Faster than
    any INSERT for thousands of rows (the server writes them in batches). Constraints and
    foreign keys are checked as for an INSERT."""
    connection = db.session.connection()
    if not _can_copy(connection):
        raise RuntimeError("copy_stored needs PostgreSQL with psycopg 3")
    raw = connection.connection.driver_connection
    _copy(raw, connection.dialect, table, columns, rows)


class BulkWriter:
    """Batches of :func:`append_rows`, written while Python goes on with other work.

    On PostgreSQL (psycopg 3) :meth:`start` hands the batches to a helper thread that COPYs
    them on the session's own connection (same transaction) and returns at once, so the server
    stores one part of a long import while the next part is read and checked. Whatever next
    uses that connection through SQLAlchemy (a query, a flush, commit, rollback, a savepoint)
    first waits for the batches, and a database error in them (a unique index refusing a row,
    say) is raised there, or by :meth:`wait`. Raw driver calls do not wait: call ``wait()``
    first. :meth:`close` when done. Elsewhere, or with ``background=False``, ``start`` writes
    at once."""

    def __init__(self, background: bool | None = None):
        if background is None:
            background = _can_copy(db.session.connection())
        self.background = background
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._watched: list[tuple[object, str, Callable]] = []  # (connection, event, listener)
        self._queued: list[tuple[Table, Sequence[dict]]] = []  # for write()

    def add_new(self, table: Table, rows: list[dict], key: str, *where) -> None:
        """New rows of ``table`` (dicts with the same keys, every value the model would fill in
        but the id and the derived columns): each gets its ``"id"`` now (see
        :func:`insert_new_rows`: ``key`` finds a row again among those matching ``where``), its
        derived columns and its audit row; they are written by :meth:`write`, or already on
        SQLite."""
        if not rows:
            return
        derive = _DERIVED.get(table.name)
        if derive is not None:
            derive(rows)
        self._queued += insert_new_rows(table, rows, key, *where)
        self._queue_audit(table, rows)

    def add(self, table: Table, rows: Sequence[dict]) -> None:
        """Rows of ``table`` whose keys are known (links, timeline events), with their audit
        rows when the table is audited; written by :meth:`write`."""
        if not rows:
            return
        self._queued.append((table, rows))
        self._queue_audit(table, rows)

    def _queue_audit(self, table: Table, rows: Sequence[dict]) -> None:
        entries = audit.insert_entries(table, rows)
        if entries:
            self._queued.append((AuditLog.__table__, entries))

    def write(self) -> None:
        """Write what :meth:`add_new` and :meth:`add` queued (see :meth:`start`)."""
        queued, self._queued = self._queued, []
        self.start(queued)

    def start(self, batches: Iterable[tuple[Table, Sequence[dict]]]) -> None:
        self.wait()
        batches = [(table, rows) for table, rows in batches if rows]
        if not batches:
            return
        connection = db.session.connection()
        if not (self.background and _can_copy(connection)):
            for table, rows in batches:
                append_rows(table, rows)
            return
        self._watch(connection)
        raw, dialect = connection.connection.driver_connection, connection.dialect

        def write() -> None:
            try:
                for table, rows in batches:
                    _copy_rows(raw, dialect, table, rows)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                self._error = exc

        self._thread = threading.Thread(target=write, name="bulk-writer", daemon=True)
        self._thread.start()

    def wait(self, *, raise_error: bool = True) -> None:
        """Block until the batches handed to :meth:`start` are written; raise their error
        (unless ``raise_error`` is false: cleaning up after another error)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        error, self._error = self._error, None
        if error is not None and raise_error:
            raise error

    def close(self) -> None:
        """Wait (without raising: call :meth:`wait` for the outcome), drop what was queued and
        not written, and stop watching the connection."""
        self.wait(raise_error=False)
        self._queued = []
        for target, name, listener in self._watched:
            event.remove(target, name, listener)
        self._watched = []

    def _watch(self, connection) -> None:
        if any(target is connection for target, _name, _fn in self._watched):
            return

        def wait_then_go(*_args, **_kwargs) -> None:
            self.wait()

        def wait_then_undo(*_args, **_kwargs) -> None:
            self.wait(raise_error=False)  # undone anyway

        for name, listener in (
            ("before_cursor_execute", wait_then_go),
            ("commit", wait_then_go),
            ("savepoint", wait_then_go),
            ("release_savepoint", wait_then_go),
            ("rollback", wait_then_undo),
            ("rollback_savepoint", wait_then_undo),
        ):
            event.listen(connection, name, listener)
            self._watched.append((connection, name, listener))


def _can_copy(connection) -> bool:
    return (connection.dialect.name, connection.dialect.driver) == ("postgresql", "psycopg")


# Bind-processor inputs that cannot change, so one result serves every row holding the same
# object (the batch's one timestamp, say).
_IMMUTABLE = frozenset({str, int, bool, float, Decimal, datetime, date})


def _bind_processor(column, dialect) -> Callable | None:
    impl = column.type.dialect_impl(dialect)
    if isinstance(impl, sqltypes.JSON):
        # The JSON text itself (the serializer the driver's JSON adapter would call): COPY
        # sends it as it is, without a wrapper object per value.
        return sqltypes.JSON.bind_processor(impl, dialect)
    return impl.bind_processor(dialect)


def _bound_rows(dialect, table: Table, keys: list[str], rows: Sequence[dict]) -> Iterator:
    """Each row's values in ``keys`` order, bound by the columns' types as SQLAlchemy binds
    them for an INSERT (None included: a JSON column binds None as JSON null). A value object
    seen in the row before (the batch's one timestamp, say) is bound once."""
    width = len(keys)
    pick = itemgetter(*keys) if width > 1 else (lambda row: (row[keys[0]],))
    typed = [
        (i, process)
        for i, key in enumerate(keys)
        if (process := _bind_processor(table.c[key], dialect)) is not None
    ]
    memo = [(object(), None)] * width  # per column: last input object and its bound value
    for row in rows:
        if len(row) != width:
            raise ValueError(f"every row must have exactly the keys {keys}")
        values = list(pick(row))
        for i, process in typed:
            value = values[i]
            last, bound = memo[i]
            if value is last:
                values[i] = bound
            elif type(value) in _IMMUTABLE:
                values[i] = bound = process(value)
                memo[i] = (value, bound)
            else:
                values[i] = process(value)
        yield values


def _copy_rows(raw, dialect, table: Table, rows: Sequence[dict]) -> None:
    """One COPY of ``rows`` into ``table`` on the psycopg connection ``raw``."""
    keys = list(rows[0])
    _copy(raw, dialect, table, keys, _bound_rows(dialect, table, keys, rows))


def _copy(raw, dialect, table: Table, columns: Sequence[str], values: Iterable[Sequence]) -> None:
    """One COPY of the stored ``values`` of ``columns`` into ``table`` on ``raw``."""
    import psycopg

    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(table.c[name].name) for name in columns)
    statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            write = copy.write_row
            for row in values:
                write(row)
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _sqlite_insert_rows(raw, dialect, table: Table, rows: Sequence[dict]) -> None:
    """One executemany of ``rows`` on the sqlite3 connection ``raw``."""
    import sqlite3

    keys = list(rows[0])
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(table.c[k].name) for k in keys)
    marks = ", ".join("?" * len(keys))
    into = dialect.identifier_preparer.format_table(table)
    statement = f"INSERT INTO {into} ({names}) VALUES ({marks})"  # noqa: S608 - the table's names
    try:
        raw.executemany(statement, _bound_rows(dialect, table, keys, rows))
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc
