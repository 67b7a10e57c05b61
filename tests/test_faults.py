"""Faults: processes killed mid-work, several at once, a database that is down, silent or slow.

What holds, kept under test with real processes and a real ``kill -9``: a compile killed inside
its transaction (a ``scheduler run-job`` or a ``scheduler run`` catching up) leaves nothing of
itself; the next start marks the interrupted run failed and compiles its period once, with the
rows an uninterrupted compile gives; two schedulers started at once compile each period once; a
push killed mid-way leaves all or none. Two bureaus pushing the same firms at once, and two
uploads of one file, give one case per firm. A database that is down, silent or too slow costs
a request seconds and a 503 with ``Retry-After``, never a hang or a 500.

Everything runs on SQLite and on PostgreSQL (``TEST_DATABASE_URL``); the subprocesses share the
suite's database. Only the statement timeout is PostgreSQL's alone.
"""

from __future__ import annotations

import functools
import io
import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from openpyxl import Workbook
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text

from advisors import create_app, periods
from advisors.dbutil import (
    held_for_life,
    is_held,
    is_unavailable,
    lock_key,
    set_local_statement_timeout,
)
from advisors.i18n import SHANGHAI
from advisors.services import jobs as svc
from models import (
    Assessment,
    AssessmentRow,
    Enterprise,
    JobRun,
    Referral,
    ReferralBureau,
    ReferralUpload,
    db,
    utcnow,
)
from tests.conftest import PASSWORD, AuthActions, csrf_from

ROOT = Path(__file__).resolve().parent.parent
WAIT = 120  # seconds a subprocess may take to reach a point (a loaded two-core machine)
CATCH_UP_DONE = ('Job "catch_up', "executed successfully")


# ----------------------------------------------------------------------------- helpers
def _url() -> str:
    return db.engine.url.render_as_string(hide_password=False)


def _postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


class Child:
    """A subprocess on the suite's database whose output is read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, *markers: str, timeout: float = WAIT) -> str:
        """The first line holding every marker; fails when the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise AssertionError(
                        f"no {markers} within {timeout} s:\n{self.tail()}"
                    ) from None
                continue
            if line is None:
                raise AssertionError(
                    f"ended ({self.popen.wait()}) before {markers}:\n{self.tail()}"
                )
            if all(m in line for m in markers):
                return line

    def tail(self) -> str:
        return "".join(self.output)[-4000:]

    def kill9(self) -> None:
        os.kill(self.popen.pid, signal.SIGKILL)
        assert self.popen.wait(30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(30)


@pytest.fixture
def children(app):
    """Start subprocesses on the suite's database; all are stopped before the tables are
    emptied. ``children.flask(*args, pause=S)``: ``flask --app run ARGS``, with jobs pausing
    S seconds inside their transaction (``ADVISORS_FAULT_PAUSE_IN_JOB``)."""

    class Children:
        started: list[Child] = []

        def env(self, pause: float | None = None) -> dict[str, str]:
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("APP_CONFIG", "TEST_DATABASE_URL", svc.FAULT_PAUSE_ENV)
            }
            env.update(
                DATABASE_URL=_url(),
                SECRET_KEY="faults-test-key",
                DEMO_DATA="0",
                SCHEDULER="off",
                PYTHONUNBUFFERED="1",
            )
            if pause:
                env[svc.FAULT_PAUSE_ENV] = str(pause)
            return env

        def flask(self, *args: str, pause: float | None = None) -> Child:
            return self.start([sys.executable, "-m", "flask", "--app", "run", *args], pause)

        def python(self, code: str, *args: str) -> Child:
            return self.start([sys.executable, "-c", code, *args])

        def start(self, argv: list[str], pause: float | None = None) -> Child:
            child = Child(argv, self.env(pause))
            self.started.append(child)
            return child

    made = Children()
    made.started = []
    yield made
    for child in made.started:
        child.stop()
    db.session.rollback()


def _advisors(make) -> None:
    bank, other = make.org("bank", code="ABC"), make.org("bank", code="ICBC")
    for org in (bank, bank, other):
        make.user("advisor", org=org)


def _record(job_id: str, period: str) -> None:
    """The scheduler finished ``period`` (so a start catches up only what comes after it)."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    db.session.add(
        JobRun(
            job_id=job_id,
            period=period,
            trigger="schedule",
            status="ok",
            started_at=at,
            finished_at=at,
        )
    )
    db.session.commit()


def _rows(period: str) -> list[tuple]:
    """An assessment's rows as committed: everything but ids and times."""
    rows = _select_rows(period)
    db.session.rollback()
    return rows


def _select_rows(period: str) -> list[tuple]:
    rows = db.session.execute(
        select(
            AssessmentRow.advisor_id,
            AssessmentRow.org_id,
            AssessmentRow.computed,
            AssessmentRow.adjustment,
            AssessmentRow.score,
            AssessmentRow.rank,
            AssessmentRow.institution_rank,
            AssessmentRow.metrics,
        )
        .join(Assessment, Assessment.id == AssessmentRow.assessment_id)
        .where(Assessment.period == period)
        .order_by(AssessmentRow.advisor_id)
    ).all()
    return [tuple(r) for r in rows]


def _reference(period: str) -> list[tuple]:
    """The rows an uninterrupted compile of ``period`` gives now (compiled, read, rolled back)."""
    from advisors.services.assessments import compile_period

    compile_period(period, None)
    db.session.flush()
    rows = _select_rows(period)
    db.session.rollback()
    assert len(rows) == 3
    return rows


def _runs(period: str | None = None) -> list[tuple]:
    stmt = select(JobRun.id, JobRun.trigger, JobRun.status, JobRun.message).order_by(JobRun.id)
    if period is not None:
        stmt = stmt.where(JobRun.period == period)
    rows = [tuple(r) for r in db.session.execute(stmt)]
    db.session.rollback()
    return rows


def _compile_counts() -> dict[str, int]:
    counts = dict(db.session.execute(select(Assessment.period, Assessment.compile_count)).all())
    db.session.rollback()
    return counts


def _until_released(run_id: int, timeout: float = 15) -> None:
    """After a kill -9 the server notices the lost connection within moments (PostgreSQL);
    a scheduler restarted takes longer than that anyway."""
    deadline = time.monotonic() + timeout
    while is_held(svc.run_lock_name(run_id)):
        assert time.monotonic() < deadline, "the killed run's lock was never released"
        time.sleep(0.05)


def _backlog() -> list[str]:
    """Record the monthly compile as last finished three months ago: a scheduler started now
    catches up the one or two months since that are due (nothing else: there is no activity)."""
    this_month = periods.period_of("month", utcnow())
    _record("assessment_monthly", this_month.previous().previous().previous().key)
    due = [p.key for p in svc.missed_periods()]
    db.session.rollback()
    assert 1 <= len(due) <= 2, due
    return due


# ----------------------------------------------------------------------------- a) kill -9
def test_a_compile_killed_inside_its_transaction_leaves_nothing_and_is_redone_once(
    app, make, children
):
    """``kill -9`` of ``flask scheduler run-job`` with the compile done but not committed: no
    row of it is kept; its run stays ``running`` until the scheduler's next start, which marks
    it failed (interrupted) and compiles the month once, with the rows of an uninterrupted
    compile."""
    _advisors(make)
    expected = _reference("2026-07")
    _record("assessment_monthly", "2026-06")
    job = children.flask(
        "scheduler", "run-job", "assessment_monthly", "--period", "2026-07", pause=300
    )
    job.wait_for("fault-pause: assessment_monthly")
    ((run_id, trigger, status, _msg),) = _runs("2026-07")
    assert (trigger, status) == ("cli", "running")
    assert is_held(svc.run_lock_name(run_id)) is True  # at work: not to be touched
    assert svc.abandon_stale_runs() == 0
    assert _rows("2026-07") == []  # not committed

    job.kill9()
    _until_released(run_id)
    assert _runs("2026-07") == [(run_id, "cli", "running", None)]
    assert _compile_counts() == {}

    # The scheduler starts again (its catch-up, as it runs at start-up).
    done = svc.catch_up(datetime(2026, 8, 5, 10, tzinfo=SHANGHAI))
    assert [(r.period, r.trigger, r.status) for r in done] == [("2026-07", "catch_up", "ok")]
    runs = _runs("2026-07")
    assert [(t, s, m) for _id, t, s, m in runs[:1]] == [("cli", "failed", svc.INTERRUPTED)]
    assert [(t, s) for _id, t, s, _m in runs[1:]] == [("catch_up", "ok")]
    assert _compile_counts() == {"2026-07": 1}
    assert _rows("2026-07") == expected
    assert svc.catch_up(datetime(2026, 8, 6, 10, tzinfo=SHANGHAI)) == []


def test_a_scheduler_killed_mid_catch_up_is_caught_up_by_the_next(app, make, children):
    """A ``flask scheduler run`` killed with ``kill -9`` in its catch-up's first compile; the
    next scheduler process marks that run interrupted and compiles every missed month once."""
    _advisors(make)
    due = _backlog()
    expected = {key: _reference(key) for key in due}
    first = children.flask("scheduler", "run", pause=300)
    first.wait_for("fault-pause: assessment_monthly")
    ((run_id, _t, status, _m),) = [r for r in _runs() if r[1] == "catch_up"]
    assert status == "running"
    first.kill9()
    _until_released(run_id)

    second = children.flask("scheduler", "run")
    second.wait_for(*CATCH_UP_DONE)
    second.stop()
    killed = [r for r in _runs() if r[0] == run_id]
    assert killed == [(run_id, "catch_up", "failed", svc.INTERRUPTED)]
    assert "marked 1 interrupted run(s) as failed" in second.tail()
    assert _compile_counts() == dict.fromkeys(due, 1)
    ok = [(r[1], r[2]) for key in due for r in _runs(key)[-1:]]
    assert ok == [("catch_up", "ok")] * len(due)
    assert {key: _rows(key) for key in due} == expected
    assert not [r for r in _runs() if r[2] == "running"]


def test_two_schedulers_started_at_once_compile_each_period_once(app, make, children):
    """Two ``flask scheduler run`` processes catch up at the same time (each compile holds
    its transaction a second, so they overlap): each month is compiled once, by one of them;
    the other's run of it is skipped."""
    _advisors(make)
    due = _backlog()
    expected = {key: _reference(key) for key in due}
    both = [children.flask("scheduler", "run", pause=1) for _ in range(2)]
    for child in both:
        child.wait_for(*CATCH_UP_DONE)
        child.stop()
    assert _compile_counts() == dict.fromkeys(due, 1)
    for key in due:
        statuses = sorted(s for _id, t, s, _m in _runs(key) if t == "catch_up")
        assert statuses in (["ok"], ["ok", "skipped"]), statuses
    assert {key: _rows(key) for key in due} == expected


def test_a_run_at_work_elsewhere_is_left_alone_and_a_gone_one_is_failed_at_any_age(app):
    """The start-up sweep goes by the run's lock, not its age: a run whose process still holds
    it (a "Run now" in a web worker, a second scheduler) is left alone however old; one whose
    process is gone is failed however recent."""
    now = utcnow()
    old_alive = JobRun(
        job_id="housekeeping", trigger="manual", started_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    new_gone = JobRun(job_id="housekeeping", trigger="cli", started_at=now)
    db.session.add_all([old_alive, new_gone])
    db.session.commit()
    alive_id, gone_id = old_alive.id, new_gone.id
    with held_for_life(svc.run_lock_name(alive_id)):
        assert is_held(svc.run_lock_name(alive_id)) is True
        assert svc.abandon_stale_runs() == 1
    assert is_held(svc.run_lock_name(alive_id)) is False
    db.session.expire_all()
    assert [(r[0], r[2], r[3]) for r in _runs()] == [
        (alive_id, "running", None),
        (gone_id, "failed", svc.INTERRUPTED),
    ]


# ----------------------------------------------------------------------------- pushes
PUSH_THEN_WAIT = """
import json, sys, time
from advisors import create_app
from advisors.audit import acting_as
from advisors.services import referrals
from models import User, db

url, user_id, path = sys.argv[1:]
app = create_app({"SQLALCHEMY_DATABASE_URI": url})
with app.app_context():
    user = db.session.get(User, int(user_id))
    items = json.load(open(path, encoding="utf-8"))
    with acting_as(user):
        results = referrals.submit(user, items, source="api")
    db.session.flush()
    print("pushed", sum(r.status == "created" for r in results), flush=True)
    time.sleep(300)
"""


def _items(make, n: int) -> list[dict]:
    return [
        {
            "credit_code": make.credit_code(),
            "name": f"江州市故障测试企业{i}有限公司",
            "industry": "industry",
            "employees": 20,
            "revenue_wan": "300",
            "needs": ["financing", "policy"],
            "amount_wan": "100",
        }
        for i in range(n)
    ]


def _count(model) -> int:
    count = db.session.scalar(select(func.count()).select_from(model))
    db.session.rollback()
    return count


def test_a_push_killed_before_its_commit_leaves_none_of_it(app, make, children, tmp_path):
    """A worker killed with ``kill -9`` in the middle of a push (everything written, nothing
    committed) leaves no firm and no case, and no lock behind: the same push then creates all."""
    from advisors.audit import acting_as
    from advisors.services import referrals

    bureau = make.user("bureau", org=make.org("bureau", code="GXJ"))
    items = _items(make, 200)
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    worker = children.python(PUSH_THEN_WAIT, _url(), str(bureau.id), str(path))
    assert worker.wait_for("pushed").split() == ["pushed", "200"]
    worker.kill9()
    assert _count(Enterprise) == _count(Referral) == 0
    started = time.monotonic()
    with acting_as(bureau):
        results = referrals.submit(bureau, items, source="api")
    db.session.commit()
    assert time.monotonic() - started < 8  # the intake lock died with the worker
    assert [r.status for r in results] == ["created"] * 200
    assert _count(Enterprise) == _count(Referral) == 200


def _at_once(app, calls: dict) -> dict:
    """Run the callables in threads released together; their results (or exceptions)."""
    barrier = threading.Barrier(len(calls))
    results: dict = {}

    def run(name, call):
        try:
            barrier.wait(30)
            results[name] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results[name] = exc

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_two_bureaus_pushing_the_same_firms_at_once_get_one_case_each(app, make):
    """Two bureaus push the same 200 firms through the API at the same moment: no conflict;
    every item has its one result — created for one bureau, merged for the other — and every
    firm one open case that both bureaus refer."""
    gxj = make.user("bureau", org=make.org("bureau", code="GXJ"))
    swj = make.user("bureau", org=make.org("bureau", code="SWJ"))
    tokens = {"gxj": make.token(gxj), "swj": make.token(swj)}
    items = _items(make, 200)

    def push(token):
        def call():
            return app.test_client().post(
                "/api/v1/referrals",
                json={"items": items},
                headers={"Authorization": f"Bearer {token}"},
            )

        return call

    responses = _at_once(app, {name: push(token) for name, token in tokens.items()})
    for name, r in responses.items():
        assert not isinstance(r, Exception), r
        assert r.status_code == 200, (name, r.status_code, r.get_data(as_text=True)[:500])
    bodies = {name: r.get_json() for name, r in responses.items()}
    for body in bodies.values():
        assert [x["index"] for x in body["results"]] == list(range(200))
        assert sum(body["counts"].values()) == 200
    per_item = zip(*(body["results"] for body in bodies.values()), strict=True)
    for pair in per_item:
        assert sorted(x["status"] for x in pair) == ["created", "merged"]
        assert pair[0]["referral_id"] == pair[1]["referral_id"]
    assert _count(Referral) == _count(Enterprise) == 200
    assert _count(ReferralBureau) == 400  # both bureaus on every case
    per_case = db.session.execute(
        select(ReferralBureau.referral_id, func.count()).group_by(ReferralBureau.referral_id)
    ).all()
    assert {n for _rid, n in per_case} == {2}


def _xlsx(codes: list[str]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["统一社会信用代码*", "企业名称*", "行业*", "需求*", "融资金额（万元）"])
    for i, code in enumerate(codes):
        ws.append([code, f"江州市上传测试企业{i}有限公司", "工业", "融资、政策", 100])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_one_file_uploaded_twice_at_once_creates_nothing_twice(app, make):
    """The same bureau uploads the same file from two browsers at the same moment: one upload,
    one case per row; the other request is sent to that upload's report."""
    bureau = make.user("bureau", org=make.org("bureau", code="GXJ"))
    data = _xlsx([make.credit_code() for _ in range(150)])
    clients = []
    for _ in range(2):
        client = app.test_client()
        assert AuthActions(client).login(bureau.username, PASSWORD).status_code == 302
        clients.append(client)

    def upload(client):
        token = csrf_from(client.get("/referrals/upload").get_data(as_text=True))

        def call():
            return client.post(
                "/referrals/upload",
                data={"csrf_token": token, "file": (io.BytesIO(data), "list.xlsx")},
                content_type="multipart/form-data",
            )

        return call

    responses = _at_once(app, {i: upload(c) for i, c in enumerate(clients)})
    assert [getattr(r, "status_code", r) for r in responses.values()] == [302, 302]
    assert len({r.headers["Location"] for r in responses.values()}) == 1
    assert _count(ReferralUpload) == 1
    assert _count(Referral) == _count(Enterprise) == 150


# ----------------------------------------------------------------------------- b) 503
def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _replace_view(monkeypatch, app, endpoint: str, view) -> None:
    """``view`` in place of the endpoint's own, with its access rule."""
    monkeypatch.setitem(
        app.view_functions, endpoint, functools.update_wrapper(view, app.view_functions[endpoint])
    )


def test_database_down_answers_503_with_retry_after(app):
    """Nothing listens where the database should be: the API answers 503 in the contract's
    error shape, a page answers the 503 page (without the signed-in navigation, which needs
    the database), both with ``Retry-After``; the health check stays 503 too."""
    down = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    client = down.test_client()
    r = client.get("/api/v1/me", headers=_bearer("any-token"))
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    error = r.get_json()["error"]
    # No user can be read without the database: the message is in the default language.
    assert error["code"] == "unavailable" and "重试" in error["message"]
    with client.session_transaction() as session:
        session["_user_id"] = "a-signed-in-session"
        session["lang"] = "en"
    r = client.get("/referrals/")
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    page = r.get_data(as_text=True)
    assert 'data-testid="unavailable"' in page and "try again in a minute" in page
    assert client.get("/healthz").status_code == 503


@pytest.mark.parametrize(
    ("orig", "status"),
    [
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), 503),
        (psycopg.errors.AdminShutdown("terminating connection"), 503),
        (psycopg.errors.SerializationFailure("could not serialize access"), 500),
        (sqlite3.OperationalError("database is locked"), 503),
        (sqlite3.OperationalError("no such column: x"), 500),
    ],
)
def test_only_errors_of_an_unavailable_database_are_503(
    app, make, login, monkeypatch, orig, status
):
    """A signed-in page and an API call whose database work fails: 503 when the database is
    unavailable or too slow, 500 when the statement itself failed (or lost a race)."""
    user = make.user("bureau")
    token = make.token(user)

    def fail(*_args, **_kwargs):
        raise sa_exc.OperationalError("SELECT 1", {}, orig)

    _replace_view(monkeypatch, app, "api.me", fail)
    _replace_view(monkeypatch, app, "notifications.index", fail)
    r = app.test_client().get("/api/v1/me", headers=_bearer(token))
    assert r.status_code == status
    assert r.get_json()["error"]["code"] == ("unavailable" if status == 503 else "server_error")
    assert ("Retry-After" in r.headers) == (status == 503)
    client = app.test_client()
    assert AuthActions(client).login(user.username).status_code == 302
    r = client.get("/notifications/")
    assert r.status_code == status


def test_which_failures_mean_the_database_is_unavailable():
    def wrapped(orig):
        return sa_exc.OperationalError("SELECT 1", {}, orig)

    assert is_unavailable(wrapped(psycopg.OperationalError("connection timeout expired")))
    assert is_unavailable(wrapped(psycopg.errors.TooManyConnections("too many clients")))
    assert is_unavailable(sa_exc.TimeoutError("QueuePool limit reached"))
    assert is_unavailable(sa_exc.InterfaceError("SELECT 1", {}, psycopg.InterfaceError("closed")))
    assert not is_unavailable(wrapped(psycopg.errors.DeadlockDetected("deadlock detected")))
    assert not is_unavailable(wrapped(psycopg.errors.LockNotAvailable("could not obtain lock")))
    assert not is_unavailable(
        sa_exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key"))
    )
    assert not is_unavailable(ValueError("not a database error"))


# ----------------------------------------------------------------------------- c) timeouts
def test_a_database_that_never_answers_fails_a_request_within_the_connect_timeout(app, make):
    """A black hole: a port that accepts the connection and then says nothing. The request
    gives up after the connect timeout (here 2 s, the least libpq takes) with a 503."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)  # the kernel completes the handshake; nobody ever answers
        port = hole.getsockname()[1]
        silent = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://u@127.0.0.1:{port}/db",
                "DB_CONNECT_TIMEOUT": 2,
            }
        )
        started = time.monotonic()
        r = silent.test_client().get("/api/v1/me", headers=_bearer("any-token"))
        took = time.monotonic() - started
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    assert 1.5 < took < 8, took


def test_postgresql_connections_carry_the_timeouts(app):
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    if not _postgresql():
        assert "connect_args" not in options
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 10000
        return
    args = options["connect_args"]
    assert args["connect_timeout"] == 5 and args["keepalives"] == 1
    assert args["tcp_user_timeout"] == 15000 and options["pool_timeout"] == 10
    shown = {
        name: db.session.execute(text(f"SHOW {name}")).scalar()
        for name in ("statement_timeout", "idle_in_transaction_session_timeout")
    }
    assert shown == {"statement_timeout": "20s", "idle_in_transaction_session_timeout": "1min"}
    db.session.rollback()


def test_a_statement_past_the_timeout_is_cancelled_with_503_but_a_job_may_take_longer(
    app, make, monkeypatch
):
    if not _postgresql():
        pytest.skip("pg_sleep and statement_timeout are PostgreSQL's")
    user = make.user("bureau")
    token = make.token(user)
    slow = create_app({"SQLALCHEMY_DATABASE_URI": _url(), "DB_STATEMENT_TIMEOUT_MS": 300})

    def sleepy():
        db.session.execute(text("SELECT pg_sleep(5)"))
        return {}

    _replace_view(monkeypatch, slow, "api.me", sleepy)
    started = time.monotonic()
    r = slow.test_client().get("/api/v1/me", headers=_bearer(token))
    took = time.monotonic() - started
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "unavailable"
    assert took < 3, took
    with slow.app_context():
        try:
            # A job's transaction (run_job) sets its own, longer timeout.
            set_local_statement_timeout(5000)
            db.session.execute(text("SELECT pg_sleep(0.5)"))
            assert db.session.execute(text("SHOW statement_timeout")).scalar() == "5s"
            db.session.rollback()
            assert db.session.execute(text("SHOW statement_timeout")).scalar() == "300ms"
            db.session.rollback()
        finally:
            db.session.remove()
            db.engine.dispose()


def test_a_job_runs_with_the_job_statement_timeout(app, monkeypatch):
    seen = {}

    def probe():
        if _postgresql():
            seen["timeout"] = db.session.execute(text("SHOW statement_timeout")).scalar()
        return svc.Result(0, {})

    monkeypatch.setitem(svc.JOBS, "housekeeping", (probe, svc.JOBS["housekeeping"][1]))
    run = svc.run_job("housekeeping", "cli")
    assert run.status == "ok"
    if _postgresql():
        assert seen == {"timeout": "30min"}


# ----------------------------------------------------------------------------- the locks
def test_the_lock_of_a_run_lives_no_longer_than_its_holder(app):
    name = "faults:test"
    assert is_held(name) is False
    with held_for_life(name):
        assert is_held(name) is True
    assert is_held(name) is False
    assert lock_key(name) == lock_key(name) != lock_key("faults:other")
