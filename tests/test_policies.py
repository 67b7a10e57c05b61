"""The policy-tool catalogue: seed, maintain (central bank, finance office, admin), read (all)."""

from __future__ import annotations

import html as html_lib
from datetime import date

import pytest
from sqlalchemy import func, select

from advisors.audit import acting_as
from advisors.errors import Conflict, ValidationFailed
from advisors.services import policies as policy_service
from models import FIRM_TYPES, PolicyTool, db
from tests.conftest import csrf_from

SEED_NAMES = {
    "支农支小再贷款",
    "再贴现",
    "普惠小微贷款支持工具",
    "科技创新和技术改造再贷款",
    "民营企业再贷款",
    "碳减排支持工具",
    "普惠小微企业贷款延期还本付息",
    "普惠小微企业信用贷款",
    "创业担保贷款",
}


def _form(**values) -> dict:
    data = {
        "code": "green_loan",
        "name": "绿色贷款贴息",
        "description": "对绿色项目贷款给予贴息。",
        "valid_from": "2025-01-01",
        "valid_to": "2027-12-31",
        "eligible_types": ["enterprise", "cooperative"],
        "active": "y",
    }
    data.update(values)
    return data


def _post(client, url, data):
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return client.post(url, data={**data, "csrf_token": csrf_from(page.get_data(as_text=True))})


def _text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def _tool(code: str) -> PolicyTool | None:
    db.session.expire_all()
    return db.session.execute(
        select(PolicyTool).where(PolicyTool.code == code)
    ).scalar_one_or_none()


# ------------------------------------------------------------------ seed
def test_seed_catalogue_inserts_all_and_is_idempotent(app):
    assert policy_service.seed_catalogue() == 9
    db.session.commit()
    assert policy_service.seed_catalogue() == 0
    tools = list(db.session.execute(select(PolicyTool)).scalars())
    assert {t.name for t in tools} == SEED_NAMES
    assert len({t.code for t in tools}) == 9
    for t in tools:
        assert t.description and t.active
        assert t.eligible_types and set(t.eligible_types) <= set(FIRM_TYPES)
    by_code = {t.code: t for t in tools}
    assert by_code["inclusive_loan_tool"].valid_from == date(2022, 1, 1)
    assert by_code["inclusive_loan_tool"].valid_to == date(2024, 12, 31)
    assert by_code["private_firm_relending"].valid_from == date(2026, 1, 1)


def test_seed_keeps_edits_and_fills_gaps(app):
    policy_service.seed_catalogue()
    db.session.commit()
    tool, gone = _tool("rediscount"), _tool("deferral")
    tool.description = "本地说明"
    db.session.delete(gone)
    db.session.commit()
    assert policy_service.seed_catalogue() == 1
    db.session.commit()
    assert _tool("rediscount").description == "本地说明"
    assert db.session.scalar(select(func.count()).select_from(PolicyTool)) == 9


def test_validity_for_a_day():
    tool = PolicyTool(valid_from=date(2022, 1, 1), valid_to=date(2024, 12, 31))
    assert policy_service.validity(tool, date(2021, 12, 31)) == "not_yet"
    assert policy_service.validity(tool, date(2022, 1, 1)) == "valid"
    assert policy_service.validity(tool, date(2024, 12, 31)) == "valid"
    assert policy_service.validity(tool, date(2025, 1, 1)) == "expired"
    assert policy_service.validity(PolicyTool(), date(2000, 1, 1)) == "valid"


# ------------------------------------------------------------------ maintain
def test_pboc_creates_and_edits_a_tool(client, login, make):
    login(make.user("pboc"))
    r = _post(client, "/policies/new", _form())
    assert r.status_code == 302, _text(r)[:3000]
    tool = _tool("green_loan")
    assert r.headers["Location"].endswith(f"/policies/#tool-{tool.id}")
    assert tool.eligible_types == ["enterprise", "cooperative"]
    assert tool.valid_to == date(2027, 12, 31)
    assert tool.active is True
    data = _form(
        name="绿色贷款贴息（修订）",
        eligible_types=["farmer", "enterprise"],
        valid_to="",
        version=str(tool.version),
    )
    del data["active"]  # unticked: deactivated
    r = _post(client, f"/policies/{tool.id}/edit", data)
    assert r.status_code == 302, _text(r)[:3000]
    tool = _tool("green_loan")
    assert tool.name == "绿色贷款贴息（修订）"
    assert tool.eligible_types == ["enterprise", "farmer"]
    assert tool.valid_to is None
    assert tool.active is False
    assert tool.version == 2


def test_finance_office_and_admin_maintain_too(client, login, make):
    for i, role in enumerate(("finance_office", "admin")):
        login(make.user(role))
        r = _post(client, "/policies/new", _form(code=f"tool_{i}"))
        assert r.status_code == 302, role


@pytest.mark.parametrize("role", ["bureau", "advisor", "liaison"])
def test_other_roles_cannot_write(client, login, make, auth, role):
    tool = PolicyTool(code="some_tool", name="某工具", eligible_types=["enterprise"])
    db.session.add(tool)
    db.session.commit()
    login(make.user(role))
    token = auth.csrf("/policies/")
    assert client.get("/policies/new").status_code == 403
    assert client.post("/policies/new", data={**_form(), "csrf_token": token}).status_code == 403
    r = client.post(
        f"/policies/{tool.id}/edit", data={**_form(), "csrf_token": token, "version": "1"}
    )
    assert r.status_code == 403
    assert _tool("green_loan") is None
    assert _tool("some_tool").name == "某工具"
    assert 'data-testid="tool-new"' not in client.get("/policies/").get_data(as_text=True)


def test_service_refuses_other_roles(app, make):
    user = make.user("bureau")
    with pytest.raises(policy_service.NotAllowedError):
        policy_service.create_tool(user, _form())


def test_duplicate_code_message(client, login, make):
    login(make.user("pboc"))
    assert _post(client, "/policies/new", _form()).status_code == 302
    r = _post(client, "/policies/new", _form(name="另一个"))
    assert r.status_code == 422
    text = _text(r)
    assert "A policy tool with code green_loan already exists." in text
    assert 'value="另一个"' in text


def test_end_before_start_is_refused(client, login, make):
    login(make.user("pboc"))
    r = _post(client, "/policies/new", _form(valid_from="2026-05-01", valid_to="2026-04-30"))
    assert r.status_code == 422
    text = _text(r)
    assert "The end date cannot be before the start date." in text
    assert 'value="2026-04-30"' in text and 'value="2026-05-01"' in text
    assert _tool("green_loan") is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"code": "Bad Code"}, "Code must be 2-40 lower-case letters"),
        ({"code": "x" * 500}, "Code must be 2-40 lower-case letters"),
        ({"name": "  "}, "Name is required."),
        ({"name": "名" * 121}, "Name must be at most 120 characters."),
        ({"name": "坏\x00名"}, "Name contains characters that are not allowed."),
        ({"description": "a\x00b"}, "Description contains characters that are not allowed."),
        ({"valid_from": "2026-02-30"}, "Valid from must be a date (YYYY-MM-DD)."),
        ({"valid_to": "tomorrow"}, "Valid to must be a date (YYYY-MM-DD)."),
        ({"eligible_types": ["enterprise", "martians"]}, "Unknown firm types: martians."),
        ({"eligible_types": []}, "Choose at least one eligible firm type."),
    ],
)
def test_bad_input_is_422_on_the_field(client, login, make, values, message):
    login(make.user("pboc"))
    r = _post(client, "/policies/new", _form(**values))
    assert r.status_code == 422
    assert message in _text(r)


def test_service_validation_and_conflict(app, make):
    user = make.user("pboc")
    with acting_as(user):
        tool = policy_service.create_tool(user, _form(eligible_types="enterprise,farmer"))
    db.session.commit()
    assert tool.eligible_types == ["enterprise", "farmer"]
    with pytest.raises(ValidationFailed) as info:
        policy_service.create_tool(user, _form())
    assert set(info.value.fields) == {"code"}
    with pytest.raises(Conflict):
        policy_service.update_tool(user, tool, _form(), expected_version=tool.version + 1)
    with acting_as(user):
        policy_service.set_active(user, tool, False, expected_version=tool.version)
    db.session.commit()
    assert _tool("green_loan").active is False


def test_concurrent_edit_gives_409(client, login, make):
    user = login(make.user("pboc"))
    with acting_as(user):
        tool = policy_service.create_tool(user, _form())
    db.session.commit()
    page = client.get(f"/policies/{tool.id}/edit")
    token = csrf_from(page.get_data(as_text=True))
    opened = tool.version
    with acting_as(user):
        policy_service.update_tool(user, tool, _form(name="别人的名称"), expected_version=opened)
    db.session.commit()
    r = client.post(
        f"/policies/{tool.id}/edit",
        data={**_form(name="我的名称"), "version": str(opened), "csrf_token": token},
    )
    assert r.status_code == 409
    text = _text(r)
    assert "changed by someone else" in text
    assert 'value="我的名称"' in text
    assert "别人的名称" in text and "Current stored values" in text
    assert _tool("green_loan").name == "别人的名称"


# ------------------------------------------------------------------ read
def test_advisor_reads_the_list(client, login, make, travel):
    policy_service.seed_catalogue()
    hidden = PolicyTool(
        code="old_tool", name="已停用工具", eligible_types=["enterprise"], active=False
    )
    db.session.add(hidden)
    db.session.commit()
    travel(date(2025, 6, 1))
    login(make.user("advisor"))
    r = client.get("/policies/")
    assert r.status_code == 200
    text = _text(r)
    for name in SEED_NAMES:
        assert name in text
    assert "已停用工具" not in text  # deactivated tools are not shown to advisors
    expired = _tool("inclusive_loan_tool")
    not_yet = _tool("private_firm_relending")
    in_force = _tool("relending_agri_small")
    for tool, state in ((expired, "expired"), (not_yet, "not_yet"), (in_force, "valid")):
        start = text.index(f'id="tool-{tool.id}"')
        assert f'data-validity="{state}"' in text[start : start + 800], tool.code
    assert "Expired" in text and "Not yet in force" in text and "In force" in text
    assert "/edit" not in text
    # the workbench links to the list
    home = client.get("/").get_data(as_text=True)
    assert 'href="/policies/"' in home


def test_maintainer_sees_inactive_tools(client, login, make):
    db.session.add(
        PolicyTool(code="old_tool", name="已停用工具", eligible_types=["enterprise"], active=False)
    )
    db.session.commit()
    login(make.user("pboc"))
    text = _text(client.get("/policies/"))
    assert "已停用工具" in text and "Inactive" in text


@pytest.mark.parametrize(
    "url",
    [
        "/policies/?after=abc",
        "/policies/?after=99999999999999999",
        "/policies/99999999999999999999/edit",
        "/policies/0/edit",
    ],
)
def test_absurd_urls_never_500(client, login, make, url):
    login(make.user("pboc"))
    expected = 404 if url.endswith("/edit") else 200  # no such tool; a bad cursor: first page
    assert client.get(url).status_code == expected
