"""Administration pages: organisations, user accounts, deactivation and advisor profiles."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select, update

from models import AdvisorProfile, AuditLog, Organisation, User, db
from tests.conftest import PASSWORD, AuthActions, csrf_from

NEW_PASSWORD = "Another-Pass-42"
_HIDDEN_RE = re.compile(r"<input[^>]*\btype=\"hidden\"[^>]*>")
_ATTR_RE = re.compile(r'\b(name|value)="([^"]*)"')


# ------------------------------------------------------------------ helpers
def login(client, user, password: str = PASSWORD):
    r = AuthActions(client).login(user.username, password)
    assert r.status_code == 302, "sign-in failed"
    # Messages are checked in English (msgids), whatever translations exist later.
    with client.session_transaction() as s:
        s["lang"] = "en"
    return client


def hidden_values(page: str) -> dict[str, str]:
    values = {}
    for tag in _HIDDEN_RE.findall(page):
        attrs = dict(_ATTR_RE.findall(tag))
        if "name" in attrs:
            values.setdefault(attrs["name"], html.unescape(attrs.get("value", "")))
    return values


def submit(client, url: str, data: dict, form_page: str | None = None):
    """POST ``data`` to ``url`` the way a browser would after loading the form: with the CSRF
    token and the hidden fields (record version) of the page at ``form_page`` (default ``url``)."""
    page = client.get(form_page or url).get_data(as_text=True)
    payload = hidden_values(page)
    payload.update(data)
    return client.post(url, data=payload)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def field_invalid(page: str, name: str) -> bool:
    tags = re.findall(rf'<(?:input|select|textarea)\b[^>]*\bname="{name}"[^>]*>', page)
    assert tags, f"no field named {name}"
    return any("is-invalid" in tag for tag in tags)


def user_form(**values) -> dict:
    data = {
        "username": "wanglei",
        "display_name": "王磊",
        "role": "advisor",
        "org": "",
        "phone": "0571-1234567",
        "email": "wl@example.com",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }
    data.update(values)
    return data


def edit_form(user, **values) -> dict:
    data = {
        "display_name": user.display_name,
        "role": user.role,
        "org": str(user.org_id) if user.org_id else "",
        "phone": user.phone or "",
        "email": user.email or "",
        "active": "y",
    }
    data.update(values)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def admin(make):
    return make.user("admin", username="root-admin")


@pytest.fixture
def as_admin(client, admin):
    return login(client, admin)


# ------------------------------------------------------------------ organisations
def test_admin_creates_org(as_admin):
    r = submit(
        as_admin,
        "/admin/orgs/new",
        {"code": "ABC-BANK", "name": "中国农业银行某市分行", "short_name": "农行", "type": "bank"},
    )
    assert r.status_code == 302, text(r)[:2000]
    org = db.session.execute(
        select(Organisation).where(Organisation.code == "ABC-BANK")
    ).scalar_one()
    assert (org.name, org.short_name, org.type, org.active) == (
        "中国农业银行某市分行",
        "农行",
        "bank",
        True,
    )
    listing = text(as_admin.get("/admin/orgs?type=bank"))
    assert "ABC-BANK" in listing and "Bank" in listing


def test_duplicate_org_code_is_refused_on_the_field_and_keeps_the_input(as_admin, make):
    make.org("bank", code="ICBC")
    r = submit(
        as_admin, "/admin/orgs/new", {"code": "icbc", "name": "Typed name 工商银行", "type": "bank"}
    )
    assert r.status_code == 422
    page = text(r)
    assert field_invalid(page, "code")
    assert not field_invalid(page, "name")
    assert "An organisation with code icbc already exists." in page
    assert 'value="Typed name 工商银行"' in page and 'value="icbc"' in page
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1


def test_org_edit_deactivates_and_type_change_with_users_is_refused(as_admin, make):
    bank = make.org("bank", code="K9")
    make.user("advisor", org=bank)
    url = f"/admin/orgs/{bank.id}/edit"
    r = submit(as_admin, url, {"code": "K9", "name": bank.name, "type": "insurer", "active": "y"})
    assert r.status_code == 422
    assert field_invalid(text(r), "type")
    r = submit(as_admin, url, {"code": "K9", "name": "改名银行", "type": "bank"})  # active unticked
    assert r.status_code == 302
    db.session.expire_all()
    org = db.session.get(Organisation, bank.id)
    assert (org.name, org.active, org.type) == ("改名银行", False, "bank")


def test_orgs_list_for_office_roles_counts_users_in_one_query(client, make, count_queries):
    office = make.user("finance_office")
    bank = make.org("bank", code="CCB", name="建设银行")
    make.user("advisor", org=bank)
    make.user("liaison", org=bank)
    gone = make.user("advisor", org=bank)
    gone.active = False
    db.session.commit()
    login(client, office)
    page = text(client.get("/admin/orgs?q=ccb"))
    assert "建设银行" in page and "Finance office" not in page.split("org-list", 1)[1]
    row = page.split("CCB", 1)[1].split("</tr>", 1)[0]
    assert re.search(r'data-testid="org-users">2<', row) and "+1 inactive" in row
    assert "/admin/orgs/new" not in page  # read-only for the office
    with count_queries() as few:
        client.get("/admin/orgs")
    for _ in range(6):
        make.user("advisor")  # each with an org of its own
    with count_queries() as many:
        assert client.get("/admin/orgs").status_code == 200
    assert many.count == few.count, "\n".join(
        s[:80] for s in few.statements + ["--"] + many.statements
    )


# ------------------------------------------------------------------ creating users
@pytest.mark.parametrize(
    ("role", "org_type"),
    [
        ("admin", None),
        ("finance_office", "finance_office"),
        ("pboc", "pboc"),
        ("bureau", "bureau"),
        ("advisor", "bank"),
        ("liaison", "insurer"),
    ],
)
def test_admin_creates_user_of_each_role(app, as_admin, make, role, org_type):
    org = make.org(org_type) if org_type else None
    r = submit(
        as_admin,
        "/admin/users/new",
        user_form(username=f"new-{role}", role=role, org=str(org.id) if org else ""),
    )
    assert r.status_code == 302, text(r)[:3000]
    user = db.session.execute(select(User).where(User.username == f"new-{role}")).scalar_one()
    assert user.role == role
    assert user.org_id == (org.id if org else None)
    assert (user.phone, user.email, user.display_name) == ("0571-1234567", "wl@example.com", "王磊")
    assert (db.session.get(AdvisorProfile, user.id) is not None) == (role == "advisor")
    # The password typed on the form works.
    assert AuthActions(app.test_client()).login(user.username, NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("role", "org_type", "message"),
    [
        ("advisor", "bureau", "must belong to an organisation of type bank / insurer"),
        ("bureau", "bank", "must belong to an organisation of type bureau"),
        ("liaison", None, "This role needs an organisation."),
    ],
)
def test_user_in_the_wrong_org_type_is_refused(as_admin, make, role, org_type, message):
    org = make.org(org_type) if org_type else None
    before = db.session.scalar(select(func.count()).select_from(User))
    r = submit(
        as_admin,
        "/admin/users/new",
        user_form(username="wrong-org", role=role, org=str(org.id) if org else ""),
    )
    assert r.status_code == 422
    page = text(r)
    assert field_invalid(page, "org")
    assert message in page
    assert 'value="wrong-org"' in page  # the typed input stays
    assert db.session.scalar(select(func.count()).select_from(User)) == before


def test_duplicate_username_is_refused_case_insensitively(as_admin, make):
    make.user("bureau", username="zhangsan")
    bank = make.org("bank")
    r = submit(as_admin, "/admin/users/new", user_form(username="ZhangSan", org=str(bank.id)))
    assert r.status_code == 422
    page = text(r)
    assert field_invalid(page, "username")
    assert "The username ZhangSan is already taken." in page
    count = db.session.scalar(
        select(func.count()).select_from(User).where(func.lower(User.username) == "zhangsan")
    )
    assert count == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "Password must be at least 8 characters."),
        ("aaaaaaab", "Password is too simple."),
        ("weak-user", "Password must not be the same as the username."),
    ],
)
def test_weak_password_is_refused(as_admin, make, password, message):
    bank = make.org("bank")
    r = submit(
        as_admin,
        "/admin/users/new",
        user_form(username="weak-user", org=str(bank.id), password=password, confirm=password),
    )
    assert r.status_code == 422
    page = text(r)
    assert field_invalid(page, "password")
    assert message in page
    assert find_user("weak-user") is None


def test_non_admins_cannot_manage_accounts(client, make):
    login(client, make.user("finance_office"))
    assert client.get("/admin/users/new").status_code == 403
    assert client.get("/admin/orgs/new").status_code == 403
    assert client.get("/admin/users").status_code == 200


def find_user(username):
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


# ------------------------------------------------------------------ editing users
def test_admin_edits_user(as_admin, make):
    user = make.user("bureau")
    other_bureau = make.org("bureau", code="FGW")
    r = submit(
        as_admin,
        f"/admin/users/{user.id}/edit",
        edit_form(user, display_name="李四", phone="13800000000", org=str(other_bureau.id)),
    )
    assert r.status_code == 302, text(r)[:3000]
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert (user.display_name, user.phone, user.org_id, user.active) == (
        "李四",
        "13800000000",
        other_bureau.id,
        True,
    )


def test_user_edit_writes_audit_rows(as_admin, admin, make):
    user = make.user("pboc")
    r = submit(as_admin, f"/admin/users/{user.id}/edit", edit_form(user, display_name="审计名"))
    assert r.status_code == 302
    rows = list(
        db.session.execute(
            select(AuditLog).where(
                AuditLog.table_name == "user_account",
                AuditLog.record_id == str(user.id),
                AuditLog.action == "update",
            )
        ).scalars()
    )
    assert len(rows) == 1
    assert rows[0].actor_id == admin.id and rows[0].actor_label == admin.username
    assert rows[0].changes["display_name"] == ["pboc user", "审计名"]


def test_edit_refused_for_bad_input_keeps_it(as_admin, make):
    user = make.user("bureau")
    r = submit(
        as_admin,
        f"/admin/users/{user.id}/edit",
        edit_form(user, display_name="新名字", role="advisor", email="not-an-email"),
    )
    assert r.status_code == 422
    page = text(r)
    assert field_invalid(page, "email")
    assert 'value="新名字"' in page
    db.session.expire_all()
    assert db.session.get(User, user.id).display_name == "bureau user"


def test_edit_of_a_record_changed_meanwhile_is_not_saved(as_admin, make):
    user = make.user("bureau")
    url = f"/admin/users/{user.id}/edit"
    payload = hidden_values(as_admin.get(url).get_data(as_text=True))
    db.session.execute(
        update(User).where(User.id == user.id).values(phone="110", version=User.version + 1)
    )
    db.session.commit()
    r = as_admin.post(url, data={**payload, **edit_form(user, display_name="后写者")})
    assert r.status_code == 409
    assert 'value="后写者"' in text(r)
    db.session.expire_all()
    assert db.session.get(User, user.id).display_name == "bureau user"


def test_unknown_or_huge_ids_are_404(as_admin):
    assert as_admin.get("/admin/users/999999/edit").status_code == 404
    assert as_admin.get("/admin/users/99999999999999999999/edit").status_code == 404
    assert as_admin.get("/admin/orgs/99999999999999999999/edit").status_code == 404
    assert as_admin.get("/admin/advisors/99999999999999999999/profile").status_code == 404


def test_odd_list_filters_never_fail(as_admin):
    for url in (
        "/admin/users?after=99999999999999999999&org=abc&role=nobody&active=maybe&q=%00%25_",
        "/admin/users?after=%C2%B2&org=%EF%BC%91",
        "/admin/orgs?type=nope&q=%00&after=%00zz",
    ):
        assert as_admin.get(url).status_code == 200, url


# ------------------------------------------------------------------ deactivation
@pytest.mark.parametrize("how", ["button", "edit_form"])
def test_deactivation_ends_sessions_and_tokens(app, as_admin, make, how):
    victim = make.user("advisor")
    token = make.token(victim)
    theirs = login(app.test_client(), victim)
    assert theirs.get("/").status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 200

    if how == "button":
        r = submit(
            as_admin, f"/admin/users/{victim.id}/deactivate", {}, f"/admin/users/{victim.id}/edit"
        )
    else:
        r = submit(as_admin, f"/admin/users/{victim.id}/edit", edit_form(victim, active=None))
    assert r.status_code == 302

    r = theirs.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 401
    db.session.expire_all()
    assert db.session.get(User, victim.id).active is False
    assert db.session.get(AdvisorProfile, victim.id).accepting is False


def test_admin_cannot_deactivate_self(as_admin, admin):
    r = submit(as_admin, f"/admin/users/{admin.id}/deactivate", {}, f"/admin/users/{admin.id}/edit")
    assert r.status_code == 302
    assert "You cannot deactivate your own account." in text(as_admin.get(r.headers["Location"]))
    r = submit(as_admin, f"/admin/users/{admin.id}/edit", edit_form(admin, active=None))
    assert r.status_code == 422
    assert field_invalid(text(r), "active")
    db.session.expire_all()
    assert db.session.get(User, admin.id).active is True
    assert as_admin.get("/").status_code == 200  # still signed in


def test_activate_again(app, as_admin, make):
    user = make.user("bureau")
    submit(as_admin, f"/admin/users/{user.id}/deactivate", {}, f"/admin/users/{user.id}/edit")
    r = submit(as_admin, f"/admin/users/{user.id}/activate", {}, f"/admin/users/{user.id}/edit")
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).active is True
    assert AuthActions(app.test_client()).login(user.username).status_code == 302


def test_admin_sets_password_and_signs_the_user_out(app, as_admin, make):
    user = make.user("liaison")
    theirs = login(app.test_client(), user)
    url = f"/admin/users/{user.id}/password"
    r = submit(as_admin, url, {"new_password": "abc", "confirm": "abc"})
    assert r.status_code == 422 and field_invalid(text(r), "new_password")
    r = submit(as_admin, url, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert theirs.get("/").status_code == 302
    assert AuthActions(app.test_client()).login(user.username, PASSWORD).status_code == 200
    assert AuthActions(app.test_client()).login(user.username, NEW_PASSWORD).status_code == 302


# ------------------------------------------------------------------ advisor profiles
@pytest.fixture
def bank_people(make):
    bank = make.org("bank", code="BOC")
    return {
        "advisor": make.user("advisor", org=bank),
        "colleague": make.user("advisor", org=bank),
        "liaison": make.user("liaison", org=bank),
        "other_liaison": make.user("liaison", org=make.org("insurer", code="PICC")),
    }


def profile_form(**values) -> dict:
    data = {"title": "客户经理", "capacity": "12", "accepting": "y", "note": ""}
    data.update(values)
    return data


def test_advisor_edits_own_specialties_and_townships(client, make, bank_people):
    t1, t2, t3 = make.township("城关镇"), make.township("东山街道"), make.township("西湖乡")
    advisor = bank_people["advisor"]
    login(client, advisor)
    url = f"/admin/advisors/{advisor.id}/profile"
    page = text(client.get(url))
    assert "Retail" in page and "城关镇" in page  # translated industry labels, township choices
    r = submit(
        client,
        url,
        profile_form(specialties=["retail", "catering"], townships=[str(t1.id), str(t2.id)]),
    )
    assert r.status_code == 302, text(r)[:3000]
    db.session.expire_all()
    profile = db.session.get(AdvisorProfile, advisor.id)
    assert profile.specialties == ["catering", "retail"]
    assert {t.id for t in profile.townships} == {t1.id, t2.id}
    assert (profile.title, profile.capacity, profile.accepting) == ("客户经理", 12, True)

    r = submit(client, url, profile_form(specialties=["software_it"], townships=[str(t3.id)]))
    assert r.status_code == 302
    db.session.expire_all()
    profile = db.session.get(AdvisorProfile, advisor.id)
    assert profile.specialties == ["software_it"]
    assert [t.id for t in profile.townships] == [t3.id]
    assert profile.accepting is True


def test_profile_capacity_out_of_range_is_refused(client, bank_people):
    advisor = bank_people["advisor"]
    login(client, advisor)
    url = f"/admin/advisors/{advisor.id}/profile"
    r = submit(client, url, profile_form(capacity="501", specialties=["retail"]))
    assert r.status_code == 422
    page = text(r)
    assert field_invalid(page, "capacity") and 'value="501"' in page
    db.session.expire_all()
    assert db.session.get(AdvisorProfile, advisor.id).capacity == 15


def test_another_advisor_gets_404(client, bank_people):
    advisor = bank_people["advisor"]
    login(client, bank_people["colleague"])
    url = f"/admin/advisors/{advisor.id}/profile"
    assert client.get(url).status_code == 404
    token = csrf_from(client.get("/").get_data(as_text=True))
    r = client.post(url, data={**profile_form(capacity="1"), "csrf_token": token})
    assert r.status_code == 404
    db.session.expire_all()
    assert db.session.get(AdvisorProfile, advisor.id).capacity == 15


def test_liaison_of_the_org_reads_but_cannot_edit(client, bank_people):
    advisor = bank_people["advisor"]
    login(client, bank_people["liaison"])
    url = f"/admin/advisors/{advisor.id}/profile"
    r = client.get(url)
    assert r.status_code == 200
    page = text(r)
    assert 'data-testid="advisor-profile"' in page and 'name="capacity"' not in page
    token = csrf_from(client.get("/").get_data(as_text=True))
    r = client.post(url, data={**profile_form(capacity="1"), "csrf_token": token})
    assert r.status_code == 403
    db.session.expire_all()
    assert db.session.get(AdvisorProfile, advisor.id).capacity == 15


def test_liaison_of_another_org_gets_404(client, bank_people):
    login(client, bank_people["other_liaison"])
    assert client.get(f"/admin/advisors/{bank_people['advisor'].id}/profile").status_code == 404


def test_office_edits_profile_and_pboc_only_reads(app, make, bank_people):
    advisor = bank_people["advisor"]
    url = f"/admin/advisors/{advisor.id}/profile"
    office = login(app.test_client(), make.user("finance_office"))
    assert submit(office, url, profile_form(capacity="30", accepting=None)).status_code == 302
    db.session.expire_all()
    profile = db.session.get(AdvisorProfile, advisor.id)
    assert (profile.capacity, profile.accepting) == (30, False)

    pboc = login(app.test_client(), make.user("pboc"))
    assert pboc.get(url).status_code == 200
    token = csrf_from(pboc.get("/").get_data(as_text=True))
    assert pboc.post(url, data={**profile_form(), "csrf_token": token}).status_code == 403


def test_profile_of_a_non_advisor_is_404(as_admin, bank_people):
    assert as_admin.get(f"/admin/advisors/{bank_people['liaison'].id}/profile").status_code == 404


# ------------------------------------------------------------------ user lists
def test_liaison_sees_only_its_own_org(client, admin, bank_people):
    stranger = bank_people["other_liaison"]
    login(client, bank_people["liaison"])
    page = text(client.get("/admin/users"))
    for mine in ("advisor", "colleague", "liaison"):
        assert bank_people[mine].username in page
    assert stranger.username not in page and admin.username not in page
    # Asking for another org's people by filter finds nobody.
    page = text(client.get(f"/admin/users?org={stranger.org_id}"))
    assert stranger.username not in page
    assert client.get(f"/admin/users/{bank_people['advisor'].id}/edit").status_code == 403


def test_users_list_filters(as_admin, make):
    bureau = make.user("bureau", username="bureau-zhao")
    advisor = make.user("advisor", username="adv-qian")
    advisor.active = False
    db.session.commit()

    def names(url):
        page = text(as_admin.get(url))
        return {u for u in ("bureau-zhao", "adv-qian", "root-admin") if u in page}

    assert names("/admin/users") == {"bureau-zhao", "adv-qian", "root-admin"}
    assert names("/admin/users?role=bureau") == {"bureau-zhao"}
    assert names(f"/admin/users?org={advisor.org_id}") == {"adv-qian"}
    assert names("/admin/users?q=QIAN") == {"adv-qian"}
    assert names("/admin/users?active=0") == {"adv-qian"}
    assert names("/admin/users?active=1") == {"bureau-zhao", "root-admin"}
    assert bureau.id


def test_users_list_paginates_by_id(as_admin, make):
    for i in range(55):
        make.user("admin", username=f"page-user-{i:02d}")
    page = as_admin.get("/admin/users").get_data(as_text=True)
    assert page.count('data-testid="user-row"') == 50
    more = re.search(r'href="([^"]*after=\d+[^"]*)"', page)
    assert more, "no link to the next page"
    page2 = as_admin.get(html.unescape(more.group(1))).get_data(as_text=True)
    assert page2.count('data-testid="user-row"') == 6  # 55 + the signed-in admin
    assert "page-user-54" in page2 and "page-user-00" not in page2
    assert not re.search(r'href="[^"]*after=\d+', page2)


def test_users_list_query_count_does_not_grow_with_users(as_admin, make, count_queries):
    def add(n):
        for i in range(n):
            make.user(("advisor", "liaison", "bureau", "finance_office", "admin")[i % 5])

    add(5)
    as_admin.get("/admin/users")  # warm up
    with count_queries() as five:
        r = as_admin.get("/admin/users")
    assert r.get_data(as_text=True).count('data-testid="user-row"') == 6
    add(20)
    with count_queries() as twenty_five:
        r = as_admin.get("/admin/users")
    assert r.get_data(as_text=True).count('data-testid="user-row"') == 26
    assert twenty_five.count == five.count, twenty_five.statements


def test_expired_form_token_reshows_the_typed_input(as_admin, make):
    bank = make.org("bank")
    as_admin.get("/admin/users/new")
    data = user_form(username="late-typer", display_name="迟到的人", org=str(bank.id))
    r = as_admin.post("/admin/users/new", data={**data, "csrf_token": "expired"})
    assert r.status_code == 422
    page = text(r)
    assert 'value="迟到的人"' in page and 'value="late-typer"' in page
    assert "Your form had expired." in page
    assert find_user("late-typer") is None
