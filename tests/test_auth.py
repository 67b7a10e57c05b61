"""Sign-in, sessions, throttling, CSRF, cookies and headers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from advisors import create_app
from models import LoginAttempt, User, UserSession, db, utcnow
from tests.conftest import PASSWORD, csrf_from


def test_login_page_is_chinese_by_default(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'lang="zh-CN"' in html
    assert "登录" in html


def test_anonymous_is_sent_to_login(client):
    r = client.get("/")
    assert r.status_code == 302
    assert "/login" in r.headers["Location"]


def test_wrong_password_names_the_field(client, auth, make):
    user = make.user("bureau")
    r = auth.login(user.username, "wrong-password")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "is-invalid" in html
    assert user.username in html  # what was typed stays in the form


def test_password_is_argon2id(app, make):
    user = make.user("advisor")
    assert user.password_hash.startswith("$argon2id$")


def test_login_throttled_per_account(app, client, auth, make):
    """After the free failures from one address the next attempt there must wait; an attempt
    during the wait is refused (even with the right password) and counted."""
    user = make.user("bureau")
    free = app.config["LOGIN_FREE_FAILURES"]
    for _ in range(free):
        assert auth.login(user.username, "nope-nope").status_code == 200
    r = auth.login(user.username, PASSWORD)  # the right password, but within the wait
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "30"  # the refused attempt counted: 30 s from it
    assert "秒" in r.get_data(as_text=True)  # the wait, in the user's language
    assert client.get("/").status_code == 302
    failures = db.session.scalar(
        select(func.count()).select_from(LoginAttempt).where(LoginAttempt.success.is_(False))
    )
    assert failures == free + 1  # the refused attempt counts


def test_login_throttle_window_passes(app, client, auth, make):
    user = make.user("bureau")
    for _ in range(app.config["LOGIN_FREE_FAILURES"] + 3):
        auth.login(user.username, "nope-nope")
    old = utcnow() - app.config["LOGIN_THROTTLE_WINDOW"] - timedelta(minutes=1)
    db.session.execute(update(LoginAttempt).values(at=old))
    db.session.commit()
    assert auth.login(user.username).status_code == 302


def test_login_throttled_per_ip_spares_other_known_users(app, client, auth, make):
    """Many failures from one address slow down new accounts there, never an account that
    signed in from that address before."""
    regular = make.user("bureau")
    assert auth.login(regular.username).status_code == 302
    auth.logout()
    for i in range(app.config["LOGIN_ADDRESS_FREE_FAILURES"]):
        auth.login(f"nobody{i}", "nope-nope")
    newcomer = make.user("bureau")
    assert auth.login(newcomer.username).status_code == 429
    assert auth.login(regular.username).status_code == 302


def test_inactive_user_cannot_sign_in(client, auth, make):
    user = make.user("advisor")
    user.active = False
    db.session.commit()
    assert auth.login(user.username).status_code == 200
    assert client.get("/").status_code == 302


def test_logout_revokes_a_copied_cookie(app, client, auth, make):
    user = make.user("finance_office")
    auth.login(user.username)
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    assert thief.get("/account/").status_code == 200
    auth.logout()
    assert thief.get("/account/").status_code == 302
    row = db.session.execute(select(UserSession)).scalar_one()
    assert row.revoked_reason == "logout"


def test_password_change_revokes_other_sessions(app, client, auth, make):
    user = make.user("advisor")
    other = app.test_client()
    html = other.get("/login").get_data(as_text=True)
    other.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": csrf_from(html)},
    )
    assert other.get("/account/").status_code == 200

    auth.login(user.username)
    r = auth.change_password(PASSWORD)
    assert r.status_code == 302
    assert client.get("/account/").status_code == 200  # this session stays
    assert other.get("/account/").status_code == 302  # the other one is gone


def test_session_token_is_not_the_user_id(app, client, auth, make):
    user = make.user("advisor")
    auth.login(user.username)
    with client.session_transaction() as sess:
        assert sess["_user_id"] != str(user.id)
        assert len(sess["_user_id"]) > 30


def test_csrf_required_on_forms(client, make):
    user = make.user("bureau")
    r = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert r.status_code == 200  # the form again, not signed in
    assert client.get("/").status_code == 302


def test_expired_csrf_reshows_form_with_input(client, auth, make):
    user = make.user("advisor")
    auth.login(user.username)
    r = client.post("/account/tokens", data={"name": "my long token name", "csrf_token": "stale"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "my long token name" in html
    assert db.session.execute(select(User)).scalars().first() is not None


def test_post_after_session_ended_keeps_input(app, client, auth, make):
    user = make.user("advisor")
    # No session: the POST is stashed server-side, and restored after sign-in.
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post("/account/password", data={"current_password": "x", "csrf_token": token})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    page = client.get("/login").get_data(as_text=True)
    client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": csrf_from(page)},
    )
    with client.session_transaction() as sess:
        assert sess.get("pending_form")


def test_security_headers(client):
    r = client.get("/login")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"]


def test_no_inline_script_or_external_assets(client, auth, make):
    user = make.user("finance_office")
    auth.login(user.username)
    html = client.get("/").get_data(as_text=True)
    assert "<script>" not in html.replace(" ", "")
    assert "http://" not in html and "https://" not in html
    assert "cdn" not in html.lower()


def test_cookie_flags_in_production(tmp_path, monkeypatch):
    from config import ProductionConfig

    monkeypatch.setenv("SECRET_KEY", "a-production-secret-key-for-the-test")  # required there
    app = create_app(ProductionConfig)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_session_cookie_is_httponly(client, auth, make):
    user = make.user("bureau")
    r = auth.login(user.username)
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_open_redirect_refused(client, make):
    user = make.user("bureau")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post(
        "/login?next=https://evil.example/",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
    )
    assert r.status_code == 302
    assert r.headers["Location"] == "/"
