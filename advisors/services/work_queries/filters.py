"""The work lists' filters: what a query string may ask for, checked and typed, and the
notes describing them in an export."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _

from models import (
    FINANCING_STAGES,
    VISIT_MODES,
    VISIT_ROLES,
    User,
)

from ... import labels as vocab
from ...params import parse_day
from ...permissions import GLOBAL_ROLES
from ..firms import clean_text
from .choices import AdvisorChoice, InstitutionChoice
from .label_sets import pipeline_filter_labels, visit_filter_labels

MAX_QUERY = 100
_FLAG_VALUES = {"1": True, "0": False}


@dataclass(frozen=True)
class VisitFilters:
    date_from: date | None = None
    date_to: date | None = None
    advisor: str = ""
    institution: str = ""
    role: str = ""
    mode: str = ""
    q: str = ""
    # Resolved from ``advisor`` / ``institution`` (not query-string values).
    advisor_id: int | None = None
    org_id: int | None = None

    KEYS = ("date_from", "date_to", "advisor", "institution", "role", "mode", "q")

    def as_args(self) -> dict[str, str]:
        return _as_args(self, self.KEYS)

    @property
    def narrowed(self) -> bool:
        return any(getattr(self, k) not in (None, "") for k in self.KEYS)


@dataclass(frozen=True)
class PipelineFilters:
    stage: str = ""
    advisor: str = ""
    institution: str = ""
    first_loan: bool | None = None
    unsecured: bool | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    advisor_id: int | None = None
    org_id: int | None = None

    KEYS = (
        "stage",
        "advisor",
        "institution",
        "first_loan",
        "unsecured",
        "date_from",
        "date_to",
        "q",
    )

    def as_args(self) -> dict[str, str]:
        return _as_args(self, self.KEYS)

    @property
    def narrowed(self) -> bool:
        return any(getattr(self, k) not in (None, "") for k in self.KEYS)


def _as_args(filters, keys) -> dict[str, str]:
    """The filters as query-string values, for links, the pager and the export."""
    args = {}
    for key in keys:
        value = getattr(filters, key)
        if value in (None, ""):
            continue
        if isinstance(value, bool):
            args[key] = "1" if value else "0"
        elif isinstance(value, date):
            args[key] = value.isoformat()
        else:
            args[key] = str(value)
    return args


def _text(raw: Mapping, key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        return ""
    return clean_text(value.replace("\x00", ""))


def _day(raw: Mapping, key: str, label: str) -> tuple[date | None, str | None]:
    return parse_day(_text(raw, key), label)


def _common(
    raw: Mapping,
    actor: User,
    labels: dict[str, str],
    advisors: list[AdvisorChoice],
    institutions: list[InstitutionChoice],
    values: dict,
    errors: dict[str, str],
) -> None:
    """Advisor, institution, the date range and the firm name: the filters both lists share."""
    if actor.role != "advisor":  # an advisor's list is their own work: no advisor filter
        typed = _text(raw, "advisor")
        if typed:
            found = next((a for a in advisors if a.username.lower() == typed.lower()), None)
            if found is None:
                errors["advisor"] = _(
                    "%(field)s: choose a value from the list.", field=labels["advisor"]
                )
            else:
                values["advisor"], values["advisor_id"] = found.username, found.id
    if actor.role in GLOBAL_ROLES:  # a liaison's list is its institution already
        typed = _text(raw, "institution")
        if typed:
            found = next((i for i in institutions if i.code.lower() == typed.lower()), None)
            if found is None:
                errors["institution"] = _(
                    "%(field)s: choose a value from the list.", field=labels["institution"]
                )
            else:
                values["institution"], values["org_id"] = found.code, found.id
    for key in ("date_from", "date_to"):
        day, problem = _day(raw, key, labels[key])
        if problem:
            errors[key] = problem
        else:
            values[key] = day
    if (
        values.get("date_from")
        and values.get("date_to")
        and values["date_to"] < values["date_from"]
    ):
        errors["date_to"] = _("%(field)s is before the start date.", field=labels["date_to"])
        values["date_to"] = None
    q = _text(raw, "q")
    if len(q) > MAX_QUERY:
        errors["q"] = _(
            "%(field)s must be at most %(n)s characters.", field=labels["q"], n=MAX_QUERY
        )
    else:
        values["q"] = q


def _choice(raw: Mapping, key: str, allowed, label: str, values: dict, errors: dict) -> None:
    typed = _text(raw, key)
    if typed and typed not in allowed:
        errors[key] = _("%(field)s: choose a value from the list.", field=label)
    else:
        values[key] = typed


def parse_visit_filters(
    raw: Mapping,
    actor: User,
    advisors: list[AdvisorChoice],
    institutions: list[InstitutionChoice],
) -> tuple[VisitFilters, dict[str, str]]:
    """Visit-log filters from a mapping of strings. Returns (filters, errors by field); a field
    in error is left out of the filters. ``advisors``/``institutions``: the actor's choices."""
    labels = visit_filter_labels()
    values: dict = {}
    errors: dict[str, str] = {}
    _common(raw, actor, labels, advisors, institutions, values, errors)
    _choice(raw, "role", VISIT_ROLES, labels["role"], values, errors)
    _choice(raw, "mode", VISIT_MODES, labels["mode"], values, errors)
    return VisitFilters(**values), errors


def parse_pipeline_filters(
    raw: Mapping,
    actor: User,
    advisors: list[AdvisorChoice],
    institutions: list[InstitutionChoice],
) -> tuple[PipelineFilters, dict[str, str]]:
    """Pipeline filters from a mapping of strings, like :func:`parse_visit_filters`."""
    labels = pipeline_filter_labels()
    values: dict = {}
    errors: dict[str, str] = {}
    _common(raw, actor, labels, advisors, institutions, values, errors)
    _choice(raw, "stage", FINANCING_STAGES, labels["stage"], values, errors)
    for key in ("first_loan", "unsecured"):
        typed = _text(raw, key)
        if not typed:
            continue
        if typed not in _FLAG_VALUES:
            errors[key] = _("%(field)s: choose a value from the list.", field=labels[key])
        else:
            values[key] = _FLAG_VALUES[typed]
    return PipelineFilters(**values), errors


def echo_values(raw: Mapping, keys) -> dict[str, str]:
    """The filter values as typed, for showing them back in the form."""
    out = {}
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str):
            out[key] = "".join(c for c in value if c.isprintable())[:200]
    return out


# ------------------------------------------------------------------ export notes
def iter_filter_notes(
    filters: VisitFilters | PipelineFilters,
    advisors: list[AdvisorChoice],
    institutions: list[InstitutionChoice],
) -> Iterator[tuple[str, str]]:
    """(label, value) pairs describing the filters of an export, for its "Filters" sheet."""
    pipeline = isinstance(filters, PipelineFilters)
    labels = pipeline_filter_labels() if pipeline else visit_filter_labels()
    advisor_names = {a.username: a.display_name for a in advisors}
    institution_names = {i.code: i.name for i in institutions}
    roles = vocab.labels("visit_role")
    modes = vocab.labels("visit_mode")
    stages = vocab.labels("stage")
    args = filters.as_args()
    if not args:
        yield _("Filters"), _("None (everything in your scope)")
    for key, value in args.items():
        if key == "advisor":
            shown = f"{advisor_names.get(value, value)} ({value})"
        elif key == "institution":
            shown = f"{institution_names.get(value, value)} ({value})"
        elif key == "role":
            shown = roles.get(value, value)
        elif key == "mode":
            shown = modes.get(value, value)
        elif key == "stage":
            shown = stages.get(value, value)
        elif key in ("first_loan", "unsecured"):
            shown = _("Yes") if value == "1" else _("No")
        else:
            shown = value
        yield labels[key], shown
