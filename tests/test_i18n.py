"""Every user-facing string is translated into Chinese, and the compiled catalogue is current."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import csrf_from

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "_l": None,
    "lazy_gettext": None,
    "N_": None,
}


def _source_msgids() -> set[str]:
    method_map = [
        ("advisors/**.py", "python"),
        ("views/**.py", "python"),
        ("models/**.py", "python"),
        ("templates/**.html", "jinja2"),
    ]
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map=method_map, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog():
    with PO.open("rb") as fh:
        return read_po(fh, locale="zh_CN")


def test_every_message_has_a_chinese_translation():
    catalog = _catalog()
    missing = []
    for msgid in sorted(_source_msgids()):
        entry = catalog.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(msgid)
    assert not missing, f"{len(missing)} untranslated, e.g. {missing[:15]}"


def _key(value):
    """Plural entries read back as lists (ids and strings): compare them as tuples."""
    return tuple(value) if isinstance(value, list | tuple) else value


def test_compiled_catalogue_is_current():
    with MO.open("rb") as fh:
        compiled = read_mo(fh)
    po = {_key(m.id): _key(m.string) for m in _catalog() if m.id and m.string and not m.fuzzy}
    mo = {_key(m.id): _key(m.string) for m in compiled if m.id}
    assert mo == po, "run: pybabel compile -d translations"


def test_pages_switch_language(client):
    zh = client.get("/login").get_data(as_text=True)
    token = csrf_from(zh)
    client.post("/lang/en", data={"csrf_token": token, "next": "/login"})
    en = client.get("/login").get_data(as_text=True)
    assert 'lang="en"' in en and "Sign in" in en
    assert 'lang="zh-CN"' in zh and "登录" in zh
