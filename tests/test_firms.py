"""The enterprise registry pages: register, size class, credit-code checks and overrides,
scope, search, keyset list, concurrent edits, and absurd input."""

from __future__ import annotations

import html as html_lib
from decimal import Decimal

import pytest
from sqlalchemy import select

from advisors.audit import acting_as
from advisors.services import firms as firm_service
from models import Enterprise, db
from tests.conftest import csrf_from

BAD_CODE = "91310115MA1H8R7C6D"  # fails both check characters (REFERENCE.md §2)
GOOD_CODE = "91110000600037341L"


def _form(**values) -> dict:
    data = {
        "credit_code": GOOD_CODE,
        "name": "杭州测试制造有限公司",
        "industry": "industry",
        "township": "",
        "address": "文一西路 100 号",
        "contact_name": "王经理",
        "contact_phone": "0571-88886666",
        "employees": "50",
        "revenue_wan": "800",
        "assets_wan": "",
    }
    data.update(values)
    return data


def _post(client, url, data):
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    body = dict(data)
    body["csrf_token"] = csrf_from(page.get_data(as_text=True))
    return client.post(url, data=body)


def _text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def _by_code(code: str) -> Enterprise | None:
    db.session.expire_all()
    return db.session.execute(
        select(Enterprise).where(Enterprise.credit_code == code)
    ).scalar_one_or_none()


# ------------------------------------------------------------------ register and size class
def test_register_computes_size_class(client, login, make):
    login(make.user("finance_office"))
    r = _post(client, "/firms/new", _form())
    assert r.status_code == 302, _text(r)[:3000]
    firm = _by_code(GOOD_CODE)
    assert firm.size_class == "small"  # industry: 50 employees, 800 万元 revenue
    assert firm.revenue_wan == Decimal("800")
    assert r.headers["Location"].endswith(f"/firms/{firm.id}")
    page = client.get(f"/firms/{firm.id}")
    text = _text(page)
    assert "registered" in text  # the flash
    assert "Small" in text
    assert "Employees, Revenue (万元)" in text  # the rule's figures are explained
    assert "800.00" in text


def test_edit_recomputes_size_class(client, login, make):
    user = login(make.user("finance_office"))
    firm = make.firm(actor=user, industry="industry", employees=50, revenue_wan=Decimal("800"))
    assert firm.size_class == "small"
    data = _form(
        credit_code=firm.credit_code,
        name=firm.name,
        employees="400",
        revenue_wan="5000",
        version=str(firm.version),
    )
    r = _post(client, f"/firms/{firm.id}/edit", data)
    assert r.status_code == 302, _text(r)[:3000]
    assert _by_code(firm.credit_code).size_class == "medium"
    data.update(employees="5", version=str(_by_code(firm.credit_code).version))
    assert _post(client, f"/firms/{firm.id}/edit", data).status_code == 302
    assert _by_code(firm.credit_code).size_class == "micro"


def test_missing_figure_gives_unknown(client, login, make):
    login(make.user("finance_office"))
    r = _post(client, "/firms/new", _form(revenue_wan=""))
    assert r.status_code == 302
    firm = _by_code(GOOD_CODE)
    assert firm.size_class == "unknown"
    text = _text(client.get(f"/firms/{firm.id}"))
    assert "Size unknown because these figures are missing: Revenue (万元)." in text


def test_form_explains_which_figures_each_industry_needs(client, login, make):
    login(make.user("bureau"))
    text = _text(client.get("/firms/new"))
    assert "Which figures each industry needs" in text
    assert "Construction</td><td>Revenue (万元), Total assets (万元)" in text
    assert "Override reason" not in text  # a bureau cannot override
    login(make.user("finance_office"))
    text = _text(client.get("/firms/new"))
    assert "Override reason" in text


# ------------------------------------------------------------------ credit-code checks
@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "Enter the unified social credit code"),
        ("9111000060003734", "A credit code has 18 characters; this one has 16"),
        ("91110000600037341l", "Use upper-case letters: l at position(s) 18"),
        ("91110000600O37341L", "Characters not allowed in a credit code: 'O' at position(s) 12"),
        ("B1110000600037341L", "Position 1 (registration authority) is B"),
        ("91990000600037341L", "do not start with a province code"),
        ("91110000600037341K", "Check character (position 18) should be L, not K"),
        (BAD_CODE, "Organisation code check (position 17)"),
    ],
)
def test_each_code_failure_names_the_problem_and_keeps_input(client, login, make, code, message):
    login(make.user("bureau"))
    data = _form(credit_code=code, employees="-3", revenue_wan="12.5", assets_wan="99")
    r = _post(client, "/firms/new", data)
    assert r.status_code == 422
    text = _text(r)
    assert message in text
    assert "is-invalid" in text
    for key in (
        "credit_code",
        "name",
        "address",
        "contact_name",
        "contact_phone",
        "employees",
        "revenue_wan",
        "assets_wan",
    ):
        if data[key]:
            assert f'value="{data[key]}"' in text, key
    assert '<option selected value="industry">' in text
    assert db.session.scalar(select(Enterprise.id)) is None


def test_lowercase_code_message(client, login, make):
    login(make.user("finance_office"))
    r = _post(client, "/firms/new", _form(credit_code="91350100m000100y43"))
    assert r.status_code == 422
    assert "Use upper-case letters: m, y at position(s) 9, 16" in _text(r)


def test_duplicate_code_is_a_field_message(client, login, make):
    user = login(make.user("finance_office"))
    make.firm(actor=user, credit_code=GOOD_CODE)
    r = _post(client, "/firms/new", _form(name="另一家公司"))
    assert r.status_code == 422
    text = _text(r)
    assert f"A firm with credit code {GOOD_CODE} is already registered." in text
    assert 'value="另一家公司"' in text


def test_duplicate_code_on_edit(client, login, make):
    user = login(make.user("finance_office"))
    make.firm(actor=user, credit_code=GOOD_CODE)
    other = make.firm(actor=user)
    r = _post(
        client, f"/firms/{other.id}/edit", _form(credit_code=GOOD_CODE, version=str(other.version))
    )
    assert r.status_code == 422
    assert "is already registered" in _text(r)


# ------------------------------------------------------------------ overrides
def test_finance_office_overrides_with_reason(client, login, make):
    user = login(make.user("finance_office"))
    r = _post(
        client,
        "/firms/new",
        _form(credit_code=BAD_CODE, override_reason="营业执照原件已核对，代码真实"),
    )
    assert r.status_code == 302, _text(r)[:3000]
    firm = _by_code(BAD_CODE)
    assert firm.code_override_reason == "营业执照原件已核对，代码真实"
    assert firm.code_override_by_id == user.id
    text = _text(client.get(f"/firms/{firm.id}"))
    assert "Credit code check overridden" in text
    assert "营业执照原件已核对，代码真实" in text
    assert user.display_name in text
    listing = _text(client.get("/firms/"))
    assert "Code check overridden" in listing


def test_override_without_reason_is_refused(client, login, make):
    login(make.user("finance_office"))
    r = _post(client, "/firms/new", _form(credit_code=BAD_CODE, override_reason="  "))
    assert r.status_code == 422
    assert "If the code is real, give an override reason." in _text(r)
    r = _post(client, "/firms/new", _form(credit_code=BAD_CODE, override_reason="ok"))
    assert r.status_code == 422
    assert "Override reason must say why" in _text(r)
    assert _by_code(BAD_CODE) is None


def test_bureau_cannot_override(client, login, make):
    login(make.user("bureau"))
    r = _post(
        client,
        "/firms/new",
        _form(credit_code=BAD_CODE, override_reason="营业执照原件已核对，代码真实"),
    )
    assert r.status_code == 422
    text = _text(r)
    assert "Check character (position 18)" in text
    assert "give an override reason" not in text
    assert _by_code(BAD_CODE) is None


def test_bureau_may_edit_an_overridden_firm_it_registered(client, login, make):
    bureau = make.user("bureau")
    office = make.user("finance_office")
    with acting_as(office):
        firm = firm_service.register_firm(
            office,
            {"credit_code": BAD_CODE, "name": "核对过的企业", "industry": "retail"},
            override_reason="营业执照原件已核对",
        )
        firm.registered_by_org_id = bureau.org_id
    db.session.commit()
    login(bureau)
    r = _post(
        client,
        f"/firms/{firm.id}/edit",
        _form(credit_code=BAD_CODE, industry="retail", version=str(firm.version)),
    )
    assert r.status_code == 302, _text(r)[:3000]
    assert _by_code(BAD_CODE).code_override_reason == "营业执照原件已核对"


# ------------------------------------------------------------------ scope and access
def test_bureau_sees_only_its_own_firms(client, login, make):
    bureau_a = make.user("bureau")
    bureau_b = make.user("bureau")
    login(bureau_a)
    assert _post(client, "/firms/new", _form()).status_code == 302
    firm = _by_code(GOOD_CODE)
    assert firm.name in _text(client.get("/firms/"))
    login(bureau_b)
    assert client.get(f"/firms/{firm.id}").status_code == 404
    assert client.get(f"/firms/{firm.id}/edit").status_code == 404
    r = _post(client, "/firms/new", _form(credit_code="91110000101623741K", name="乙局企业"))
    assert r.status_code == 302
    text = _text(client.get("/firms/"))
    assert firm.name not in text
    assert "乙局企业" in text
    # the edit form itself refuses (404) a firm outside the scope, also on POST
    token = csrf_from(client.get("/firms/new").get_data(as_text=True))
    r = client.post(f"/firms/{firm.id}/edit", data={**_form(), "csrf_token": token})
    assert r.status_code == 404


@pytest.mark.parametrize("role", ["advisor", "liaison"])
def test_case_roles_are_refused(client, login, make, role):
    login(make.user(role))
    assert client.get("/firms/").status_code == 403
    assert client.get("/firms/new").status_code == 403


def test_audit_link_only_for_office_and_admin(client, login, make):
    office = login(make.user("finance_office"))
    firm = make.firm(actor=office)
    text = client.get(f"/firms/{firm.id}").get_data(as_text=True)
    assert f"table=enterprise&amp;record={firm.id}" in text or (
        f"record={firm.id}&amp;table=enterprise" in text
    )
    login(make.user("pboc"))
    assert 'data-testid="audit-link"' not in client.get(f"/firms/{firm.id}").get_data(as_text=True)


# ------------------------------------------------------------------ list and search
def test_search_by_code_prefix_and_name(client, login, make):
    user = login(make.user("finance_office"))
    a = make.firm(actor=user, credit_code=GOOD_CODE, name="西湖茶叶有限公司")
    b = make.firm(actor=user, credit_code="91350100M000100Y43", name="闽江物流有限公司")
    text = _text(client.get("/firms/?q=9111000"))
    assert a.name in text and b.name not in text
    text = _text(client.get("/firms/?q=" + "９１３５"))  # full-width digits are normalised
    assert b.name in text and a.name not in text
    text = _text(client.get("/firms/?q=茶叶"))
    assert a.name in text and b.name not in text
    text = _text(client.get("/firms/?q=%25"))  # a LIKE wildcard is taken literally
    assert a.name not in text and b.name not in text


def test_filters(client, login, make):
    user = login(make.user("finance_office"))
    town = make.township("西湖镇")
    a = make.firm(
        actor=user,
        name="甲零售",
        industry="retail",
        employees=5,
        revenue_wan=Decimal("50"),
        township=town,
    )
    b = make.firm(actor=user, name="乙工业", industry="industry")
    text = _text(client.get("/firms/?industry=retail"))
    assert a.name in text and b.name not in text
    text = _text(client.get("/firms/?size=small"))
    assert b.name in text and a.name not in text
    text = _text(client.get(f"/firms/?township={town.id}"))
    assert a.name in text and b.name not in text
    assert "西湖镇" in text
    text = _text(client.get("/firms/?q=乙&size=small"))
    assert b.name in text and a.name not in text


def test_keyset_pagination(client, login, make):
    user = login(make.user("finance_office"))
    firms = [make.firm(actor=user, name=f"分页企业{i:03d}") for i in range(55)]
    first = _text(client.get("/firms/"))
    assert firms[-1].name in first and firms[5].name in first
    assert firms[4].name not in first
    assert f"after={firms[5].id}" in first
    second = _text(client.get(f"/firms/?after={firms[5].id}"))
    assert firms[4].name in second and firms[0].name in second
    assert firms[5].name not in second
    assert 'href="/firms/?after=' not in second  # no further page


def test_list_query_count_is_fixed(client, login, make, count_queries):
    user = login(make.user("finance_office"))
    town = make.township()

    def count() -> int:
        with count_queries() as q:
            assert client.get("/firms/").status_code == 200
        return q.count

    for _ in range(5):
        make.firm(actor=user, township=town)
    few = count()
    for _ in range(25):
        make.firm(actor=user, township=town)
    assert count() == few
    with count_queries() as q:
        assert client.get("/firms/?industry=industry&size=small").status_code == 200
    assert q.count == few


# ------------------------------------------------------------------ concurrent edits
def test_concurrent_edit_gives_409_with_both_values(client, login, make):
    user = login(make.user("finance_office"))
    firm = make.firm(actor=user, name="原名称有限公司")
    page = client.get(f"/firms/{firm.id}/edit")
    token = csrf_from(page.get_data(as_text=True))
    opened_version = firm.version
    # someone else saves first
    other = make.user("finance_office")
    with acting_as(other):
        firm_service.update_firm(
            other,
            firm,
            {**_form(credit_code=firm.credit_code, name="别人改的名称"), "township": None},
            expected_version=opened_version,
        )
    db.session.commit()
    mine = _form(
        credit_code=firm.credit_code,
        name="我改的名称",
        employees="77",
        version=str(opened_version),
        csrf_token=token,
    )
    r = client.post(f"/firms/{firm.id}/edit", data=mine)
    assert r.status_code == 409
    text = _text(r)
    assert "This firm was changed by someone else since you opened it." in text
    assert 'value="我改的名称"' in text  # my input is kept
    assert 'value="77"' in text
    assert "Current stored values" in text and "别人改的名称" in text
    assert _by_code(firm.credit_code).name == "别人改的名称"
    # the form now carries the current version: saving again keeps my values, knowingly
    mine["version"] = str(_by_code(firm.credit_code).version)
    mine["csrf_token"] = csrf_from(r.get_data(as_text=True))
    assert client.post(f"/firms/{firm.id}/edit", data=mine).status_code == 302
    assert _by_code(firm.credit_code).name == "我改的名称"


def test_missing_version_is_treated_as_stale(client, login, make):
    user = login(make.user("finance_office"))
    firm = make.firm(actor=user)
    r = _post(client, f"/firms/{firm.id}/edit", _form(credit_code=firm.credit_code, version="abc"))
    assert r.status_code == 409


# ------------------------------------------------------------------ absurd input
@pytest.mark.parametrize(
    ("values", "field_message"),
    [
        ({"employees": "-5"}, "Employees cannot be negative."),
        ({"employees": "3.5"}, "Employees must be a whole number."),
        ({"employees": "9" * 40}, "Employees is too large."),
        ({"revenue_wan": "abc"}, "Revenue (万元) must be a number (万元)."),
        ({"revenue_wan": "1e20"}, "Revenue (万元) is too large"),
        ({"revenue_wan": "NaN"}, "Revenue (万元) must be a number (万元)."),
        ({"assets_wan": "-0.01"}, "Total assets (万元) cannot be negative."),
        ({"name": ""}, "Firm name is required."),
        ({"name": "名" * 300}, "Firm name must be at most 200 characters."),
        ({"industry": "mining"}, "Industry must be one of"),
        ({"township": "99999999999999999999999"}, "Not a valid choice"),
        ({"contact_phone": "<script>"}, "Contact phone may contain only digits"),
        ({"name": "坏\x00名字"}, "not allowed"),
        ({"credit_code": "9" * 1000}, "this one has 1000"),
    ],
)
def test_absurd_form_input_never_500(client, login, make, values, field_message):
    login(make.user("finance_office"))
    r = _post(client, "/firms/new", _form(**values))
    assert r.status_code == 422, r.status_code
    assert field_message in _text(r)


@pytest.mark.parametrize(
    "query",
    [
        "q=" + "x" * 1000,
        "q=%00",
        "q=%ED%A0%80",
        "q=_",
        "after=abc",
        "after=-1",
        "after=99999999999999999999999999",
        "township=abc",
        "township=99999999999",
        "industry=%00&size=huge",
        "q=9&q=1&after=1&after=2",
    ],
)
def test_absurd_query_strings_never_500(client, login, make, query):
    user = login(make.user("finance_office"))
    make.firm(actor=user)
    assert client.get(f"/firms/?{query}").status_code == 200


def test_absurd_ids_are_404(client, login, make):
    login(make.user("finance_office"))
    assert client.get("/firms/99999999999999999999999").status_code == 404
    assert client.get("/firms/2147483648/edit").status_code == 404
    assert client.get("/firms/0").status_code == 404


def test_expired_form_token_keeps_input_and_saves_nothing(client, login, make):
    login(make.user("finance_office"))
    client.get("/firms/new")
    r = client.post("/firms/new", data={**_form(name="过期表单企业"), "csrf_token": "stale"})
    assert r.status_code == 422
    text = _text(r)
    assert 'value="过期表单企业"' in text
    assert "Your form had expired" in text
    assert _by_code(GOOD_CODE) is None


def test_concurrent_registration_of_the_same_code_is_a_field_message(
    client, login, make, monkeypatch
):
    """Two registrations racing past the service's check: the unique index decides (no 500)."""
    user = login(make.user("finance_office"))
    make.firm(actor=user, credit_code=GOOD_CODE)
    monkeypatch.setattr(firm_service, "_check_unique", lambda code, existing: None)
    r = _post(client, "/firms/new", _form(name="并发登记企业"))
    assert r.status_code == 422
    text = _text(r)
    assert f"A firm with credit code {GOOD_CODE} is already registered." in text
    assert 'value="并发登记企业"' in text
