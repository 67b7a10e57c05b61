"""Drafts of forms whose session ended while the user was typing: kept server-side (the text may
be longer than a cookie holds) under the hash of a random key that only the new session knows,
and given back once to the same page after sign-in. Drafts older than two days are dropped.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select

from models import FormDraft, db, utcnow

from ..security import digest

KEEP_FOR = timedelta(days=2)


def stash(path: str, data: dict[str, list[str]]) -> str:
    """Keep ``data`` typed on ``path``; returns the key to remember in the session.

    This commits by itself: it is called from the sign-in gate (Flask-Login's unauthorized
    handler, in ``before_request``) when a POST arrives after the session ended. No view runs
    on that request, so no unit of work (``views/_uow.py``) would commit the draft."""
    token = secrets.token_urlsafe(24)
    db.session.execute(delete(FormDraft).where(FormDraft.created_at < utcnow() - KEEP_FOR))
    db.session.add(FormDraft(token_hash=digest(token), path=path[:255], data=data))
    db.session.commit()
    return token


def take(token: str, path: str) -> dict[str, list[str]] | None:
    """The draft kept under ``token`` for ``path``, deleted as it is given back (the page's
    unit of work commits the deletion); None if there is none for this page."""
    draft = db.session.execute(
        select(FormDraft).where(FormDraft.token_hash == digest(token))
    ).scalar_one_or_none()
    if draft is None or draft.path != path:
        return None
    data = draft.data
    db.session.delete(draft)
    return data
