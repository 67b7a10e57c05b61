"""Small portable database helpers (SQLite and PostgreSQL). Writing many new rows at once
(COPY, the background writer) is :mod:`advisors.bulk`."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Table, any_, bindparam, text
from sqlalchemy import exc as sa_exc
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


def among(column, values: Sequence):
    """``column IN (values)`` for a long list that is asked again and again (one query per
    chunk of an import). On PostgreSQL it is ``column = ANY(:array)``: one parameter, so the
    statement is the same whatever the values, and once psycopg prepares it (from its sixth
    run) the server's generic plan still probes the index once per value; an IN list of
    hundreds of parameters gets a generic plan that compares every row of the table with every
    value instead (a third of a second per query at 30,000 firms)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))


@contextmanager
def custom_plans() -> Iterator[None]:
    """PostgreSQL: the statements run inside are planned for their own parameter values.

    psycopg prepares a statement once it has run five times, and the server then tries a
    generic plan meant for any values. For an aggregate over a date range that plan guesses a
    few thousand rows where a month holds 80,000, and drops the parallel scan (2.5x slower).
    Only for the block: outside it, prepared statements keep their cached plans — among them
    the foreign-key checks of every inserted row, which would otherwise be planned anew for
    each row."""
    if not is_postgresql():
        yield
        return
    previous = db.session.execute(
        text(
            "SELECT current_setting('plan_cache_mode'), "
            "set_config('plan_cache_mode', 'force_custom_plan', true)"
        )
    ).scalar_one()
    try:
        yield
    finally:
        db.session.execute(
            text("SELECT set_config('plan_cache_mode', :previous, true)"), {"previous": previous}
        )


def is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


# ----------------------------------------------------------------------------- locks
def lock_key(name: str) -> int:
    """A PostgreSQL advisory-lock key (signed 64 bits) for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


INTAKE_LOCK = "referral_intake"


def lock_for_writing(name: str, table: Table) -> None:
    """Serialise the writers of ``name`` until this transaction ends: call it before reading
    what the transaction will decide on (does this firm have an open case?), so a second
    writer waits and then reads what the first one wrote.

    PostgreSQL: ``pg_advisory_xact_lock`` on ``name``'s key (bounded by the statement timeout).
    SQLite has one writer at a time: a write that changes nothing in ``table`` takes the
    database's write lock for the rest of the transaction (waiting out another writer's, up to
    the busy timeout); reads before the first write hold no snapshot, so the reads after it see
    the other writer's rows."""
    if is_postgresql():
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
        return
    (pk,) = table.primary_key.columns
    db.session.execute(table.update().where(pk.is_(None)).values({pk.name: pk}))


def lock_intake() -> None:
    """Referral intake (API push, form, upload chunks) one transaction at a time, from its
    look-up of known firms and open cases to its commit: two bureaus pushing the same firms at
    once get one case per firm (created for one, merged for the other), never a conflict."""
    from models import Referral

    lock_for_writing(INTAKE_LOCK, Referral.__table__)


def set_local_statement_timeout(milliseconds: int) -> None:
    """PostgreSQL: this transaction's statements may run ``milliseconds`` each (0: no limit)
    instead of the connection's default (``DB_STATEMENT_TIMEOUT_MS``, meant for web requests).
    Elsewhere nothing."""
    if is_postgresql():
        db.session.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"),
            {"ms": str(max(int(milliseconds), 0))},
        )


# ----------------------------------------------------------------------------- liveness
# A lock that lives exactly as long as the process holding it: a record marked "running" by a
# process that was killed (kill -9, the OOM killer, a gunicorn worker timeout, a power cut) can
# be told from one still at work, whatever their ages.
try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS: the callers fall back on age
    fcntl = None

_MEMORY_LOCK_DIR: str | None = None


@contextmanager
def held_for_life(name: str) -> Iterator[None]:
    """Hold the lock ``name`` while the block runs; it is released at the end of the block or
    when the process dies, however it dies. :func:`is_held` tells, from any process, whether
    someone alive holds it.

    PostgreSQL: a session advisory lock on a connection of its own, kept for the block (the
    server drops the lock with the connection when the process is gone). SQLite: an ``flock``
    on a file beside the database (the kernel drops it with the process)."""
    if is_postgresql():
        with _pg_lock_held(lock_key(name)):
            yield
        return
    path = _lock_file(name)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with suppress(OSError):
            os.unlink(path)
        os.close(fd)


def is_held(name: str) -> bool | None:
    """Whether a live process holds the lock ``name`` (:func:`held_for_life`); None where that
    cannot be known (no ``flock``)."""
    if is_postgresql():
        key = lock_key(name)
        with db.engine.connect() as conn:
            free = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            if free:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()
        return not free
    path = _lock_file(name)
    if path is None:
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with suppress(OSError):
            os.unlink(path)  # left behind by a process that died
        return False
    finally:
        os.close(fd)


@contextmanager
def _pg_lock_held(key: int) -> Iterator[None]:
    conn = db.engine.connect()
    try:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        conn.commit()
    except BaseException:
        conn.invalidate()
        conn.close()
        raise
    try:
        yield
    finally:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()
        except sa_exc.DBAPIError:
            conn.invalidate()  # the connection is gone, and the lock with it
        finally:
            conn.close()


def _lock_file(name: str) -> Path | None:
    """The file whose ``flock`` is the lock ``name``: in a directory beside the SQLite
    database (``advisors.db-locks/``), shared by every process using that file."""
    global _MEMORY_LOCK_DIR
    if fcntl is None:
        return None
    database = db.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        if _MEMORY_LOCK_DIR is None:  # a database of this process alone
            _MEMORY_LOCK_DIR = tempfile.mkdtemp(prefix="advisors-locks-")
        folder = Path(_MEMORY_LOCK_DIR)
    else:
        db_path = Path(database).resolve()
        folder = db_path.parent / f"{db_path.name}-locks"
    folder.mkdir(exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return folder / f"{safe}.lock"


# ----------------------------------------------------------------------------- failures
# SQLSTATE classes and codes that mean "the database cannot serve now", not "this statement is
# wrong": connection exceptions (08), insufficient resources (53: too many connections, disk
# full), operator intervention (57: shut down, starting up; 57014: a statement timeout).
_UNAVAILABLE_CLASSES = ("08", "53", "57")
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is down, unreachable, overloaded or too slow (a web
    request answers 503 and may be retried), rather than that a statement is wrong or lost a
    race (a serialization failure or a deadlock stays what it is)."""
    if isinstance(exc, sa_exc.TimeoutError):  # no free connection in the pool in time
        return True
    if not isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return False
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if type(orig).__module__.startswith("sqlite3"):
        return any(text_ in str(orig).lower() for text_ in _SQLITE_UNAVAILABLE)
    if sqlstate is None:  # psycopg's own: could not connect, connection timeout, closed
        return True
    return sqlstate.startswith(_UNAVAILABLE_CLASSES)
