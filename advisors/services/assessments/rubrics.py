"""The rubric's versions: the newest is used by the next compile of a draft; a compiled period
keeps the version it was compiled with."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from models import RubricVersion, User, db, utcnow

from ...audit import record_bulk
from ...errors import Forbidden, ValidationFailed
from ...scoring.rubric import DEFAULT_RUBRIC, RubricSpec, load_rubric
from ..firms import clean_text
from .core import NOTE_MAX, _lock_writers
from .ranking import insert_for

RUBRIC_LOCK_KEY = 0  # period keys are 200001 and up


def _spec_of(version: RubricVersion) -> RubricSpec:
    return RubricSpec.from_dict(version.spec)


def current_rubric() -> RubricVersion:
    """The newest rubric version; version 1 (the default rubric) is created when there is none
    (in the caller's transaction: commit after)."""
    newest = _newest_rubric()
    if newest is not None:
        return newest
    values = {"number": 1, "spec": DEFAULT_RUBRIC.to_dict(), "note": None, "created_at": utcnow()}
    insert = insert_for(RubricVersion.__table__).values(**values)
    result = db.session.execute(insert.on_conflict_do_nothing(index_elements=["number"]))
    newest = _newest_rubric()
    if result.rowcount:
        record_bulk("insert", "rubric_version", [(newest.id, {"number": 1, "note": None})])
    return newest


def _newest_rubric() -> RubricVersion | None:
    return db.session.execute(
        select(RubricVersion).order_by(RubricVersion.number.desc()).limit(1)
    ).scalar_one_or_none()


def rubric_versions() -> list[RubricVersion]:
    """Every rubric version, newest first (for the editor's history)."""
    return list(
        db.session.execute(select(RubricVersion).order_by(RubricVersion.number.desc())).scalars()
    )


def rubric_spec(version: RubricVersion) -> RubricSpec:
    """The stored rubric of a version as a :class:`RubricSpec`."""
    return _spec_of(version)


def save_rubric(actor: User, spec_data: dict, note: str | None = None) -> RubricVersion:
    """A new rubric version (the finance office). ``spec_data`` is shaped like
    :meth:`RubricSpec.to_dict`; errors are reported per field (``metrics.2.weight`` …). A new
    version is used by the next compile of a draft; published results keep theirs."""
    if actor is None or actor.role != "finance_office":
        raise Forbidden(_("Only the finance office may change the rubric."))
    errors: dict[str, str] = {}
    spec, spec_errors = load_rubric(spec_data)
    errors.update({str(k): str(v) for k, v in spec_errors.items()})
    if note is not None and not isinstance(note, str):
        errors["note"] = _("Enter the note as text.")
        note = None
    note = clean_text(note or "") or None  # control characters dropped (no NUL in PostgreSQL)
    if note is not None and len(note) > NOTE_MAX:
        errors["note"] = _("At most %(n)s characters.", n=NOTE_MAX)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    _lock_writers("UPDATE rubric_version SET number = number WHERE number = 0", {}, RUBRIC_LOCK_KEY)
    newest = _newest_rubric()
    version = RubricVersion(
        number=(newest.number if newest is not None else 0) + 1,
        spec=spec.to_dict(),
        note=note,
        created_at=utcnow(),
        created_by_id=actor.id,
    )
    db.session.add(version)
    db.session.flush()
    return version
