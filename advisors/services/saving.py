"""One change inside the request's unit of work (``views/_uow.py`` commits it once).

A route whose failure shows a page again (the form with its errors, the record as it now is)
runs the service call in :func:`attempt`: the change is flushed at the end of the block, so a
clash with a unique key or a version that moved is known there and not at the commit after the
response was built; and a refused or lost change is rolled back at once, so the page shown
next reads the stored state (a failed flush leaves a session that accepts no more SQL until it
is rolled back). The unit of work rolls back the same request anyway; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from advisors.errors import Conflict, DomainError
from models import db

# What two requests saving at the same moment run into: a unique key taken meanwhile, a version
# that moved. ``WITH_LOCKS`` adds a database busy past its timeout (SQLite's writer lock).
RACES: tuple[type[Exception], ...] = (IntegrityError, StaleDataError)
WITH_LOCKS: tuple[type[Exception], ...] = (*RACES, OperationalError)

# The domain error a lost race becomes: a message (a Conflict), or a function of the database
# error called after the rollback (so it may query) that returns the error, or None to let the
# database error through.
Refusal = str | Callable[[Exception], DomainError | None] | None


def _refusal(race: Refusal, exc: Exception) -> DomainError | None:
    if race is None:
        return None
    if isinstance(race, str):
        return Conflict(race)
    return race(exc)


@contextmanager
def attempt(race: Refusal = None, races: tuple[type[Exception], ...] = RACES) -> Iterator[None]:
    """Run the block's change and flush it. A :class:`DomainError` raised inside is re-raised
    after a rollback; a database error of ``races`` is rolled back and becomes the error
    ``race`` names (re-raised as it is when there is none)."""
    try:
        yield
        db.session.flush()
    except DomainError:
        db.session.rollback()
        raise
    except races as exc:
        db.session.rollback()
        error = _refusal(race, exc)
        if error is None:
            raise
        raise error from exc


def flush(race: Refusal = None, races: tuple[type[Exception], ...] = RACES) -> None:
    """Flush the session now: for a service whose caller must learn of a clash (a unique key
    taken meanwhile, a version that moved) as the domain error ``race`` names."""
    with attempt(race, races):
        pass
