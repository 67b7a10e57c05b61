"""Sign-in throttling: growing delays that slow guessers, not users; proxies; the admin page.

The clock is controlled: services take ``now``; over HTTP ``advisors.security.utcnow`` and
``advisors.throttling.utcnow`` are replaced by a clock the test moves. Nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from advisors import security, throttling
from advisors.audit import acting_as
from advisors.throttling import Rule
from models import AuditLog, LoginAttempt, UserSession, db, utcnow
from tests.conftest import PASSWORD, AuthActions, IsolatedClient, csrf_from

A = "10.0.0.1"  # the guesser's address
B = "10.0.0.2"  # a clean address
WRONG = "wrong-password"


class Clock:
    def __init__(self):
        self.now = utcnow().replace(microsecond=0)

    def __call__(self):
        return self.now

    def advance(self, **kwargs):
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr("advisors.security.utcnow", c)
    monkeypatch.setattr("advisors.throttling.utcnow", c)
    return c


def _login(user, password, ip, now):
    result = security.authenticate(user.username, password, ip, now=now)
    db.session.commit()
    return result


def _failures(**where) -> int:
    stmt = select(func.count()).select_from(LoginAttempt).where(LoginAttempt.success.is_(False))
    for column, value in where.items():
        stmt = stmt.where(getattr(LoginAttempt, column) == value)
    return db.session.scalar(stmt)


# ------------------------------------------------------------------ the rules
def test_delays_grow_exponentially_to_the_cap():
    rule = Rule(5, timedelta(seconds=15), timedelta(minutes=15))
    assert [rule.delay(n).total_seconds() for n in range(4, 13)] == [
        0,
        15,
        30,
        60,
        120,
        240,
        480,
        900,
        900,
    ]
    assert rule.delay(10_000) == timedelta(minutes=15)
    assert rule.saturation == 11  # counting more failures than this changes nothing


# ------------------------------------------------------------------ users get in
def test_right_password_after_wrong_ones_gets_in_after_a_short_wait(app, make, clock):
    user = make.user("bureau")
    t = clock.now
    for _ in range(app.config["LOGIN_FREE_FAILURES"]):
        assert _login(user, WRONG, A, t).user is None
    # From a clean address: no wait at all (the account has only a few failures).
    assert _login(user, PASSWORD, B, t).user == user
    # From the same address: a short wait, then the right password works.
    refused = _login(user, PASSWORD, A, t)
    # Refused, and counted: the wait the user is told includes this attempt (30 s, not 15).
    assert refused.locked and refused.user is None and refused.retry_after == 30
    assert _login(user, PASSWORD, A, t + timedelta(seconds=31)).user == user


def test_distributed_guessing_delays_a_clean_address_by_a_minute_at_most(app, make, clock):
    user = make.user("bureau")
    t = clock.now
    for i in range(40):  # 40 wrong passwords from 40 addresses, one each
        _login(user, WRONG, f"192.0.2.{i}", t)
    result = _login(user, PASSWORD, B, t)
    assert result.locked
    assert result.retry_after <= 60
    # The user waits as told and gets in: never a long lock of the right password.
    assert _login(user, PASSWORD, B, t + timedelta(seconds=result.retry_after)).user == user


def test_a_known_address_is_not_held_up_by_guessing_elsewhere(app, make, clock):
    user = make.user("bureau")
    t = clock.now
    assert _login(user, PASSWORD, B, t - timedelta(days=3)).user == user
    for i in range(40):
        _login(user, WRONG, f"192.0.2.{i}", t)
    assert _login(user, PASSWORD, B, t).user == user


def test_others_typos_behind_a_shared_address_do_not_lock_out_its_users(app, make, clock):
    regular = make.user("finance_office")
    admin = make.user("admin")
    t = clock.now
    assert _login(regular, PASSWORD, A, t - timedelta(days=1)).user == regular
    assert _login(admin, PASSWORD, A, t - timedelta(days=20)).user == admin
    _login(regular, WRONG, A, t)  # a typo of their own does not matter either
    for i in range(app.config["LOGIN_ADDRESS_FREE_FAILURES"] + 10):
        security.authenticate(f"someone{i % 4}", WRONG, A, now=t)
    db.session.commit()
    assert _login(regular, PASSWORD, A, t).user == regular
    assert _login(admin, PASSWORD, A, t).user == admin
    # An account that never signed in there is slowed down (credential stuffing).
    newcomer = make.user("bureau")
    assert _login(newcomer, PASSWORD, A, t).locked
    # ... but not at another address.
    assert _login(newcomer, PASSWORD, B, t).user == newcomer


def test_success_resets_the_pair_but_keeps_the_history(app, make, clock):
    user = make.user("bureau")
    t = clock.now
    for _ in range(5):
        _login(user, WRONG, A, t)
    t += timedelta(seconds=15)
    assert _login(user, PASSWORD, A, t).user == user
    assert _failures(username=user.username) == 5  # nothing erased
    # A typo after the success is free again.
    assert _login(user, WRONG, A, t).locked is False
    assert _login(user, PASSWORD, A, t).user == user


# ------------------------------------------------------------------ guessers are slowed
def test_a_guesser_waits_longer_after_every_failure(app, make, clock):
    user = make.user("bureau")
    t = clock.now
    name = user.username.lower()
    for _ in range(5):
        assert not _login(user, WRONG, A, t).locked
    waits = []
    for _ in range(8):
        verdict = throttling.check(name, A, throttling.SIGN_IN, t)
        waits.append(verdict.retry_after)
        t += timedelta(seconds=verdict.retry_after)
        assert not _login(user, WRONG, A, t).locked  # the guess after the wait is checked
    assert waits == [15, 30, 60, 120, 240, 480, 900, 900]


def test_every_refused_attempt_is_counted_and_lengthens_the_wait(app, make, clock):
    user = make.user("bureau")
    t = clock.now
    for i in range(5):
        result = _login(user, WRONG, A, t)
        # The failure that uses up the free ones says how long to wait before the next.
        assert result.retry_after == (15 if i == 4 else 0)
    first = _login(user, PASSWORD, A, t + timedelta(seconds=5))  # 10 s too early
    assert first.locked and first.retry_after == 30  # counted: 30 s from this attempt
    assert _failures(username=user.username) == 6
    second = _login(user, PASSWORD, A, t + timedelta(seconds=6))
    assert second.locked and second.retry_after == 60
    assert _failures(username=user.username) == 7
    # Hammering never gets a password checked and the wait only grows, to the cap.
    for i in range(50):
        assert _login(user, PASSWORD, A, t + timedelta(seconds=7 + i)).locked
    assert _failures(username=user.username) == 57
    last = _login(user, PASSWORD, A, t + timedelta(seconds=57))
    assert last.retry_after == 15 * 60  # the cap


def test_unknown_usernames_are_throttled_alike(app, clock):
    t = clock.now
    for _ in range(5):
        security.authenticate("no-such-user", WRONG, A, now=t)
    assert security.authenticate("No-Such-User ", WRONG, A, now=t).locked
    db.session.commit()
    assert _failures(username="no-such-user") == 6


def test_cleared_failures_no_longer_count(app, make, clock):
    user = make.user("bureau")
    t = clock.now
    for _ in range(8):
        _login(user, WRONG, A, t)
    assert _login(user, PASSWORD, A, t).locked
    with acting_as(label="test"):
        assert throttling.clear("pair", user.username, A, now=t) == 9
    db.session.commit()
    assert _login(user, PASSWORD, A, t).user == user


def test_one_attempt_costs_a_bounded_number_of_queries(app, make, clock, count_queries):
    user = make.user("bureau")
    t = clock.now
    rows = [
        LoginAttempt(username=user.username, ip=f"192.0.2.{i % 200}", success=False, at=t)
        for i in range(600)
    ]
    db.session.add_all(rows)
    db.session.commit()
    with count_queries() as q:
        security.authenticate(user.username, PASSWORD, A, now=t)
        db.session.flush()
    # The pair's last success, one UNION of bounded aggregates, the insert (a locked attempt
    # does not even look the user up).
    assert q.count <= 4, q.statements
    assert sum("LIMIT" in s.upper() for s in q.statements) >= 1
    db.session.rollback()


# ------------------------------------------------------------------ over HTTP
def test_http_guesser_delayed_and_user_gets_in_after_the_wait(app, client, auth, make, clock):
    user = make.user("bureau")
    with client.session_transaction() as s:
        s["lang"] = "en"
    for _ in range(4):
        assert auth.login(user.username, WRONG).status_code == 200
    r = auth.login(user.username, WRONG)
    assert r.status_code == 200
    assert "wait 15 seconds before the next one" in r.get_data(as_text=True)
    r = auth.login(user.username)  # too early: refused, counted, the wait grows
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "30"
    assert "Please wait 30 seconds" in r.get_data(as_text=True)
    clock.advance(seconds=29)
    r = auth.login(user.username)
    assert r.status_code == 429 and r.headers["Retry-After"] == "60"
    clock.advance(seconds=60)  # waiting as told: the right password gets in
    assert auth.login(user.username).status_code == 302
    assert _failures(username=user.username) == 7


def test_http_wait_shown_in_minutes(app, client, auth, make, clock):
    user = make.user("bureau")
    for _ in range(12):
        auth.login(user.username, WRONG)
    with client.session_transaction() as s:
        s["lang"] = "en"
    r = auth.login(user.username)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) == 15 * 60
    assert "Please wait 15 minutes" in r.get_data(as_text=True)


def test_http_many_failures_from_one_address_spare_a_known_user(app, client, auth, make, clock):
    admin = make.user("admin")
    assert auth.login(admin.username).status_code == 302
    auth.logout()
    for i in range(25):
        auth.login(f"colleague{i % 3}", WRONG)
    for i in range(10):
        auth.login(f"nobody{i}", WRONG)
    assert auth.login(admin.username).status_code == 302


# ------------------------------------------------------------------ proxies
def _proxied_app(app, hops: int):
    from advisors import create_app

    other = create_app(
        {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TRUSTED_PROXIES": hops}
    )
    other.test_client_class = IsolatedClient
    return other


def _login_via(client, username, password=PASSWORD, forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    token = csrf_from(client.get("/login", headers=headers).get_data(as_text=True))
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers=headers,
    )


def test_behind_one_proxy_the_forwarded_client_is_used(app, make):
    user = make.user("admin")
    client = _proxied_app(app, 1).test_client()
    # The client forged an entry; the proxy appended the real address: the last one counts.
    r = _login_via(client, user.username, forwarded="6.6.6.6, 198.51.100.7")
    assert r.status_code == 302
    assert db.session.scalar(select(LoginAttempt.ip)) == "198.51.100.7"
    assert db.session.scalar(select(UserSession.ip)) == "198.51.100.7"
    # The audit trail records the client too.
    t = utcnow()
    db.session.add(LoginAttempt(username="victim", ip="203.0.113.9", success=False, at=t))
    db.session.commit()
    token = csrf_from(client.get("/admin/throttling/").get_data(as_text=True))
    r = client.post(
        "/admin/throttling/clear",
        data={"scope": "account", "username": "victim", "kind": "sign_in", "csrf_token": token},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert r.status_code == 302
    assert db.session.scalar(select(AuditLog.ip).where(AuditLog.table_name == "login_attempt")) == (
        "198.51.100.7"
    )


def test_without_trusted_proxies_a_forged_header_is_ignored(app, client, make):
    assert app.config["TRUSTED_PROXIES"] == 0
    user = make.user("bureau")
    assert _login_via(client, user.username, WRONG, forwarded="198.51.100.7").status_code == 200
    assert db.session.scalar(select(LoginAttempt.ip)) == "127.0.0.1"


def test_a_forged_header_does_not_escape_the_throttle(app, make):
    """Behind one proxy, a guesser rotating its own X-Forwarded-For entries stays one address."""
    user = make.user("bureau")
    client = _proxied_app(app, 1).test_client()
    for i in range(5):
        _login_via(client, user.username, WRONG, forwarded=f"1.1.1.{i}, 198.51.100.7")
    r = _login_via(client, user.username, WRONG, forwarded="1.1.1.99, 198.51.100.7")
    assert r.status_code == 429


# ------------------------------------------------------------------ password change
def _change(client, current, new="Another-Pass-42"):
    return AuthActions(client).change_password(current, new)


def test_password_change_is_throttled(app, client, login, make, clock):
    user = login(make.user("advisor"))
    for _ in range(5):
        r = _change(client, WRONG)
        assert r.status_code == 200
        assert "The current password is wrong." in r.get_data(as_text=True)
    assert "wait 15 seconds before the next one" in r.get_data(as_text=True)
    r = _change(client, PASSWORD)  # the right one, during the wait
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "30"
    assert "Please wait 30 seconds" in r.get_data(as_text=True)
    assert _failures(kind="password") == 6
    # Sign-in from this address is not affected by password-change failures.
    assert throttling.check(user.username, "127.0.0.1", "sign_in", clock.now).allowed
    clock.advance(seconds=30)
    assert _change(client, PASSWORD).status_code == 302


def test_password_change_works_for_a_user_not_delayed(app, client, login, make, clock):
    login(make.user("advisor"))
    assert _change(client, WRONG).status_code == 200
    assert _change(client, PASSWORD).status_code == 302
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.kind == "password", LoginAttempt.success.is_(True))
        )
        == 1
    )


# ------------------------------------------------------------------ the admin page
def test_admin_sees_and_clears_throttled_keys(app, client, login, make, clock):
    user = make.user("bureau")
    t = clock.now
    for _ in range(7):
        security.authenticate(user.username, WRONG, A, now=t)
    for i in range(35):
        security.authenticate(f"stuffed{i}", WRONG, B, now=t)
    db.session.commit()
    admin = login(make.user("admin"))
    html = client.get("/admin/throttling/").get_data(as_text=True)
    assert user.username in html and A in html and B in html
    shanghai = (t + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert shanghai in html  # last attempt, Beijing time to the minute
    overview = throttling.overview(now=t)
    pair = next(p for p in overview.pairs if p.username == user.username)
    assert pair.failures == 7 and pair.ip == A
    assert pair.until == t + timedelta(seconds=60)
    assert [a.ip for a in overview.addresses] == [B]
    assert overview.addresses[0].failures == 35

    token = csrf_from(html)
    r = client.post(
        "/admin/throttling/clear",
        data={
            "scope": "pair",
            "username": user.username,
            "ip": A,
            "kind": "sign_in",
            "csrf_token": token,
        },
    )
    assert r.status_code == 302
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.username == user.username, LoginAttempt.cleared_at.is_not(None))
        )
        == 7
    )
    entry = db.session.execute(
        select(AuditLog).where(AuditLog.table_name == "login_attempt")
    ).scalar_one()
    assert entry.actor_id == admin.id and entry.actor_label == admin.username
    assert entry.changes["failures"] == [7, 0]
    assert entry.changes["username"] == [None, user.username]
    assert entry.record_id == f"{user.username}@{A}"
    assert security.authenticate(user.username, PASSWORD, A, now=t).user == user
    db.session.rollback()

    r = client.post(
        "/admin/throttling/clear",
        data={"scope": "address", "ip": B, "kind": "sign_in", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Cleared 35 failed attempts" in r.get_data(as_text=True)
    assert throttling.overview(now=t).empty
    r = client.get("/audit/?table=login_attempt")
    assert r.status_code == 200
    assert f"address:{B}" in r.get_data(as_text=True)


def test_admin_clear_refuses_bad_input(app, client, login, make):
    login(make.user("admin"))
    token = csrf_from(client.get("/admin/throttling/").get_data(as_text=True))
    r = client.post(
        "/admin/throttling/clear",
        data={"scope": "everything", "kind": "sign_in", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Nothing was cleared" in r.get_data(as_text=True)
    r = client.post(
        "/admin/throttling/clear",
        data={"scope": "account", "username": "", "kind": "sign_in", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Nothing was cleared" in r.get_data(as_text=True)
    assert not db.session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.table_name == "login_attempt")
    )


@pytest.mark.parametrize("role", ["finance_office", "pboc", "bureau", "advisor", "liaison"])
def test_only_admins_reach_the_throttling_page(app, client, make, role):
    needs = {"bureau": "bureau", "advisor": "bank", "liaison": "bank"}
    user = make.user(role, org=make.org(needs[role]) if role in needs else None)
    auth = AuthActions(client)
    assert auth.login(user.username).status_code == 302
    assert client.get("/admin/throttling/").status_code == 403
    token = auth.csrf("/")
    r = client.post(
        "/admin/throttling/clear",
        data={"scope": "address", "ip": A, "kind": "sign_in", "csrf_token": token},
    )
    assert r.status_code == 403


def test_anonymous_is_sent_to_sign_in(client):
    r = client.get("/admin/throttling/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_an_admin_reset_ends_the_accounts_delays(app, make, clock):
    from advisors.services import users as user_service

    user = make.user("bureau")
    t = clock.now
    for i in range(40):
        _login(user, WRONG, f"192.0.2.{i}", t)
    assert _login(user, PASSWORD, B, t).locked
    admin = make.user("admin")
    with acting_as(admin):
        user_service.set_password(user, "Fresh-Start-Lantern-8", temporary=True)
    db.session.commit()
    assert _login(user, "Fresh-Start-Lantern-8", B, t).user == user
