"""Townships kept by the city (list, add, rename, merge, deactivate, import) and what happens to
a township name a bureau writes that is not on the list: kept, warned, matched once. Also the
firm's master data: another bureau's push proposes, it never overwrites."""

from __future__ import annotations

import io

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from advisors.audit import acting_as
from advisors.services import referrals as referral_service
from advisors.services import townships as service
from models import (
    AdvisorProfile,
    AuditLog,
    Enterprise,
    Notification,
    Referral,
    ReferralBureau,
    Township,
    TownshipAlias,
    db,
)


@pytest.fixture
def office(make):
    return make.user("finance_office")


@pytest.fixture
def bureau(make):
    return make.user("bureau", org=make.org("bureau", code="GXJ"))


@pytest.fixture
def towns(office):
    with acting_as(office):
        made = {
            name: service.create(office, code, name)
            for code, name in (("330102001", "城关镇"), ("330102002", "东城街道"))
        }
    db.session.commit()
    return made


def _push(user, *items):
    with acting_as(user), force_locale("en"):  # messages asserted in English
        results = referral_service.submit(user, list(items), source="api")
    db.session.commit()
    return results


def _item(make, township, **values):
    return {
        "credit_code": make.credit_code(),
        "name": f"测试企业{make.n()}有限公司",
        "industry": "retail",
        "township": township,
        "needs": ["policy"],
        **values,
    }


def _text(r) -> str:
    return r.get_data(as_text=True)


# ------------------------------------------------------------------ matching
def test_only_exact_names_codes_and_mapped_texts_match(make, bureau, towns):
    results = _push(
        bureau,
        _item(make, "城关镇"),
        _item(make, "330102002"),
        _item(make, "城关街道"),  # near miss: suggested
        _item(make, "城关镇 "),  # trailing space: suggested
        _item(make, "３３０１０２００１"),  # full-width digits: suggested
        _item(make, "青山村"),  # nothing close
    )
    assert [r.status for r in results] == ["created"] * 6
    assert [bool(r.warnings) for r in results] == [False, False, True, True, True, True]
    for r in results[2:5]:
        assert "Did you mean: 城关镇" in r.warnings["township"]
    assert "Did you mean" not in results[5].warnings["township"]
    firms = {f.name: f for f in db.session.execute(select(Enterprise)).scalars()}
    kept = [f for f in firms.values() if f.township_text]
    assert sorted(f.township_text for f in kept) == sorted(
        ["城关街道", "城关镇 ", "３３０１０２００１", "青山村"]
    )
    assert all(f.township_id is None for f in kept)


def test_too_long_or_control_characters_are_refused(make, bureau, towns):
    results = _push(bureau, _item(make, "镇" * 61), _item(make, "城关\x07镇"))
    assert [r.status for r in results] == ["rejected", "rejected"]
    assert all("township" in r.errors for r in results)


def test_mapping_a_text_moves_its_firms_and_matches_later_pushes(make, office, bureau, towns):
    _push(bureau, _item(make, "城关街道"), _item(make, "城关街道"))
    assert service.unmatched_count() == 2
    [row] = service.unmatched()
    assert (row.text, row.firms, [t.name for t in row.suggestions]) == ("城关街道", 2, ["城关镇"])
    with acting_as(office):
        moved = service.map_text(office, "城关街道", towns["城关镇"])
    db.session.commit()
    assert moved == 2 and service.unmatched_count() == 0
    [later] = _push(bureau, _item(make, "城关街道"))
    assert later.warnings == {}
    firm = db.session.execute(
        select(Enterprise).join(Referral).where(Referral.id == later.referral_id)
    ).scalar_one()
    assert firm.township_id == towns["城关镇"].id and firm.township_text is None
    audited = db.session.execute(
        select(AuditLog.table_name, func.count())
        .where(AuditLog.action == "update", AuditLog.table_name == "enterprise")
        .group_by(AuditLog.table_name)
    ).all()
    assert audited == [("enterprise", 2)]
    assert db.session.scalar(select(func.count()).select_from(TownshipAlias)) == 1


def test_adding_a_township_adopts_firms_kept_with_its_name(make, office, bureau, towns):
    _push(bureau, _item(make, "西湖乡"))
    with acting_as(office):
        town = service.create(office, "330102009", "西湖乡")
    db.session.commit()
    assert db.session.scalar(select(Enterprise.township_id)) == town.id


def test_rename_keeps_the_old_name_and_merge_moves_everything(make, office, bureau, towns):
    old, other = towns["城关镇"], towns["东城街道"]
    advisor = make.user("advisor", org=make.org("bank"))
    profile = db.session.get(AdvisorProfile, advisor.id)
    if profile is None:
        profile = AdvisorProfile(user_id=advisor.id)
        db.session.add(profile)
    profile.townships = [old]
    db.session.commit()
    _push(bureau, _item(make, "城关镇"))
    with acting_as(office):
        service.rename(office, old, "城关街道")
    db.session.commit()
    [r] = _push(bureau, _item(make, "城关镇"))  # the old name still means it
    assert r.warnings == {}
    with acting_as(office):
        service.merge(office, old, other)
    db.session.commit()
    db.session.expire_all()
    merged = db.session.get(Township, old.id)
    assert not merged.active and merged.merged_into_id == other.id
    assert set(db.session.execute(select(Enterprise.township_id)).scalars()) == {other.id}
    assert [t.id for t in db.session.get(AdvisorProfile, advisor.id).townships] == [other.id]
    [r] = _push(bureau, _item(make, "城关街道"))  # the merged township's names mean the other
    assert r.warnings == {}
    assert (
        db.session.scalar(
            select(Enterprise.township_id).join(Referral).where(Referral.id == r.referral_id)
        )
        == other.id
    )


def test_a_deactivated_township_is_no_longer_matched(make, office, bureau, towns):
    with acting_as(office):
        service.set_active(office, towns["东城街道"], False)
    db.session.commit()
    [r] = _push(bureau, _item(make, "东城街道"))
    assert r.status == "created" and "东城街道" in r.warnings["township"]


def test_service_refuses_duplicates_and_bad_codes(office, towns):
    from advisors.errors import ValidationFailed

    for code, name, field in (
        ("330102001", "新镇", "code"),
        ("330102099", "城关镇", "name"),
        ("33-01", "新镇", "code"),
        ("330102099", "", "name"),
    ):
        with pytest.raises(ValidationFailed) as caught, acting_as(office):
            service.create(office, code, name)
        assert field in caught.value.fields
        db.session.rollback()


# ------------------------------------------------------------------ pages
def test_pages_add_import_rename_merge_and_deactivate(client, login, auth, office, towns):
    login(office)
    page = _text(client.get("/townships/"))
    assert "城关镇" in page and "330102001" in page
    r = client.post(
        "/townships/new",
        data={"csrf_token": auth.csrf("/townships/"), "code": "330102001", "name": "x"},
    )
    assert r.status_code == 422 and "already exists" in _text(r)
    r = client.post(
        "/townships/new",
        data={"csrf_token": auth.csrf("/townships/"), "code": "330102005", "name": "南山镇"},
    )
    assert r.status_code == 302
    csv = "code,name\n330102006,北湖街道\n330102006,又一个\n330102007,\n".encode()
    r = client.post(
        "/townships/import",
        data={"csrf_token": auth.csrf("/townships/"), "file": (io.BytesIO(csv), "t.csv")},
        content_type="multipart/form-data",
    )
    text = _text(r)
    assert r.status_code == 422
    assert "Added: 1" in text and "Rows not saved: 2" in text
    assert "appears earlier in this file (row 2)" in text and "Name is required." in text
    south = db.session.execute(select(Township).where(Township.code == "330102005")).scalar_one()
    r = client.post(
        f"/townships/{south.id}/rename",
        data={"csrf_token": auth.csrf(f"/townships/{south.id}"), "name": "南山街道"},
    )
    assert r.status_code == 302
    r = client.post(
        f"/townships/{south.id}/merge",
        data={"csrf_token": auth.csrf(f"/townships/{south.id}"), "target": towns["城关镇"].id},
    )
    assert r.status_code == 302
    edit = _text(client.get(f"/townships/{towns['城关镇'].id}"))
    assert "南山街道" in edit and "南山镇" in edit  # both names now mean 城关镇
    r = client.post(
        f"/townships/{towns['东城街道'].id}/active",
        data={"csrf_token": auth.csrf(f"/townships/{towns['东城街道'].id}"), "active": "0"},
    )
    assert r.status_code == 302
    db.session.expire_all()
    assert not db.session.get(Township, towns["东城街道"].id).active
    audited = set(
        db.session.execute(
            select(AuditLog.table_name).where(AuditLog.table_name.like("township%"))
        ).scalars()
    )
    assert audited == {"township", "township_alias"}


@pytest.mark.parametrize("role", ["bureau", "advisor", "pboc"])
def test_other_roles_do_not_keep_the_list(client, login, make, role, towns):
    org = {"bureau": "bureau", "advisor": "bank", "pboc": "pboc"}[role]
    login(make.user(role, org=make.org(org)))
    assert client.get("/townships/").status_code == 403
    assert client.get("/townships/unmatched").status_code == 403


def test_office_sees_unmatched_on_case_and_in_filter(client, login, make, office, bureau, towns):
    [kept] = _push(bureau, _item(make, "城关街道"))
    [listed] = _push(bureau, _item(make, "城关镇"))
    login(office)
    case = _text(client.get(f"/referrals/{kept.referral_id}"))
    assert "Township not matched" in case and "城关街道" in case
    inbox = _text(client.get("/referrals/?township=unmatched&status="))
    assert f'id="referral-{kept.referral_id}"' in inbox
    assert f'id="referral-{listed.referral_id}"' not in inbox


def test_suggestions_say_township_unknown(make, office, bureau, towns):
    from advisors.services.matching import suggest

    advisor = make.user("advisor", org=make.org("bank"))
    profile = db.session.get(AdvisorProfile, advisor.id) or AdvisorProfile(user_id=advisor.id)
    profile.townships = [towns["城关镇"]]
    db.session.add(profile)
    db.session.commit()
    [kept] = _push(bureau, _item(make, "城关街道"))
    referral = db.session.get(Referral, kept.referral_id)
    firm = db.session.get(Enterprise, referral.enterprise_id)
    with force_locale("en"):
        [s] = suggest(referral, firm)
    assert any("Township unknown" in reason for reason in s.reasons)


# ------------------------------------------------------------------ firm master data
def test_another_bureau_proposes_and_the_office_accepts(client, login, auth, make, office, towns):
    first = make.user("bureau", org=make.org("bureau", code="SWJ"))
    second = make.user("bureau", org=make.org("bureau", code="NYJ"))
    code = make.credit_code()
    [a] = _push(first, _item(make, "城关镇", credit_code=code, name="原名称有限公司"))
    [b] = _push(
        second,
        _item(
            make,
            "东城街道",
            credit_code=code,
            name="他局写的名称有限公司",
            contact_phone="13800000000",
        ),
    )
    assert b.status == "merged" and b.referral_id == a.referral_id
    firm = db.session.execute(select(Enterprise)).scalar_one()
    # An empty field is filled; what the first bureau registered is not overwritten.
    assert firm.name == "原名称有限公司" and firm.township_id == towns["城关镇"].id
    assert firm.contact_phone == "13800000000"
    link = db.session.get(ReferralBureau, (a.referral_id, second.org_id))
    assert set(link.proposed) == {"name", "township"}
    # The first bureau hears of the co-referral; the office hears once.
    assert (
        db.session.scalar(
            select(func.count()).where(
                Notification.user_id == first.id, Notification.kind == "co_referred"
            )
        )
        == 1
    )
    login(office)
    page = _text(client.get(f"/referrals/{a.referral_id}"))
    assert "他局写的名称有限公司" in page and "Accept" in page
    r = client.post(
        f"/referrals/{a.referral_id}/proposals",
        data={
            "csrf_token": auth.csrf(f"/referrals/{a.referral_id}"),
            "bureau": "NYJ",
            "field": "name",
            "decision": "accept",
        },
    )
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.execute(select(Enterprise)).scalar_one().name == "他局写的名称有限公司"
    assert set(db.session.get(ReferralBureau, (a.referral_id, second.org_id)).proposed) == {
        "township"
    }
    # Settled once: a second click is a conflict, not a 500.
    r = client.post(
        f"/referrals/{a.referral_id}/proposals",
        data={
            "csrf_token": auth.csrf(f"/referrals/{a.referral_id}"),
            "bureau": "NYJ",
            "field": "name",
            "decision": "accept",
        },
    )
    assert r.status_code == 409
    login(first)
    page = _text(client.get(f"/referrals/{a.referral_id}"))
    assert "Co-referral" in page  # who co-referred, and when
    assert 'data-proposal="township"' not in page and "Accept" not in page


def test_the_registering_bureau_updates_its_own_firm(make, bureau, towns):
    code = make.credit_code()
    _push(bureau, _item(make, "城关镇", credit_code=code, name="旧名称有限公司"))
    [again] = _push(bureau, _item(make, "东城街道", credit_code=code, name="新名称有限公司"))
    assert again.status == "duplicate"
    firm = db.session.execute(select(Enterprise)).scalar_one()
    assert firm.name == "新名称有限公司" and firm.township_id == towns["东城街道"].id
