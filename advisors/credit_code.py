"""Unified social credit code (统一社会信用代码, GB 32100-2015).

Pure module: no Flask, no database.  ``validate`` returns a list of
:class:`CodeProblem`; each carries an English message (a translation msgid
with ``%(name)s`` placeholders) and its ``params``.  The caller translates,
e.g. ``gettext(problem.message, **problem.params)``.  Message literals are
wrapped in the no-op marker ``N_`` so that ``pybabel extract -k N_`` finds them.

Layout of a code (positions are 1-based)::

    1      registration authority (1-9, A, N, Y; firms usually 9)
    2      organisation category (under 9: 1 enterprise, 2 individual
           business, 3 farmers' cooperative)
    3-8    administrative division (GB/T 2260, six digits)
    9-17   organisation code (GB 11714); 17 is its mod-11 check
    18     mod-31 check character over positions 1-17
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALPHABET",
    "FORBIDDEN_LETTERS",
    "ORG_BODY_CHARS",
    "PROVINCE_PREFIXES",
    "CodeProblem",
    "check_character",
    "is_valid",
    "make_code",
    "normalize",
    "org_code_check",
    "validate",
]


def N_(message: str) -> str:
    """Mark a string for translation extraction without translating it."""
    return message


CODE_LENGTH = 18

#: The 31 characters a code may contain; a character's value is its index.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {char: index for index, char in enumerate(ALPHABET)}

#: Latin letters the standard never uses.
FORBIDDEN_LETTERS = "IOZSV"

#: Characters allowed in the first eight characters of the organisation code.
ORG_BODY_CHARS = ALPHABET

#: Weights for positions 1-17 of the mod-31 check: 3^(i-1) mod 31.
_WEIGHTS_31 = tuple(pow(3, i, 31) for i in range(17))

#: Weights for the eight body characters of the organisation code (mod 11).
_WEIGHTS_11 = (3, 7, 9, 10, 5, 8, 4, 2)

#: Province-level prefixes of GB/T 2260 division codes.
PROVINCE_PREFIXES = frozenset(
    f"{n:02d}"
    for n in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    )
)

#: Allowed first characters (registration authority).
_AUTHORITIES = "123456789ANY"

#: Category characters allowed under a given authority; authorities not
#: listed accept any character of the alphabet (deliberately lenient).
_CATEGORIES = {"9": "123"}

# Full-width ASCII digits and letters -> half-width.
_FULL_WIDTH = {
    **{0xFF10 + i: ord("0") + i for i in range(10)},
    **{0xFF21 + i: ord("A") + i for i in range(26)},
    **{0xFF41 + i: ord("a") + i for i in range(26)},
}


@dataclass(frozen=True)
class CodeProblem:
    """One thing wrong with a credit code.

    ``code`` is a stable machine key; ``message`` is an English msgid with
    ``%(name)s`` placeholders filled from ``params``.
    """

    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:  # English rendering, for logs and tests
        return self.message % self.params if self.params else self.message


def normalize(raw: str | None) -> str:
    """Strip surrounding whitespace and turn full-width letters/digits half-width.

    Inner characters are left alone and case is kept: lower-case letters are
    reported by :func:`validate`, not silently fixed.
    """
    if raw is None:
        return ""
    # str.strip() also removes the ideographic space U+3000.
    return raw.translate(_FULL_WIDTH).strip()


def _positions(indexes: list[int]) -> str:
    return ", ".join(str(i + 1) for i in indexes)


def _org_value(char: str) -> int:
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    raise ValueError(f"not an organisation-code character: {char!r}")


def org_code_check(first8: str) -> str:
    """Return the mod-11 check character (GB 11714) for an 8-char org code body.

    Digits count 0-9 and letters A=10 ... Z=35.  A result of 10 is written
    ``X`` and 11 is written ``0``.
    """
    if len(first8) != 8:
        raise ValueError("organisation code body must have 8 characters")
    total = sum(_org_value(c) * w for c, w in zip(first8, _WEIGHTS_11, strict=True))
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def check_character(first17: str) -> str:
    """Return the mod-31 check character (position 18) for the first 17 chars."""
    if len(first17) != 17:
        raise ValueError("need exactly 17 characters")
    try:
        total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS_31, strict=True))
    except KeyError as exc:
        raise ValueError(f"character outside the credit-code alphabet: {exc.args[0]!r}") from None
    return ALPHABET[(31 - total % 31) % 31]


def _structure_problems(code: str) -> list[CodeProblem]:
    """Problems that make the code too malformed for the semantic checks."""
    problems: list[CodeProblem] = []
    if len(code) != CODE_LENGTH:
        problems.append(
            CodeProblem(
                "length",
                N_("A credit code has 18 characters; this one has %(length)s"),
                {"length": len(code)},
            )
        )
    lower = [i for i, c in enumerate(code) if c.isascii() and c.islower()]
    if lower:
        problems.append(
            CodeProblem(
                "lowercase",
                N_("Use upper-case letters: %(chars)s at position(s) %(positions)s"),
                {
                    "chars": ", ".join(code[i] for i in lower),
                    "positions": _positions(lower),
                },
            )
        )
    # Lower-case letters whose upper-case form is allowed are reported above
    # only; anything else outside the alphabet (I O Z S V in either case,
    # spaces, punctuation, non-ASCII) is an alphabet problem.
    bad = [
        i
        for i, c in enumerate(code)
        if c not in _VALUE and not (c.isascii() and c.islower() and c.upper() in _VALUE)
    ]
    if bad:
        problems.append(
            CodeProblem(
                "alphabet",
                N_(
                    "Characters not allowed in a credit code: %(chars)s at position(s) "
                    "%(positions)s (the letters I, O, Z, S and V are never used)"
                ),
                {
                    "chars": ", ".join(repr(code[i]) for i in bad),
                    "positions": _positions(bad),
                },
            )
        )
    return problems


def validate(raw: str | None) -> list[CodeProblem]:
    """Return every problem with ``raw`` (normalised first); empty list if valid.

    ``empty``, ``length``, ``lowercase`` and ``alphabet`` short-circuit the
    checks that need a well-formed code (``registration``, ``division``,
    ``org_check``, ``check``).
    """
    code = normalize(raw)
    if not code:
        return [CodeProblem("empty", N_("Enter the unified social credit code"))]
    problems = _structure_problems(code)
    if problems:
        return problems

    return [
        p
        for p in (
            _registration_problem(code[0], code[1]),
            _division_problem(code[2:8]),
            _check_problem(
                "org_check",
                N_("Organisation code check (position 17) should be %(expected)s, not %(actual)s"),
                org_code_check(code[8:16]),
                code[16],
            ),
            _check_problem(
                "check",
                N_("Check character (position 18) should be %(expected)s, not %(actual)s"),
                check_character(code[:17]),
                code[17],
            ),
        )
        if p is not None
    ]


def _registration_problem(authority: str, category: str) -> CodeProblem | None:
    """Positions 1-2: the registration authority and the organisation category under it."""
    if authority not in _AUTHORITIES:
        return CodeProblem(
            "registration",
            N_("Position 1 (registration authority) is %(char)s; it must be 1-9, A, N or Y"),
            {"char": authority},
        )
    if category not in _CATEGORIES.get(authority, ALPHABET):
        return CodeProblem(
            "registration",
            N_(
                "Position 2 (organisation category) is %(char)s; after "
                "%(authority)s it must be one of %(allowed)s"
            ),
            {
                "char": category,
                "authority": authority,
                "allowed": ", ".join(_CATEGORIES[authority]),
            },
        )
    return None


def _division_problem(division: str) -> CodeProblem | None:
    """Positions 3-8: an administrative division starting with a province code."""
    if not division.isdigit():
        return CodeProblem(
            "division",
            N_("Positions 3-8 (administrative division) must be six digits, not %(division)s"),
            {"division": division},
        )
    if division[:2] not in PROVINCE_PREFIXES:
        return CodeProblem(
            "division",
            N_(
                "Positions 3-8 (administrative division %(division)s) do not start "
                "with a province code"
            ),
            {"division": division},
        )
    return None


def _check_problem(kind: str, message: str, expected: str, actual: str) -> CodeProblem | None:
    """A check character that does not match the one computed."""
    if actual == expected:
        return None
    return CodeProblem(kind, message, {"expected": expected, "actual": actual})


def is_valid(raw: str | None) -> bool:
    """True when ``validate(raw)`` finds no problem."""
    return not validate(raw)


def make_code(
    authority: str = "9",
    category: str = "1",
    division: str = "330100",
    org_body8: str = "60003734",
) -> str:
    """Build a valid 18-character code, computing both check characters.

    ``org_body8`` is eight characters from digits and A-Z without I O Z S V.
    Raises ValueError if the parts cannot form a valid code.
    """
    if len(org_body8) != 8 or any(c not in ORG_BODY_CHARS for c in org_body8):
        raise ValueError("org_body8 must be 8 characters from 0-9 and A-Z without I, O, Z, S, V")
    first17 = f"{authority}{category}{division}{org_body8}{org_code_check(org_body8)}"
    if len(first17) != 17:
        raise ValueError("authority and category must be one character, division six")
    code = first17 + check_character(first17)
    problems = validate(code)
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    return code
