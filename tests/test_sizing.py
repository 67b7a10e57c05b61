"""Unit tests for advisors.sizing (中小企业划型标准规定, MIIT 2011 No. 300).

Every expected value below was written by hand from the table in
REFERENCE.md section 3; nothing is derived from the module's own table.
Money is given as strings and turned into Decimal (万元).
"""

from decimal import Decimal

import pytest

from advisors.sizing import INDUSTRIES, SIZE_CLASSES, classify, measures_for


def dec(value):
    return None if value is None else Decimal(value)


# (industry, employees, revenue_wan, assets_wan, expected)
# For each row: the small, medium and large bounds exactly, and one below
# each bound on each measure.  Measures the rule does not use are None.
CASES = [
    # agriculture: Y; cap 20000, medium 500, small 50
    ("agriculture", None, "0", None, "micro"),
    ("agriculture", None, "49", None, "micro"),
    ("agriculture", None, "49.99", None, "micro"),
    ("agriculture", None, "50", None, "small"),
    ("agriculture", None, "499.99", None, "small"),
    ("agriculture", None, "500", None, "medium"),
    ("agriculture", None, "19999.99", None, "medium"),
    ("agriculture", None, "20000", None, "large"),
    # industry: X, Y; cap 1000/40000, medium 300/2000, small 20/300
    ("industry", 0, "0", None, "micro"),
    ("industry", 19, "300", None, "micro"),
    ("industry", 20, "299.99", None, "micro"),
    ("industry", 20, "300", None, "small"),
    ("industry", 299, "2000", None, "small"),
    ("industry", 300, "1999.99", None, "small"),
    ("industry", 300, "2000", None, "medium"),
    ("industry", 999, "40000", None, "medium"),
    ("industry", 1000, "39999.99", None, "medium"),
    ("industry", 1000, "40000", None, "large"),
    ("industry", 5000, "100", None, "micro"),
    ("industry", 10, "1000000", None, "micro"),
    # construction: Y, Z; cap 80000/80000, medium 6000/5000, small 300/300
    ("construction", None, "0", "0", "micro"),
    ("construction", None, "299.99", "300", "micro"),
    ("construction", None, "300", "299.99", "micro"),
    ("construction", None, "300", "300", "small"),
    ("construction", None, "5999.99", "5000", "small"),
    ("construction", None, "6000", "4999.99", "small"),
    ("construction", None, "6000", "5000", "medium"),
    ("construction", None, "79999.99", "80000", "medium"),
    ("construction", None, "80000", "79999.99", "medium"),
    ("construction", None, "80000", "80000", "large"),
    # wholesale: X, Y; cap 200/40000, medium 20/5000, small 5/1000
    ("wholesale", 0, "0", None, "micro"),
    ("wholesale", 4, "1000", None, "micro"),
    ("wholesale", 5, "999.99", None, "micro"),
    ("wholesale", 5, "1000", None, "small"),
    ("wholesale", 19, "5000", None, "small"),
    ("wholesale", 20, "4999.99", None, "small"),
    ("wholesale", 20, "5000", None, "medium"),
    ("wholesale", 199, "40000", None, "medium"),
    ("wholesale", 200, "39999.99", None, "medium"),
    ("wholesale", 200, "40000", None, "large"),
    # retail: X, Y; cap 300/20000, medium 50/500, small 10/100
    ("retail", 0, "0", None, "micro"),
    ("retail", 9, "100", None, "micro"),
    ("retail", 10, "99.99", None, "micro"),
    ("retail", 10, "100", None, "small"),
    ("retail", 49, "500", None, "small"),
    ("retail", 50, "499.99", None, "small"),
    ("retail", 50, "500", None, "medium"),
    ("retail", 299, "20000", None, "medium"),
    ("retail", 300, "19999.99", None, "medium"),
    ("retail", 300, "20000", None, "large"),
    # transport: X, Y; cap 1000/30000, medium 300/3000, small 20/200
    ("transport", 0, "0", None, "micro"),
    ("transport", 19, "200", None, "micro"),
    ("transport", 20, "199.99", None, "micro"),
    ("transport", 20, "200", None, "small"),
    ("transport", 299, "3000", None, "small"),
    ("transport", 300, "2999.99", None, "small"),
    ("transport", 300, "3000", None, "medium"),
    ("transport", 999, "30000", None, "medium"),
    ("transport", 1000, "29999.99", None, "medium"),
    ("transport", 1000, "30000", None, "large"),
    # warehousing: X, Y; cap 200/30000, medium 100/1000, small 20/100
    ("warehousing", 0, "0", None, "micro"),
    ("warehousing", 19, "100", None, "micro"),
    ("warehousing", 20, "99.99", None, "micro"),
    ("warehousing", 20, "100", None, "small"),
    ("warehousing", 99, "1000", None, "small"),
    ("warehousing", 100, "999.99", None, "small"),
    ("warehousing", 100, "1000", None, "medium"),
    ("warehousing", 199, "30000", None, "medium"),
    ("warehousing", 200, "29999.99", None, "medium"),
    ("warehousing", 200, "30000", None, "large"),
    # postal: X, Y; cap 1000/30000, medium 300/2000, small 20/100
    ("postal", 0, "0", None, "micro"),
    ("postal", 19, "100", None, "micro"),
    ("postal", 20, "99.99", None, "micro"),
    ("postal", 20, "100", None, "small"),
    ("postal", 299, "2000", None, "small"),
    ("postal", 300, "1999.99", None, "small"),
    ("postal", 300, "2000", None, "medium"),
    ("postal", 999, "30000", None, "medium"),
    ("postal", 1000, "29999.99", None, "medium"),
    ("postal", 1000, "30000", None, "large"),
    # accommodation: X, Y; cap 300/10000, medium 100/2000, small 10/100
    ("accommodation", 0, "0", None, "micro"),
    ("accommodation", 9, "100", None, "micro"),
    ("accommodation", 10, "99.99", None, "micro"),
    ("accommodation", 10, "100", None, "small"),
    ("accommodation", 99, "2000", None, "small"),
    ("accommodation", 100, "1999.99", None, "small"),
    ("accommodation", 100, "2000", None, "medium"),
    ("accommodation", 299, "10000", None, "medium"),
    ("accommodation", 300, "9999.99", None, "medium"),
    ("accommodation", 300, "10000", None, "large"),
    # catering: X, Y; cap 300/10000, medium 100/2000, small 10/100
    ("catering", 0, "0", None, "micro"),
    ("catering", 9, "100", None, "micro"),
    ("catering", 10, "99.99", None, "micro"),
    ("catering", 10, "100", None, "small"),
    ("catering", 99, "2000", None, "small"),
    ("catering", 100, "1999.99", None, "small"),
    ("catering", 100, "2000", None, "medium"),
    ("catering", 299, "10000", None, "medium"),
    ("catering", 300, "9999.99", None, "medium"),
    ("catering", 300, "10000", None, "large"),
    # information transmission: X, Y; cap 2000/100000, medium 100/1000, small 10/100
    ("information_transmission", 0, "0", None, "micro"),
    ("information_transmission", 9, "100", None, "micro"),
    ("information_transmission", 10, "99.99", None, "micro"),
    ("information_transmission", 10, "100", None, "small"),
    ("information_transmission", 99, "1000", None, "small"),
    ("information_transmission", 100, "999.99", None, "small"),
    ("information_transmission", 100, "1000", None, "medium"),
    ("information_transmission", 1999, "100000", None, "medium"),
    ("information_transmission", 2000, "99999.99", None, "medium"),
    ("information_transmission", 2000, "100000", None, "large"),
    # software and IT services: X, Y; cap 300/10000, medium 100/1000, small 10/50
    ("software_it", 0, "0", None, "micro"),
    ("software_it", 9, "50", None, "micro"),
    ("software_it", 10, "49.99", None, "micro"),
    ("software_it", 10, "50", None, "small"),
    ("software_it", 99, "1000", None, "small"),
    ("software_it", 100, "999.99", None, "small"),
    ("software_it", 100, "1000", None, "medium"),
    ("software_it", 299, "10000", None, "medium"),
    ("software_it", 300, "9999.99", None, "medium"),
    ("software_it", 300, "10000", None, "large"),
    # real-estate development: Y, Z; cap 200000/10000, medium 1000/5000, small 100/2000
    ("real_estate", None, "0", "0", "micro"),
    ("real_estate", None, "99.99", "2000", "micro"),
    ("real_estate", None, "100", "1999.99", "micro"),
    ("real_estate", None, "100", "2000", "small"),
    ("real_estate", None, "999.99", "5000", "small"),
    ("real_estate", None, "1000", "4999.99", "small"),
    ("real_estate", None, "1000", "5000", "medium"),
    ("real_estate", None, "199999.99", "10000", "medium"),
    ("real_estate", None, "200000", "9999.99", "medium"),
    ("real_estate", None, "200000", "10000", "large"),
    # property management: X, Y; cap 1000/5000, medium 300/1000, small 100/500
    ("property_management", 0, "0", None, "micro"),
    ("property_management", 99, "500", None, "micro"),
    ("property_management", 100, "499.99", None, "micro"),
    ("property_management", 100, "500", None, "small"),
    ("property_management", 299, "1000", None, "small"),
    ("property_management", 300, "999.99", None, "small"),
    ("property_management", 300, "1000", None, "medium"),
    ("property_management", 999, "5000", None, "medium"),
    ("property_management", 1000, "4999.99", None, "medium"),
    ("property_management", 1000, "5000", None, "large"),
    # leasing and business services: X, Z; cap 300/120000, medium 100/8000, small 10/100
    ("leasing_business", 0, None, "0", "micro"),
    ("leasing_business", 9, None, "100", "micro"),
    ("leasing_business", 10, None, "99.99", "micro"),
    ("leasing_business", 10, None, "100", "small"),
    ("leasing_business", 99, None, "8000", "small"),
    ("leasing_business", 100, None, "7999.99", "small"),
    ("leasing_business", 100, None, "8000", "medium"),
    ("leasing_business", 299, None, "120000", "medium"),
    ("leasing_business", 300, None, "119999.99", "medium"),
    ("leasing_business", 300, None, "120000", "large"),
    # other, not listed: X; cap 300, medium 100, small 10
    ("other", 0, None, None, "micro"),
    ("other", 9, None, None, "micro"),
    ("other", 10, None, None, "small"),
    ("other", 99, None, None, "small"),
    ("other", 100, None, None, "medium"),
    ("other", 299, None, None, "medium"),
    ("other", 300, None, None, "large"),
    ("other", 100000, None, None, "large"),
]

# Which figures each rule needs, by hand from the table.
NEEDED = {
    "agriculture": ("revenue_wan",),
    "industry": ("employees", "revenue_wan"),
    "construction": ("revenue_wan", "assets_wan"),
    "wholesale": ("employees", "revenue_wan"),
    "retail": ("employees", "revenue_wan"),
    "transport": ("employees", "revenue_wan"),
    "warehousing": ("employees", "revenue_wan"),
    "postal": ("employees", "revenue_wan"),
    "accommodation": ("employees", "revenue_wan"),
    "catering": ("employees", "revenue_wan"),
    "information_transmission": ("employees", "revenue_wan"),
    "software_it": ("employees", "revenue_wan"),
    "real_estate": ("revenue_wan", "assets_wan"),
    "property_management": ("employees", "revenue_wan"),
    "leasing_business": ("employees", "assets_wan"),
    "other": ("employees",),
}

# Figures big enough to be "large" in every industry.
HUGE = {"employees": 10**6, "revenue_wan": Decimal(10**7), "assets_wan": Decimal(10**7)}


def _id(case):
    industry, x, y, z, expected = case
    return f"{industry}-X{x}-Y{y}-Z{z}-{expected}"


@pytest.mark.parametrize(("industry", "x", "y", "z", "expected"), CASES, ids=map(_id, CASES))
def test_boundaries(industry, x, y, z, expected):
    assert classify(industry, x, dec(y), dec(z)) == expected


@pytest.mark.parametrize(("industry", "x", "y", "z", "expected"), CASES, ids=map(_id, CASES))
def test_unused_figures_do_not_matter(industry, x, y, z, expected):
    # Fill measures the rule ignores with extreme values: the class must not move.
    x = HUGE["employees"] if x is None else x
    y = HUGE["revenue_wan"] if y is None else dec(y)
    z = HUGE["assets_wan"] if z is None else dec(z)
    assert classify(industry, x, y, z) == expected
    x0 = 0 if "employees" not in NEEDED[industry] else x
    y0 = Decimal(0) if "revenue_wan" not in NEEDED[industry] else y
    z0 = Decimal(0) if "assets_wan" not in NEEDED[industry] else z
    assert classify(industry, x0, y0, z0) == expected


def test_every_industry_has_boundary_cases():
    covered = {case[0] for case in CASES}
    assert covered == set(NEEDED)
    for industry in NEEDED:
        classes = {case[4] for case in CASES if case[0] == industry}
        assert classes == {"micro", "small", "medium", "large"}, industry


def test_industry_keys_and_labels():
    assert tuple(INDUSTRIES) == (
        "agriculture",
        "industry",
        "construction",
        "wholesale",
        "retail",
        "transport",
        "warehousing",
        "postal",
        "accommodation",
        "catering",
        "information_transmission",
        "software_it",
        "real_estate",
        "property_management",
        "leasing_business",
        "other",
    )
    assert INDUSTRIES["agriculture"] == "Agriculture, forestry, animal husbandry and fishery"
    assert all(isinstance(label, str) and label for label in INDUSTRIES.values())
    assert len(set(INDUSTRIES.values())) == 16


def test_size_classes():
    assert SIZE_CLASSES == ("micro", "small", "medium", "large", "unknown")


@pytest.mark.parametrize(("industry", "needed"), NEEDED.items())
def test_measures_for(industry, needed):
    assert measures_for(industry) == needed


@pytest.mark.parametrize(
    ("industry", "missing"),
    [(industry, measure) for industry, needed in NEEDED.items() for measure in needed],
)
def test_missing_needed_figure_is_unknown(industry, missing):
    figures = dict(HUGE)
    figures[missing] = None
    assert classify(industry, **figures) == "unknown"


@pytest.mark.parametrize("industry", NEEDED)
def test_all_missing_is_unknown(industry):
    assert classify(industry, None, None, None) == "unknown"


@pytest.mark.parametrize("industry", NEEDED)
def test_figures_not_needed_may_be_none(industry):
    figures = {m: (HUGE[m] if m in NEEDED[industry] else None) for m in HUGE}
    assert classify(industry, **figures) == "large"


def test_int_money_accepted():
    assert classify("industry", 300, 2000, None) == "medium"
    assert classify("construction", None, 6000, 5000) == "medium"


@pytest.mark.parametrize("industry", ["", "Industry", "manufacturing", None])
def test_unknown_industry(industry):
    with pytest.raises(ValueError, match="unknown industry"):
        classify(industry, 10, Decimal(10), Decimal(10))
    with pytest.raises(ValueError, match="unknown industry"):
        measures_for(industry)


@pytest.mark.parametrize(
    "figures",
    [
        {"employees": -1, "revenue_wan": Decimal(10), "assets_wan": None},
        {"employees": 10, "revenue_wan": Decimal("-0.01"), "assets_wan": None},
        {"employees": 10, "revenue_wan": -5, "assets_wan": None},
        {"employees": 10, "revenue_wan": Decimal(10), "assets_wan": Decimal(-1)},
        {"employees": 10, "revenue_wan": Decimal("NaN"), "assets_wan": None},
        {"employees": 10, "revenue_wan": Decimal("Infinity"), "assets_wan": None},
    ],
)
def test_bad_values_rejected(figures):
    with pytest.raises(ValueError, match=r"negative|finite"):
        classify("industry", **figures)


@pytest.mark.parametrize(
    "figures",
    [
        {"employees": 10, "revenue_wan": 100.0, "assets_wan": None},
        {"employees": 10, "revenue_wan": Decimal(100), "assets_wan": 100.0},
        {"employees": 10.0, "revenue_wan": Decimal(100), "assets_wan": None},
        {"employees": True, "revenue_wan": Decimal(100), "assets_wan": None},
        {"employees": 10, "revenue_wan": "100", "assets_wan": None},
        {"employees": Decimal(10), "revenue_wan": Decimal(100), "assets_wan": None},
    ],
)
def test_wrong_types_rejected(figures):
    with pytest.raises(TypeError):
        classify("industry", **figures)
