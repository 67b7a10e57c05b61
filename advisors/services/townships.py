"""Townships and streets (乡镇/街道) of the city: the list the finance office keeps, its import,
and how the township a bureau wrote on a referral is matched to it.

A township a bureau wrote that the city has not listed never loses the firm: the text is kept on
the firm as written (``Enterprise.township_text``), the item is accepted with a warning, and the
finance office maps the text to a listed township once (a :class:`~models.TownshipAlias`), which
then applies to every firm with that text and to later referrals. Only the exact name, the
exact code or a mapped text matches; near matches (城关镇 / 城关街道, spaces, full-width
characters) are offered as suggestions, never taken silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import delete, func, insert, select, update

from models import Enterprise, Township, TownshipAlias, User, db
from models.user import advisor_township

from .. import audit
from ..errors import Forbidden, NotFound, ValidationFailed
from ..sheet_reader import read_records

MAINTAINER_ROLES = ("admin", "finance_office")
CODE_RE = re.compile(r"^[A-Za-z0-9]{1,20}$")
MAX_NAME = 60
MAX_IMPORT_ROWS = 5000  # a city has a few hundred townships and streets
MAX_SUGGESTIONS = 3
# What a township's name ends with; two names that differ only here are near matches.
_SUFFIXES = ("街道办事处", "街道办", "办事处", "街道", "地区", "街办", "镇", "乡")
_SPACE_RE = re.compile(r"\s+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _require_maintainer(actor: User | None) -> None:
    if actor is not None and actor.role not in MAINTAINER_ROLES:
        raise Forbidden(_("Only the administrator and the finance office keep the townships."))


# ----------------------------------------------------------------------------- matching
def normalise(text: str) -> str:
    """The form two spellings of one name share: Unicode compatibility form (full-width
    letters and digits become ASCII), no whitespace at all, lower case."""
    return _SPACE_RE.sub("", unicodedata.normalize("NFKC", text)).lower()


def _core(text: str) -> str:
    norm = normalise(text)
    for suffix in _SUFFIXES:
        if norm.endswith(suffix) and len(norm) > len(suffix) + 1:
            return norm[: -len(suffix)]
    return norm


@dataclass
class Matcher:
    """The listed townships read once (a city has a few hundred), to match many items without
    a query each. ``exact`` maps a written text to its township: the name and code of every
    active township, and each mapped text (aliases; a merged township's name is one)."""

    exact: dict[str, Township] = field(default_factory=dict)
    listed: list[Township] = field(default_factory=list)

    @classmethod
    def load(cls) -> Matcher:
        matcher = cls()
        townships = list(db.session.execute(select(Township)).scalars())
        by_id = {t.id: t for t in townships}
        for alias_text, township_id in db.session.execute(
            select(TownshipAlias.text, TownshipAlias.township_id)
        ):
            target = _follow(by_id, township_id)
            if target is not None:
                matcher.exact[alias_text] = target
        for t in townships:
            if t.active:
                matcher.listed.append(t)
                matcher.exact[t.code] = t
                matcher.exact[t.name] = t
            elif t.merged_into_id:
                target = _follow(by_id, t.id)
                if target is not None:
                    matcher.exact.setdefault(t.name, target)
                    matcher.exact.setdefault(t.code, target)
        return matcher

    def match(self, text: str) -> Township | None:
        return self.exact.get(text)

    def suggest(self, text: str) -> list[Township]:
        """Listed townships whose name or code is close to ``text`` (best first)."""
        norm, core = normalise(text), _core(text)
        if not norm:
            return []
        ranked = []
        for t in self.listed:
            name = normalise(t.name)
            if norm in (name, normalise(t.code)):
                rank = 0
            elif core and core == _core(t.name):
                rank = 1
            elif len(core) >= 2 and (core in name or _core(t.name) in norm):
                rank = 2
            else:
                continue
            ranked.append((rank, t.name, t))
        return [t for _r, _n, t in sorted(ranked, key=lambda r: r[:2])[:MAX_SUGGESTIONS]]


def _follow(by_id: dict[int, Township], township_id: int) -> Township | None:
    """The active township a (possibly merged) township now is."""
    seen = set()
    t = by_id.get(township_id)
    while t is not None and not t.active and t.merged_into_id and t.id not in seen:
        seen.add(t.id)
        t = by_id.get(t.merged_into_id)
    return t if t is not None and t.active else None


def unmatched_warning(text: str, suggestions: Iterable[Township]) -> str:
    names = "、".join(t.name for t in suggestions)
    if names:
        return _(
            "Township %(name)s is not on the city's list; it was kept as written. Did you "
            "mean: %(suggestions)s?",
            name=text,
            suggestions=names,
        )
    return _(
        "Township %(name)s is not on the city's list; it was kept as written for the finance "
        "office to match.",
        name=text,
    )


# ----------------------------------------------------------------------------- reading
def get(township_id: int) -> Township | None:
    return db.session.get(Township, township_id)


def by_code(code: str) -> Township | None:
    return db.session.execute(
        select(Township).where(Township.code == (code or "").strip())
    ).scalar_one_or_none()


@dataclass
class TownshipRow:
    township: Township
    firms: int
    advisors: int
    aliases: list[str]
    merged_into: str | None


def overview() -> list[TownshipRow]:
    """Every township with its firms, advisors and mapped texts: active ones first, by code."""
    townships = list(
        db.session.execute(
            select(Township).order_by(Township.active.desc(), Township.code, Township.id)
        ).scalars()
    )
    firms = dict(
        db.session.execute(
            select(Enterprise.township_id, func.count())
            .where(Enterprise.township_id.is_not(None))
            .group_by(Enterprise.township_id)
        ).all()
    )
    advisors = dict(
        db.session.execute(
            select(advisor_township.c.township_id, func.count()).group_by(
                advisor_township.c.township_id
            )
        ).all()
    )
    aliases: dict[int, list[str]] = {}
    for alias_text, township_id in db.session.execute(
        select(TownshipAlias.text, TownshipAlias.township_id).order_by(TownshipAlias.text)
    ):
        aliases.setdefault(township_id, []).append(alias_text)
    names = {t.id: t.name for t in townships}
    return [
        TownshipRow(
            t,
            firms.get(t.id, 0),
            advisors.get(t.id, 0),
            aliases.get(t.id, []),
            names.get(t.merged_into_id) if t.merged_into_id else None,
        )
        for t in townships
    ]


def listed() -> list[Township]:
    """The active townships, by code (the API's list, the selects)."""
    return list(
        db.session.execute(
            select(Township).where(Township.active.is_(True)).order_by(Township.code)
        ).scalars()
    )


def all_townships() -> list[Township]:
    """Every township, active first, by code (the API's list)."""
    return list(
        db.session.execute(
            select(Township).order_by(Township.active.desc(), Township.code, Township.id)
        ).scalars()
    )


@dataclass
class Unmatched:
    text: str
    firms: int
    suggestions: list[Township]


def unmatched(limit: int = 500) -> list[Unmatched]:
    """The township texts on firms that match no listed township, most firms first, with
    suggestions."""
    rows = db.session.execute(
        select(Enterprise.township_text, func.count().label("n"))
        .where(Enterprise.township_text.is_not(None), Enterprise.township_id.is_(None))
        .group_by(Enterprise.township_text)
        .order_by(func.count().desc(), Enterprise.township_text)
        .limit(limit)
    ).all()
    if not rows:
        return []
    matcher = Matcher.load()
    return [Unmatched(text, n, matcher.suggest(text)) for text, n in rows]


def unmatched_count() -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Enterprise)
        .where(Enterprise.township_text.is_not(None), Enterprise.township_id.is_(None))
    )


# ----------------------------------------------------------------------------- writing
def _clean_code(code, errors: dict, key: str = "code") -> str:
    text = code.strip() if isinstance(code, str) else ""
    if not text:
        errors[key] = _("Code is required.")
    elif not CODE_RE.match(text):
        errors[key] = _("Code must be 1-20 letters or digits (usually the 9-digit township code).")
    return text


def _clean_name(name, errors: dict, key: str = "name") -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        errors[key] = _("Name is required.")
    elif len(text) > MAX_NAME:
        errors[key] = _("Name must be at most %(n)s characters.", n=MAX_NAME)
    elif _CONTROL_RE.search(text):
        errors[key] = _("Name contains characters that are not allowed.")
    return text


def _name_owner(name: str) -> Township | None:
    return db.session.execute(select(Township).where(Township.name == name)).scalar_one_or_none()


def _check_name_free(name: str, errors: dict, township: Township | None = None) -> None:
    """Two townships never share a name (``township``: the one being renamed)."""
    if "name" in errors:
        return
    owner = _name_owner(name)
    if owner is not None and (township is None or owner.id != township.id):
        errors["name"] = _(
            "The name %(name)s is already used by township %(code)s.", name=name, code=owner.code
        )


def create(actor: User | None, code: str, name: str) -> Township:
    """A new township (``actor`` None: the CLI)."""
    _require_maintainer(actor)
    errors: dict[str, str] = {}
    code = _clean_code(code, errors)
    name = _clean_name(name, errors)
    if "code" not in errors and by_code(code) is not None:
        errors["code"] = _("A township with code %(code)s already exists.", code=code)
    _check_name_free(name, errors)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    township = Township(code=code, name=name, active=True)
    db.session.add(township)
    db.session.flush()
    _adopt_texts(township, [name, code])
    return township


def rename(actor: User | None, township: Township, name: str) -> Township:
    _require_maintainer(actor)
    errors: dict[str, str] = {}
    name = _clean_name(name, errors)
    _check_name_free(name, errors, township)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    if township.name != name:
        old = township.name
        township.name = name
        db.session.flush()
        # Firms sent with the old name still belong here.
        if _alias_owner(old) is None:
            _add_alias(actor, old, township)
        _adopt_texts(township, [name])
    return township


def set_active(actor: User | None, township: Township, active: bool) -> Township:
    _require_maintainer(actor)
    if active and township.merged_into_id:
        raise ValidationFailed(
            _("A merged township cannot be reactivated."),
            {"township": _("A merged township cannot be reactivated.")},
        )
    if township.active != bool(active):
        township.active = bool(active)
        db.session.flush()
    return township


def merge(actor: User | None, source: Township, target: Township) -> Township:
    """Merge ``source`` into ``target``: its firms, advisors and mapped texts move over, its
    name and code become texts of ``target``, and it is deactivated (kept for the record)."""
    _require_maintainer(actor)
    if source.id == target.id:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"target": _("Choose another township to merge into.")},
        )
    if not target.active:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"target": _("Merge into an active township.")},
        )
    firm_ids = list(
        db.session.execute(
            select(Enterprise.id).where(Enterprise.township_id == source.id)
        ).scalars()
    )
    _move_firms(firm_ids, source.id, target.id)
    # Advisors serving the old township now serve the new one (once).
    serving = set(
        db.session.execute(
            select(advisor_township.c.user_id).where(advisor_township.c.township_id == target.id)
        ).scalars()
    )
    movers = [
        uid
        for uid in db.session.execute(
            select(advisor_township.c.user_id).where(advisor_township.c.township_id == source.id)
        ).scalars()
        if uid not in serving
    ]
    db.session.execute(delete(advisor_township).where(advisor_township.c.township_id == source.id))
    if movers:
        db.session.execute(
            insert(advisor_township), [{"user_id": u, "township_id": target.id} for u in movers]
        )
        audit.record_bulk(
            "update",
            "advisor_profile",
            [(u, {"townships": [source.name, target.name]}) for u in movers],
        )
    for alias in db.session.execute(
        select(TownshipAlias).where(TownshipAlias.township_id == source.id)
    ).scalars():
        alias.township_id = target.id
    source.active = False
    source.merged_into_id = target.id
    db.session.flush()
    for text in (source.name, source.code):
        if _alias_owner(text) is None and text not in (target.name, target.code):
            _add_alias(actor, text, target)
    return target


def _move_firms(firm_ids: list[int], old_id: int | None, new_id: int) -> None:
    """Firms to a township in bulk (a township may hold thousands), audited per firm."""
    for start in range(0, len(firm_ids), 1000):
        part = firm_ids[start : start + 1000]
        db.session.execute(
            update(Enterprise)
            .where(Enterprise.id.in_(part))
            .values(township_id=new_id, township_text=None, version=Enterprise.version + 1)
            .execution_options(synchronize_session=False)
        )
        audit.record_bulk(
            "update", "enterprise", [(i, {"township_id": [old_id, new_id]}) for i in part]
        )


def _alias_owner(text: str) -> TownshipAlias | None:
    return db.session.execute(
        select(TownshipAlias).where(TownshipAlias.text == text)
    ).scalar_one_or_none()


def _add_alias(actor: User | None, text: str, township: Township) -> TownshipAlias:
    alias = TownshipAlias(
        text=text, township_id=township.id, created_by_id=actor.id if actor else None
    )
    db.session.add(alias)
    db.session.flush()
    return alias


def _adopt_texts(township: Township, texts: list[str]) -> int:
    """Firms kept with a text that is now this township's name or code join it."""
    firm_ids = list(
        db.session.execute(
            select(Enterprise.id).where(
                Enterprise.township_id.is_(None), Enterprise.township_text.in_(texts)
            )
        ).scalars()
    )
    _move_firms(firm_ids, None, township.id)
    return len(firm_ids)


def map_text(actor: User | None, text: str, township: Township) -> int:
    """Map a township text written by bureaus to a listed township, once: every firm kept with
    that text joins it, and later referrals with the same text match it. Returns the number of
    firms moved."""
    _require_maintainer(actor)
    if not isinstance(text, str) or not text or len(text) > MAX_NAME:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"text": _("Choose a text to map.")}
        )
    if not township.active:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"township": _("Map to an active township.")},
        )
    alias = _alias_owner(text)
    if alias is None:
        if text not in (township.name, township.code):
            _add_alias(actor, text, township)
    elif alias.township_id != township.id:
        alias.township_id = township.id
        db.session.flush()
    return _adopt_texts(township, [text])


def aliases_of(township_id: int) -> list[TownshipAlias]:
    return list(
        db.session.execute(
            select(TownshipAlias)
            .where(TownshipAlias.township_id == township_id)
            .order_by(TownshipAlias.text)
        ).scalars()
    )


def alias_township_id(alias_id: int) -> int | None:
    return db.session.scalar(select(TownshipAlias.township_id).where(TownshipAlias.id == alias_id))


def remove_alias(actor: User | None, alias_id: int) -> None:
    _require_maintainer(actor)
    alias = db.session.get(TownshipAlias, alias_id)
    if alias is None:
        raise NotFound(_("The page or record was not found."))
    db.session.delete(alias)
    db.session.flush()


# ----------------------------------------------------------------------------- import
_CODE_HEADERS = {"code", "代码", "编码", "乡镇代码", "乡镇编码", "街道代码", "区划代码"}
_NAME_HEADERS = {
    "name",
    "名称",
    "乡镇名称",
    "街道名称",
    "乡镇（街道）",
    "乡镇(街道)",
    "乡镇",
    "街道",
}


@dataclass
class ImportProblem:
    row: int
    field: str
    message: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({p.row for p in self.problems if p.row})

    def summary(self) -> str:
        return (
            f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
            f"rejected {self.rejected}"
        )


def _header_key(value) -> str:
    text = str(value).strip() if value is not None else ""
    return _SPACE_RE.sub("", text).lower().rstrip("*")


def import_file(actor: User | None, filename: str, data: bytes) -> ImportReport:
    """Import townships from an .xlsx or .csv with the columns code and name (or 代码/编码 and
    名称): a new code creates, a known code with a new name renames, the same row again changes
    nothing. A bad row is reported (row number, field, reason) while the good rows are saved.
    Raises ValidationFailed (field ``file``) when the file cannot be used at all."""
    _require_maintainer(actor)
    records = read_records(filename, data)
    try:
        return _import_records(actor, records)
    finally:
        records.close()


def _import_records(actor: User | None, records: Iterator) -> ImportReport:
    code_col, name_col = _columns(records)
    report = ImportReport()
    book = _ImportBook.load()
    count = 0
    for number, values in records:
        code_raw = values[code_col] if code_col < len(values) else None
        name_raw = values[name_col] if name_col < len(values) else None
        if all(v in (None, "") or not str(v).strip() for v in (code_raw, name_raw)):
            continue
        count += 1
        if count > MAX_IMPORT_ROWS:
            report.problems.append(
                ImportProblem(
                    number,
                    "file",
                    _(
                        "More than %(n)s rows: the rest of the file was not read.",
                        n=MAX_IMPORT_ROWS,
                    ),
                )
            )
            break
        errors: dict[str, str] = {}
        code = _clean_code(_cell(code_raw), errors)
        name = _clean_name(_cell(name_raw), errors)
        book.check(code, name, errors)
        if errors:
            report.problems.extend(ImportProblem(number, k, m) for k, m in errors.items())
            continue
        book.save(actor, number, code, name, report)
    return report


def _columns(records: Iterator) -> tuple[int, int]:
    """Read the header row (the first that is not blank): the code and name columns."""
    header = None
    for _number, values in records:
        if any(v not in (None, "") and str(v).strip() for v in values):
            header = [_header_key(v) for v in values]
            break
    if header is None:
        raise _file_error(_("The file has no rows. Nothing was saved."))
    code_col = next((i for i, k in enumerate(header) if k in _CODE_HEADERS), None)
    name_col = next((i for i, k in enumerate(header) if k in _NAME_HEADERS and i != code_col), None)
    if code_col is None or name_col is None:
        raise _file_error(
            _(
                "The file needs the columns code and name (or 代码 and 名称) in its first row. "
                "Nothing was saved."
            )
        )
    return code_col, name_col


@dataclass
class _ImportBook:
    """The townships as the import goes: by code, the code of each name, and the row where
    each code and name of the file was first seen."""

    existing: dict[str, Township]
    names: dict[str, str]
    seen_codes: dict[str, int] = field(default_factory=dict)
    seen_names: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls) -> _ImportBook:
        existing = {t.code: t for t in db.session.execute(select(Township)).scalars()}
        return cls(existing, {t.name: t.code for t in existing.values()})

    def check(self, code: str, name: str, errors: dict) -> None:
        """A row's clash with an earlier row or with another township's name."""
        if "code" not in errors and code in self.seen_codes:
            errors["code"] = _(
                "Code %(code)s appears earlier in this file (row %(row)s).",
                code=code,
                row=self.seen_codes[code],
            )
        if "name" not in errors and name in self.seen_names:
            errors["name"] = _(
                "Name %(name)s appears earlier in this file (row %(row)s).",
                name=name,
                row=self.seen_names[name],
            )
        if "name" not in errors and "code" not in errors:
            owner = self.names.get(name)
            if owner is not None and owner != code:
                errors["name"] = _(
                    "The name %(name)s is already used by township %(code)s.",
                    name=name,
                    code=owner,
                )

    def save(
        self, actor: User | None, number: int, code: str, name: str, report: ImportReport
    ) -> None:
        """A good row: a new code creates, a known code with a new name renames."""
        self.seen_codes[code] = number
        self.seen_names[name] = number
        township = self.existing.get(code)
        if township is None:
            self.existing[code] = create(actor, code, name)
            report.created += 1
        elif township.name != name:
            self.names.pop(township.name, None)
            rename(actor, township, name)
            report.updated += 1
        else:
            report.unchanged += 1
        self.names[name] = code


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a code typed as a number
    return str(value)


def _file_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"file": message})
