"""Assignment against capacity (issue 12, point 5): the fit on a stated 100-point scale, the
advisor picker's load against capacity on the case page and the inbox, the confirmation needed
to assign past capacity (web forms), the API left permissive, and the suggestion panel folding
away once the case has an advisor."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from advisors.audit import acting_as
from advisors.services import matching
from advisors.services import referrals as svc
from advisors.services.users import update_advisor_profile
from models import AdvisorProfile, Enterprise, Referral, db
from tests.conftest import csrf_from


# ------------------------------------------------------------------ helpers
def item(make, **values) -> dict:
    data = {
        "credit_code": make.credit_code(),
        "name": f"江州容量测试{make.n()}有限公司",
        "industry": "industry",
        "needs": ["financing"],
        "amount_wan": "100",
    }
    data.update(values)
    return data


def refer(bureau, make, n=1, **values) -> list[int]:
    with acting_as(bureau):
        results = svc.submit(bureau, [item(make, **values) for _ in range(n)], source="form")
    db.session.commit()
    assert all(r.status == "created" for r in results), [r.errors for r in results]
    return [r.referral_id for r in results]


def assign(office, ids, advisor) -> None:
    with acting_as(office):
        svc.assign(office, list(ids), advisor.username)
    db.session.commit()


def profile(user, capacity=10, specialties=(), townships=(), accepting=True) -> None:
    with acting_as(label="test"):
        update_advisor_profile(
            db.session.get(AdvisorProfile, user.id),
            title=None,
            capacity=capacity,
            accepting=accepting,
            specialties=list(specialties),
            township_ids=[t.id for t in townships],
        )
    db.session.commit()


def text_of(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def post(client, url, data, page="/referrals/"):
    body = dict(data)
    body["csrf_token"] = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data=body)


def advisor_of(rid):
    db.session.expire_all()
    return db.session.get(Referral, rid).advisor_id


@pytest.fixture
def people(make):
    bank = make.org("bank", code="ABC", name="中国农业银行江州分行")
    bank.short_name = "农行"
    db.session.commit()
    zhang = make.user("advisor", org=bank, username="zhangwei")
    zhang.display_name = "张伟"
    li = make.user("advisor", org=make.org("insurer", code="PIC"), username="lina")
    li.display_name = "李娜"
    db.session.commit()
    return {
        "bureau": make.user("bureau", org=make.org("bureau", code="GXJ")),
        "office": make.user("finance_office"),
        "zhang": zhang,
        "li": li,
    }


# ------------------------------------------------------------------ the fit's scale
def test_the_fit_parts_add_up_to_100():
    assert sum(matching.POINTS.values()) == matching.SCALE == 100
    assert matching.POINTS == {"industry": 38, "township": 29, "capacity": 19, "institution": 14}
    # Proportional to the weights, whatever they are.
    assert sum(matching._shares({"a": 1, "b": 1, "c": 1}, 100).values()) == 100


def test_a_perfect_fit_is_100_and_a_full_advisor_loses_the_capacity_points(make, people):
    town = make.township("临江镇")
    profile(people["zhang"], capacity=10, specialties=["industry"], townships=[town])
    profile(people["li"], capacity=1, specialties=["industry"], townships=[town])
    other = refer(people["bureau"], make)
    assign(people["office"], other, people["li"])  # li is now full (1 of 1)
    [rid] = refer(people["bureau"], make, township=town)
    referral = db.session.get(Referral, rid)
    firm = db.session.get(Enterprise, referral.enterprise_id)
    best, full = matching.suggest(referral, firm)
    assert best.advisor.username == "zhangwei"
    assert best.score == 100
    assert best.parts == {"industry": 38, "township": 29, "capacity": 19, "institution": 14}
    assert full.advisor.username == "lina" and full.full
    # industry 38 + township 29 - capacity 19 (insurer, financing need: no institution points)
    assert full.score == 38 + 29 - 19
    assert all(0 <= s.score <= 100 for s in (best, full))


def test_the_fit_never_goes_below_zero(make, people):
    profile(people["li"], capacity=0)
    [rid] = refer(people["bureau"], make)
    referral = db.session.get(Referral, rid)
    firm = db.session.get(Enterprise, referral.enterprise_id)
    [s] = [s for s in matching.suggest(referral, firm) if s.advisor.username == "lina"]
    assert s.score == 0 and s.parts["capacity"] == -19


def test_suggest_runs_a_fixed_number_of_queries(make, people, count_queries):
    [rid] = refer(people["bureau"], make)
    referral = db.session.get(Referral, rid)
    firm = db.session.get(Enterprise, referral.enterprise_id)

    def count(**kwargs):
        db.session.expire_all()
        with count_queries() as q:
            matching.suggest(referral, firm, **kwargs)
        return q.count

    few = count()
    town = make.township()
    for i in range(6):
        user = make.user("advisor", org=make.org("bank"))
        profile(user, specialties=["industry", "retail"], townships=[town])
        assign(people["office"], refer(people["bureau"], make, n=i % 3 + 1), user)
    assert count() == few
    # Given the loads (as the case page does, from the picker's query), one query fewer.
    assert count(loads={}) == few - 1


# ------------------------------------------------------------------ the picker
def test_options_show_load_against_capacity(make, people, count_queries):
    profile(people["zhang"], capacity=15)
    assign(people["office"], refer(people["bureau"], make, n=8), people["zhang"])
    with count_queries() as q:
        options = {o.username: o for o in matching.advisor_options()}
    assert q.count == 1
    zhang = options["zhangwei"]
    assert (zhang.load, zhang.capacity, zhang.institution) == (8, 15, "农行")
    assert matching.option_label(zhang, "full") == "张伟 · 农行 · 8/15"
    assert options["lina"].load == 0
    profile(people["zhang"], capacity=8)
    zhang = {o.username: o for o in matching.advisor_options()}["zhangwei"]
    assert zhang.full and matching.option_label(zhang, "full") == "张伟 · 农行 · 8/8 · full"


def test_options_count_loads_up_to_twice_the_largest_capacity(make, people):
    """The picker's cost follows the city's capacities, not its number of cases: loads are
    counted up to twice the largest capacity (plus one), beyond which they show as "N+"."""
    profile(people["zhang"], capacity=1)
    profile(people["li"], capacity=2)
    assign(people["office"], refer(people["bureau"], make, n=7), people["zhang"])
    zhang = {o.username: o for o in matching.advisor_options()}["zhangwei"]
    assert (zhang.load, zhang.counted_up_to, zhang.load_text) == (5, 5, "5+/1")
    assert matching.option_label(zhang, "full") == "张伟 · 农行 · 5+/1 · full"
    # The check before an assignment counts exactly.
    assert matching.check_capacity("zhangwei", 1).load == 7


def test_case_page_picker_fit_scale_and_folding_panel(client, login, make, people):
    town = make.township("临江镇")
    profile(people["zhang"], capacity=15, specialties=["industry"], townships=[town])
    assign(people["office"], refer(people["bureau"], make, n=8), people["zhang"])
    [rid] = refer(people["bureau"], make, township=town)
    login(people["office"])
    page = text_of(client.get(f"/referrals/{rid}"))
    assert re.search(r'<option selected value="zhangwei">张伟 · 农行 · 8/15</option>', page)
    assert "Each advisor shows open cases / capacity." in page
    scale = page.split('data-testid="fit-scale"')[1].split("</p>")[0]
    assert "Fit out of 100:" in scale
    assert "industry 38 + township 29 + spare capacity 19 + institution type 14" in scale
    first = page.split('data-advisor="zhangwei"')[1].split("</li>")[0]
    # 38 + 29 + round(19 * 7/15) + 14
    assert 'data-fit="90"' in page and "fit 90 / 100" in first
    # Unassigned: the suggestions are open; no "assign anyway" box until it is needed.
    panel = page.split('data-testid="suggestions-panel"')[1].split(">")[0]
    assert " open" in panel
    assert 'data-testid="assign-anyway"' not in page

    assign(people["office"], [rid], people["li"])
    page = text_of(client.get(f"/referrals/{rid}"))
    panel = page.split('data-testid="suggestions-panel"')[1].split(">")[0]
    assert " open" not in panel  # folded away once assigned
    assert 'data-advisor="zhangwei"' in page  # still there, one tap away


def test_assigning_past_capacity_needs_assign_anyway(client, login, make, people):
    profile(people["zhang"], capacity=2)
    assign(people["office"], refer(people["bureau"], make, n=2), people["zhang"])
    [rid] = refer(people["bureau"], make)
    login(people["office"])
    version = db.session.get(Referral, rid).version
    url = f"/referrals/{rid}/assign"
    data = {"advisor": "zhangwei", "note": "", "version": version}
    r = post(client, url, data, page=f"/referrals/{rid}")
    assert r.status_code == 422
    page = text_of(r)
    assert (
        "张伟 has 2 open cases and a capacity of 2: assigning 1 more makes 3, past capacity."
        in page
    )
    assert 'data-testid="assign-anyway"' in page and 'name="force"' in page
    assert advisor_of(rid) is None
    # Under capacity no confirmation is needed (li has no cases, capacity 15 by default).
    r = post(client, url, {"advisor": "lina", "version": version}, page=f"/referrals/{rid}")
    assert r.status_code == 302 and advisor_of(rid) == people["li"].id
    # Past capacity, confirmed.
    version = db.session.get(Referral, rid).version
    r = post(client, url, {**data, "version": version, "force": "y"}, page=f"/referrals/{rid}")
    assert r.status_code == 302
    assert advisor_of(rid) == people["zhang"].id


def test_bulk_assign_past_capacity_needs_assign_anyway(client, login, make, people):
    profile(people["zhang"], capacity=3)
    assign(people["office"], refer(people["bureau"], make, n=2), people["zhang"])
    ids = refer(people["bureau"], make, n=2)
    login(people["office"])
    page = text_of(client.get("/referrals/"))
    assert "张伟 · 农行 · 2/3" in page and "李娜" in page
    r = post(client, "/referrals/assign", {"advisor": "zhangwei", "ids": ids})
    assert r.status_code == 422
    page = text_of(r)
    assert "assigning 2 more makes 4, past capacity" in page
    assert 'data-testid="assign-anyway"' in page
    for rid in ids:  # the selection is kept, nothing saved
        assert re.search(rf'value="{rid}" checked', page)
        assert advisor_of(rid) is None
    # One of them fits.
    r = post(client, "/referrals/assign", {"advisor": "zhangwei", "ids": ids[:1]})
    assert r.status_code == 302 and advisor_of(ids[0]) == people["zhang"].id
    r = post(client, "/referrals/assign", {"advisor": "zhangwei", "ids": ids[1:], "force": "y"})
    assert r.status_code == 302 and advisor_of(ids[1]) == people["zhang"].id


def test_check_capacity(make, people):
    profile(people["zhang"], capacity=2)
    assign(people["office"], refer(people["bureau"], make), people["zhang"])
    assert matching.check_capacity("zhangwei", 1) is None
    over = matching.check_capacity("ZhangWei", 2)
    assert (over.load, over.capacity, over.adding) == (1, 2, 2)
    assert matching.check_capacity("nobody", 5) is None


def test_the_api_stays_permissive_past_capacity(client, make, people):
    """The contract's ``POST /api/v1/referrals/<id>/assign`` assigns whatever the load: a client
    written against it never meets a new refusal. The confirmation lives in the web forms."""
    profile(people["zhang"], capacity=1)
    assign(people["office"], refer(people["bureau"], make), people["zhang"])
    [rid] = refer(people["bureau"], make)
    token = make.token(people["office"])
    r = client.post(
        f"/api/v1/referrals/{rid}/assign",
        json={"advisor": "zhangwei"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["advisor"] == "zhangwei"
