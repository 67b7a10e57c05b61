"""Fixtures in the flaskr style: ``app``, ``client``, ``runner``, ``auth``, data factories.

The schema comes from the migrations (so they are tested too), once per session; every test
starts from empty tables. ``TEST_DATABASE_URL`` switches the whole suite to PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import re
from datetime import date, datetime, time
from decimal import Decimal

import pytest
import time_machine
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from advisors import create_app
from advisors.audit import acting_as
from advisors.clock import SHANGHAI
from advisors.credit_code import make_code
from models import db

PASSWORD = "Correct-Horse-9"
_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production: its own ``g`` and its own
    database session, not the one the test body uses (the ``app`` fixture keeps a context
    pushed for factories and assertions, and Flask would otherwise reuse it for requests)."""

    def open(self, *args, **kwargs):
        ctx = self.application.app_context()
        ctx.push()
        try:
            return super().open(*args, **kwargs)
        finally:
            ctx.pop()


@pytest.fixture(scope="session")
def _app(tmp_path_factory):
    app = create_app({"SQLALCHEMY_DATABASE_URI": _database_url(tmp_path_factory)})
    app.test_client_class = IsolatedClient
    from flask_migrate import upgrade

    with app.app_context():
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            else:
                db.metadata.drop_all(conn)
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        _empty_tables()  # the reference data the upgrade added: every test starts empty
    return app


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (table names are ours)


@pytest.fixture
def app(_app):
    with _app.app_context():
        yield _app
        db.session.rollback()
        db.session.remove()
        _empty_tables()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_from(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "no csrf_token in page"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username: str, password: str = PASSWORD, follow: bool = False):
        page = self._client.get("/login")
        token = csrf_from(page.get_data(as_text=True))
        return self._client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token},
            follow_redirects=follow,
        )

    def logout(self):
        page = self._client.get("/")
        token = csrf_from(page.get_data(as_text=True))
        return self._client.post("/logout", data={"csrf_token": token})

    def csrf(self, url: str = "/") -> str:
        return csrf_from(self._client.get(url).get_data(as_text=True))

    def change_password(self, current: str, new: str = "Another-Pass-42", follow: bool = False):
        """Post the password-change form as the signed-in user (a fresh CSRF token)."""
        return self._client.post(
            "/account/password",
            data={
                "current_password": current,
                "new_password": new,
                "confirm": new,
                "csrf_token": self.csrf("/account/password"),
            },
            follow_redirects=follow,
        )


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def login(client, auth):
    """``login(user)`` signs in through the real form with the English interface (msgids are
    stable for assertions); a second call signs the first user out."""
    signed_in = []

    def _login(user):
        if signed_in:
            auth.logout()
        assert auth.login(user.username).status_code == 302
        signed_in.append(user)
        with client.session_transaction() as s:
            s["lang"] = "en"
        return user

    return _login


@pytest.fixture
def client_as(app):
    """``client_as(user)``: a new client signed in through the form as ``user``, with the English
    interface (msgids, stable for assertions); each call a client of its own."""

    def _login(user):
        client = app.test_client()
        assert AuthActions(client).login(user.username).status_code == 302
        with client.session_transaction() as s:
            s["lang"] = "en"
        return client

    return _login


class Factory:
    """Small data factories; each call makes a new, valid record and flushes it."""

    _seq = itertools.count(1)

    def n(self) -> int:
        return next(self._seq)

    def org(self, type: str = "bank", code: str | None = None, name: str | None = None):
        from advisors.services.orgs import create_org

        i = self.n()
        with acting_as(label="test"):
            org = create_org(code or f"{type}-{i}", name or f"{type} org {i}", type)
        db.session.commit()
        return org

    def user(
        self,
        role: str = "finance_office",
        org=None,
        username: str | None = None,
        password: str = PASSWORD,
    ):
        from advisors.services.users import create_user
        from models import ROLE_ORG_TYPES

        needs = ROLE_ORG_TYPES[role]
        if org is None and needs:
            org = self.org(needs[0])
        with acting_as(label="test"):
            user = create_user(
                username=username or f"{role}{self.n()}",
                password=password,
                role=role,
                org=org,
                display_name=f"{role} user",
            )
        db.session.commit()
        return user

    def township(self, name: str | None = None):
        from models import Township

        i = self.n()
        t = Township(code=f"T{i:03d}", name=name or f"镇{i}")
        db.session.add(t)
        db.session.commit()
        return t

    def credit_code(self) -> str:
        i = self.n()
        return make_code("9", "1", "330100", f"{i:08d}")

    def firm(self, actor=None, **values):
        from advisors.services.firms import register_firm

        actor = actor or self.user("finance_office")
        data = {
            "credit_code": self.credit_code(),
            "name": f"测试企业{self.n()}有限公司",
            "industry": "industry",
            "employees": 50,
            "revenue_wan": Decimal("800"),
        }
        data.update(values)
        with acting_as(actor):
            firm = register_firm(actor, data)
        db.session.commit()
        return firm

    def token(self, user) -> str:
        from advisors.security import issue_token

        _row, secret = issue_token(user, "test")
        db.session.commit()
        return secret


@pytest.fixture
def make(app):
    return Factory()


@pytest.fixture
def travel():
    """Usage: ``travel(date(2026, 9, 29))`` — the whole product's clock (:mod:`advisors.clock`,
    and every ``datetime.now`` / ``time.time``) moves to noon of that Shanghai day, or to the
    given ``datetime`` (naive: Shanghai time), and runs on from there. Call it again to move
    on; time comes back when the test ends."""
    trips: list = []

    def go(when: date | datetime, *, tick: bool = True) -> datetime:
        if isinstance(when, datetime):
            to = when if when.tzinfo is not None else when.replace(tzinfo=SHANGHAI)
        else:
            to = datetime.combine(when, time(12), tzinfo=SHANGHAI)
        while trips:
            trips.pop().stop()
        trip = time_machine.travel(to, tick=tick)
        trip.start()
        trips.append(trip)
        return to

    yield go
    while trips:
        trips.pop().stop()


@pytest.fixture
def count_queries(app):
    """Usage: ``with count_queries() as q: ...; assert q.count <= N``."""
    from contextlib import contextmanager

    @contextmanager
    def counter():
        class Q:
            count = 0
            statements: list[str] = []

        def before(conn, cursor, statement, parameters, context, executemany):
            Q.count += 1
            Q.statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            yield Q
        finally:
            event.remove(db.engine, "before_cursor_execute", before)

    return counter


# ----------------------------------------------------------------------------- bare databases
@pytest.fixture
def bare_url(tmp_path):
    """A database of its own, empty (no schema): a SQLite file, or with ``TEST_DATABASE_URL`` a
    scratch PostgreSQL database next to the suite's, dropped afterwards."""
    suite = os.environ.get("TEST_DATABASE_URL")
    if not suite:
        yield f"sqlite:///{tmp_path / 'bare.db'}"
        return
    base = make_url(suite)
    name = f"{base.database}_bare"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def bare_app(bare_url):
    """An app on a bare database, its context pushed; nothing migrated yet."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": bare_url})
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
