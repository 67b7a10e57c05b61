"""Passwords (argon2id), sign-in sessions, login throttling and API tokens.

Services here take plain values; they never read ``request``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select, update

from models import ApiToken, User, UserSession, db, utcnow

from . import throttling

_hashers: dict[bool, PasswordHasher] = {}


def _hasher() -> PasswordHasher:
    fast = bool(current_app.config.get("PASSWORD_HASH_FAST"))
    if fast not in _hashers:
        # argon2-cffi's defaults are the RFC 9106 low-memory profile of argon2id.
        _hashers[fast] = (
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            if fast
            else PasswordHasher()
        )
    return _hashers[fast]


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        ok = _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if ok and _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return ok


# A hash to verify against when the username does not exist, so timing does not reveal it.
_DUMMY = {}


def _dummy_verify(password: str) -> None:
    fast = bool(current_app.config.get("PASSWORD_HASH_FAST"))
    if fast not in _DUMMY:
        _DUMMY[fast] = hash_password("not-a-real-password")
    try:
        _hasher().verify(_DUMMY[fast], password)
    except VerificationError:
        pass


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ---------------------------------------------------------------- sessions
def open_session(user: User, ip: str | None, user_agent: str | None) -> str:
    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            user_id=user.id,
            token_hash=digest(token),
            ip=(ip or "")[:64],
            user_agent=(user_agent or "")[:255],
        )
    )
    user.session_token = token
    return token


def load_session_user(token: str | None) -> User | None:
    """The user behind a session token, or None if revoked, expired or deactivated."""
    if not token:
        return None
    row = db.session.execute(
        select(UserSession).where(UserSession.token_hash == digest(token))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    now = utcnow()
    if now - row.last_seen_at > lifetime:
        return None
    if now - row.last_seen_at > timedelta(minutes=5):
        # Touch at most every few minutes so reads do not become writes. The user is loaded by
        # the request gate (before_request), outside any view's unit of work, so this touch
        # commits itself: nothing of the view has been written yet.
        db.session.execute(
            update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now)
        )
        db.session.commit()
    row.user.session_token = token
    return row.user


def revoke_session(token: str | None, reason: str = "logout") -> None:
    if token:
        db.session.execute(
            update(UserSession)
            .where(UserSession.token_hash == digest(token), UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
        )


def revoke_all_sessions(user: User, reason: str, keep_token: str | None = None) -> None:
    stmt = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if keep_token:
        stmt = stmt.where(UserSession.token_hash != digest(keep_token))
    db.session.execute(stmt.values(revoked_at=utcnow(), revoked_reason=reason))


def revoke_all_tokens(user: User) -> int:
    """Revoke every live API token of the user; returns how many there were."""
    result = db.session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount or 0


def change_password(user: User, new_password: str, keep_token: str | None = None) -> None:
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    revoke_all_sessions(user, "password_changed", keep_token=keep_token)


# ---------------------------------------------------------------- throttling
# The rules (growing delays per address and account, per account, per address) are in
# advisors/throttling.py. ``now`` may be given (tests); otherwise this module's ``utcnow``.
@dataclass
class LoginResult:
    user: User | None = None
    locked: bool = False  # refused because a delay is running; the attempt still counted
    # Whole seconds before the next attempt will be checked (after a refusal or a failure;
    # this attempt included). 0: no wait.
    retry_after: int = 0


def authenticate(username: str, password: str, ip: str, now=None) -> LoginResult:
    """Check a sign-in. While a delay runs the attempt is refused before the password is
    checked, and recorded as a failure like any other attempt."""
    now = now or utcnow()
    name, address = throttling.normalise(username, ip)
    gate = throttling.gate(name, address, throttling.SIGN_IN, now)
    if not gate.verdict().allowed:
        throttling.record(name, address, throttling.SIGN_IN, False, now)
        return LoginResult(locked=True, retry_after=gate.verdict(failing=True).retry_after)
    user = db.session.execute(
        select(User).where(func.lower(User.username) == name)
    ).scalar_one_or_none()
    if user is None:
        _dummy_verify(password)
        ok = False
    else:
        ok = verify_password(user, password) and user.active
    throttling.record(name, address, throttling.SIGN_IN, ok, now)
    if ok:
        return LoginResult(user=user)
    return LoginResult(retry_after=gate.verdict(failing=True).retry_after)


@dataclass
class PasswordCheck:
    ok: bool = False
    locked: bool = False
    retry_after: int = 0  # as in LoginResult


def check_current_password(user: User, password: str, ip: str, now=None) -> PasswordCheck:
    """The current-password check of a password change, throttled like sign-in (kind
    ``password``, keyed on the signed-in account and the address)."""
    now = now or utcnow()
    name, address = throttling.normalise(user.username, ip)
    gate = throttling.gate(name, address, throttling.PASSWORD, now)
    if not gate.verdict().allowed:
        throttling.record(name, address, throttling.PASSWORD, False, now)
        return PasswordCheck(locked=True, retry_after=gate.verdict(failing=True).retry_after)
    ok = verify_password(user, password)
    throttling.record(name, address, throttling.PASSWORD, ok, now)
    if ok:
        return PasswordCheck(ok=True)
    return PasswordCheck(retry_after=gate.verdict(failing=True).retry_after)


# ---------------------------------------------------------------- API tokens
TOKEN_PREFIX = "fa_"  # noqa: S105 (a visible prefix, not a secret)


def issue_token(user: User, name: str) -> tuple[ApiToken, str]:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name[:60], prefix=secret[:10], token_hash=digest(secret))
    db.session.add(row)
    return row, secret


def user_for_token(secret: str) -> User | None:
    row = db.session.execute(
        select(ApiToken).where(ApiToken.token_hash == digest(secret))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        # Called by the API's gate (before_request), outside the view's unit of work: the touch
        # commits itself, before the view has written anything.
        db.session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        db.session.commit()
    return row.user


def tokens_of(user: User) -> list[ApiToken]:
    """The user's API tokens, newest first (revoked ones too: the page shows them as such)."""
    return list(
        db.session.execute(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
        ).scalars()
    )


def open_sessions_of(user: User) -> list[UserSession]:
    """The user's sessions not revoked, most recently seen first."""
    return list(
        db.session.execute(
            select(UserSession)
            .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
            .order_by(UserSession.last_seen_at.desc())
        ).scalars()
    )


def revoke_token(user: User, token_id: int) -> bool:
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
