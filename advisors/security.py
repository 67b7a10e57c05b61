"""Passwords (argon2id), sign-in sessions, login throttling and API tokens.

Services here take plain values; they never read ``request``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select, update

from models import ApiToken, LoginAttempt, User, UserSession, db, utcnow

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
        # Touch at most every few minutes so reads do not become writes.
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


def revoke_all_tokens(user: User) -> None:
    db.session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def change_password(user: User, new_password: str, keep_token: str | None = None) -> None:
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    revoke_all_sessions(user, "password_changed", keep_token=keep_token)


# ---------------------------------------------------------------- throttling
@dataclass
class LoginResult:
    user: User | None = None
    locked: bool = False
    retry_after_minutes: int = 0


def _recent_failures(column, value, since) -> tuple[int, object]:
    count, last = db.session.execute(
        select(func.count(), func.max(LoginAttempt.at)).where(
            column == value, LoginAttempt.success.is_(False), LoginAttempt.at >= since
        )
    ).one()
    return count, last


def authenticate(username: str, password: str, ip: str) -> LoginResult:
    """Check a sign-in. Too many recent failures for the account or the IP lock it for a while."""
    cfg = current_app.config
    window: timedelta = cfg["LOGIN_THROTTLE_WINDOW"]
    now = utcnow()
    since = now - window
    username = (username or "").strip()

    for column, value, limit in (
        (LoginAttempt.username, username.lower(), cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT"]),
        (LoginAttempt.ip, ip, cfg["LOGIN_MAX_FAILURES_PER_IP"]),
    ):
        count, last = _recent_failures(column, value, since)
        if count >= limit:
            if last is not None and last.tzinfo is None:  # SQLite's MAX() may lose the type
                last = last.replace(tzinfo=UTC)
            remaining = (last + window - now) if last else window
            minutes = max(1, int(remaining.total_seconds() // 60) + 1)
            return LoginResult(locked=True, retry_after_minutes=minutes)

    user = db.session.execute(
        select(User).where(func.lower(User.username) == username.lower())
    ).scalar_one_or_none()
    if user is None:
        _dummy_verify(password)
        ok = False
    else:
        ok = verify_password(user, password) and user.active
    db.session.add(LoginAttempt(username=username.lower()[:60], ip=ip[:64], success=ok))
    return LoginResult(user=user if ok else None)


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
        db.session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        db.session.commit()
    return row.user


def revoke_token(user: User, token_id: int) -> bool:
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
