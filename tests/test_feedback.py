"""Firm feedback without an account: who may make a link and when, the public rating page (what it
shows, CSRF for an anonymous visitor, both languages, headers), the rating stored once and the
advisor notified, and every way a link stops working: used twice, expired, revoked, tampered."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select, update

from advisors import clock
from advisors.audit import acting_as
from advisors.security import digest
from advisors.services import feedback as svc
from advisors.services import referrals as referral_service
from models import AuditLog, Enterprise, FeedbackLink, Notification, Referral, Visit, db, utcnow
from tests.conftest import csrf_from
from views.feedback import qr_images


# ------------------------------------------------------------------ helpers
@pytest.fixture
def world(make):
    bureau = make.user("bureau", org=make.org("bureau"))
    office = make.user("finance_office")
    bank = make.org("bank")
    advisor = make.user("advisor", org=bank)
    return {
        "bureau": bureau,
        "office": office,
        "advisor": advisor,
        "other_advisor": make.user("advisor", org=bank),
        "admin": make.user("admin"),
        "pboc": make.user("pboc"),
        "liaison": make.user("liaison", org=bank),
        "other_bureau": make.user("bureau", org=make.org("bureau")),
    }


def new_case(make, w, *, status="resolved", note="顾问内部备注：老板很难沟通") -> int:
    """A case taken to ``status`` (submitted, assigned, in_service, resolved or closed)."""
    bureau, office, advisor = w["bureau"], w["office"], w["advisor"]
    with acting_as(bureau):
        result = referral_service.submit(
            bureau,
            [
                {
                    "credit_code": make.credit_code(),
                    "name": f"江州反馈测试企业{make.n()}有限公司",
                    "industry": "industry",
                    "needs": ["financing"],
                    "amount_wan": "987.65",
                    "purpose": "秘密用途",
                }
            ],
            source="form",
        )[0]
    db.session.commit()
    assert result.status == "created", result.errors
    rid = result.referral_id
    if status == "submitted":
        return rid
    with acting_as(office):
        referral_service.assign(office, [rid], advisor.username)
    db.session.commit()
    if status == "assigned":
        return rid
    referral = db.session.get(Referral, rid)
    day = clock.today()
    with acting_as(advisor):
        db.session.add(
            Visit(
                referral_id=rid,
                enterprise_id=referral.enterprise_id,
                advisor_id=advisor.id,
                org_id=advisor.org_id,
                visited_on=day,
                mode="onsite",
                role_policy=True,
                summary="走访纪要：企业现金流紧张",
            )
        )
        db.session.flush()
        referral_service.record_first_contact(advisor, referral, day)
        if status != "in_service":
            referral_service.record_outcome(advisor, referral, "policy_delivered", None, note)
    db.session.commit()
    if status == "closed":
        with acting_as(bureau):
            referral_service.confirm_outcome(bureau, rid, 5, "好")
        db.session.commit()
    return rid


def make_link(actor, rid) -> tuple[FeedbackLink, str]:
    with acting_as(actor):
        link, token = svc.create_link(actor, rid)
    db.session.commit()
    return link, token


def link_row(link_id) -> FeedbackLink:
    db.session.expire_all()
    return db.session.get(FeedbackLink, link_id)


def public_post(client, token, rating="5", comment="", csrf=None):
    url = f"/feedback/r/{token}"
    if csrf is None:
        page = client.get(url)
        assert page.status_code == 200, page.status_code
        csrf = csrf_from(page.get_data(as_text=True))
    return client.post(url, data={"rating": rating, "comment": comment, "csrf_token": csrf})


def tamper(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


# ------------------------------------------------------------------ service: making links
@pytest.mark.parametrize("status", ["submitted", "assigned", "in_service"])
def test_no_link_before_the_case_is_resolved(make, world, status):
    rid = new_case(make, world, status=status)
    with pytest.raises(svc.Conflict):
        svc.create_link(world["office"], rid)
    db.session.rollback()
    assert db.session.scalar(select(FeedbackLink.id)) is None


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_link_for_resolved_or_closed_case_stores_only_a_digest(app, make, world, status):
    rid = new_case(make, world, status=status)
    link, token = make_link(world["advisor"], rid)
    row = link_row(link.id)
    assert len(token) >= 40
    assert row.token_hash == digest(token) and token not in row.token_hash
    assert row.advisor_id == world["advisor"].id
    assert row.created_by_id == world["advisor"].id
    days = app.config.get("FEEDBACK_LINK_DAYS", 14)
    assert abs((row.expires_at - row.created_at) - timedelta(days=days)) < timedelta(seconds=5)
    assert svc.lookup(token).id == link.id
    # The audit trail records the link but never its token digest.
    changes = db.session.scalars(
        select(AuditLog.changes).where(AuditLog.table_name == "feedback_link")
    ).all()
    assert changes and all("token_hash" not in c for c in changes)


def test_expiry_follows_the_setting(app, make, world):
    rid = new_case(make, world)
    app.config["FEEDBACK_LINK_DAYS"] = 3
    try:
        link, _token = make_link(world["office"], rid)
    finally:
        app.config["FEEDBACK_LINK_DAYS"] = 14
    row = link_row(link.id)
    assert abs((row.expires_at - row.created_at) - timedelta(days=3)) < timedelta(seconds=5)


def test_who_may_make_a_link(make, world):
    rid = new_case(make, world)
    for role in ("advisor", "office", "admin", "bureau"):
        link, _token = make_link(world[role], rid)
        assert link.id
    # Another bureau's case, another advisor's, and the roles that follow without acting.
    for role in ("other_advisor", "other_bureau", "pboc", "liaison"):
        with pytest.raises(svc.NotFound):
            svc.create_link(world[role], rid)
        db.session.rollback()


def test_a_new_link_revokes_the_older_unused_one(make, world):
    rid = new_case(make, world)
    first, first_token = make_link(world["advisor"], rid)
    second, second_token = make_link(world["office"], rid)
    assert link_row(first.id).revoked_at is not None
    assert link_row(second.id).revoked_at is None
    with pytest.raises(svc.LinkGone) as gone:
        svc.lookup(first_token)
    assert gone.value.reason == "revoked"
    assert svc.lookup(second_token).id == second.id
    view = svc.links_for(world["office"], rid)
    assert [(line.id, line.status) for line in view.links] == [
        (second.id, "active"),
        (first.id, "revoked"),
    ]


def test_once_rated_no_new_link(make, world):
    rid = new_case(make, world)
    _link, token = make_link(world["advisor"], rid)
    svc.submit_rating(token, 4, "")
    db.session.commit()
    with pytest.raises(svc.Conflict):
        svc.create_link(world["advisor"], rid)
    db.session.rollback()
    view = svc.links_for(world["advisor"], rid)
    assert not view.may_create and "4" in view.why_not


# ------------------------------------------------------------------ service: the rating
def test_rating_is_stored_once_and_the_advisor_notified(make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    svc.submit_rating(token, "5", "  服务很好 ")
    db.session.commit()
    row = link_row(link.id)
    assert (row.rating, row.comment) == (5, "服务很好")
    assert row.used_at is not None
    notes = db.session.scalars(
        select(Notification).where(Notification.kind == "feedback_received")
    ).all()
    assert [(n.user_id, n.referral_id) for n in notes] == [(world["advisor"].id, rid)]
    assert notes[0].params["rating"] == 5 and notes[0].params["firm"].startswith("江州反馈")
    audit = db.session.execute(
        select(AuditLog.actor_label, AuditLog.actor_id, AuditLog.changes).where(
            AuditLog.table_name == "feedback_link", AuditLog.action == "update"
        )
    ).all()
    assert [(label, actor) for label, actor, _c in audit] == [("firm feedback", None)]
    assert audit[0][2]["rating"] == [None, 5]

    # A replay changes nothing.
    with pytest.raises(svc.LinkGone) as gone:
        svc.submit_rating(token, 1, "replay")
    db.session.rollback()
    assert gone.value.reason == "used"
    row = link_row(link.id)
    assert (row.rating, row.comment) == (5, "服务很好")
    assert (
        db.session.scalar(
            select(db.func.count())
            .select_from(Notification)
            .where(Notification.kind == "feedback_received")
        )
        == 1
    )


def test_a_lost_race_records_nothing(make, world, monkeypatch):
    """Two tabs: both looked the link up, the other one's UPDATE committed first."""
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    fetched = svc.lookup(token)  # this tab saw the link active ...
    db.session.execute(  # ... then the other tab recorded its rating
        update(FeedbackLink)
        .where(FeedbackLink.id == link.id)
        .values(used_at=utcnow(), rating=2, comment="first tab")
    )
    db.session.commit()
    monkeypatch.setattr(svc, "lookup", lambda _token: fetched)
    with pytest.raises(svc.LinkGone) as gone:
        svc.submit_rating(token, 5, "second tab")
    db.session.rollback()
    assert gone.value.reason == "used"
    row = link_row(link.id)
    assert (row.rating, row.comment) == (2, "first tab")


@pytest.mark.parametrize(
    ("rating", "comment", "fields"),
    [
        ("0", "", {"rating"}),
        ("6", "", {"rating"}),
        ("x", "", {"rating"}),
        ("", "", {"rating"}),
        (None, "", {"rating"}),
        (True, "", {"rating"}),
        ("3.5", "", {"rating"}),
        ("3", "长" * 501, {"comment"}),
        ("9", "长" * 501, {"rating", "comment"}),
    ],
)
def test_bad_input_names_the_field(make, world, rating, comment, fields):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    with force_locale("en"), pytest.raises(svc.ValidationFailed) as bad:
        svc.submit_rating(token, rating, comment)
    db.session.rollback()
    assert set(bad.value.fields) == fields
    if "rating" in fields:
        assert "Rating" in bad.value.fields["rating"]
    assert link_row(link.id).used_at is None


def test_unknown_and_malformed_tokens_are_not_found(make, world):
    rid = new_case(make, world)
    _link, token = make_link(world["advisor"], rid)
    for bad in (tamper(token), token[:-1], token + "x", "", "a" * 500, "../../etc", None, 42):
        with pytest.raises(svc.NotFound):
            svc.lookup(bad)


def test_revoke(make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    with pytest.raises(svc.NotFound):
        svc.revoke(world["other_advisor"], link.id)
    db.session.rollback()
    with acting_as(world["office"]):
        svc.revoke(world["office"], link.id)
    db.session.commit()
    with pytest.raises(svc.LinkGone):
        svc.submit_rating(token, 5, "")
    db.session.rollback()
    assert link_row(link.id).rating is None
    # A used link cannot be revoked: the rating stays.
    new, new_token = make_link(world["advisor"], rid)
    svc.submit_rating(new_token, 3, "")
    db.session.commit()
    with pytest.raises(svc.Conflict):
        svc.revoke(world["advisor"], new.id)
    db.session.rollback()
    assert link_row(new.id).rating == 3 and link_row(new.id).revoked_at is None


# ------------------------------------------------------------------ staff pages
def test_case_page_lists_links_and_offers_a_new_one(client, login, make, world):
    rid = new_case(make, world)
    old, _t = make_link(world["advisor"], rid)
    login(world["advisor"])
    page = client.get(f"/feedback/case/{rid}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-testid="feedback-create"' in html
    assert f'data-link="{old.id}" data-status="active"' in html


def test_case_page_before_resolution_has_no_button(client, login, make, world):
    rid = new_case(make, world, status="in_service")
    login(world["advisor"])
    html = client.get(f"/feedback/case/{rid}").get_data(as_text=True)
    assert 'data-testid="feedback-create"' not in html
    assert 'data-testid="feedback-why-not"' in html
    r = client.post(f"/feedback/case/{rid}/new", data={"csrf_token": csrf_from(html)})
    assert r.status_code == 409
    assert db.session.scalar(select(FeedbackLink.id)) is None


@pytest.mark.parametrize(
    ("role", "status"),
    [("other_advisor", 404), ("other_bureau", 404), ("pboc", 403), ("liaison", 403)],
)
def test_staff_outside_the_rule_or_scope_cannot_see_or_make_links(
    client, auth, login, make, world, role, status
):
    rid = new_case(make, world)
    link, _token = make_link(world["advisor"], rid)
    login(world[role])
    csrf = auth.csrf("/")
    assert client.get(f"/feedback/case/{rid}").status_code == status
    assert client.post(f"/feedback/case/{rid}/new", data={"csrf_token": csrf}).status_code == status
    r = client.post(f"/feedback/{link.id}/revoke", data={"csrf_token": csrf})
    assert r.status_code == status
    assert db.session.scalar(select(db.func.count()).select_from(FeedbackLink)) == 1
    assert link_row(link.id).revoked_at is None


def test_unknown_case_or_link_is_404(client, login, make, world):
    login(world["office"])
    assert client.get("/feedback/case/999999").status_code == 404
    assert client.get(f"/feedback/case/{2**40}").status_code == 404
    csrf = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/feedback/999999/revoke", data={"csrf_token": csrf}).status_code == 404


@pytest.fixture
def public_base(app, monkeypatch):
    """Set PUBLIC_BASE_URL for one test (unset by default, whatever the environment says)."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "")

    def set_base(value: str) -> None:
        monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", value)

    return set_base


def test_creating_shows_the_link_and_qr_once(app, client, login, make, world, public_base):
    rid = new_case(make, world)
    login(world["office"])
    html = client.get(f"/feedback/case/{rid}").get_data(as_text=True)
    r = client.post(f"/feedback/case/{rid}/new", data={"csrf_token": csrf_from(html)})
    assert r.status_code == 200  # the page itself, not a redirect: the token is only here
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    page = r.get_data(as_text=True)
    url = re.search(r'id="feedback-url-input"[^>]*value="([^"]+)"', page).group(1)
    assert url.startswith("http://localhost/feedback/r/")  # PUBLIC_BASE_URL unset (tests)
    token = url.rsplit("/", 1)[1]
    link = db.session.scalars(select(FeedbackLink)).one()
    assert link.token_hash == digest(token)
    assert link.created_by_id == world["office"].id

    # The QR code, inline as an <img> data URI (the CSP allows img-src data:), decodes as SVG.
    src = re.search(r'<img src="data:image/svg\+xml;base64,([^"]+)"', page).group(1)
    svg = base64.b64decode(src).decode()
    assert svg.startswith(("<svg", "<?xml"))
    assert "</svg>" in svg and "<script" not in svg
    assert 'download="feedback-qr-case-' in page and "data:image/png;base64," in page
    # It encodes the link: segno gives the same symbol for the same URL.
    assert qr_images(url)["svg"] == svg
    # The case page lists it afterwards, without the token.
    after = client.get(f"/feedback/case/{rid}").get_data(as_text=True)
    assert f'data-link="{link.id}" data-status="active"' in after
    assert token not in after


def test_revoke_through_the_page(client, login, make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    login(world["advisor"])
    html = client.get(f"/feedback/case/{rid}").get_data(as_text=True)
    r = client.post(f"/feedback/{link.id}/revoke", data={"csrf_token": csrf_from(html)})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/feedback/case/{rid}")
    assert link_row(link.id).revoked_at is not None
    anon = client.application.test_client()
    assert anon.get(f"/feedback/r/{token}").status_code == 410


# ------------------------------------------------------------------ the public page
def test_public_page_shows_the_firm_name_and_nothing_else(app, make, world):
    rid = new_case(make, world)
    _link, token = make_link(world["advisor"], rid)
    referral = db.session.get(Referral, rid)
    firm = db.session.get(Enterprise, referral.enterprise_id)
    client = app.test_client()  # anonymous
    r = client.get(f"/feedback/r/{token}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert firm.name in html
    for secret in (
        "顾问内部备注",  # outcome note
        "走访纪要",  # visit summary
        "987",  # amount needed
        "秘密用途",  # purpose
        firm.credit_code,
        world["advisor"].display_name,
        world["advisor"].username,
        "/referrals",
        "/login",
        "navbar",
    ):
        assert secret not in html, secret
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "<script" not in html and "style=" not in html
    assert 'name="viewport"' in html
    for n in range(1, 6):
        assert f'value="{n}"' in html


def test_public_page_languages(app, make, world):
    rid = new_case(make, world)
    _link, token = make_link(world["advisor"], rid)
    client = app.test_client()
    html = client.get(f"/feedback/r/{token}").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html  # the default
    r = client.post(
        "/lang/en", data={"csrf_token": csrf_from(html), "next": f"/feedback/r/{token}"}
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/feedback/r/{token}")
    html = client.get(f"/feedback/r/{token}").get_data(as_text=True)
    assert '<html lang="en">' in html and "Rate our service" in html


def test_anonymous_rating_end_to_end(app, make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    client = app.test_client()
    # Without the CSRF token nothing is recorded.
    r = client.post(f"/feedback/r/{token}", data={"rating": "4"})
    assert r.status_code == 422
    assert link_row(link.id).used_at is None
    r = public_post(client, token, "4", "顾问很专业")
    assert r.status_code == 302 and r.headers["Location"].endswith("/feedback/thanks")
    thanks = client.get("/feedback/thanks")
    assert thanks.status_code == 200 and 'data-testid="feedback-thanks"' in thanks.get_data(
        as_text=True
    )
    row = link_row(link.id)
    assert (row.rating, row.comment) == (4, "顾问很专业")
    note = db.session.scalars(select(Notification).where(Notification.user_id == row.advisor_id))
    assert any(n.kind == "feedback_received" for n in note)


def test_used_twice_second_is_410_and_rating_unchanged(app, make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    client = app.test_client()
    page = client.get(f"/feedback/r/{token}").get_data(as_text=True)
    csrf = csrf_from(page)
    assert public_post(client, token, "5", "first", csrf=csrf).status_code == 302
    # The same form submitted again (a second tab, a replay) ...
    again = public_post(client, token, "1", "second", csrf=csrf)
    assert again.status_code == 410
    html = again.get_data(as_text=True)
    assert 'data-reason="used"' in html and 'name="rating"' not in html
    # ... and opening the link again.
    r = app.test_client().get(f"/feedback/r/{token}")
    assert r.status_code == 410 and r.headers["Cache-Control"] == "no-store"
    row = link_row(link.id)
    assert (row.rating, row.comment) == (5, "first")


def test_expired_is_410(app, make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    client = app.test_client()
    csrf = csrf_from(client.get(f"/feedback/r/{token}").get_data(as_text=True))
    db.session.execute(
        update(FeedbackLink)
        .where(FeedbackLink.id == link.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    r = client.get(f"/feedback/r/{token}")
    assert r.status_code == 410
    html = r.get_data(as_text=True)
    assert 'data-reason="expired"' in html
    firm_name = svc.firm_name(link_row(link.id))
    assert firm_name not in html  # a dead link says so and nothing else
    assert public_post(client, token, "5", csrf=csrf).status_code == 410
    assert link_row(link.id).used_at is None
    view = svc.links_for(world["office"], rid)
    assert view.links[0].status == "expired"


def test_revoked_is_410(app, make, world):
    rid = new_case(make, world)
    first, first_token = make_link(world["advisor"], rid)
    make_link(world["advisor"], rid)  # revokes the first
    r = app.test_client().get(f"/feedback/r/{first_token}")
    assert r.status_code == 410
    assert 'data-reason="revoked"' in r.get_data(as_text=True)
    assert link_row(first.id).used_at is None


def test_tampered_token_is_the_ordinary_404(app, make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    client = app.test_client()
    csrf = csrf_from(client.get(f"/feedback/r/{token}").get_data(as_text=True))
    r = client.get(f"/feedback/r/{tamper(token)}")
    plain = client.get("/no/such/page")
    assert r.status_code == 404 and plain.status_code == 404
    # The same page as any unknown URL (but for the path the language switch returns to).
    assert r.get_data(as_text=True).replace(tamper(token), "X") == plain.get_data(
        as_text=True
    ).replace("no/such/page", "feedback/r/X")
    r = client.post(
        f"/feedback/r/{tamper(token)}", data={"rating": "5", "comment": "", "csrf_token": csrf}
    )
    assert r.status_code == 404
    assert link_row(link.id).used_at is None


@pytest.mark.parametrize("rating", ["0", "6", "x", ""])
def test_bad_rating_is_422_naming_the_field_with_input_kept(app, make, world, rating):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    client = app.test_client()
    with client.session_transaction() as s:
        s["lang"] = "en"
    r = public_post(client, token, rating, "我们的意见")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'data-field="rating"' in html and "Rating" in html
    assert "我们的意见</textarea>" in html  # the comment is kept
    assert link_row(link.id).used_at is None
    # Corrected, it goes through.
    assert public_post(client, token, "3", "我们的意见").status_code == 302
    assert link_row(link.id).rating == 3


def test_too_long_comment_is_422_with_the_rating_kept(app, make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    client = app.test_client()
    r = public_post(client, token, "4", "长" * 501)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'data-field="comment"' in html
    assert re.search(r'<input[^>]*checked[^>]*value="4"|<input[^>]*value="4"[^>]*checked', html)
    assert link_row(link.id).used_at is None


def test_signed_in_staff_opening_the_link_see_the_public_page(client, login, make, world):
    rid = new_case(make, world)
    link, token = make_link(world["advisor"], rid)
    login(world["advisor"])
    html = client.get(f"/feedback/r/{token}").get_data(as_text=True)
    assert 'data-testid="feedback-public"' in html
    assert "navbar" not in html and world["advisor"].display_name not in html
    # Submitted from a staff browser, the audit still says "firm feedback", with the address.
    assert public_post(client, token, "5").status_code == 302
    label, actor, ip = db.session.execute(
        select(AuditLog.actor_label, AuditLog.actor_id, AuditLog.ip).where(
            AuditLog.table_name == "feedback_link",
            AuditLog.action == "update",
            AuditLog.record_id == str(link.id),
        )
    ).one()
    assert (label, actor, ip) == ("firm feedback", None, "127.0.0.1")


# ------------------------------------------------------------------ the public address
@pytest.fixture
def at_host(app, monkeypatch):
    """``at_host(host)``: the test client reaches the app at ``host`` (the intranet address)
    from then on, signing in included."""

    def reach(host: str = "intranet.jrb.local") -> None:
        monkeypatch.setitem(app.config, "SERVER_NAME", host)

    return reach


def _create_through_the_page(client, rid) -> str:
    html = client.get(f"/feedback/case/{rid}").get_data(as_text=True)
    r = client.post(f"/feedback/case/{rid}/new", data={"csrf_token": csrf_from(html)})
    assert r.status_code == 200, r.status_code
    return r.get_data(as_text=True)


def _url_and_qr(page: str) -> tuple[str, str]:
    url = re.search(r'id="feedback-url-input"[^>]*value="([^"]+)"', page).group(1)
    src = re.search(r'<img src="data:image/svg\+xml;base64,([^"]+)"', page).group(1)
    return url, base64.b64decode(src).decode()


@pytest.mark.parametrize(
    "setting", ["https://pj.jzjrb.gov.cn/advisors", "https://pj.jzjrb.gov.cn/advisors/"]
)
def test_link_and_qr_use_the_public_base_url_not_the_advisors_host(
    client, login, make, world, public_base, at_host, setting
):
    public_base(setting)
    rid = new_case(make, world)
    at_host("10.8.0.12:8000")
    login(world["advisor"])
    page = _create_through_the_page(client, rid)
    url, svg = _url_and_qr(page)
    assert url.startswith("https://pj.jzjrb.gov.cn/advisors/feedback/r/"), url
    assert "10.8.0.12" not in page
    assert qr_images(url)["svg"] == svg  # the QR code carries the public link too
    token = url.rsplit("/", 1)[1]
    assert db.session.scalars(select(FeedbackLink.token_hash)).one() == digest(token)
    assert 'data-testid="public-base-warning"' not in page


def test_unset_public_base_url_falls_back_to_the_host_and_warns_admins(
    client, login, make, world, public_base, at_host
):
    rid = new_case(make, world)
    at_host()
    login(world["admin"])
    page = _create_through_the_page(client, rid)
    url, _svg = _url_and_qr(page)
    assert url.startswith("http://intranet.jrb.local/feedback/r/")
    assert 'data-testid="public-base-warning"' in page and "PUBLIC_BASE_URL" in page
    home = client.get("/").get_data(as_text=True)
    assert 'data-testid="public-base-warning"' in home
    # Other roles make the link without the administrator's warning.
    rid = new_case(make, world)
    login(world["advisor"])
    page = _create_through_the_page(client, rid)
    assert 'data-testid="public-base-warning"' not in page


@pytest.mark.parametrize(
    ("setting", "usable"),
    [
        ("https://pj.jzjrb.gov.cn", True),
        ("http://pj.jzjrb.gov.cn:8080/a/b/", True),
        ("pj.jzjrb.gov.cn", False),
        ("ftp://pj.jzjrb.gov.cn", False),
        ("https://user:pw@pj.jzjrb.gov.cn", False),
        ("https://pj.jzjrb.gov.cn/?x=1", False),
        ("https://pj.jzjrb.gov.cn:99999", False),
        ("https://pj jzjrb.gov.cn", False),
    ],
)
def test_public_base_url_is_checked(app, client, login, make, world, public_base, setting, usable):
    public_base(setting)
    with app.test_request_context():
        assert (svc.public_base_url() is not None) is usable
        assert (svc.public_base_problem() is None) is usable
        assert svc.link_url("/feedback/r/abc", "http://fallback/").endswith("/feedback/r/abc")
    login(world["admin"])
    home = client.get("/").get_data(as_text=True)
    assert ('data-testid="public-base-warning"' in home) is not usable


def test_admin_home_has_no_warning_once_set(client, login, world, public_base):
    public_base("https://pj.jzjrb.gov.cn")
    login(world["admin"])
    assert 'data-testid="public-base-warning"' not in client.get("/").get_data(as_text=True)


# ------------------------------------------------------------------ the referring bureau
def test_bureau_makes_a_link_for_its_own_closed_case_from_the_case_page(
    client, login, make, world, public_base, at_host
):
    rid = new_case(make, world, status="closed")
    at_host()
    login(world["bureau"])
    case = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert 'data-testid="feedback-links"' in case  # the button on the case page
    page = _create_through_the_page(client, rid)
    url, _svg = _url_and_qr(page)
    link = db.session.scalars(select(FeedbackLink)).one()
    assert link.created_by_id == world["bureau"].id and link.advisor_id == world["advisor"].id
    # Another bureau neither sees the button nor reaches the page.
    login(world["other_bureau"])
    assert client.get(f"/referrals/{rid}").status_code == 404
    assert client.get(f"/feedback/case/{rid}").status_code == 404


def test_bureau_case_page_has_no_link_button_before_resolution(client, login, make, world):
    rid = new_case(make, world, status="in_service")
    login(world["bureau"])
    case = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert 'data-testid="feedback-links"' not in case


def test_case_page_shows_both_ratings_each_with_who_gave_it(app, client, login, make, world):
    rid = new_case(make, world, status="closed")  # the bureau confirmed with 5, "好"
    _link, token = make_link(world["office"], rid)
    assert public_post(app.test_client(), token, "3", "服务还可以").status_code == 302
    for role in ("office", "bureau", "advisor"):
        login(world[role])
        html = client.get(f"/referrals/{rid}").get_data(as_text=True)
        bureau = re.search(r'data-testid="case-satisfaction">(.*?)</dd>', html, re.S).group(1)
        firm = re.search(r'data-testid="case-firm-rating">(.*?)</dd>', html, re.S).group(1)
        assert "5 / 5" in bureau and "Confirmed by the referring bureau" in bureau
        assert "好" in bureau
        assert "3 / 5" in firm and "Rated by the firm through a feedback link" in firm
        assert "服务还可以" in firm


def test_case_page_without_a_firm_rating_shows_only_the_bureaus(client, login, make, world):
    rid = new_case(make, world, status="closed")
    make_link(world["office"], rid)  # made, not used
    login(world["office"])
    html = client.get(f"/referrals/{rid}").get_data(as_text=True)
    assert 'data-testid="case-satisfaction"' in html
    assert 'data-testid="case-firm-rating"' not in html
