"""A mixed load on the real deployment: errors and p50/p95/p99 per page.

``python -m bench load [--db URL|sqlite] [--clients 50] [--seconds 60] [--workers 4]
[--think 1.0] [--seed 1]``

Creates a scratch database (``--db``: a PostgreSQL URL, on whose server a new database is made
and dropped afterwards; or ``sqlite``, a temporary file), applies the migrations, loads the demo
city and adds users so that every client signs in as a user of its own (``--clients`` of them:
four in ten advisors, a quarter bureau staff, the rest finance office, liaisons, central bank
and administrators), each with an API token. Then starts the deployment as the README describes
it — ``gunicorn -w WORKERS run:app`` under ``APP_CONFIG=production`` and ONE ``flask --app run
scheduler run`` (which catches up at start) — and lets the clients loose for ``--seconds``.

Each client is a thread with its own cookies: it signs in through the real form (GET /login for
the CSRF token, POST /login), then loops over what its role does, pausing ``--think`` seconds on
average (0.5-1.5x) between requests: the home page (the workbench, for an advisor), the case
list or inbox, a case page of its scope, the visit log, the institution view, the bureau
dashboard, notifications, an API read, and now and then an API push of three referrals (bureaus;
a third of them firms pushed a moment ago, mostly by another bureau: co-referrals pushed at
once) or an API visit log (advisors). Requests
are plain ``http.client`` calls on a new connection each (gunicorn's sync workers close them) and
nothing is parsed but the sign-in form's token, so the client costs little next to the server.
A response other than the page's expected status is an error; so is a time-out (30 s) or a
refused connection.

Prints a table per page (requests, errors, p50/p95/p99/max in ms), the throughput, the client's
own CPU time, and what the server logged (tracebacks, worker time-outs) and the job runs the
scheduler left; then stops gunicorn and the scheduler and drops the database. Exit status 1 when
any request failed or the server logged a traceback."""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from .common import scratch_app

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
TIMEOUT = 30.0
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

# The share of clients per role (largest remainders for any --clients).
MIX = {
    "advisor": 0.40,
    "bureau": 0.24,
    "finance_office": 0.16,
    "liaison": 0.12,
    "pboc": 0.04,
    "admin": 0.04,
}
# Per role: (page label, weight). A label names a kind of request; see Client.request_for.
PLAN = {
    "advisor": [
        ("workbench /", 3),
        ("my cases /referrals/", 2),
        ("case page", 2),
        ("visit log /work/visits", 1),
        ("notifications", 1),
        ("API GET referrals", 1),
        ("API POST visit", 0.3),
    ],
    "bureau": [
        ("home /", 2),
        ("bureau list /referrals/", 2),
        ("bureau dashboard", 1),
        ("case page", 1),
        ("notifications", 1),
        ("API GET referrals", 1),
        ("API POST 3 referrals", 0.3),
    ],
    "finance_office": [
        ("home /", 2),
        ("inbox /referrals/", 3),
        ("case page", 2),
        ("visit log /work/visits", 1),
        ("institutions /work/institution", 0.5),
        ("notifications", 1),
        ("API GET referrals", 1),
    ],
    "liaison": [
        ("home /", 2),
        ("cases /referrals/", 2),
        ("case page", 1),
        ("institutions /work/institution", 1),
        ("visit log /work/visits", 1),
        ("notifications", 1),
    ],
    "pboc": [
        ("home /", 2),
        ("inbox /referrals/", 2),
        ("case page", 1),
        ("institutions /work/institution", 1),
        ("notifications", 1),
        ("API GET referrals", 1),
    ],
    "admin": [
        ("home /", 2),
        ("inbox /referrals/", 1),
        ("case page", 1),
        ("notifications", 1),
        ("API GET referrals", 1),
    ],
}
GET_PATHS = {
    "workbench /": "/",
    "home /": "/",
    "my cases /referrals/": "/referrals/",
    "bureau list /referrals/": "/referrals/",
    "inbox /referrals/": "/referrals/",
    "cases /referrals/": "/referrals/",
    "bureau dashboard": "/referrals/dashboard",
    "visit log /work/visits": "/work/visits",
    "institutions /work/institution": "/work/institution",
    "notifications": "/notifications/",
    "API GET referrals": "/api/v1/referrals?limit=20",
}


# ----------------------------------------------------------------------------- the city
@dataclass
class Account:
    username: str
    password: str
    role: str
    token: str
    cases: list[int] = field(default_factory=list)  # case ids in its scope
    open_cases: list[int] = field(default_factory=list)  # assigned to it (advisor)


def _roles(clients: int) -> list[str]:
    exact = {role: share * clients for role, share in MIX.items()}
    counts = {role: math.floor(v) for role, v in exact.items()}
    for role in sorted(exact, key=lambda r: exact[r] - counts[r], reverse=True)[
        : clients - sum(counts.values())
    ]:
        counts[role] += 1
    return [role for role, n in counts.items() for _ in range(n)]


def _build(clients: int) -> list[Account]:
    """Seed the demo city, then one user per client (the demo's first, then new ones in the
    same organisations), each with an API token and the cases in its scope."""
    from sqlalchemy import select

    from advisors.audit import acting_as
    from advisors.demo import DEMO_PASSWORD, seed_demo
    from advisors.permissions import scoped
    from advisors.security import issue_token
    from advisors.services.users import create_user
    from models import Referral, User, db

    with acting_as(label="demo"):
        print(seed_demo(), flush=True)
    db.session.commit()
    by_role: dict[str, list[User]] = defaultdict(list)
    for user in db.session.execute(select(User).where(User.active).order_by(User.id)).scalars():
        by_role[user.role].append(user)
    accounts = []
    taken: Counter = Counter()
    with acting_as(label="load"):
        for role in _roles(clients):
            i = taken[role]
            taken[role] += 1
            if i < len(by_role[role]):
                user = by_role[role][i]
            else:
                model = by_role[role][i % len(by_role[role])] if by_role[role] else None
                user = create_user(
                    username=f"load_{role}_{i}",
                    password=DEMO_PASSWORD,
                    role=role,
                    org=model.org if model is not None and model.org_id else None,
                    display_name=f"负载测试{role}{i}",
                )
                db.session.flush()
            _row, token = issue_token(user, "load")
            cases = list(
                db.session.execute(
                    scoped(Referral, user, select(Referral.id)).order_by(Referral.id).limit(200)
                ).scalars()
            )
            open_cases = []
            if role == "advisor":
                open_cases = list(
                    db.session.execute(
                        select(Referral.id).where(
                            Referral.advisor_id == user.id,
                            Referral.status.in_(("assigned", "in_service")),
                        )
                    ).scalars()
                )
            accounts.append(Account(user.username, DEMO_PASSWORD, role, token, cases, open_cases))
    db.session.commit()
    return accounts


# ----------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(  # noqa: S603 (our own commands)
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _wait_ready(port: int, proc: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn stopped:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gunicorn not ready after {seconds} s:\n{log.read_text()[-3000:]}")


# ----------------------------------------------------------------------------- the clients
class Shared:
    """What the clients share: the results, the firms pushed lately, the credit-code counter."""

    def __init__(self, seed: int):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, Counter] = defaultdict(Counter)
        self.pushed: list[str] = []
        self.serial = 0
        self.seed = seed

    def record(self, label: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.times[label].append(seconds)
            if error:
                self.errors[label][error] += 1

    def firm_codes(self, rng: random.Random, n: int) -> list[str]:
        """n credit codes: mostly new firms, a third pushed a moment ago by another bureau."""
        from advisors.credit_code import make_code

        codes = []
        with self.lock:
            for _ in range(n):
                if self.pushed and rng.random() < 0.33:
                    codes.append(rng.choice(self.pushed[-30:]))
                else:
                    self.serial += 1
                    code = make_code("9", "1", "330100", f"{self.seed:02d}{self.serial:06d}")
                    self.pushed.append(code)
                    codes.append(code)
        return codes


class Client(threading.Thread):
    def __init__(self, n: int, account: Account, port: int, shared: Shared, think: float):
        super().__init__(name=f"client-{n}", daemon=True)
        self.account, self.port, self.shared, self.think = account, port, shared, think
        self.rng = random.Random(shared.seed * 1000 + n)
        self.cookies: dict[str, str] = {}
        self.signed_in = threading.Event()
        self.go = threading.Event()
        self.stop_at = 0.0
        self.failed: str | None = None

    # --- HTTP
    def call(self, method: str, path: str, body: bytes | None = None, headers=None):
        """(status, headers, body) of one request on a new connection."""
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            for value in response.headers.get_all("Set-Cookie") or []:
                name, _eq, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, response.headers, data
        finally:
            conn.close()

    def timed(self, label: str, expected: tuple[int, ...], method: str, path: str, **kw):
        started = time.perf_counter()
        error = None
        try:
            status, _headers, _data = self.call(method, path, **kw)
            if status not in expected:
                error = f"HTTP {status}"
        except (OSError, http.client.HTTPException) as exc:
            error = type(exc).__name__
        self.shared.record(label, time.perf_counter() - started, error)

    # --- one session
    def sign_in(self) -> None:
        started = time.perf_counter()
        status, _h, page = self.call("GET", "/login")
        match = _CSRF.search(page.decode("utf-8", "replace"))
        if status != 200 or not match:
            raise RuntimeError(f"GET /login: {status}")
        form = urllib.parse.urlencode(
            {
                "username": self.account.username,
                "password": self.account.password,
                "csrf_token": match.group(1),
            }
        ).encode()
        status, headers, _body = self.call(
            "POST",
            "/login",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        error = None if status == 302 and "/login" not in headers.get("Location", "") else status
        self.shared.record("sign in (GET + POST /login)", time.perf_counter() - started, error)
        if error:
            raise RuntimeError(f"sign-in of {self.account.username}: {status}")

    def run(self) -> None:
        try:
            self.sign_in()
        except Exception as exc:  # noqa: BLE001 - reported in the summary
            self.failed = str(exc)
            self.signed_in.set()
            return
        self.signed_in.set()
        self.go.wait()
        plan = PLAN[self.account.role]
        labels = [label for label, _w in plan]
        weights = [w for _label, w in plan]
        time.sleep(self.rng.uniform(0, self.think))  # not all at the same instant
        while time.perf_counter() < self.stop_at:
            self.request(self.rng.choices(labels, weights)[0])
            time.sleep(self.think * self.rng.uniform(0.5, 1.5))

    def request(self, label: str) -> None:
        bearer = {"Authorization": f"Bearer {self.account.token}"}
        if label in GET_PATHS:
            path = GET_PATHS[label]
            headers = bearer if path.startswith("/api/") else None
            self.timed(label, (200,), "GET", path, headers=headers)
        elif label == "case page":
            if not self.account.cases:
                return self.request("notifications")
            case = self.rng.choice(self.account.cases)
            self.timed(label, (200,), "GET", f"/referrals/{case}")
        elif label == "API POST 3 referrals":
            items = [
                {
                    "credit_code": code,
                    "name": f"江州市负载测试{code[-6:]}有限公司",
                    "industry": self.rng.choice(["industry", "retail", "software_it"]),
                    "employees": self.rng.randint(5, 90),
                    "revenue_wan": str(self.rng.randint(50, 3000)),
                    "needs": ["financing", "policy"],
                    "amount_wan": str(self.rng.randint(20, 500)),
                }
                for code in self.shared.firm_codes(self.rng, 3)
            ]
            body = json.dumps({"items": items}).encode()
            headers = {**bearer, "Content-Type": "application/json"}
            self.timed(label, (200,), "POST", "/api/v1/referrals", body=body, headers=headers)
        elif label == "API POST visit":
            if not self.account.open_cases:
                return self.request("visit log /work/visits")
            visit = {
                "referral_id": self.rng.choice(self.account.open_cases),
                "visited_on": datetime.now(SHANGHAI).date().isoformat(),
                "mode": self.rng.choice(["phone", "onsite", "online"]),
                "roles": ["guidance"],
                "summary": "电话回访企业经营情况，了解融资需求。",
                "guidance_topic": "经营管理",
                "guidance_advice": "建议规范财务报表，便于银行授信。",
            }
            body = json.dumps(visit).encode()
            headers = {**bearer, "Content-Type": "application/json"}
            self.timed(label, (201,), "POST", "/api/v1/visits", body=body, headers=headers)
        else:
            raise ValueError(label)
        return None


# ----------------------------------------------------------------------------- the report
def _percentile(ordered: list[float], p: float) -> float:
    """Nearest rank."""
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def _report(shared: Shared, seconds: float, clients: int, cpu: float) -> int:
    total = sum(len(v) for v in shared.times.values())
    failures = sum(sum(c.values()) for c in shared.errors.values())
    print(
        f"\n{clients} clients for {seconds:.0f} s: {total} requests "
        f"({total / seconds:.1f}/s), {failures} errors; client CPU {cpu:.1f} s "
        f"({cpu / seconds:.0%} of one core); load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    head = f"{'page':<34} {'requests':>8} {'errors':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}"
    print(head + "   (ms)")
    order = sorted(shared.times, key=lambda k: (k.startswith("sign in"), k.startswith("API"), k))
    for label in order:
        ordered = sorted(shared.times[label])
        ms = [1000 * _percentile(ordered, p) for p in (50, 95, 99)] + [1000 * ordered[-1]]
        errors = sum(shared.errors[label].values())
        print(f"{label:<34} {len(ordered):>8} {errors:>6} " + " ".join(f"{v:>7.0f}" for v in ms))
    everything = sorted(
        t for label, v in shared.times.items() if not label.startswith("sign in") for t in v
    )
    if everything:
        ms = [1000 * _percentile(everything, p) for p in (50, 95, 99)] + [1000 * everything[-1]]
        print(
            f"{'all but sign-in':<34} {len(everything):>8} {failures:>6} "
            + " ".join(f"{v:>7.0f}" for v in ms)
        )
    for label, counter in shared.errors.items():
        if counter:
            print(f"  errors of {label}: {dict(counter)}")
    return failures


def _server_log_summary(path: Path, name: str) -> int:
    text = path.read_text(errors="replace")
    tracebacks = text.count("Traceback (most recent call last)")
    timeouts = text.count("WORKER TIMEOUT")
    print(f"{name} log: {tracebacks} tracebacks, {timeouts} worker time-outs")
    if tracebacks:
        start = text.find("Traceback (most recent call last)")
        print(text[start : start + 3000])
    return tracebacks + timeouts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench load", description=__doc__)
    parser.add_argument("--db", default="sqlite", help="'sqlite' (a temp file) or a PostgreSQL URL")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between requests (s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (and credit-code range)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or not 0 <= args.seed < 100:
        parser.error("--clients >= 1, --seconds > 0 and --seed 0-99, please")

    with scratch_app(args.db) as app, tempfile.TemporaryDirectory(prefix="load-") as tmp:
        from sqlalchemy import select

        from models import JobRun, db

        began = time.perf_counter()
        accounts = _build(args.clients)
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        db.session.remove()
        print(
            f"built on {url.split(':')[0]} in {time.perf_counter() - began:.1f} s: "
            f"{len(accounts)} accounts "
            f"({', '.join(f'{r} {n}' for r, n in Counter(a.role for a in accounts).items())})",
            flush=True,
        )
        port = _free_port()
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL",)},
            "DATABASE_URL": url,
            "APP_CONFIG": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "SCHEDULER": "off",
            "DEMO_DATA": "0",
        }
        logs = Path(tmp)
        web = _start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(args.workers),
                "-b",
                f"127.0.0.1:{port}",
                "run:app",
            ],
            env,
            logs / "gunicorn.log",
        )
        scheduler = _start(
            [sys.executable, "-m", "flask", "--app", "run", "scheduler", "run"],
            env,
            logs / "scheduler.log",
        )
        broken: list[str] = []
        try:
            _wait_ready(port, web, logs / "gunicorn.log")
            shared = Shared(args.seed)
            clients = [Client(n, a, port, shared, args.think) for n, a in enumerate(accounts)]
            for c in clients:  # sign in a few at a time, as people arrive
                c.start()
                time.sleep(0.02)
            for c in clients:
                c.signed_in.wait(120)
            broken = [f"{c.account.username}: {c.failed}" for c in clients if c.failed]
            if broken:
                print("sign-in failed:", *broken, sep="\n  ")
            cpu0, t0 = time.process_time(), time.perf_counter()
            for c in clients:
                c.stop_at = t0 + args.seconds
                c.go.set()
            for c in clients:
                c.join(args.seconds + TIMEOUT + 10)
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
        finally:
            _stop(web)
            _stop(scheduler)
        failures = _report(shared, elapsed, len(clients), cpu)
        problems = _server_log_summary(logs / "gunicorn.log", "gunicorn")
        problems += _server_log_summary(logs / "scheduler.log", "scheduler")
        for line in (logs / "scheduler.log").read_text(errors="replace").splitlines():
            if "scheduler started" in line or "catch-up" in line:
                print("  scheduler:", line.split(": ", 1)[-1][:200])
        runs = Counter(
            f"{job} {status}"
            for job, status in db.session.execute(select(JobRun.job_id, JobRun.status))
        )
        print("job runs:", dict(runs) or "none")
        db.session.remove()
    return 1 if failures or problems or broken else 0
