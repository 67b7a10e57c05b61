"""Reference data every database has, demo or not: the policy-tool catalogue of REFERENCE.md,
the default assessment rubric and the catalogue of institution indicators. Inserted after
every ``db upgrade`` (migrations/env.py) and by ``flask --app run setup``; only what is missing
is inserted, so a re-run never duplicates an entry and never undoes an edit made in the product
(a renamed or deactivated tool or indicator stays so).

Why not a data migration: a migration would freeze a copy of the catalogue at the revision that
added it, and entries added to the catalogue in later releases would need a migration each;
here each catalogue has one source (``services/policies.CATALOGUE``,
``services/indicators/catalogue.CATALOGUE``) and every upgrade tops it up.
"""

from __future__ import annotations

from sqlalchemy import func, select

from models import RubricVersion, db

from .audit import acting_as


def ensure_reference_data() -> dict[str, int]:
    """Insert the missing reference data in the current session (flushed, not committed).
    Returns how many rows of each kind were added."""
    from .services.assessments import current_rubric
    from .services.indicators.catalogue import seed_catalogue as seed_indicators
    from .services.policies import seed_catalogue

    rubrics = db.session.scalar(select(func.count()).select_from(RubricVersion))
    added = {
        "policy_tools": seed_catalogue(),
        "rubric_versions": 0 if rubrics else 1,
        "indicators": seed_indicators(),
    }
    current_rubric()  # creates version 1, the default rubric, when there is none
    db.session.flush()
    return added


def ensure_after_upgrade() -> dict[str, int]:
    """Called by migrations/env.py once the schema is at head: its own transaction."""
    try:
        with acting_as(label="setup"):
            added = ensure_reference_data()
        db.session.commit()
        return added
    finally:
        db.session.remove()
