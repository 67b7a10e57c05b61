"""A monthly ranking's machinery, knowing nothing of what is ranked: reusable by any ranking of
subjects per period (advisors by their assessment; next, institutions by their indicators).

A ranking has a *header* row per period (``period`` unique, ``status`` draft or published,
``published_at``, ``published_by_id``), *rows* under it unique on (header id, subject key) and
optionally *group lines* summing the rows per group (count, total, average). This module:

- locks a period for its writers (:func:`lock_period`, :func:`lock_writers`): a PostgreSQL
  advisory transaction lock in the ranking's namespace, on SQLite the database's write lock;
- upserts the header of a draft (:func:`upsert_draft`) and refuses to touch a published one
  (:func:`refuse_frozen`, :func:`draft_of`, :func:`mark_published`): publishing freezes;
- writes rows under their unique key, touching only what differs from what is stored
  (:func:`write`), and ranks them in SQL with window functions — competition ranks (equal
  scores share a rank, the next one skips: 1, 2, 2, 4), overall and within a partition
  (:func:`rank`) — writing only the ranks that changed.

Describe a ranking's rows with :class:`RankedRows` (and its groups with :class:`GroupLines`);
the table and column names in it are the model's, never user input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from models import db, utcnow

from ...bulk import copy_stored
from ...dbutil import chunks, is_postgresql
from ...errors import Conflict, NotFound

DRAFT, PUBLISHED = "draft", "published"
LOCK_WAIT = "60s"
_KIND_OFFSET = {"month": 0, "quarter": 20, "year": 40}


# ============================================================================ locks
def period_lock_key(period) -> int:
    """A period's advisory-lock key within a namespace (200001 and up: smaller keys are free
    for a ranking's other locks)."""
    return period.year * 100 + _KIND_OFFSET[period.kind] + period.number


def lock_writers(sqlite_write: str, params: dict, key: int, namespace: int) -> None:
    """Take the advisory lock (``namespace``, ``key``) (PostgreSQL) or the write lock (SQLite,
    by running the harmless ``sqlite_write``) until the transaction ends; Conflict when it
    cannot be had in reasonable time."""
    try:
        if is_postgresql():
            db.session.execute(
                text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": LOCK_WAIT}
            )
            db.session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                {"namespace": namespace, "key": key},
            )
        else:
            db.session.execute(text(sqlite_write), params)
    except OperationalError:
        raise Conflict(_("Someone else is changing this right now; try again shortly.")) from None


def lock_period(period, header: str, touch: str, namespace: int) -> None:
    """Serialise every writer of one period of a ranking until commit. SQLite has one writer at
    a time: the first write of a transaction takes the database's write lock and holds it to
    the end, so a write on the period's ``header`` row that changes nothing (``touch`` set to
    itself) is this transaction's ``BEGIN IMMEDIATE``. Conflict when it cannot be had."""
    lock_writers(
        f"UPDATE {header} SET {touch} = {touch} WHERE period = :period",  # noqa: S608 (model's)
        {"period": period.key},
        period_lock_key(period),
        namespace,
    )


# ============================================================ header: draft -> published
def insert_for(table):
    """The dialect's INSERT (with ``on_conflict_…``) for ``table``."""
    return (postgresql.insert if is_postgresql() else sqlite.insert)(table)


def load_header(model, period):
    """The period's header row, fresh from the database (None: not compiled)."""
    return db.session.execute(
        select(model).where(model.period == period.key).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def upsert_draft(
    table, values: dict, replaced: tuple[str, ...], incremented: tuple[str, ...]
) -> int:
    """INSERT the period's header (``values``, with ``period``) or, when it exists and is a
    draft, UPDATE its ``replaced`` columns to the new values and add 1 to its ``incremented``
    ones; the header's id. A published header is never updated."""
    stmt = insert_for(table).values(**values)
    set_ = {name: stmt.excluded[name] for name in replaced}
    set_.update({name: table.c[name] + 1 for name in incremented})
    stmt = stmt.on_conflict_do_update(
        index_elements=["period"], set_=set_, where=table.c.status == DRAFT
    ).returning(table.c.id)
    return db.session.execute(stmt).scalar_one()


def refuse_frozen(header, message: str) -> None:
    """Conflict (``message``) when the period's header is published: it is frozen."""
    if header is not None and header.status == PUBLISHED:
        raise Conflict(message)


def draft_of(header, missing: str, frozen: str):
    """The header of a draft to change: NotFound (``missing``) when there is none, Conflict
    (``frozen``) when it is published."""
    if header is None:
        raise NotFound(missing)
    refuse_frozen(header, frozen)
    return header


def check_version(header, expected: int | None, message: str) -> None:
    """Conflict when the header changed since the caller read version ``expected``."""
    if expected is not None and expected != header.version:
        raise Conflict(message)


def mark_published(header, actor_id: int | None) -> None:
    """Freeze the period: published now, by ``actor_id`` (None: the system)."""
    header.status = PUBLISHED
    header.published_at = utcnow()
    header.published_by_id = actor_id


# ============================================================================ rows and ranks
@dataclass(frozen=True)
class Rank:
    """A rank stored in ``column`` (named ``alias`` in the window SELECT): over all the rows,
    or within each value of ``partition`` (rows without one get no rank)."""

    column: str
    alias: str
    partition: str | None = None


def window_ranks(score: str, ranks: tuple[Rank, ...]) -> str:
    """The window functions giving ``ranks`` by ``score`` (highest first) as SELECT columns."""
    parts = []
    for r in ranks:
        over = f"rank() OVER (ORDER BY {score} DESC)"
        if r.partition is not None:
            p = r.partition
            over = (
                f"CASE WHEN {p} IS NULL THEN NULL "
                f"ELSE rank() OVER (PARTITION BY {p} ORDER BY {score} DESC) END"
            )
        parts.append(f"{over} AS {r.alias}")
    return ", ".join(parts)


def rank_statement(table: str, parent: str, score: str, ranks: tuple[Rank, ...]):
    """``UPDATE table … FROM (SELECT id, rank() OVER …)``: the rows under one parent (bound as
    ``:parent``) take their ranks by ``score``; only rows whose ranks change are written."""
    sets = ", ".join(f"{r.column} = ranked.{r.alias}" for r in ranks)
    differs = " OR ".join(
        f"{table}.{r.column} IS NULL OR {table}.{r.column} <> ranked.{r.alias}"
        if r.partition is None
        else f"COALESCE({table}.{r.column}, -1) <> COALESCE(ranked.{r.alias}, -1)"
        for r in ranks
    )
    return text(
        f"""
    UPDATE {table}
    SET {sets}
    FROM (
        SELECT id, {window_ranks(score, ranks)}
        FROM {table}
        WHERE {parent} = :{parent}
    ) AS ranked
    WHERE {table}.id = ranked.id
      AND ({differs})
    """  # noqa: S608 (the model's names)
    )


@dataclass(frozen=True)
class GroupLines:
    """The rows summed per ``group`` into ``table`` (unique on parent + group): how many rows
    (``count``), their ``total`` score and its ``average`` (integers, rounded half away from
    zero), ranked by the average into ``rank``."""

    table: str
    group: str
    count: str = "count"
    total: str = "total"
    average: str = "average"
    rank: str = "rank"


@dataclass(frozen=True)
class RankedRows:
    """A ranking's rows: ``model`` (its table unique on ``parent`` + ``key``, both integer
    ids), the stored ``columns`` after the key as (name, PostgreSQL type) — ``score`` among
    them —, and ``document``, a JSON column written and compared as its text (last). A row
    given to :func:`write` is (key, *columns, document); ``ranks`` are by ``score``."""

    model: Any
    parent: str
    key: str
    columns: tuple[tuple[str, str], ...]
    document: str | None
    score: str
    ranks: tuple[Rank, ...]
    groups: tuple[GroupLines, ...] = ()

    @property
    def table(self) -> str:
        return self.model.__tablename__

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The columns of a row as given: key, columns, document."""
        doc = (self.document,) if self.document else ()
        return (self.key, *(name for name, _type in self.columns), *doc)

    @cached_property
    def rank_rows(self):
        return rank_statement(self.table, self.parent, self.score, self.ranks)

    @cached_property
    def group_statements(self) -> tuple[tuple[Any, Any, Any], ...]:
        """Per group: (upsert its lines, delete the lines of groups gone, rank them)."""
        return tuple(_group_statements(self, g) for g in self.groups)


def _group_statements(rows: RankedRows, g: GroupLines):
    parent, group, source = rows.parent, g.group, rows.table
    # Average in the score's units, rounded half away from zero with integer arithmetic
    # (exact on both databases).
    upsert = text(
        f"""
    INSERT INTO {g.table} ({parent}, {group}, {g.count}, {g.total}, {g.average})
    SELECT CAST(:{parent} AS INTEGER), t.{group}, t.n, t.s,
           CASE WHEN t.s >= 0 THEN (2 * t.s + t.n) / (2 * t.n)
                ELSE -((t.n - 2 * t.s) / (2 * t.n)) END
    FROM (
        SELECT {group}, COUNT(*) AS n, CAST(SUM({rows.score}) AS BIGINT) AS s
        FROM {source}
        WHERE {parent} = :{parent} AND {group} IS NOT NULL
        GROUP BY {group}
    ) AS t
    WHERE true
    ON CONFLICT ({parent}, {group}) DO UPDATE
    SET {g.count} = excluded.{g.count}, {g.total} = excluded.{g.total},
        {g.average} = excluded.{g.average}
    WHERE {g.table}.{g.count} <> excluded.{g.count}
       OR {g.table}.{g.total} <> excluded.{g.total}
       OR {g.table}.{g.average} <> excluded.{g.average}
    """  # noqa: S608 (the model's names)
    )
    gone = text(
        f"""
    DELETE FROM {g.table}
    WHERE {parent} = :{parent}
      AND {group} NOT IN (
          SELECT {group} FROM {source}
          WHERE {parent} = :{parent} AND {group} IS NOT NULL
      )
    """  # noqa: S608 (the model's names)
    )
    ranked = rank_statement(g.table, parent, g.average, (Rank(g.rank, "overall"),))
    return upsert, gone, ranked


def rank(rows: RankedRows, parent_id: int, rows_ranked: bool = False, fresh: bool = False) -> None:
    """The rows' ranks, the group lines and their ranks — all in SQL, writing only what
    changed. ``rows_ranked``: the rows were all written with their ranks (nothing for the
    first statement to change, so it is not run); ``fresh``: the parent was just created (no
    group lines to remove)."""
    params = {rows.parent: parent_id}
    if not rows_ranked:
        db.session.execute(rows.rank_rows, params)
    for upsert, gone, ranked in rows.group_statements:
        db.session.execute(upsert, params)
        if not fresh:
            db.session.execute(gone, params)
        db.session.execute(ranked, params)


def write(
    rows: RankedRows, parent_id: int, given: list[tuple], fresh: bool = False, upsert_with=None
) -> bool:
    """Write the rows ``given`` under ``parent_id``: what is new or changed is upserted (by
    ``upsert_with``, default :func:`upsert`), what is unchanged is not touched (writing the same
    rows again writes nothing), and the rows of keys no longer given are deleted. ``fresh``:
    the parent was just created (nothing stored to compare with). True when the rows were all
    new and written with their final ranks (PostgreSQL)."""
    if fresh and is_postgresql():
        copy_ranked(rows, parent_id, given)
        return True
    if fresh:
        changed, stale, had_rows = [(parent_id, *row) for row in given], [], False
    else:
        changed, stale, had_rows = changes(rows, parent_id, given)
    model = rows.model
    for part in chunks(stale):
        db.session.execute(
            delete(model).where(
                getattr(model, rows.parent) == parent_id, getattr(model, rows.key).in_(part)
            )
        )
    (upsert_with or upsert)(rows, changed)
    return is_postgresql() and not had_rows


def changes(
    rows: RankedRows, parent_id: int, given: list[tuple]
) -> tuple[list[tuple], list[int], bool]:
    """(the rows given that are new or differ from what is stored, as (parent_id, *row); the
    keys stored but no longer given; whether any row was stored). The stored rows are read
    once as stored (the document as its text) and compared without parsing them."""
    names = [name for name, _type in rows.columns]
    if rows.document:
        names.append(f"CAST({rows.document} AS TEXT)")
    existing = {
        r[0]: tuple(r[1:])
        for r in db.session.execute(
            text(
                f"SELECT {rows.key}, {', '.join(names)} "  # noqa: S608 (the model's names)
                f"FROM {rows.table} WHERE {rows.parent} = :a"
            ),
            {"a": parent_id},
        )
    }
    had_rows = bool(existing)
    changed = []
    for key, *stored in given:
        if existing.pop(key, None) != tuple(stored):
            changed.append((parent_id, key, *stored))
    return changed, list(existing), had_rows


@lru_cache(maxsize=32)
def _upsert_sql(rows: RankedRows, on_postgresql: bool) -> str:
    names = (rows.parent, *rows.names)
    values = rows.names[1:]
    columns = ", ".join(names)
    updates = ", ".join(f"{c} = excluded.{c}" for c in values)
    conflict = f"ON CONFLICT ({rows.parent}, {rows.key}) DO UPDATE SET {updates}"
    table = rows.table
    if not on_postgresql:
        differs = " OR ".join(f"NOT ({table}.{c} IS excluded.{c})" for c in values)
        return (
            f"INSERT INTO {table} ({columns}) "  # noqa: S608 (the model's names)
            f"VALUES ({', '.join('?' for _ in names)}) {conflict} WHERE {differs}"
        )
    scalars = [name for name, _type in rows.columns]
    differs = " OR ".join(f"{table}.{c} IS DISTINCT FROM excluded.{c}" for c in scalars)
    casts = [f"(r->>0)::integer AS {rows.parent}", f"(r->>1)::integer AS {rows.key}"]
    casts += [f"(r->>{i})::{type_} AS {name}" for i, (name, type_) in enumerate(rows.columns, 2)]
    if rows.document:
        doc = rows.document
        differs += f" OR CAST({table}.{doc} AS TEXT) <> CAST(excluded.{doc} AS TEXT)"
        casts.append(f"m AS {doc}")
        source = (
            "ROWS FROM (json_array_elements(CAST(:scalars AS json)), "
            "json_array_elements(CAST(:documents AS json))) AS x(r, m)"
        )
    else:
        source = "json_array_elements(CAST(:scalars AS json)) AS x(r)"
    # A new row gets its ranks among the rows written, by the same window functions as
    # rank_rows: on a first write (every row new) they are the final ranks, and rank_rows then
    # changes nothing instead of rewriting every row. A row already stored keeps its ranks
    # here; rank_rows settles them.
    rank_columns = ", ".join(r.column for r in rows.ranks)
    return (
        f"INSERT INTO {table} ({columns}, {rank_columns}) "  # noqa: S608 (the model's names)
        f"SELECT {columns}, {window_ranks(rows.score, rows.ranks)} "
        f"FROM (SELECT {', '.join(casts)} FROM {source}) AS t "
        f"{conflict} WHERE {differs}"
    )


def upsert(rows: RankedRows, changed: list[tuple]) -> None:
    """INSERT … ON CONFLICT (parent, key) DO UPDATE the values where they differ, for rows
    (parent_id, key, *columns, document) in their stored form (:func:`changes`): on SQLite one
    executemany (in chunks), on PostgreSQL one statement reading the rows from JSON arrays."""
    if not changed:
        return
    statement = _upsert_sql(rows, is_postgresql())
    if not is_postgresql():
        connection = db.session.connection()
        for part in chunks(changed, 5000):
            connection.exec_driver_sql(statement, list(part))
        return
    # The rows travel as two JSON arrays read side by side (ROWS FROM): the scalars as arrays
    # taken by position, and the document spliced in as the JSON text it is (not a string
    # holding it), so each comes back exactly as written. One statement, much cheaper than
    # binding 2,000 rows; the small arrays keep ``->>`` from re-reading the documents.
    if rows.document:
        scalars = json.dumps([row[:-1] for row in changed], separators=(",", ":"))
        documents = "[" + ",".join(row[-1] for row in changed) + "]"
        params = {"scalars": scalars, "documents": documents}
    else:
        params = {"scalars": json.dumps(changed, separators=(",", ":"))}
    db.session.execute(text(statement), params)


def copy_ranked(rows: RankedRows, parent_id: int, given: list[tuple]) -> None:
    """A first write of a parent's rows on PostgreSQL, all new: their ranks by the window
    functions (one SELECT over the rows' keys, partitions and scores, the same definitions as
    :attr:`RankedRows.rank_rows`), then one COPY of the rows with their ranks — about half the
    time of an ``INSERT … SELECT`` of 2,000 rows."""
    types = {rows.key: "integer", **dict(rows.columns)}
    needed = [rows.key]
    for r in rows.ranks:
        if r.partition is not None and r.partition not in needed:
            needed.append(r.partition)
    needed.append(rows.score)
    at = [rows.names.index(name) for name in needed]
    values = json.dumps([[row[i] for i in at] for row in given])
    casts = ", ".join(f"(r->>{n})::{types[name]} AS {name}" for n, name in enumerate(needed))
    ranks = {
        key: tuple(rest)
        for key, *rest in db.session.execute(
            text(
                f"SELECT {rows.key}, {window_ranks(rows.score, rows.ranks)} FROM ("  # noqa: S608
                f"SELECT {casts} FROM json_array_elements(CAST(:scores AS json)) AS r"
                ") AS t"
            ),
            {"scores": values},
        )
    }
    copy_stored(
        rows.model.__table__,
        (rows.parent, *rows.names, *(r.column for r in rows.ranks)),
        ((parent_id, *row, *ranks[row[0]]) for row in given),
    )
