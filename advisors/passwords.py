"""Password rules, wherever a password is set (web, API, CLI, admin reset).

A password is refused when it is

* shorter than ``MIN_LENGTH`` or made of fewer than four different characters;
* a common password: zxcvbn's list of the 30,000 most frequent passwords of public breaches
  plus ``data/pinyin_passwords.txt``, Chinese favourites generated from pinyin by
  ``data/make_pinyin_passwords.py`` (names with digits, woaini1314, 5201314, qwer1234 …).
  Compared lower case, also without separators and trailing punctuation;
* the user's own name: their username, display name or e-mail name, compared lower case,
  without separators, accents (tone marks) or digits, in either word order. A name of six or
  more characters (two or more Chinese characters) may not appear in the password at all; a
  shorter one may appear only beside at least six other letters (``liwei123`` and
  ``admin2026!`` are refused, ``Badminton-Court-7`` is not).

The list is loaded once per process, on first use, into a frozenset.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from flask_babel import gettext as _

MIN_LENGTH = 8
MIN_DISTINCT = 4
PINYIN_LIST = Path(__file__).resolve().parent / "data" / "pinyin_passwords.txt"

_SEPARATORS = re.compile(r"[\s._\-@/\\,;:|+*#~'\"`]+")
_LETTERS = re.compile(r"[^a-z\u3400-\u9fff]+")  # keep Latin letters and CJK characters
_CJK = re.compile(r"[\u3400-\u9fff]")
NAME_ANYWHERE = 6  # a name this long (Latin letters) may not appear anywhere in the password
NAME_REST = 6  # a shorter name needs at least this many other letters beside it


@functools.cache
def common_passwords() -> frozenset[str]:
    """Every listed common password, lower case."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words = {w.lower() for w in FREQUENCY_LISTS["passwords"]}
    words.update(PINYIN_LIST.read_text(encoding="ascii").split())
    return frozenset(words)


def _fold(text: str) -> str:
    """Lower case, full-width forms made ASCII, accents and tone marks dropped (Zhāng -> zhang)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower().strip()


def is_common(password: str) -> bool:
    folded = _fold(password)
    trimmed = folded.rstrip(string.punctuation + " ")
    forms = {folded, trimmed, _SEPARATORS.sub("", folded), _SEPARATORS.sub("", trimmed)}
    common = common_passwords()
    return any(form in common for form in forms if form)


def name_forms(*names: str | None) -> set[str]:
    """The ways a name may appear in a password: zhang.wei01 -> zhang.wei01, zhangwei01,
    zhangwei; "Wei Zhang" -> weizhang, zhangwei; 张 伟 -> 张伟; a@b.cn -> a."""
    forms: set[str] = set()
    for name in names:
        folded = _fold(name or "")
        if "@" in folded:
            folded = folded.split("@", 1)[0]
        if not folded:
            continue
        forms.add(folded)
        forms.add(_SEPARATORS.sub("", folded))
        forms.add(_LETTERS.sub("", folded))
        words = [w for w in _SEPARATORS.split(folded) if w]
        if 2 <= len(words) <= 3:
            forms.add("".join(reversed(words)))
            forms.add(_LETTERS.sub("", "".join(reversed(words))))
    return {f for f in forms if len(f) >= 3 or (len(f) >= 2 and _CJK.search(f))}


def _contains_name(password: str, forms: set[str]) -> bool:
    folded = _fold(password)
    haystacks = {folded, _SEPARATORS.sub("", folded)}
    for form in forms:
        for text in haystacks:
            if form not in text:
                continue
            if len(form) >= NAME_ANYWHERE or _CJK.search(form):
                return True
            # A short name: refused when it is the main part of the password.
            rest = _LETTERS.sub("", text.replace(form, ""))
            if len(rest) < NAME_REST or rest in common_passwords():
                return True
    return False


def password_problem(
    password: str, username: str = "", names: Iterable[str | None] = ()
) -> str | None:
    """Why ``password`` may not be used by the user ``username`` (with their other ``names``:
    display name, e-mail), or None when it is fine. Messages are in the user's language."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        return _("Password must be at least %(n)s characters.", n=MIN_LENGTH)
    if username and password.lower() == username.strip().lower():
        return _("Password must not be the same as the username.")
    if len(set(password)) < MIN_DISTINCT:
        return _("Password is too simple.")
    if is_common(password):
        return _("This password is too common.")
    if _contains_name(password, name_forms(username, *names)):
        return _("The password must not contain your username or name.")
    return None
