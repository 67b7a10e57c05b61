"""Risk reports: raising one from a visit (row, notifications once each), the finance office's
queue (acknowledge, follow-up notes, close) with its conflicts (closed, stale version 409,
empty note 422), and who can see a report at all (the reporter, the finance office, the
central bank and admins — never another advisor, the bank's liaison or a bureau)."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from advisors.audit import acting_as
from advisors.errors import Conflict, NotFound, ValidationFailed
from advisors.services import referrals as referral_service
from advisors.services import risk as svc
from advisors.services.referral_queries import decode_cursor
from models import AuditLog, Notification, Referral, RiskNote, RiskReport, Visit, db
from tests.conftest import csrf_from


# ------------------------------------------------------------------ helpers
def text_of(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def listed_ids(response) -> list[int]:
    return [int(x) for x in re.findall(r'id="risk-(\d+)"', response.get_data(as_text=True))]


def get(report_id: int) -> RiskReport:
    db.session.expire_all()
    return db.session.get(RiskReport, report_id)


def notes_of(kind: str) -> list[Notification]:
    return list(
        db.session.execute(
            select(Notification).where(Notification.kind == kind).order_by(Notification.user_id)
        ).scalars()
    )


@pytest.fixture
def people(make):
    bank = make.org("bank", code="ABC", name="江州农商银行")
    bureau_org = make.org("bureau", code="GXJ", name="工信局")
    people = {
        "office": make.user("finance_office", username="jrb_a"),
        "office2": make.user("finance_office", username="jrb_b"),
        "office_gone": make.user("finance_office", username="jrb_gone"),
        "pboc": make.user("pboc", username="rh_a"),
        "admin": make.user("admin", username="root_a"),
        "bureau": make.user("bureau", org=bureau_org, username="gxj_a"),
        "advisor": make.user("advisor", org=bank, username="adv_li"),
        "advisor2": make.user("advisor", org=bank, username="adv_wang"),
        "liaison": make.user("liaison", org=bank, username="lly_abc"),
    }
    people["office_gone"].active = False
    db.session.commit()
    return people


def new_case(make, people) -> int:
    """A firm referred by the bureau and assigned to the advisor."""
    with acting_as(people["bureau"]):
        result = referral_service.submit(
            people["bureau"],
            [
                {
                    "credit_code": make.credit_code(),
                    "name": f"江州风险测试{make.n()}有限公司",
                    "industry": "retail",
                    "needs": ["policy"],
                }
            ],
            source="form",
        )[0]
    db.session.commit()
    assert result.status == "created", result.errors
    with acting_as(people["office"]):
        referral_service.assign(people["office"], [result.referral_id], "adv_li")
    db.session.commit()
    return result.referral_id


def new_visit(advisor, referral_id: int) -> Visit:
    referral = db.session.get(Referral, referral_id)
    with acting_as(advisor):
        visit = Visit(
            referral_id=referral_id,
            enterprise_id=referral.enterprise_id,
            advisor_id=advisor.id,
            org_id=advisor.org_id,
            visited_on=date(2026, 3, 2),
            mode="onsite",
            role_information=True,
            summary="走访了解经营情况",
        )
        db.session.add(visit)
        db.session.commit()
    return visit


def raise_risk(people, visit: Visit, risk_type="illegal_fundraising", note="企业向员工高息集资"):
    advisor = people["advisor"]
    with acting_as(advisor):
        row = svc.report(advisor, visit, risk_type, note)
    db.session.commit()
    return row.id


@pytest.fixture
def reported(make, people):
    """One case, one visit, one risk report (by ``advisor``): (report id, visit, referral id)."""
    rid = new_case(make, people)
    visit = new_visit(people["advisor"], rid)
    return raise_risk(people, visit), visit, rid


def post(client, url, data, page):
    body = dict(data)
    body["csrf_token"] = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data=body)


# ------------------------------------------------------------------ reporting
def test_report_creates_the_row_and_notifies_each_office_user_once(make, people):
    rid = new_case(make, people)
    visit = new_visit(people["advisor"], rid)
    report_id = raise_risk(people, visit, "fraud", "  伪造购销合同骗贷  ")
    row = get(report_id)
    assert row.status == "open" and row.version == 1
    assert (row.visit_id, row.referral_id, row.enterprise_id) == (
        visit.id,
        rid,
        visit.enterprise_id,
    )
    assert row.reporter_id == people["advisor"].id
    assert row.org_id == people["advisor"].org_id
    assert row.risk_type == "fraud" and row.note == "伪造购销合同骗贷"
    assert row.reported_at is not None and row.acknowledged_at is None

    sent = notes_of("risk_reported")
    expected = sorted(people[k].id for k in ("office", "office2", "pboc"))
    assert [n.user_id for n in sent] == expected  # once each; not the inactive one
    assert all(n.referral_id == rid for n in sent)
    params = sent[0].params
    assert params["advisor"] == people["advisor"].display_name
    assert params["risk"] == "fraud" and params["risk_id"] == report_id
    assert params["firm"].startswith("江州风险测试")
    # Audited by the flush listener, attributed to the advisor.
    log = db.session.execute(
        select(AuditLog).where(
            AuditLog.table_name == "risk_report", AuditLog.record_id == str(report_id)
        )
    ).scalar_one()
    assert log.action == "insert" and log.actor_id == people["advisor"].id


def test_clean_names_the_fields(app):
    with force_locale("en"):
        _check_clean()


def _check_clean():
    assert svc.clean("fraud", "发现异常") == {}
    errors = svc.clean("", "   ")
    assert set(errors) == {"risk_type", "note"}
    assert "Risk type" in errors["risk_type"] and "What was observed" in errors["note"]
    assert "risk_type" in svc.clean("bogus", "x")
    assert "risk_type" in svc.clean(["fraud"], "x")
    assert "note" in svc.clean("other", None)
    assert "note" in svc.clean("other", 12)
    assert "note" in svc.clean("other", "\ud800")
    assert "at most 2000" in svc.clean("other", "长" * 2001)["note"]
    assert svc.clean("other", "长" * 2000) == {}


def test_report_refuses_bad_values_and_other_users(make, people):
    rid = new_case(make, people)
    visit = new_visit(people["advisor"], rid)
    with acting_as(people["advisor"]), pytest.raises(ValidationFailed) as exc:
        svc.report(people["advisor"], visit, "bogus", "")
    assert set(exc.value.fields) == {"risk_type", "note"}
    for other in ("advisor2", "office"):
        with acting_as(people[other]), pytest.raises(Conflict):
            svc.report(people[other], visit, "fraud", "x")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(RiskReport)) == 0
    assert notes_of("risk_reported") == []


# ------------------------------------------------------------------ the queue, through the web
def test_acknowledge_note_close_flow(client, login, people, reported):
    report_id, visit, rid = reported
    page_url = f"/risks/{report_id}"

    login(people["office"])
    r = client.get("/risks/")
    assert r.status_code == 200 and listed_ids(r) == [report_id]
    page = text_of(client.get(page_url))
    assert "企业向员工高息集资" in page and "Suspected illegal fundraising" in page
    assert f'href="/visits/{visit.id}"' in page
    assert f'href="/referrals/{rid}"' in page
    assert 'data-testid="risk-acknowledge"' in page and 'data-testid="risk-close"' in page

    r = post(client, f"{page_url}/acknowledge", {"version": 1}, page_url)
    assert r.status_code == 302, text_of(r)[:2000]
    row = get(report_id)
    assert row.status == "acknowledged" and row.acknowledged_by_id == people["office"].id
    told = notes_of("risk_acknowledged")
    assert [n.user_id for n in told] == [people["advisor"].id]
    assert told[0].params["risk_id"] == report_id

    r = post(client, f"{page_url}/note", {"note": "已转公安经侦部门核查"}, page_url)
    assert r.status_code == 302, text_of(r)[:2000]

    login(people["pboc"])  # the central bank may add notes, not acknowledge or close
    page = text_of(client.get(page_url))
    assert 'data-testid="risk-note-form"' in page and 'data-testid="risk-close"' not in page
    r = post(client, f"{page_url}/note", {"note": "人行已掌握该企业资金流向"}, page_url)
    assert r.status_code == 302
    r = post(client, f"{page_url}/close", {"note": "x", "version": 2}, page_url)
    assert r.status_code == 403

    login(people["office"])
    r = post(client, f"{page_url}/close", {"note": "   ", "version": 2}, page_url)
    assert r.status_code == 422
    assert "Closing note is required." in text_of(r)
    assert get(report_id).status == "acknowledged"
    r = post(
        client, f"{page_url}/close", {"note": "经核查已立案，移交处置", "version": 2}, page_url
    )
    assert r.status_code == 302, text_of(r)[:2000]
    row = get(report_id)
    assert row.status == "closed" and row.closed_by_id == people["office"].id
    assert row.close_note == "经核查已立案，移交处置"
    assert [n.user_id for n in notes_of("risk_closed")] == [people["advisor"].id]

    page = text_of(client.get(page_url))
    timeline = page.split('data-testid="risk-timeline"')[1]
    kinds = re.findall(r'data-kind="(\w+)"', timeline)
    assert kinds == ["reported", "acknowledged", "note", "note", "closed"]
    assert timeline.index("已转公安经侦部门核查") < timeline.index("人行已掌握该企业资金流向")
    assert timeline.index("人行已掌握该企业资金流向") < timeline.index("经核查已立案")
    assert "rh_a" not in timeline and "pboc user" in timeline  # names, not usernames
    assert 'data-testid="risk-close"' not in page and 'data-testid="risk-note-form"' not in page

    # The reporter sees the whole story of their report.
    login(people["advisor"])
    page = text_of(client.get(page_url))
    assert "经核查已立案，移交处置" in page and "已转公安经侦部门核查" in page
    assert 'data-testid="risk-acknowledge"' not in page


def test_closed_report_conflicts(client, login, people, reported):
    report_id, _visit, _rid = reported
    office = people["office"]
    with acting_as(office):
        svc.close(office, report_id, "核查无异常", expected_version=1)
    db.session.commit()
    version = get(report_id).version
    with force_locale("en"), acting_as(office):
        with pytest.raises(Conflict, match="already closed"):
            svc.close(office, report_id, "再次关闭", expected_version=version)
        with pytest.raises(Conflict, match="closed"):
            svc.acknowledge(office, report_id, expected_version=version)
        with pytest.raises(Conflict, match="closed"):
            svc.add_note(office, report_id, "补充")
    db.session.rollback()

    page_url = f"/risks/{report_id}"
    login(office)
    for url, data in (
        (f"{page_url}/close", {"note": "再次关闭", "version": version}),
        (f"{page_url}/acknowledge", {"version": version}),
        (f"{page_url}/note", {"note": "补充"}),
    ):
        r = post(client, url, data, page_url)
        assert r.status_code == 409, (url, r.status_code)
        assert "closed" in text_of(r)
    row = get(report_id)
    assert row.close_note == "核查无异常" and row.version == version
    assert db.session.scalar(select(func.count()).select_from(RiskNote)) == 0


def test_stale_version_is_409_and_keeps_the_input(client, login, people, reported):
    report_id, _visit, _rid = reported
    page_url = f"/risks/{report_id}"
    login(people["office"])
    opened = text_of(client.get(page_url))
    assert 'name="version" type="hidden" value="1"' in opened

    with acting_as(people["office2"]):  # a colleague acknowledges meanwhile
        svc.acknowledge(people["office2"], report_id, expected_version=1)
    db.session.commit()

    r = post(client, f"{page_url}/close", {"note": "我的处理意见", "version": 1}, page_url)
    assert r.status_code == 409
    page = text_of(r)
    assert "changed by someone else" in page
    assert "我的处理意见" in page  # what was typed is kept
    assert 'name="version" type="hidden" value="2"' in page
    assert get(report_id).status == "acknowledged"
    # A mangled version never matches.
    r = post(client, f"{page_url}/close", {"note": "我的处理意见", "version": "abc"}, page_url)
    assert r.status_code == 409
    # Submitting again now, knowingly, applies.
    r = post(client, f"{page_url}/close", {"note": "我的处理意见", "version": 2}, page_url)
    assert r.status_code == 302
    assert get(report_id).status == "closed"

    # Acknowledging twice.
    with acting_as(people["office"]), pytest.raises(Conflict):
        svc.acknowledge(people["office"], report_id, expected_version=get(report_id).version)


def test_empty_note_is_422_naming_the_field(client, login, people, reported):
    report_id, _visit, _rid = reported
    page_url = f"/risks/{report_id}"
    login(people["office"])
    r = post(client, f"{page_url}/note", {"note": ""}, page_url)
    assert r.status_code == 422
    page = text_of(r)
    assert "Follow-up note is required." in page and "is-invalid" in page
    r = post(client, f"{page_url}/note", {"note": "长" * 1001}, page_url)
    assert r.status_code == 422
    assert "Follow-up note must be at most 1000 characters." in text_of(r)
    with acting_as(people["office"]), pytest.raises(ValidationFailed) as exc:
        svc.close(people["office"], report_id, "", expected_version=1)
    assert list(exc.value.fields) == ["note"]
    assert db.session.scalar(select(func.count()).select_from(RiskNote)) == 0
    assert get(report_id).status == "open"


def test_follow_up_note_is_audited(people, reported):
    report_id, _visit, _rid = reported
    with acting_as(people["pboc"]):
        item = svc.add_note(people["pboc"], report_id, "  人行跟进  ")
    db.session.commit()
    assert item.note == "人行跟进" and item.author_id == people["pboc"].id
    log = db.session.execute(
        select(AuditLog).where(AuditLog.table_name == "risk_note")
    ).scalar_one()
    assert log.action == "insert" and log.record_id == str(item.id)
    assert log.actor_id == people["pboc"].id
    assert log.changes["note"] == [None, "人行跟进"]
    assert log.changes["report_id"] == [None, report_id]


def test_only_the_finance_office_acknowledges_and_closes(people, reported):
    report_id, _visit, _rid = reported
    for who in ("pboc", "admin", "advisor"):
        with acting_as(people[who]), pytest.raises(Conflict):
            svc.acknowledge(people[who], report_id, expected_version=1)
        with acting_as(people[who]), pytest.raises(Conflict):
            svc.close(people[who], report_id, "关闭", expected_version=1)
    for who in ("admin", "advisor"):
        with acting_as(people[who]), pytest.raises(Conflict):
            svc.add_note(people[who], report_id, "备注")
    db.session.rollback()
    assert get(report_id).status == "open"


def test_action_routes_refuse_other_roles(client, login, people, reported):
    report_id, _visit, _rid = reported
    page_url = f"/risks/{report_id}"
    login(people["advisor"])  # the reporter follows, but does not act on, the queue
    for action in ("acknowledge", "note", "close"):
        r = post(client, f"{page_url}/{action}", {"note": "x", "version": 1}, page_url)
        assert r.status_code == 403, action
    login(people["admin"])  # admins may view
    assert client.get(page_url).status_code == 200
    for action in ("acknowledge", "note", "close"):
        r = post(client, f"{page_url}/{action}", {"note": "x", "version": 1}, page_url)
        assert r.status_code == 403, action
    assert get(report_id).status == "open"


def test_a_post_without_csrf_changes_nothing(client, login, people, reported):
    report_id, _visit, _rid = reported
    login(people["office"])
    r = client.post(f"/risks/{report_id}/close", data={"note": "关闭", "version": 1})
    assert r.status_code == 422
    assert "关闭" in text_of(r)  # re-shown with what was typed
    assert get(report_id).status == "open"


# ------------------------------------------------------------------ visibility
def test_visibility_through_the_access_matrix(client, login, make, people, reported):
    report_id, visit, rid = reported
    page_url = f"/risks/{report_id}"

    for who in ("advisor", "office", "pboc", "admin"):
        login(people[who])
        assert client.get(page_url).status_code == 200, who
        assert listed_ids(client.get("/risks/?status=")) == [report_id], who

    # Another advisor of the same bank: the queue opens, the report is not there.
    login(people["advisor2"])
    assert client.get(page_url).status_code == 404
    r = client.get("/risks/?status=")
    assert r.status_code == 200 and listed_ids(r) == []

    # The bank's liaison and the referring bureau: the area is not theirs at all.
    for who in ("liaison", "bureau"):
        login(people[who])
        assert client.get("/risks/").status_code == 403, who
        assert client.get(page_url).status_code == 403, who
        r = post(client, f"{page_url}/note", {"note": "x"}, "/")
        assert r.status_code == 403, who

    # The same through the service, the scope every page reads through.
    for who in ("advisor2", "liaison", "bureau"):
        user = people[who]
        assert svc.queue(user).items == [], who
        assert svc.reports_for_visit(user, visit.id) == [], who
        with pytest.raises(NotFound):
            svc.get_for(user, report_id)
        with pytest.raises(NotFound):
            svc.detail(user, report_id)
    for who in ("advisor", "office", "pboc", "admin"):
        assert [r.id for r in svc.reports_for_visit(people[who], visit.id)] == [report_id], who


def test_an_advisor_who_takes_over_the_case_does_not_see_the_report(
    client, login, people, reported
):
    report_id, visit, rid = reported
    with acting_as(people["office"]):
        referral_service.assign(people["office"], [rid], "adv_wang")
    db.session.commit()
    login(people["advisor2"])
    assert client.get(f"/risks/{report_id}").status_code == 404
    assert listed_ids(client.get("/risks/?status=")) == []
    assert svc.reports_for_visit(people["advisor2"], visit.id) == []
    # The reporter still sees it, but the case is no longer theirs: no link to it.
    login(people["advisor"])
    page = text_of(client.get(f"/risks/{report_id}"))
    assert "企业向员工高息集资" in page and f'href="/referrals/{rid}"' not in page


def test_my_risk_reports_lists_only_my_own(client, login, make, people, reported):
    report_id, _visit, _rid = reported
    # advisor2 gets their own case and reports on it.
    rid2 = new_case(make, people)
    with acting_as(people["office"]):
        referral_service.assign(people["office"], [rid2], "adv_wang")
    db.session.commit()
    visit2 = new_visit(people["advisor2"], rid2)
    with acting_as(people["advisor2"]):
        other_id = svc.report(people["advisor2"], visit2, "illegal_deposit", "私下吸收存款").id
    db.session.commit()

    login(people["advisor"])
    r = client.get("/risks/")
    assert r.status_code == 200 and "My risk reports" in text_of(r)
    assert listed_ids(r) == [report_id]
    assert client.get(f"/risks/{other_id}").status_code == 404
    login(people["office"])
    assert listed_ids(client.get("/risks/")) == [other_id, report_id]


# ------------------------------------------------------------------ the queue's pages
def _many_reports(make, people, n: int) -> list[int]:
    rid = new_case(make, people)
    visit = new_visit(people["advisor"], rid)
    ids = []
    base = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    for i in range(n):
        ids.append(raise_risk(people, visit, "other", f"风险线索{i}"))
    for i, report_id in enumerate(ids):
        row = db.session.get(RiskReport, report_id)
        row.reported_at = base + timedelta(hours=i)
    db.session.commit()
    return ids  # (their version is now 2: the test moved reported_at)


def test_queue_status_tabs_and_keyset_pages(client, login, make, people):
    ids = _many_reports(make, people, 5)
    office = people["office"]
    with acting_as(office):
        svc.acknowledge(office, ids[1], expected_version=None)
        svc.close(office, ids[2], "处理完毕", expected_version=None)
    db.session.commit()

    newest_first = list(reversed(ids))
    assert [r.id for r in svc.queue(office).items] == newest_first
    assert [r.id for r in svc.queue(office, "open").items] == [ids[4], ids[3], ids[0]]
    assert [r.id for r in svc.queue(office, "acknowledged").items] == [ids[1]]
    assert [r.id for r in svc.queue(office, "closed").items] == [ids[2]]
    assert [r.id for r in svc.queue(office, "active").items] == [ids[4], ids[3], ids[1], ids[0]]
    with pytest.raises(ValidationFailed):
        svc.queue(office, "bogus")

    page = svc.queue(office, limit=2)
    seen = [r.id for r in page.items]
    while page.next_cursor:
        page = svc.queue(office, cursor=decode_cursor(page.next_cursor), limit=2)
        seen += [r.id for r in page.items]
    assert seen == newest_first
    row = svc.queue(office, limit=1).items[0]
    assert row.firm_name.startswith("江州风险测试")
    assert row.reporter_name == people["advisor"].display_name and row.institution == "江州农商银行"

    login(office)
    r = client.get("/risks/")  # the office opens on what still needs work
    assert listed_ids(r) == [ids[4], ids[3], ids[1], ids[0]]
    current = re.findall(r'aria-current="page"\s+href="[^"]*"\s+data-tab="(\w+)"', text_of(r))
    assert current == ["active"]
    assert listed_ids(client.get("/risks/?status=closed")) == [ids[2]]
    r = client.get("/risks/?status=bogus")
    assert r.status_code == 422 and "Choose a value from the list." in text_of(r)
    r = client.get("/risks/?status=&limit=2")
    assert listed_ids(r) == newest_first[:2]
    next_url = html_lib.unescape(re.search(r'href="([^"]*cursor=[^"]*)"', text_of(r)).group(1))
    assert listed_ids(client.get(next_url)) == newest_first[2:4]
    assert listed_ids(client.get("/risks/?status=&cursor=garbage")) == newest_first


def test_queue_runs_a_fixed_number_of_queries(client, login, make, people, count_queries):
    _many_reports(make, people, 12)
    login(people["office"])
    client.get("/risks/?status=")  # warm up
    counts = {}
    for limit in (2, 12):
        with count_queries() as q:
            r = client.get(f"/risks/?status=&limit={limit}")
        assert r.status_code == 200 and len(listed_ids(r)) == limit
        counts[limit] = q.count
    assert counts[2] == counts[12], counts


def test_detail_shows_times_in_shanghai(client, login, people, reported):
    report_id, _visit, _rid = reported
    row = db.session.get(RiskReport, report_id)
    row.reported_at = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)  # 01:30 the next day in Shanghai
    db.session.commit()
    login(people["office"])
    page = text_of(client.get(f"/risks/{report_id}"))
    assert "2026-03-03 01:30" in page and "2026-03-02 17:30" not in page


def test_open_count(people, make, monkeypatch):
    ids = _many_reports(make, people, 4)
    office = people["office"]
    with acting_as(office):
        svc.acknowledge(office, ids[0], expected_version=None)
        svc.close(office, ids[1], "处理完毕", expected_version=None)
    db.session.commit()
    assert svc.open_count(office) == 3  # open and acknowledged
    assert svc.open_count(people["pboc"]) == 3
    assert svc.open_count(people["advisor"]) == 0
    assert svc.open_count(people["bureau"]) == 0
    monkeypatch.setattr(svc, "BADGE_CAP", 2)
    assert svc.open_count(office) == 2


def test_missing_or_huge_ids_are_404(client, login, people):
    login(people["office"])
    assert client.get("/risks/999999").status_code == 404
    assert client.get(f"/risks/{2**40}").status_code == 404
