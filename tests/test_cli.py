"""The contract's CLI: ``orgs create``, ``users create``, ``users token``."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditLog, Organisation, User, db


def test_orgs_create(runner):
    r = runner.invoke(
        args=["orgs", "create", "--code", "ABC", "--name", "农业银行江州分行", "--type", "bank"]
    )
    assert r.exit_code == 0, r.output
    org = db.session.execute(select(Organisation)).scalar_one()
    assert (org.code, org.type) == ("ABC", "bank")
    audit = db.session.execute(select(AuditLog)).scalar_one()
    assert audit.actor_label == "cli" and audit.action == "insert"


def test_orgs_create_bad_type_and_duplicate(runner):
    r = runner.invoke(args=["orgs", "create", "--code", "X1", "--name", "x", "--type", "club"])
    assert r.exit_code != 0
    assert "type" in r.output
    assert len(r.output.strip().splitlines()) == 1
    runner.invoke(args=["orgs", "create", "--code", "X1", "--name", "x", "--type", "bank"])
    r = runner.invoke(args=["orgs", "create", "--code", "x1", "--name", "y", "--type", "bank"])
    assert r.exit_code != 0
    assert "X1" in r.output or "x1" in r.output


def test_users_create_and_token(runner, client):
    runner.invoke(
        args=["orgs", "create", "--code", "SWJ", "--name", "市商务局", "--type", "bureau"]
    )
    r = runner.invoke(
        args=[
            "users",
            "create",
            "--username",
            "swj",
            "--password",
            "Bureau-Pass-1",
            "--role",
            "bureau",
            "--org",
            "SWJ",
            "--name",
            "商务局 王科长",
        ]
    )
    assert r.exit_code == 0, r.output
    user = db.session.execute(select(User)).scalar_one()
    assert user.org.code == "SWJ" and user.display_name == "商务局 王科长"
    r = runner.invoke(args=["users", "token", "swj"])
    assert r.exit_code == 0
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {lines[0]}"})
    assert me.status_code == 200 and me.get_json()["username"] == "swj"


def test_users_create_errors_are_one_line(runner):
    runner.invoke(
        args=["orgs", "create", "--code", "SWJ", "--name", "市商务局", "--type", "bureau"]
    )
    cases = [
        ["--username", "a1", "--password", "Good-Pass-1", "--role", "admin"],  # short username
        ["--username", "adv", "--password", "Good-Pass-1", "--role", "advisor", "--org", "SWJ"],
        ["--username", "bu", "--password", "short", "--role", "bureau", "--org", "SWJ"],
        ["--username", "bur", "--password", "Good-Pass-1", "--role", "bureau", "--org", "NOPE"],
        ["--username", "bur", "--password", "Good-Pass-1", "--role", "chief"],
    ]
    for args in cases:
        r = runner.invoke(args=["users", "create", *args])
        assert r.exit_code != 0, args
        assert len(r.output.strip().splitlines()) == 1, r.output
    assert db.session.execute(select(User)).first() is None


def test_users_token_unknown_user(runner):
    r = runner.invoke(args=["users", "token", "ghost"])
    assert r.exit_code != 0
    assert "ghost" in r.output
