"""Password rules (common passwords, the user's own names), API tokens revoked on a password
change, and the password an administrator gives that must be changed at first sign-in."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from flask_babel import force_locale

from advisors import passwords
from advisors.demo import DEMO_PASSWORD
from advisors.errors import ValidationFailed
from advisors.services.users import create_user, set_password
from models import ApiToken, User, db

from .conftest import PASSWORD, csrf_from

COMMON = "This password is too common."
NAME = "The password must not contain your username or name."
TOKENS_REVOKED = "Your API tokens were revoked; create new ones under My account."


@pytest.fixture
def client(client):
    """The English interface (msgids are stable for assertions), kept across sign-ins."""
    with client.session_transaction() as s:
        s["lang"] = "en"
    return client


def _logout(client):
    """Sign out with the token of the one page a user who must change the password may see."""
    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    return client.post("/logout", data={"csrf_token": token})


def problem(password, username="someone", names=()):
    with force_locale("en"):
        return passwords.password_problem(password, username, names)


# ------------------------------------------------------------------ the lists
def test_the_common_list_is_large_and_has_pinyin_passwords(app):
    common = passwords.common_passwords()
    assert len(common) >= 10_000
    assert passwords.common_passwords() is common  # loaded once
    assert {"12345678", "password", "woaini1314", "5201314", "zhangwei123", "qwer1234"} <= common
    pinyin = passwords.PINYIN_LIST.read_text(encoding="ascii").split()
    assert len(pinyin) >= 10_000
    assert all(w == w.lower() and len(w) >= passwords.MIN_LENGTH for w in pinyin)


def test_the_pinyin_list_is_what_its_script_generates():
    path = Path(passwords.__file__).parent / "data" / "make_pinyin_passwords.py"
    spec = importlib.util.spec_from_file_location("make_pinyin_passwords", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.OUT == passwords.PINYIN_LIST
    assert script.generate() == passwords.PINYIN_LIST.read_text(encoding="ascii").split()


# ------------------------------------------------------------------ the rules
@pytest.mark.parametrize(
    "password",
    ["12345678", "password", "PASSWORD", "zhangwei1", "woaini1314", "Woaini1314!", "qwer1234"],
)
def test_common_passwords_are_refused(app, password):
    assert problem(password) == COMMON


@pytest.mark.parametrize(
    "password",
    [DEMO_PASSWORD, PASSWORD, "Another-Pass-42", "river lantern copper 42", "Badminton-Court-7"],
)
def test_good_passwords_are_accepted(app, password):
    assert problem(password, "admin", ["系统管理员", "admin@example.cn"]) is None


@pytest.mark.parametrize(
    ("password", "username", "names"),
    [
        ("qiaofeng1", "qiaofeng", ()),  # the username as the main part
        ("QiaoFeng-2026", "qiao.feng", ()),  # without the separator
        ("Feng.Qiao-88", "u1024", ("Qiao Feng",)),  # the display name, in either order
        ("Qiāo-Fēng-1975", "u1024", ("Qiao Feng",)),  # tone marks
        ("乔峰river88", "u1024", ("乔峰",)),  # a Chinese display name
        ("qfeng77-river", "u1024", ("", "qfeng77@bank.cn")),  # the e-mail name
        ("admin2026!", "admin", ()),  # a short name with digits only beside it
        ("xadminx9", "admin", ()),
    ],
)
def test_own_names_are_refused(app, password, username, names):
    assert problem(password, username, names) == NAME


def test_a_short_name_among_other_words_is_accepted(app):
    assert problem("Jrb-office-lantern-2026", "jrb") is None


def test_the_service_checks_names_when_creating_and_changing(app, make):
    org = make.org("bank")
    with pytest.raises(ValidationFailed) as caught, force_locale("en"):
        create_user(
            username="qiaofeng",
            password="qiaofeng1",
            role="advisor",
            org=org,
            display_name="乔峰",
        )
    assert caught.value.fields["password"] == NAME
    user = make.user("advisor", username="qiaofeng")
    user.display_name = "乔峰"
    with pytest.raises(ValidationFailed) as caught, force_locale("en"):
        set_password(user, "乔峰-River-2026")
    assert caught.value.fields["new_password"] == NAME
    with pytest.raises(ValidationFailed) as caught, force_locale("en"):
        set_password(user, "12345678")
    assert caught.value.fields["new_password"] == COMMON


def test_admin_form_refuses_a_common_password(client, auth, make):
    admin = make.user("admin")
    bank = make.org("bank")
    auth.login(admin.username)
    token = auth.csrf("/admin/users/new")
    r = client.post(
        "/admin/users/new",
        data={
            "username": "newbie",
            "display_name": "New Bie",
            "role": "advisor",
            "org": str(bank.id),
            "password": "password",
            "confirm": "password",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422
    assert COMMON in r.get_data(as_text=True)
    assert db.session.query(User).filter_by(username="newbie").count() == 0


# ------------------------------------------------------------------ API tokens
def _api_ok(client, secret) -> bool:
    r = client.get("/api/v1/townships", headers={"Authorization": f"Bearer {secret}"})
    return r.status_code == 200


def test_own_password_change_revokes_api_tokens_and_says_so(client, auth, make):
    user = make.user("bureau")
    secret = make.token(user)
    other_user = make.user("bureau")
    other_secret = make.token(other_user)
    assert _api_ok(client, secret)
    auth.login(user.username)
    r = auth.change_password(PASSWORD, follow=True)
    assert r.status_code == 200
    assert TOKENS_REVOKED in r.get_data(as_text=True)
    assert not _api_ok(client, secret)
    assert _api_ok(client, other_secret)  # only this user's tokens
    assert client.get("/account/").status_code == 200  # this session stays


def test_no_token_message_without_tokens(client, auth, make):
    user = make.user("bureau")
    auth.login(user.username)
    r = auth.change_password(PASSWORD, follow=True)
    assert "Password changed." in r.get_data(as_text=True)
    assert TOKENS_REVOKED not in r.get_data(as_text=True)


def _admin_reset(client, auth, admin, user, new="Given-By-Admin-7"):
    auth.login(admin.username)
    token = auth.csrf(f"/admin/users/{user.id}/password")
    return client.post(
        f"/admin/users/{user.id}/password",
        data={"new_password": new, "confirm": new, "csrf_token": token},
        follow_redirects=True,
    )


def test_admin_reset_revokes_tokens_and_requires_a_change(client, auth, make):
    admin = make.user("admin")
    user = make.user("advisor")
    secret = make.token(user)
    r = _admin_reset(client, auth, admin, user)
    assert r.status_code == 200
    assert "API tokens revoked" in r.get_data(as_text=True)
    assert not _api_ok(client, secret)
    db.session.expire_all()
    assert db.session.get(User, user.id).must_change_password is True
    assert db.session.query(ApiToken).filter_by(user_id=user.id, revoked_at=None).count() == 0


def test_admin_resetting_their_own_password_need_not_change_it(client, auth, make):
    admin = make.user("admin")
    r = _admin_reset(client, auth, admin, admin)
    assert r.status_code == 200
    db.session.expire_all()
    assert db.session.get(User, admin.id).must_change_password is False
    assert client.get("/admin/users").status_code == 200


# ------------------------------------------------------------------ must change at first sign-in
def test_users_made_elsewhere_need_not_change(app, runner, make):
    assert make.user("advisor").must_change_password is False
    r = runner.invoke(
        args=["users", "create", "--username", "boss", "--password", "Chief-Pass-2026"]
        + ["--role", "admin"]
    )
    assert r.exit_code == 0, r.output
    assert db.session.query(User).filter_by(username="boss").one().must_change_password is False


def test_a_user_made_by_an_admin_must_change_the_password_first(app, client, auth, make):
    admin = make.user("admin")
    bank = make.org("bank")
    auth.login(admin.username)
    token = auth.csrf("/admin/users/new")
    given = "Given-By-Admin-7"
    r = client.post(
        "/admin/users/new",
        data={
            "username": "newbie",
            "display_name": "New Bie",
            "role": "advisor",
            "org": str(bank.id),
            "password": given,
            "confirm": given,
            "csrf_token": token,
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)
    user = db.session.query(User).filter_by(username="newbie").one()
    assert user.must_change_password is True
    secret = make.token(user)
    _logout(client)

    r = auth.login("newbie", given)
    assert r.status_code == 302
    for path in ("/", "/account/", "/notifications/"):
        r = client.get(path)
        assert r.status_code == 302, path
        assert r.headers["Location"].endswith("/account/password"), path
    # a form posted elsewhere does nothing either
    token = auth.csrf("/account/password")
    r = client.post("/account/tokens", data={"name": "x", "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")
    assert db.session.query(ApiToken).filter_by(user_id=user.id).count() == 1
    # the password page explains why; static files, the API and logout still work
    with client.session_transaction() as s:
        s["lang"] = "en"
    page = client.get("/account/password")
    assert page.status_code == 200
    assert "Your password was set by an administrator." in page.get_data(as_text=True)
    assert client.get("/static/css/app.css").status_code == 200
    assert _api_ok(client, secret)

    r = auth.change_password(given, "My-Own-Choice-31")
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).must_change_password is False
    assert client.get("/").status_code == 200


def test_logout_works_before_the_change(client, auth, make):
    user = make.user("bureau")
    user.must_change_password = True
    db.session.commit()
    auth.login(user.username)
    assert client.get("/").headers["Location"].endswith("/account/password")
    r = _logout(client)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
