"""Shared benchmark plumbing: a scratch app and database, timing, signed-in clients, paired
measurements, and the result table."""

from __future__ import annotations

import gc
import os
import re
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url


@contextmanager
def _scratch_postgres(url: str) -> Iterator[str]:
    """A new, empty database on the server of ``url`` (never ``url``'s own database, which may
    hold real data); dropped afterwards."""
    base = make_url(url)
    if not base.drivername.startswith("postgresql"):
        raise SystemExit(f"--db must be 'sqlite' or a PostgreSQL URL, not {base.drivername}")
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    name = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _kept_postgres(url: str) -> Iterator[str]:
    """The database named in ``url`` as it is (reused from an earlier run)."""
    target = make_url(url)
    if target.drivername == "postgresql":
        target = target.set(drivername="postgresql+psycopg")
    yield target.render_as_string(hide_password=False)


@contextmanager
def _recreated_postgres(url: str) -> Iterator[str]:
    """The database named in ``url`` itself, dropped (if it exists) and created anew, and left in
    place afterwards so that its data can be inspected (``EXPLAIN ANALYZE``) after the run."""
    target = make_url(url)
    if not target.drivername.startswith("postgresql"):
        raise SystemExit(f"--db must be 'sqlite' or a PostgreSQL URL, not {target.drivername}")
    if target.drivername == "postgresql":
        target = target.set(drivername="postgresql+psycopg")
    name = target.database
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"refusing to drop and recreate the database {name!r}: name your own")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    yield target.render_as_string(hide_password=False)


@contextmanager
def scratch_app(
    db: str | None = "sqlite", *, recreate: bool = False, reuse: bool = False, **config
) -> Iterator:
    """An app on a throwaway database with the migrations applied, its app context pushed.

    ``db``: ``"sqlite"`` (a temporary file) or a PostgreSQL URL (a new database is created on
    that server and dropped afterwards). With ``recreate``, the URL's own database is dropped
    and created anew instead, and kept after the run; with ``reuse``, it is used as it is."""
    from flask_migrate import upgrade

    from advisors import create_app
    from models import db as sqla

    tmp = None
    if db in (None, "", "sqlite"):
        tmp = tempfile.mkdtemp(prefix="bench-")
        url_cm = _fixed(f"sqlite:///{tmp}/bench.db")
    else:
        if reuse:
            url_cm = _kept_postgres(db)
        else:
            url_cm = _recreated_postgres(db) if recreate else _scratch_postgres(db)
    try:
        with url_cm as url:
            app = create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": url,
                    "SCHEDULER": "off",
                    "DEMO_DATA": False,
                    # Building a city inserts a million rows in one statement, and makes
                    # rows in Python for minutes inside one transaction.
                    "DB_STATEMENT_TIMEOUT_MS": 0,
                    "DB_IDLE_TRANSACTION_TIMEOUT_MS": 0,
                    **config,
                }
            )
            with app.app_context():
                upgrade()
                try:
                    yield app
                finally:
                    sqla.session.remove()
                    sqla.engine.dispose()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def _fixed(url: str) -> Iterator[str]:
    yield url


def make_user(role: str, org_type: str | None = None, org_code: str | None = None):
    """A user (and its organisation) created through the services, committed."""
    from advisors.audit import acting_as
    from advisors.services.orgs import create_org
    from advisors.services.users import create_user
    from models import db

    suffix = secrets.token_hex(3)
    with acting_as(label="bench"):
        org = None
        if org_type:
            org = create_org(org_code or f"bench-{suffix}", f"Bench {org_type} {suffix}", org_type)
        user = create_user(
            username=f"bench-{role}-{suffix}",
            password=secrets.token_urlsafe(16),
            role=role,
            org=org,
            display_name=f"bench {role}",
        )
    db.session.commit()
    return user


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes, after a garbage collection so one run's garbage does not land in
    the next one's time."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Figure:
    name: str
    seconds: float
    floor: float | None = None  # the reference this figure is compared with
    target: float | None = None  # highest allowed seconds / floor
    # The median of the ratios of runs measured side by side (each against the floor taken
    # right before it), when there are such pairs: unlike seconds / floor (medians taken
    # apart), it does not move when the machine's speed drifts during the run.
    paired: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.paired is not None:
            return self.paired
        return self.seconds / self.floor if self.floor else None

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target


def print_table(title: str, figures: list[Figure]) -> bool:
    """Print figure, seconds, ratio, floor, target, PASS/FAIL. True when every target is met."""
    print(title)
    print(f"{'figure':<44} {'seconds':>9} {'ratio':>7} {'floor':>9} {'target':>7}  result")
    ok = True
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else ""
        floor = f"{f.floor:.3f}" if f.floor is not None else ""
        target = f"{f.target:.2f}x" if f.target is not None else ""
        result = "" if f.passed is None else ("PASS" if f.passed else "FAIL")
        ok = ok and f.passed is not False
        print(f"{f.name:<44} {f.seconds:>9.3f} {ratio:>7} {floor:>9} {target:>7}  {result}")
    return ok


# ------------------------------------------------------------------ signed-in pages
PASSWORD = "Bench-Lists-2026"  # noqa: S105 (scratch accounts in a throwaway database)
# The recommending bureaus of every synthetic city.
BUREAUS = [
    ("GXJ", "工业和信息化局"),
    ("SWJ", "商务局"),
    ("NYJ", "农业农村局"),
    ("SJJ", "市场监督管理局"),
    ("CYL", "产业链办公室"),
]


class _OwnContextClient(FlaskClient):
    """Each request in its own app context, as under a WSGI server: its own ``g`` and database
    session (the bench keeps an app context pushed, which requests would otherwise share)."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def signed_in(app, username: str):
    """A test client signed in as ``username`` (password :data:`PASSWORD`) through the form."""
    client = _OwnContextClient(app, app.response_class, use_cookies=True)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    r = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    if r.status_code != 302:
        raise SystemExit(f"sign-in of {username} failed: {r.status_code}")
    return client


class Paired(NamedTuple):
    seconds: float  # median of the page
    floor: float  # median of the floor page
    ratio: float  # median of each request's time over the floor request's right before it


def paired(client, url: str, floor_url: str, requests: int) -> Paired:
    """``requests`` GETs of ``url`` and of ``floor_url``, taken alternately so that any load on
    the machine weighs on both alike."""

    def getter(target):
        def one():
            r = client.get(target)
            if r.status_code != 200:
                raise SystemExit(f"GET {target}: {r.status_code}")
            r.get_data()

        return one

    page, floor = getter(url), getter(floor_url)
    for _ in range(3):  # warm up: template compilation, statement caches
        page()
        floor()
    pages, floors = [], []
    for _ in range(requests):
        floors.append(timed(floor))
        pages.append(timed(page))
    return Paired(
        statistics.median(pages),
        statistics.median(floors),
        statistics.median(p / f for p, f in zip(pages, floors, strict=True)),
    )


def query_count(app, client, url: str) -> int:
    """How many SQL statements one GET of ``url`` runs."""
    from models import db

    count = 0

    def before(*_args):
        nonlocal count
        count += 1

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        client.get(url)
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    return count


# ------------------------------------------------------------------ synthetic data in SQL
_BODY_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def body_text(i: int) -> str:
    """Eight characters that differ for each ``i`` (the varied part of a synthetic text)."""
    out = []
    for _ in range(8):
        i, r = divmod(i, len(_BODY_CHARS))
        out.append(_BODY_CHARS[r])
    return "".join(reversed(out))


def series_sql(dialect: str) -> str:
    """A FROM item ``g(i)`` of the integers 1..:n."""
    if dialect == "postgresql":
        return "generate_series(1, :n) AS g(i)"
    return (
        "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
        "SELECT i FROM s) AS g"
    )


def utc_type():
    """The column type of UTC timestamps, to bind the bounds of hand-written SQL."""
    from models import UTCDateTime

    return UTCDateTime()
