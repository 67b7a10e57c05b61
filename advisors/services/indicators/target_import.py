"""The year's targets from a file or from the command line's ``--set CODE=PCT``.

A file (.xlsx or .csv) has the columns indicator, growth_pct and institution (or 指标,
目标增速 and 机构) and holds the year's whole set of targets: it is saved as one new version,
or not at all when a row is wrong (every wrong row is reported, by its number). ``--set``
changes the targets it names in the version in force and saves the result as a new version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from flask_babel import gettext as _

from models import IndicatorTargetVersion, User

from ...errors import ValidationFailed
from ...sheet_reader import read_records
from . import catalogue, targets

MAX_ROWS = targets.MAX_TARGETS
_SPACE = re.compile(r"\s+")
_HEADERS = {
    "indicator": {"indicator", "指标", "指标代码", "code"},
    "growth_pct": {"growth_pct", "growth", "目标增速", "目标增速(%)", "目标增速（%）", "目标"},
    "institution": {"institution", "机构", "机构代码", "org"},
}


@dataclass
class Problem:
    row: int
    field: str
    message: str

    def line(self) -> str:
        return f"row {self.row}: {self.field}: {self.message}"


class ImportRefused(ValidationFailed):
    """The file had wrong rows: ``problems`` lists them; nothing was saved."""

    def __init__(self, problems: list[Problem]):
        message = _("Rows with errors: %(n)s. Nothing was saved.", n=len({p.row for p in problems}))
        super().__init__(message)  # the rows are listed by the caller, one line each
        self.problems = problems


def _key(value) -> str:
    return _SPACE.sub("", str(value)).lower().rstrip("*") if value is not None else ""


def _columns(records: Iterator) -> dict[str, int]:
    for _number, values in records:
        keys = [_key(v) for v in values]
        if not any(keys):
            continue
        found = {
            name: next((i for i, k in enumerate(keys) if k in heads), None)
            for name, heads in _HEADERS.items()
        }
        if found["indicator"] is None or found["growth_pct"] is None:
            break
        return found
    message = _(
        "The file needs the columns indicator, growth_pct and institution (or 指标, 目标增速 and "
        "机构) in its first row. Nothing was saved."
    )
    raise ValidationFailed(message, {"file": message})


def _indicator_code(value, names: dict[str, str]) -> object:
    """A code as written, or the code of the indicator named (in Chinese or English)."""
    if isinstance(value, str):
        text = value.strip()
        return names.get(text, text)
    return value


def _cell(values: tuple, index: int | None):
    if index is None or index >= len(values):
        return None
    value = values[index]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def read_rows(filename: str, data: bytes) -> tuple[list[dict], list[int]]:
    """The file's targets as items for :func:`targets.save`, with each one's row number."""
    names = {}
    for indicator in catalogue.indicators():
        names[indicator.name] = indicator.code
        names[catalogue.name_of(indicator)] = indicator.code
    records = read_records(filename, data, limit=MAX_ROWS)
    try:
        columns = _columns(records)
        items, rows = [], []
        for number, values in records:
            cells = {name: _cell(values, i) for name, i in columns.items()}
            if all(v is None or not str(v).strip() for v in cells.values()):
                continue
            cells["indicator"] = _indicator_code(cells["indicator"], names)
            if isinstance(cells["institution"], int):
                cells["institution"] = str(cells["institution"])
            items.append(cells)
            rows.append(number)
    finally:
        records.close()
    return items, rows


def import_file(actor: User | None, year, filename: str, data: bytes) -> IndicatorTargetVersion:
    """Save the file's targets as the year's new version; ImportRefused when a row is wrong."""
    items, rows = read_rows(filename, data)
    try:
        return targets.save(actor, year, items, note=_("Imported from %(f)s", f=filename[:200]))
    except ValidationFailed as exc:
        problems = []
        for key, message in exc.fields.items():
            parts = key.split(".")
            if parts[0] == "targets" and len(parts) >= 2 and parts[1].isdigit():
                problems.append(Problem(rows[int(parts[1])], ".".join(parts[2:]), message))
            else:
                raise
        raise ImportRefused(problems) from None


def set_targets(
    actor: User | None, year, settings: list[str], institution: str | None = None
) -> IndicatorTargetVersion:
    """Change the targets ``settings`` name (``CODE=PCT``; ``CODE=`` removes one) for the city,
    or for ``institution``, in the version in force, and save the result as a new version."""
    year = targets.check_year(year)
    items = targets.as_items(targets.lines(targets.latest(year)))
    where = institution.strip() if institution and institution.strip() else None
    labels = []
    for setting in settings:
        code, sep, pct = setting.partition("=")
        if not sep or not code.strip():
            message = _("Write each target as CODE=PERCENT, such as deposits=8.5.")
            raise ValidationFailed(message, {"set": f"{setting}: {message}"})
        code = code.strip()
        items = [i for i in items if not _same(i, code, where)]
        if pct.strip():
            items.append({"indicator": code, "growth_pct": pct.strip(), "institution": where})
            labels.append(setting)
    try:
        return targets.save(actor, year, items)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, _relabel(exc.fields, items, labels)) from None


def _same(item: dict, code: str, institution: str | None) -> bool:
    other = item["institution"]
    same_org = (other or "").lower() == (institution or "").lower()
    return item["indicator"] == code and same_org


def _relabel(fields: dict, items: list[dict], labels: list[str]) -> dict:
    """``targets.N.FIELD`` keys as the ``--set`` (or the saved target) they are about."""
    out = {}
    for key, message in fields.items():
        parts = key.split(".")
        if parts[0] != "targets" or len(parts) < 3 or not parts[1].isdigit():
            out[key] = message
            continue
        n = int(parts[1])
        item = items[n]
        name = f"{item['indicator']}@{item['institution']}" if item["institution"] else None
        label = labels[n - (len(items) - len(labels))] if n >= len(items) - len(labels) else name
        out[f"{label or item['indicator']} {parts[2]}"] = message
    return out
