"""The scoring rules as pure functions, the rule registry, the rubric and competition ranks.
No database and no application: everything here must run without an app context."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext

import pytest

from advisors.scoring import rubric as rubric_mod
from advisors.scoring import rules
from advisors.scoring.rubric import (
    DEFAULT_RUBRIC,
    METRIC_KEYS,
    MetricSpec,
    RubricFormatError,
    RubricSpec,
    best_value,
    best_values,
    load_rubric,
    period_factor,
    scale_for_period,
    score_row,
    total,
    validate_rubric,
)
from advisors.scoring.rules import (
    ParamsError,
    ScoreContext,
    UnknownRuleError,
    competition_ranks,
    get,
    names,
    register,
    validate_params,
)

D = Decimal


def ctx(weight="10", cap=None, best=None):
    return ScoreContext(weight=D(weight), cap=cap, best=best)


def score(rule, raw, params, **kw):
    return get(rule)(raw, params, ctx(**kw))


# --- the registry ------------------------------------------------------------------------------


def test_registry_lists_the_released_rules():
    assert {"target_v1", "ratio_target_v1", "tiers_v1", "relative_best_v1"} <= set(names())
    assert names() == sorted(names())
    assert get("target_v1").name == "target_v1"


def test_unknown_rule_name():
    with pytest.raises(UnknownRuleError) as exc:
        get("target_v9")
    assert isinstance(exc.value, KeyError)
    assert "target_v9" in str(exc.value) and "target_v1" in str(exc.value)
    with pytest.raises(UnknownRuleError):
        get(None)
    assert set(validate_params("nope", {})) == {"rule"}


def test_a_released_name_cannot_be_registered_again():
    with pytest.raises(ValueError, match="already registered"):

        @register("target_v1")
        def other(raw, params, ctx):  # pragma: no cover
            return raw


def test_registering_a_new_rule_clamps_and_quantizes_it(monkeypatch):
    monkeypatch.setattr(rules, "_REGISTRY", dict(rules._REGISTRY))

    @register("double_v1")
    def double(raw, params, ctx):
        return raw * 2 + D("0.005")

    assert "double_v1" in names()
    assert double(D("1"), {}, ctx()) == D("2.01")  # half-up
    assert double(D("100"), {}, ctx()) == D("10.00")  # never above the weight
    assert double(D("-5"), {}, ctx()) == D("0.01")  # negative raw read as 0
    assert set(validate_params("double_v1", {"x": 1})) == {"x"}  # no parameters known


# --- target_v1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("0", "0.00"),
        ("5", "2.50"),
        ("10", "5.00"),
        ("19", "9.50"),
        ("20", "10.00"),  # met
        ("35", "10.00"),  # over: still full points
        ("-3", "0.00"),  # negative -> 0
    ],
)
def test_target(raw, expected):
    assert score("target_v1", D(raw), {"target": "20"}) == D(expected)


def test_target_with_a_floor_is_linear_from_the_floor():
    params = {"target": D("4.5"), "floor": D("3")}
    assert score("target_v1", D("3"), params, weight="20") == D("0.00")
    assert score("target_v1", D("2"), params, weight="20") == D("0.00")
    assert score("target_v1", D("3.75"), params, weight="20") == D("10.00")
    assert score("target_v1", D("4.2"), params, weight="20") == D("16.00")
    assert score("target_v1", D("4.5"), params, weight="20") == D("20.00")
    assert score("target_v1", D("5"), params, weight="20") == D("20.00")


def test_no_data_scores_zero():
    for name, params in [
        ("target_v1", {"target": 5}),
        ("ratio_target_v1", {"target": 1}),
        ("tiers_v1", {"tiers": [[0, 3]]}),
        ("relative_best_v1", {}),
    ]:
        assert score(name, None, params, best=D(5)) == D("0.00"), name
        assert score(name, 0, params, best=D(0)) == (D("3.00") if name == "tiers_v1" else 0)


def test_decimal_exactness_and_rounding_half_up():
    # 1/3 of 10 points = 3.333… -> 3.33; 2/3 -> 6.666… -> 6.67; 0.125 of 10 = 1.25 exactly
    assert score("target_v1", D(1), {"target": 3}) == D("3.33")
    assert score("target_v1", D(2), {"target": 3}) == D("6.67")
    assert score("target_v1", D("0.125"), {"target": 1}) == D("1.25")
    # a value that binary floats get wrong: 0.1 + 0.2 of 0.3 is exactly full points
    assert score("target_v1", D("0.1") + D("0.2"), {"target": "0.3"}) == D("10.00")
    # a half-cent rounds up (half-even would give 0.12)
    assert score("target_v1", D("0.125"), {"target": 1}, weight="1") == D("0.13")
    result = score("target_v1", D(7), {"target": 9})
    assert isinstance(result, Decimal) and result.as_tuple().exponent == -2


def test_results_do_not_depend_on_the_callers_decimal_context():
    expected = score("target_v1", D(2), {"target": 3})
    with localcontext() as c:
        c.prec = 3
        c.rounding = "ROUND_DOWN"
        assert score("target_v1", D(2), {"target": 3}) == expected


def test_numbers_in_other_types_are_converted_exactly():
    assert score("target_v1", 5, {"target": 20}) == D("2.50")
    assert score("target_v1", "5", {"target": "20"}) == D("2.50")
    assert score("target_v1", 0.1, {"target": 0.4}) == D("2.50")  # through repr, not binary
    with pytest.raises(ValueError):
        score("target_v1", "five", {"target": 20})
    with pytest.raises(ValueError):
        score("target_v1", True, {"target": 20})
    with pytest.raises(ValueError):
        score("target_v1", float("nan"), {"target": 20})


def test_invalid_params_raise_with_fields():
    with pytest.raises(ParamsError) as exc:
        score("target_v1", D(1), {"target": 0})
    assert set(exc.value.fields) == {"target"}


# --- ratio_target_v1 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [("0", "0.00"), ("0.5", "0.00"), ("0.75", "5.00"), ("0.95", "9.00"), ("1", "10.00")],
)
def test_ratio_target(raw, expected):
    assert score("ratio_target_v1", D(raw), {"target": "1", "floor": "0.5"}) == D(expected)


def test_ratio_above_one_is_read_as_one():
    assert score("ratio_target_v1", D("1.4"), {"target": "0.8"}) == D("10.00")
    assert score("ratio_target_v1", D("1.4"), {"target": "1"}, cap=D(15)) == D("10.00")


# --- tiers_v1 ----------------------------------------------------------------------------------

TIERS = {"tiers": [[1, 4], [2, 6], [3, 8]]}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("0", "0.00"),  # below the first tier
        ("0.99", "0.00"),
        ("1", "4.00"),  # exactly on a threshold reaches it
        ("1.5", "4.00"),
        ("2", "6.00"),
        ("3", "8.00"),
        ("300", "8.00"),  # the highest tier reached
    ],
)
def test_tiers_boundaries(raw, expected):
    assert score("tiers_v1", D(raw), TIERS, weight="8") == D(expected)


def test_tiers_accept_mappings_and_are_capped():
    params = {"tiers": [{"threshold": 1, "points": 5}, {"threshold": 10, "points": 12}]}
    assert score("tiers_v1", D(10), params, weight="10") == D("10.00")  # cap = weight
    assert score("tiers_v1", D(10), params, weight="10", cap=D(12)) == D("12.00")  # bonus
    assert score("tiers_v1", D(10), params, weight="10", cap=D(7)) == D("7.00")


# --- relative_best_v1 --------------------------------------------------------------------------


def test_relative_to_the_best():
    assert score("relative_best_v1", D(200), {}, best=D(200)) == D("10.00")
    assert score("relative_best_v1", D(50), {}, best=D(200)) == D("2.50")
    assert score("relative_best_v1", D(1), {}, best=D(3)) == D("3.33")
    assert score("relative_best_v1", D(0), {}, best=D(200)) == D("0.00")


def test_relative_with_best_zero_gives_zero_to_all_without_dividing():
    for raw in (D(0), D(5), None):
        assert score("relative_best_v1", raw, {}, best=D(0)) == D("0.00")
        assert score("relative_best_v1", raw, {}, best=None) == D("0.00")
        assert score("relative_best_v1", raw, {}, best=D(-3)) == D("0.00")


def test_relative_never_exceeds_the_weight_even_with_a_stale_best():
    assert score("relative_best_v1", D(300), {}, best=D(200)) == D("10.00")


# --- caps, weights, ties -----------------------------------------------------------------------


def test_points_never_exceed_the_cap_or_the_weight():
    assert score("target_v1", D(100), {"target": 10}, weight="10", cap=D(6)) == D("6.00")
    assert score("target_v1", D(5), {"target": 10}, weight="10", cap=D(6)) == D("5.00")
    assert score("target_v1", D(100), {"target": 10}, weight="10", cap=D(0)) == D("0.00")
    assert score("target_v1", D(100), {"target": 10}, weight="0") == D("0.00")


def test_score_context_refuses_negative_weight_or_cap():
    with pytest.raises(ValueError):
        ScoreContext(weight=D(-1))
    with pytest.raises(ValueError):
        ScoreContext(weight=D(1), cap=D(-1))
    assert ScoreContext(weight=10).ceiling == D(10)
    assert ScoreContext(weight=10, cap="4").ceiling == D(4)


def test_ties_produce_equal_points():
    for name, params in [
        ("target_v1", {"target": 7}),
        ("ratio_target_v1", {"target": "0.9"}),
        ("tiers_v1", TIERS),
        ("relative_best_v1", {}),
    ]:
        a = score(name, D("2.50"), params, best=D(6))
        b = score(name, D("2.5"), params, best=D("6.0"))
        assert a == b, name


# --- validate_params ---------------------------------------------------------------------------


def test_validate_params_accepts_good_parameters():
    assert validate_params("target_v1", {"target": "20"}) == {}
    assert validate_params("target_v1", {"target": 4.5, "floor": 3}) == {}
    assert validate_params("ratio_target_v1", {"target": "0.95", "floor": "0.5"}) == {}
    assert validate_params("tiers_v1", TIERS) == {}
    assert validate_params("relative_best_v1", {}) == {}
    assert validate_params("relative_best_v1", None) == {}


@pytest.mark.parametrize(
    "name, params, fields",
    [
        ("target_v1", {}, {"target"}),
        ("target_v1", {"target": ""}, {"target"}),
        ("target_v1", {"target": "abc"}, {"target"}),
        ("target_v1", {"target": 0}, {"target"}),
        ("target_v1", {"target": -5}, {"target"}),
        ("target_v1", {"target": 10, "floor": -1}, {"floor"}),
        ("target_v1", {"target": 10, "floor": 10}, {"floor"}),
        ("target_v1", {"target": True}, {"target"}),
        ("target_v1", {"target": "NaN"}, {"target"}),
        ("target_v1", {"target": 10, "bonus": 2}, {"bonus"}),
        ("target_v1", ["target", 10], {"params", "target"}),
        ("ratio_target_v1", {"target": "1.2"}, {"target"}),
        ("ratio_target_v1", {"target": "0.8", "floor": "0.9"}, {"floor"}),
        ("tiers_v1", {}, {"tiers"}),
        ("tiers_v1", {"tiers": []}, {"tiers"}),
        ("tiers_v1", {"tiers": "1:4"}, {"tiers"}),
        ("tiers_v1", {"tiers": [[1, 4], [1, 6]]}, {"tiers"}),
        ("tiers_v1", {"tiers": [[2, 4], [1, 6]]}, {"tiers"}),
        ("tiers_v1", {"tiers": [[1, 6], [2, 4]]}, {"tiers"}),
        ("tiers_v1", {"tiers": [[1, -4]]}, {"tiers"}),
        ("tiers_v1", {"tiers": [[1, "x"]]}, {"tiers"}),
        ("tiers_v1", {"tiers": [[1, 2, 3]]}, {"tiers"}),
        ("tiers_v1", {"tiers": [[i, i] for i in range(1, 30)]}, {"tiers"}),
        ("relative_best_v1", {"target": 1}, {"target"}),
    ],
)
def test_validate_params_names_the_field(name, params, fields):
    errors = validate_params(name, params)
    assert set(errors) == fields
    assert all(str(message) for message in errors.values())


def test_validate_params_messages_read_well_and_translate(app):
    from flask_babel import force_locale

    errors = validate_params("tiers_v1", {"tiers": [[1, 4], [1, 6]]})
    with force_locale("en"):
        assert str(errors["tiers"]) == "Tier 2: thresholds must increase from tier to tier."
    errors = validate_params("target_v1", {"target": 10, "floor": 12})
    with force_locale("en"):
        assert str(errors["floor"]) == "The floor must be below the target."
    with force_locale("en"):
        assert str(validate_params("target_v1", {})["target"]) == "Required."


def test_validate_params_runs_without_an_app_context():
    errors = validate_params("target_v1", {"target": 0})
    assert str(errors["target"]) == "Must be greater than 0."


# --- competition ranks -------------------------------------------------------------------------


def test_competition_ranks_share_ties_and_skip():
    scores = [("a", D("90")), ("b", D("85.50")), ("c", D("85.5")), ("d", D("70")), ("e", D(90))]
    assert competition_ranks(scores) == {"a": 1, "e": 1, "b": 3, "c": 3, "d": 5}


def test_competition_ranks_1224():
    ranks = competition_ranks([(1, D(10)), (2, D(8)), (3, D(8)), (4, D(5))])
    assert ranks == {1: 1, 2: 2, 3: 2, 4: 4}
    assert list(ranks) == [1, 2, 3, 4]


def test_competition_ranks_are_deterministic_and_order_independent():
    scores = [(k, D(k % 3)) for k in range(30)]
    first = competition_ranks(scores)
    assert first == competition_ranks(list(reversed(scores)))
    assert first == competition_ranks(scores)
    assert competition_ranks([]) == {}
    assert competition_ranks([("x", D(0))]) == {"x": 1}


def test_competition_ranks_refuse_duplicate_keys():
    with pytest.raises(ValueError, match="duplicate"):
        competition_ranks([("a", D(1)), ("a", D(2))])


# --- the rubric --------------------------------------------------------------------------------


def test_default_rubric_totals_100_and_validates():
    assert sum(m.weight for m in DEFAULT_RUBRIC.metrics) == D(100)
    assert validate_rubric(DEFAULT_RUBRIC) == {}
    assert DEFAULT_RUBRIC.total == D(100)
    assert DEFAULT_RUBRIC.keys == [
        "visit_coverage",
        "first_contact_on_time",
        "visits_logged",
        "policy_promotion",
        "firms_financed",
        "amount_disbursed",
        "first_loans",
        "info_reports",
        "satisfaction",
        "logs_on_time",
    ]
    assert tuple(DEFAULT_RUBRIC.keys) == METRIC_KEYS
    # satisfaction weighs most
    top = max(DEFAULT_RUBRIC.metrics, key=lambda m: m.weight)
    assert top.key == "satisfaction"
    # every rule type is in use, and every label and source is filled in
    assert {m.rule for m in DEFAULT_RUBRIC.metrics} == {
        "target_v1",
        "ratio_target_v1",
        "tiers_v1",
        "relative_best_v1",
    }
    assert all(m.label and m.source for m in DEFAULT_RUBRIC.metrics)


def test_default_rubric_scaling_flags():
    scaling = {m.key for m in DEFAULT_RUBRIC.metrics if m.scales_with_period}
    assert scaling == {
        "visits_logged",
        "policy_promotion",
        "firms_financed",
        "first_loans",
        "info_reports",
    }
    # shares and averages never scale
    for m in DEFAULT_RUBRIC.metrics:
        if m.rule == "ratio_target_v1" or m.key == "satisfaction":
            assert not m.scales_with_period, m.key


def test_rubric_round_trips_through_json():
    data = json.loads(json.dumps(DEFAULT_RUBRIC.to_dict()))
    assert data["total"] == "100"
    assert data["metrics"][2]["params"] == {"target": "16", "floor": "0"}
    assert data["metrics"][4]["params"] == {"tiers": [["1", "4"], ["2", "6"], ["3", "8"]]}
    again = RubricSpec.from_dict(data)
    assert again == DEFAULT_RUBRIC
    spec, errors = load_rubric(data)
    assert errors == {} and spec == DEFAULT_RUBRIC


def test_metric_params_are_read_only_and_canonical():
    m = MetricSpec("visits_logged", "x", "", "target_v1", {"target": 4}, weight=10)
    assert m.params == {"target": D(4), "floor": D(0)}
    with pytest.raises(TypeError):
        m.params["target"] = 5
    assert hash(m) == hash(MetricSpec("visits_logged", "x", "", "target_v1", {"target": 4}, 10))


def _with(index, **changes):
    metrics = list(DEFAULT_RUBRIC.metrics)
    from dataclasses import replace

    metrics[index] = replace(metrics[index], **changes)
    return RubricSpec(tuple(metrics))


def test_validate_rubric_weights_must_add_to_100():
    errors = validate_rubric(_with(0, weight=D(10)))
    assert set(errors) == {"weights"}
    assert str(errors["weights"]) == "The weights add up to 95; they must add up to 100."


def test_validate_rubric_names_each_field():
    assert set(validate_rubric(_with(1, rule="target_v9"))) == {"metrics.1.rule"}
    assert set(validate_rubric(_with(2, params={"target": -1}))) == {"metrics.2.params.target"}
    assert set(validate_rubric(_with(3, cap=D(-1)))) == {"metrics.3.cap"}
    assert set(validate_rubric(_with(3, cap=D("1.234")))) == {"metrics.3.cap"}
    assert validate_rubric(_with(3, cap=D(0))) == {}  # caps >= 0
    assert set(validate_rubric(_with(0, weight=D(0)))) == {"metrics.0.weight"}
    assert set(validate_rubric(_with(0, weight=D("15.001")))) == {"metrics.0.weight"}
    assert set(validate_rubric(_with(5, key="visits_logged"))) == {"metrics.5.key"}
    assert set(validate_rubric(_with(5, key="Amount!"))) == {"metrics.5.key"}
    assert set(validate_rubric(_with(5, key="amount_disbursed\n"))) == {"metrics.5.key"}
    assert set(validate_rubric(_with(5, key="amount_lent"))) == {"metrics.5.key"}
    assert (
        validate_rubric(_with(5, key="amount_lent"), known_keys=[*METRIC_KEYS, "amount_lent"]) == {}
    )
    assert set(validate_rubric(_with(5, label=""))) == {"metrics.5.label"}
    # a tier worth more than the metric may give
    errors = validate_rubric(_with(4, params={"tiers": [[1, 4], [3, 9]]}))
    assert set(errors) == {"metrics.4.params.tiers"}
    assert validate_rubric(_with(4, params={"tiers": [[1, 4], [3, 9]]}, cap=D(9))) == {}
    assert set(validate_rubric(RubricSpec(()))) == {"metrics"}


def test_validate_rubric_duplicate_key_message():
    errors = validate_rubric(_with(9, key="satisfaction", weight=D(7)))
    assert str(errors["metrics.9.key"]) == "This metric appears twice."


@pytest.mark.parametrize(
    "data, field",
    [
        (None, "rubric"),
        ({"metrics": "x"}, "metrics"),
        ({"metrics": ["x"]}, "metrics.0"),
        ({"metrics": [{"key": "a", "rule": "target_v1", "weight": "ten"}]}, "metrics.0.weight"),
        ({"metrics": [{"key": "a", "rule": "target_v1"}]}, "metrics.0.weight"),
        ({"metrics": [{"key": 5, "weight": 1}]}, "metrics.0.key"),
        ({"metrics": [{"key": "a", "weight": 1, "params": [1]}]}, "metrics.0.params"),
        (
            {"metrics": [{"key": "a", "weight": 1, "scales_with_period": "yes"}]},
            "metrics.0.scales_with_period",
        ),
        ({"metrics": [{"key": "a", "weight": 1, "colour": "red"}]}, "metrics.0.colour"),
        ({"total": "90", "metrics": []}, "total"),
    ],
)
def test_from_dict_reports_shape_errors_by_field(data, field):
    with pytest.raises(RubricFormatError) as exc:
        RubricSpec.from_dict(data)
    assert field in exc.value.fields
    spec, errors = load_rubric(data)
    assert spec is None and field in errors


def test_load_rubric_reports_value_errors():
    data = DEFAULT_RUBRIC.to_dict()
    data["metrics"][0]["weight"] = "14"
    data["metrics"][1]["params"] = {"target": "2"}
    spec, errors = load_rubric(data)
    assert spec is None
    assert set(errors) == {"weights", "metrics.1.params.target"}


# --- scoring a row and period scaling ----------------------------------------------------------


def test_score_row_and_total():
    raws = {
        "visit_coverage": D("0.75"),  # half way from 0.5 to 1 -> 7.50 of 15
        "first_contact_on_time": D("1"),  # 10
        "visits_logged": D(8),  # 8 / 16 -> 5.00 of 10
        "policy_promotion": D(6),  # 8
        "firms_financed": D(2),  # tier 2 -> 6
        "amount_disbursed": D(50),  # 50 / 200 x 10 -> 2.50
        "first_loans": D(0),  # 0
        "info_reports": D(1),  # 1 / 4 x 6 -> 1.50
        "satisfaction": D("4.2"),  # (4.2-3)/1.5 x 20 -> 16
        "logs_on_time": D("0.9"),  # (0.9-0.6)/0.4 x 7 -> 5.25
    }
    points = score_row(DEFAULT_RUBRIC, raws, {"amount_disbursed": D(200)})
    assert points == {
        "visit_coverage": D("7.50"),
        "first_contact_on_time": D("10.00"),
        "visits_logged": D("5.00"),
        "policy_promotion": D("8.00"),
        "firms_financed": D("6.00"),
        "amount_disbursed": D("2.50"),
        "first_loans": D("0.00"),
        "info_reports": D("1.50"),
        "satisfaction": D("16.00"),
        "logs_on_time": D("5.25"),
    }
    assert total(points) == D("61.75")
    assert total(points.values()) == D("61.75")


def test_score_row_full_marks_total_100_and_no_data_total_0():
    best = {
        "visit_coverage": 1,
        "first_contact_on_time": 1,
        "visits_logged": 16,
        "policy_promotion": 6,
        "firms_financed": 3,
        "amount_disbursed": 500,
        "first_loans": 2,
        "info_reports": 4,
        "satisfaction": 5,
        "logs_on_time": 1,
    }
    points = score_row(DEFAULT_RUBRIC, best, best_values(DEFAULT_RUBRIC, [best]))
    assert total(points) == D("100.00")
    nothing = score_row(DEFAULT_RUBRIC, {}, {})
    assert set(nothing) == set(METRIC_KEYS) and total(nothing) == D("0.00")


def test_score_row_ties_score_equal():
    raws = {"visits_logged": D(9), "satisfaction": D("4.0"), "amount_disbursed": D(30)}
    bests = {"amount_disbursed": D(90)}
    assert score_row(DEFAULT_RUBRIC, raws, bests) == score_row(DEFAULT_RUBRIC, dict(raws), bests)


def test_best_values():
    rows = [
        {"amount_disbursed": D(30), "visits_logged": D(-2)},
        {"amount_disbursed": D(90)},
        {"amount_disbursed": None},
    ]
    bests = best_values(DEFAULT_RUBRIC, rows)
    assert bests["amount_disbursed"] == D(90)
    assert bests["visits_logged"] == D(0)
    assert set(bests) == set(METRIC_KEYS)


def test_best_value_of_one_metric():
    assert best_value([D(3), None, D("7.5"), D(-9)]) == D("7.5")
    assert best_value([]) == D(0) and best_value([None, D(-1)]) == D(0)


@pytest.mark.parametrize("name", ["target_v1", "ratio_target_v1", "tiers_v1", "relative_best_v1"])
def test_score_many_scores_as_one_call_per_value(name):
    params = {
        "target_v1": {"target": 16, "floor": 2},
        "ratio_target_v1": {"target": "0.9", "floor": "0.5"},
        "tiers_v1": {"tiers": [[1, 4], [3, 8]]},
        "relative_best_v1": {},
    }[name]
    rule = rules.get(name)
    ctx = ScoreContext(weight=D(10), cap=D(9), best=D(40))
    raws = [None, D(-1), D(0), D("0.7"), D(1), D(3), D("12.345678"), D(16), D(40), D(99)]
    assert rule.score_many(raws, params, ctx) == [rule(raw, params, ctx) for raw in raws]
    assert rule.score_many([], params, ctx) == []
    with pytest.raises(ParamsError):
        rules.get("target_v1").score_many([D(1)], {"target": -1}, ctx)


def test_period_factor():
    assert [period_factor(k) for k in ("month", "quarter", "year")] == [1, 3, 12]
    with pytest.raises(ValueError, match="week"):
        period_factor("week")


def test_quarter_and_year_scale_counts_not_ratios():
    quarter = scale_for_period(DEFAULT_RUBRIC, "quarter")
    year = scale_for_period(DEFAULT_RUBRIC, "year")
    assert quarter.metric("visits_logged").params["target"] == D(48)
    assert year.metric("visits_logged").params["target"] == D(192)
    assert quarter.metric("firms_financed").params["tiers"] == (
        (D(3), D(4)),
        (D(6), D(6)),
        (D(9), D(8)),
    )
    for key in ("visit_coverage", "satisfaction", "logs_on_time", "amount_disbursed"):
        assert year.metric(key) == DEFAULT_RUBRIC.metric(key)
    assert scale_for_period(DEFAULT_RUBRIC, "month") == DEFAULT_RUBRIC
    assert validate_rubric(year) == {}  # weights unchanged
    # the monthly rubric itself is untouched
    assert DEFAULT_RUBRIC.metric("visits_logged").params["target"] == D(16)


def test_score_row_with_period_kind():
    # Coverage and first contact have data, so every metric applies (no weight is spread).
    raws = {
        "visits_logged": D(24),
        "satisfaction": D("4.5"),
        "visit_coverage": D(1),
        "first_contact_on_time": D(1),
    }
    month = score_row(DEFAULT_RUBRIC, raws, {}, "month")
    quarter = score_row(DEFAULT_RUBRIC, raws, {}, "quarter")
    assert month["visits_logged"] == D("10.00")
    assert quarter["visits_logged"] == D("5.00")  # 24 of 48
    assert month["satisfaction"] == quarter["satisfaction"] == D("20.00")


def test_labels_translate_through_gettext(app):
    from flask_babel import force_locale

    metric = DEFAULT_RUBRIC.metric("satisfaction")
    with force_locale("en"):
        assert metric.display_label() == "Firm satisfaction"
        assert metric.display_source().startswith("Average rating")


def test_module_constants_are_consistent():
    assert rubric_mod.TOTAL == D(100)
    assert set(rubric_mod.PERIOD_FACTORS) == {"month", "quarter", "year"}
