"""Unit tests for advisors.credit_code (GB 32100-2015 credit codes)."""

import random

import pytest

from advisors.credit_code import (
    CodeProblem,
    check_character,
    is_valid,
    make_code,
    normalize,
    org_code_check,
    validate,
)

VALID = [
    "91110000600037341L",
    "91110000101623741K",
    "911101066976941872",
    "91350100M000100Y43",
]

# Written out by hand, independent of the module's constants.
HAND_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
PROVINCES = [
    "11", "12", "13", "14", "15", "21", "22", "23",
    "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46",
    "50", "51", "52", "53", "54",
    "61", "62", "63", "64", "65", "71", "81", "82",
]  # fmt: skip


def codes(raw):
    return [p.code for p in validate(raw)]


@pytest.mark.parametrize("code", VALID)
def test_reference_vectors_are_valid(code):
    assert validate(code) == []
    assert is_valid(code)
    assert check_character(code[:17]) == code[17]
    assert org_code_check(code[8:16]) == code[16]


def test_reference_failure_reports_both_checks():
    problems = validate("91310115MA1H8R7C6D")
    assert [p.code for p in problems] == ["org_check", "check"]
    assert not is_valid("91310115MA1H8R7C6D")


@pytest.mark.parametrize("code", VALID)
def test_every_wrong_check_character_is_reported_with_expected(code):
    for wrong in HAND_ALPHABET:
        if wrong == code[17]:
            continue
        problems = validate(code[:17] + wrong)
        assert [p.code for p in problems] == ["check"]
        assert problems[0].params["expected"] == code[17]
        assert code[17] in str(problems[0])
        assert "%(expected)s" in problems[0].message  # msgid stays a format string


@pytest.mark.parametrize("code", VALID)
def test_wrong_org_check_with_correct_mod31(code):
    for wrong in "0123456789X":
        if wrong == code[16]:
            continue
        first17 = code[:16] + wrong
        bad = first17 + check_character(first17)
        problems = validate(bad)
        assert [p.code for p in problems] == ["org_check"]
        assert problems[0].params["expected"] == code[16]


def test_org_code_check_special_values():
    # Weights 3 7 9 10 5 8 4 2; check = 11 - sum % 11.
    assert org_code_check("00000001") == "9"  # sum 2 -> 9
    assert org_code_check("00000000") == "0"  # sum 0 -> 11, written "0"
    assert org_code_check("00000006") == "X"  # sum 12, 12 % 11 = 1 -> 10, written "X"
    assert org_code_check("00000005") == "1"  # sum 10 -> 1


def test_org_code_check_letters_use_latin_positions():
    # A=10 on weight 3 -> 30 % 11 = 8 -> 3.  M=22 on weight 2 -> 44 % 11 = 0 -> "0".
    assert org_code_check("A0000000") == "3"
    assert org_code_check("0000000M") == "0"
    # Letters count by Latin position: Y = 34, weight 2 -> 68 % 11 = 2 -> 9.
    assert org_code_check("0000000Y") == "9"
    # J = 19 (not its index 18 in the 31-char alphabet): 38 % 11 = 5 -> 6.
    assert org_code_check("0000000J") == "6"


@pytest.mark.parametrize("letter", list("IOZSV"))
@pytest.mark.parametrize("position", [1, 2, 9, 12, 17, 18])
def test_forbidden_letters(letter, position):
    base = "91350100M000100Y43"
    bad = base[: position - 1] + letter + base[position:]
    problems = validate(bad)
    assert [p.code for p in problems] == ["alphabet"]
    assert problems[0].params["positions"] == str(position)
    assert letter in problems[0].params["chars"]


def test_lowercase_is_reported_not_fixed():
    assert normalize("91350100m000100y43") == "91350100m000100y43"
    problems = validate("91350100m000100y43")
    assert [p.code for p in problems] == ["lowercase"]
    assert problems[0].params["positions"] == "9, 16"
    assert "upper-case" in problems[0].message


def test_lowercase_forbidden_letter_reports_both():
    bad = "91350100M000100Y43".replace("M", "i")
    assert codes(bad) == ["lowercase", "alphabet"]


@pytest.mark.parametrize(
    "raw",
    [
        " 91110000600037341L",
        "91110000600037341L ",
        "\t91110000600037341L\n",
        "\u300091110000600037341L\u3000",
    ],
)
def test_surrounding_whitespace_is_accepted(raw):
    assert normalize(raw) == "91110000600037341L"
    assert validate(raw) == []


def test_full_width_characters_are_converted():
    full = "".join(chr(ord(c) + 0xFEE0) for c in "91350100M000100Y43")
    assert normalize(full) == "91350100M000100Y43"
    assert is_valid(full)
    assert normalize("\uff4d") == "m"  # case is kept


@pytest.mark.parametrize(
    "raw",
    ["9111 0000600037341L", "91110000-600037341L", "911100006000\u300037341L"],
)
def test_inner_whitespace_and_punctuation_rejected(raw):
    assert "alphabet" in codes(raw)
    assert not is_valid(raw)


@pytest.mark.parametrize(
    ("raw", "length"),
    [("91110000600037341", 17), ("91110000600037341L0", 19), ("9", 1)],
)
def test_wrong_length(raw, length):
    problems = validate(raw)
    assert [p.code for p in problems] == ["length"]
    assert problems[0].params["length"] == length


@pytest.mark.parametrize("raw", ["", "   ", "\u3000", None])
def test_empty(raw):
    assert codes(raw) == ["empty"]


@pytest.mark.parametrize(
    "prefix",
    [
        "00",
        "10",
        "16",
        "20",
        "24",
        "30",
        "38",
        "47",
        "55",
        "66",
        "72",
        "80",
        "83",
        "99",
    ],
)
def test_bad_province_prefix(prefix):
    code = make_code(division="110000")
    first17 = code[:2] + prefix + code[4:17]
    bad = first17 + check_character(first17)
    assert codes(bad) == ["division"]


def test_division_must_be_digits():
    first17 = "91A10000600037341"
    assert codes(first17 + check_character(first17)) == ["division"]


@pytest.mark.parametrize("prefix", PROVINCES)
def test_every_province_prefix_accepted(prefix):
    assert is_valid(make_code(division=prefix + "0000"))


@pytest.mark.parametrize("authority", list("BCDEFGHJKLMPQRTUWX0"))
def test_bad_registration_authority(authority):
    first17 = authority + "1110000600037341"
    assert codes(first17 + check_character(first17)) == ["registration"]


@pytest.mark.parametrize("category", list("0456789ABNY"))
def test_bad_category_under_9(category):
    first17 = "9" + category + "110000600037341"
    assert codes(first17 + check_character(first17)) == ["registration"]


@pytest.mark.parametrize("authority", list("12345678ANY"))
def test_other_authorities_accept_any_category(authority):
    for category in HAND_ALPHABET:
        assert is_valid(make_code(authority=authority, category=category))


def test_problems_are_frozen_with_params():
    problem = validate("91110000600037341")[0]
    assert isinstance(problem, CodeProblem)
    with pytest.raises(AttributeError):
        problem.code = "other"
    assert str(problem) == problem.message % problem.params


def test_make_code_default_and_round_trip_random():
    rng = random.Random(20240601)
    for _ in range(2000):
        authority = rng.choice("123456789ANY")
        category = rng.choice("123") if authority == "9" else rng.choice(HAND_ALPHABET)
        division = rng.choice(PROVINCES) + "".join(rng.choice("0123456789") for _ in range(4))
        body = "".join(rng.choice(HAND_ALPHABET) for _ in range(8))
        code = make_code(authority, category, division, body)
        assert len(code) == 18
        assert code[:8] == authority + category + division
        assert code[8:16] == body
        assert validate(code) == []
        # Breaking the last character is always caught.
        other = HAND_ALPHABET[(HAND_ALPHABET.index(code[17]) + 1) % 31]
        assert codes(code[:17] + other) == ["check"]
    assert is_valid(make_code())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"org_body8": "6000373"}, "org_body8"),
        ({"org_body8": "600037341"}, "org_body8"),
        ({"org_body8": "6000373I"}, "org_body8"),
        ({"org_body8": "6000373o"}, "org_body8"),
        ({"division": "990000"}, "province"),
        ({"division": "11000"}, "division six"),
        ({"category": "5"}, "organisation category"),
        ({"authority": "B"}, "registration authority"),
    ],
)
def test_make_code_rejects_bad_parts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_code(**kwargs)


def test_check_character_rejects_bad_input():
    with pytest.raises(ValueError, match="17 characters"):
        check_character("9111000060003734")
    with pytest.raises(ValueError, match="alphabet"):
        check_character("9111000060003734I")
