"""The demo data set: a fictional city, loadable once, where every demo login works."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from advisors.credit_code import is_valid
from advisors.demo import DEMO_LOGINS, DEMO_PASSWORD, database_is_empty, seed_demo
from models import (
    AdvisorProfile,
    Enterprise,
    Organisation,
    PolicyTool,
    Township,
    User,
    db,
)


def _seed() -> str:
    summary = seed_demo()
    db.session.commit()
    return summary


def test_seed_builds_the_city(app):
    assert database_is_empty()
    summary = _seed()
    assert not database_is_empty()
    assert 2 <= len(summary.splitlines()) <= 8

    towns = list(db.session.execute(select(Township)).scalars())
    assert 10 <= len(towns) <= 15
    assert {"城东街道", "江北镇", "临港镇", "高新区"} <= {t.name for t in towns}

    orgs = {o.code: o for o in db.session.execute(select(Organisation)).scalars()}
    types = Counter(o.type for o in orgs.values())
    assert types["finance_office"] == 1 and types["pboc"] == 1
    assert types["bureau"] >= 5 and types["bank"] + types["insurer"] >= 7
    assert types["insurer"] >= 1
    assert orgs["JZJRB"].type == "finance_office" and orgs["PBC-JZ"].type == "pboc"
    for code in ("SWJ", "GXJ", "NYNCJ", "SCJGJ", "CYL-XNY"):
        assert orgs[code].type == "bureau"

    users = list(db.session.execute(select(User)).scalars())
    roles = Counter(u.role for u in users)
    assert roles["admin"] == 1 and roles["finance_office"] >= 2 and roles["pboc"] >= 1
    assert roles["bureau"] == 5
    assert roles["liaison"] == types["bank"] + types["insurer"]
    assert 18 <= roles["advisor"] <= 22
    # one shared hash, computed once
    assert len({u.password_hash for u in users}) == 1

    profiles = list(db.session.execute(select(AdvisorProfile)).scalars())
    assert len(profiles) == roles["advisor"]
    assert sum(not p.accepting for p in profiles) == 2
    for p in profiles:
        assert 8 <= p.capacity <= 25
        assert 1 <= len(p.specialties) <= 3
        assert 1 <= len(p.townships) <= 3
        assert p.title
    orgs_of_advisors = {u.org.type for u in users if u.role == "advisor"}
    assert orgs_of_advisors <= {"bank", "insurer"}

    assert db.session.scalar(select(func.count()).select_from(PolicyTool)) > 0


def test_seed_firms(app):
    _seed()
    firms = list(db.session.execute(select(Enterprise)).scalars())
    assert len(firms) == 300
    codes = [f.credit_code for f in firms]
    assert len(set(codes)) == 300
    assert all(is_valid(c) for c in codes)
    categories = Counter(c[1] for c in codes)
    assert categories["1"] > categories["2"] > 0 and categories["3"] > 0

    sizes = Counter(f.size_class for f in firms)
    assert {"micro", "small", "unknown"} <= set(sizes)
    assert sizes["micro"] + sizes["small"] > 200
    assert sizes["large"] == 0

    industries = Counter(f.industry for f in firms)
    for key in ("industry", "wholesale", "retail", "agriculture", "software_it", "catering"):
        assert industries[key] >= 10, key
    assert all(f.township_id and f.contact_name and f.contact_phone for f in firms)
    assert len({f.name for f in firms}) == 300

    bureau_of = {
        o.id: o.code
        for o in db.session.execute(
            select(Organisation).where(Organisation.type == "bureau")
        ).scalars()
    }
    registered = Counter((f.industry, bureau_of[f.registered_by_org_id]) for f in firms)
    for (industry, bureau), _n in registered.items():
        if industry == "agriculture":
            assert bureau == "NYNCJ"
        if industry in ("wholesale", "retail", "catering"):
            assert bureau == "SWJ"
    assert any(b == "CYL-XNY" for _i, b in registered)
    for f in firms:
        if f.credit_code[1] == "3":
            assert f.industry == "agriculture" and "合作社" in f.name


def test_seed_is_deterministic(app):
    _seed()
    first = sorted(db.session.execute(select(Enterprise.credit_code, Enterprise.name)).all())
    from tests.conftest import _empty_tables

    db.session.remove()
    _empty_tables()
    _seed()
    again = sorted(db.session.execute(select(Enterprise.credit_code, Enterprise.name)).all())
    assert first == again


def test_every_demo_login_works(client, auth):
    _seed()
    people = {
        u.username: u
        for u in db.session.execute(
            select(User).where(User.username.in_([login[0] for login in DEMO_LOGINS]))
        ).scalars()
    }
    roles = {username: user.role for username, user in people.items()}
    assert set(roles.values()) == {
        "admin",
        "finance_office",
        "pboc",
        "bureau",
        "advisor",
        "liaison",
    }
    for username, password, label in DEMO_LOGINS:
        assert password == DEMO_PASSWORD and label
        r = auth.login(username, password)
        assert r.status_code == 302, (username, r.get_data(as_text=True)[:500])
        home = client.get("/")
        assert home.status_code == 200, (username, home.get_data(as_text=True)[:2000])
        assert people[username].display_name in home.get_data(as_text=True)
        assert auth.logout().status_code == 302


def test_demo_seed_command(runner):
    r = runner.invoke(args=["demo", "seed"])
    assert r.exit_code == 0, r.output
    assert "300" in r.output
    assert db.session.scalar(select(func.count()).select_from(Enterprise)) == 300

    r = runner.invoke(args=["demo", "seed"])
    assert r.exit_code != 0
    assert len(r.output.strip().splitlines()) == 1
    assert db.session.scalar(select(func.count()).select_from(Enterprise)) == 300

    # --force adds only what is missing: nothing here.
    r = runner.invoke(args=["demo", "seed", "--force"])
    assert r.exit_code == 0, r.output
    assert db.session.scalar(select(func.count()).select_from(Enterprise)) == 300
    assert db.session.scalar(select(func.count()).select_from(User)) == 36


def test_force_seed_next_to_own_data(runner, make):
    """An operator made an admin and a township of their own first; --force fills in the rest."""
    make.township("城东街道")
    make.user("admin", username="admin")
    r = runner.invoke(args=["demo", "seed", "--force"])
    assert r.exit_code == 0, r.output
    assert db.session.scalar(select(func.count()).select_from(Enterprise)) == 300
    names = list(db.session.execute(select(Township.name).where(Township.name == "城东街道")))
    assert len(names) == 1
