"""Sign-in throttling that slows a guesser down without locking the real user out.

Every attempt is a ``LoginAttempt`` row: at the sign-in form (kind ``sign_in``) and at the
current-password check of a password change (kind ``password``), successful or not, and also
the attempts refused because a delay was still running. Nothing is ever erased by a success;
an administrator's "clear" sets ``cleared_at`` on failures, which then no longer count.

Three keys are counted over ``LOGIN_THROTTLE_WINDOW`` (failures that are not cleared):

* **(address, account)** — the failures of this account from this address since the last
  success of the same pair. The first ``LOGIN_FREE_FAILURES`` are free; after that each attempt
  must come at least ``LOGIN_DELAY_FIRST`` × 2^(failures − free) after the pair's last failure,
  capped at ``LOGIN_DELAY_MAX`` (15 s, 30 s, 1 min, 2 min … 15 min). Someone hammering one
  account from one address makes their own wait grow to the cap; nobody else is affected.
* **account** (any address) — after ``LOGIN_ACCOUNT_FREE_FAILURES`` a small growing delay capped
  at ``LOGIN_ACCOUNT_DELAY_MAX`` (about a minute) after the account's last failure. A guesser
  spread over many addresses gets about one try a minute in all; the real user from another
  address waits at most that minute — never a long lock of the right password.
* **address** (any account, sign-in only) — after ``LOGIN_ADDRESS_FREE_FAILURES`` a growing
  delay after the address's last failure, capped at ``LOGIN_ADDRESS_DELAY_MAX``: one address
  trying many accounts (credential stuffing) is slowed down.

The account and address delays do not apply to an address the account signed in from
successfully within ``LOGIN_KNOWN_ADDRESS_DAYS`` (a "known" address): people who signed in
behind a shared proxy or NAT before are never held up by someone else's typos or guesses there,
and a distributed guesser cannot keep the real user out of their usual place. The
(address, account) delay always applies, so a guesser at a known address is still slowed.

Decisions worth knowing:

* A refused attempt is recorded as a failure and never reaches the password check: it says
  nothing about the password and costs no argon2 work. Because it counts, retrying before the
  wait is over makes the next wait longer. So the user is always told the wait that follows
  the attempt at hand (that attempt counted), on a refusal and on the failure that starts a
  wait, and obeying the message never earns a refusal.
* The current-password check of a password change uses the same (address, account) and account
  rules, counted apart from sign-ins (kind ``password``); the address rule is for sign-in only.
* A delay is "refused until T", worked out from the rows; the request never sleeps (a sleeping
  worker would hand an attacker a cheap way to tie up the server).
* The window (an hour by default) is well above the ~16 minutes the (address, account) delay
  needs to reach its cap, so a patient guesser settles at a few tries an hour per address,
  while typos that never ended in a success are forgotten after the window.
* Limits: an attacker hammering one account from very many fresh addresses keeps the account
  delay (≤ a minute) running, which also holds up the real user at an address they have not
  signed in from before; their known addresses stay open. IPv6 clients are counted per full
  address, not per /64.

Queries per attempt: one for the pair's last success (which also tells whether the address is
known), one ``UNION ALL`` of an aggregate per key. Each aggregate reads the newest failures of
its key within the window from the (username, at) or (ip, at) index and stops after as many as
can still change the delay (``Rule.saturation``), so its cost is bounded however many rows a
flood has written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, literal_column, select, union_all, update
from sqlalchemy.orm import aliased

from models import AuditLog, LoginAttempt, db, utcnow

from .audit import current_actor
from .errors import ValidationFailed

SIGN_IN = "sign_in"
PASSWORD = "password"  # noqa: S105 (an attempt kind, not a secret)
KINDS = (SIGN_IN, PASSWORD)

PAIR = "pair"
ACCOUNT = "account"
ADDRESS = "address"
SCOPES = (PAIR, ACCOUNT, ADDRESS)

USERNAME_MAX = 60  # LoginAttempt.username
IP_MAX = 64  # LoginAttempt.ip


@dataclass(frozen=True)
class Rule:
    """``free`` failures without a wait, then first × 2^(failures − free), at most ``cap``."""

    free: int
    first: timedelta
    cap: timedelta

    def delay(self, failures: int) -> timedelta:
        if failures < self.free:
            return timedelta(0)
        steps = failures - self.free
        if steps >= 40:  # 2**40 steps overflow any sane cap
            return self.cap
        return min(self.cap, self.first * 2**steps)

    @property
    def saturation(self) -> int:
        """The failure count at which the delay reaches its cap: counting further changes
        nothing, so a key's aggregate reads at most this many rows."""
        if self.first <= timedelta(0) or self.cap <= timedelta(0):
            return max(self.free, 1)
        n = self.free
        while self.delay(n) < self.cap:
            n += 1
        return max(n, 1)


def rules() -> dict[str, Rule]:
    cfg = current_app.config
    return {
        PAIR: Rule(cfg["LOGIN_FREE_FAILURES"], cfg["LOGIN_DELAY_FIRST"], cfg["LOGIN_DELAY_MAX"]),
        ACCOUNT: Rule(
            cfg["LOGIN_ACCOUNT_FREE_FAILURES"],
            cfg["LOGIN_ACCOUNT_DELAY_FIRST"],
            cfg["LOGIN_ACCOUNT_DELAY_MAX"],
        ),
        ADDRESS: Rule(
            cfg["LOGIN_ADDRESS_FREE_FAILURES"],
            cfg["LOGIN_ADDRESS_DELAY_FIRST"],
            cfg["LOGIN_ADDRESS_DELAY_MAX"],
        ),
    }


def normalise(username: str | None, ip: str | None) -> tuple[str, str]:
    """The keys as stored: the username trimmed and lower-cased, both cut to their columns."""
    return (username or "").strip().lower()[:USERNAME_MAX], (ip or "-")[:IP_MAX]


def _aware(value) -> datetime | None:
    """Aggregates may lose the column type on SQLite: accept a string or a naive value."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _seconds_until(until: datetime, now: datetime) -> int:
    """Whole seconds from now until ``until``, rounded up (at least 1)."""
    remaining = (until - now).total_seconds()
    whole = int(remaining)
    return max(1, whole + (1 if remaining > whole else 0))


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt may be checked now; if not, until when and which limit holds it."""

    until: datetime | None = None
    limit: str | None = None  # PAIR, ACCOUNT or ADDRESS
    retry_after: int = 0  # whole seconds, rounded up

    @property
    def allowed(self) -> bool:
        return self.until is None


_FAILED = (LoginAttempt.success.is_(False), LoginAttempt.cleared_at.is_(None))


def _last_success(username: str, ip: str, kind: str, since: datetime) -> datetime | None:
    return _aware(
        db.session.execute(
            select(LoginAttempt.at)
            .where(
                LoginAttempt.username == username,
                LoginAttempt.ip == ip,
                LoginAttempt.kind == kind,
                LoginAttempt.success.is_(True),
                LoginAttempt.at >= since,
            )
            .order_by(LoginAttempt.at.desc())
            .limit(1)
        ).scalar()
    )


def _newest_failures(name: str, limit: int, *where):
    """(name, count, last) over the newest ``limit`` counted failures matching ``where``."""
    newest = (
        select(LoginAttempt.at)
        .where(*_FAILED, *where)
        .order_by(LoginAttempt.at.desc())
        .limit(limit)
        .subquery()
    )
    return select(
        literal_column(f"'{name}'").label("key"),
        func.count().label("n"),
        func.max(newest.c.at).label("last"),
    ).select_from(newest)


@dataclass(frozen=True)
class Gate:
    """The counted failures of the keys that apply to one attempt: (key, count, last)."""

    keys: tuple[tuple[str, int, datetime | None], ...]
    now: datetime

    def verdict(self, failing: bool = False) -> Verdict:
        """The wait before an attempt is checked. With ``failing``: the wait once the attempt
        at hand is recorded as a failure (refused, or a wrong password) — what the user is
        told, so that obeying the message never earns a refusal."""
        limits = rules()
        verdict = Verdict()
        for key, count, last in self.keys:
            if failing:
                count, last = count + 1, self.now
            if last is None:
                continue
            until = last + limits[key].delay(count)
            if until > self.now and (verdict.until is None or until > verdict.until):
                verdict = Verdict(
                    until=until, limit=key, retry_after=_seconds_until(until, self.now)
                )
        return verdict


def gate(username: str, ip: str, kind: str, now: datetime) -> Gate:
    """The state of the limits for an attempt by ``username`` from ``ip`` (keys normalised,
    see :func:`normalise`) at ``now``. Two queries."""
    cfg = current_app.config
    window: timedelta = cfg["LOGIN_THROTTLE_WINDOW"]
    since = now - window
    limits = rules()

    # Query 1: the pair's last success. It resets the pair's count and, when recent enough,
    # makes the address known to this account (no account or address delay there).
    known_since = now - timedelta(days=cfg["LOGIN_KNOWN_ADDRESS_DAYS"])
    last_ok = _last_success(username, ip, kind, min(since, known_since))
    known = last_ok is not None and last_ok >= known_since

    # Query 2: one bounded aggregate per key that applies.
    pair_where = [
        LoginAttempt.username == username,
        LoginAttempt.ip == ip,
        LoginAttempt.kind == kind,
        LoginAttempt.at >= since,
    ]
    if last_ok is not None:
        pair_where.append(LoginAttempt.at > last_ok)
    branches = [_newest_failures(PAIR, limits[PAIR].saturation, *pair_where)]
    if not known:
        branches.append(
            _newest_failures(
                ACCOUNT,
                limits[ACCOUNT].saturation,
                LoginAttempt.username == username,
                LoginAttempt.kind == kind,
                LoginAttempt.at >= since,
            )
        )
        if kind == SIGN_IN:
            # Signed-in users checking their current password are no address-wide signal.
            branches.append(
                _newest_failures(
                    ADDRESS,
                    limits[ADDRESS].saturation,
                    LoginAttempt.ip == ip,
                    LoginAttempt.kind == SIGN_IN,
                    LoginAttempt.at >= since,
                )
            )
    stmt = branches[0] if len(branches) == 1 else union_all(*branches)
    keys = tuple(
        (key, int(count), _aware(last)) for key, count, last in db.session.execute(stmt).all()
    )
    return Gate(keys=keys, now=now)


def check(username: str, ip: str, kind: str, now: datetime) -> Verdict:
    """May an attempt be checked at ``now``? Nothing is recorded."""
    return gate(username, ip, kind, now).verdict()


def record(username: str, ip: str, kind: str, success: bool, now: datetime) -> None:
    db.session.add(LoginAttempt(username=username, ip=ip, kind=kind, success=success, at=now))


# ------------------------------------------------------------------ administration
@dataclass(frozen=True)
class Throttled:
    """A key over its free failures: its next failure (or the current one) means a wait."""

    scope: str
    username: str | None
    ip: str | None
    kind: str
    failures: int
    last_at: datetime
    until: datetime

    def waiting(self, now: datetime) -> bool:
        return self.until > now


@dataclass(frozen=True)
class Overview:
    pairs: list[Throttled]
    accounts: list[Throttled]
    addresses: list[Throttled]
    now: datetime
    window: timedelta

    @property
    def empty(self) -> bool:
        return not (self.pairs or self.accounts or self.addresses)


def overview(now: datetime | None = None, limit: int = 200) -> Overview:
    """The keys currently throttled (at or over their free failures in the window), each with
    its counted failures, last failure and the end of its delay; those still waiting first.
    Three grouped queries over the window's failures, each at most ``limit`` rows."""
    now = now or utcnow()
    window: timedelta = current_app.config["LOGIN_THROTTLE_WINDOW"]
    since = now - window
    limits = rules()
    f = LoginAttempt
    later = aliased(LoginAttempt)
    # A pair counts only the failures after its last success.
    success_after = (
        select(later.id)
        .where(
            later.username == f.username,
            later.ip == f.ip,
            later.kind == f.kind,
            later.success.is_(True),
            later.at > f.at,
        )
        .exists()
    )
    counted = (f.success.is_(False), f.cleared_at.is_(None), f.at >= since)
    last = func.max(f.at)

    def rows(scope, columns, where, group):
        stmt = (
            select(*columns, func.count(), last)
            .where(*counted, *where)
            .group_by(*group)
            .having(func.count() >= limits[scope].free)
            .order_by(last.desc())
            .limit(limit)
        )
        found = []
        for row in db.session.execute(stmt).all():
            *keys, count, last_at = row
            last_at = _aware(last_at)
            values = dict(zip((c.key for c in columns), keys, strict=True))
            found.append(
                Throttled(
                    scope=scope,
                    username=values.get("username"),
                    ip=values.get("ip"),
                    kind=values.get("kind", SIGN_IN),
                    failures=count,
                    last_at=last_at,
                    until=last_at + limits[scope].delay(count),
                )
            )
        found.sort(key=lambda t: (not t.waiting(now), -t.until.timestamp()))
        return found

    return Overview(
        pairs=rows(PAIR, (f.username, f.ip, f.kind), (~success_after,), (f.username, f.ip, f.kind)),
        accounts=rows(ACCOUNT, (f.username, f.kind), (), (f.username, f.kind)),
        addresses=rows(ADDRESS, (f.ip,), (f.kind == SIGN_IN,), (f.ip,)),
        now=now,
        window=window,
    )


def clear(
    scope: str,
    username: str | None,
    ip: str | None,
    kind: str = SIGN_IN,
    now: datetime | None = None,
) -> int:
    """An administrator clears a key: its counted failures get ``cleared_at`` and no longer
    count for any key. One audit entry says who cleared what and how many failures. Returns
    the number of failures cleared (0: nothing was throttled there). A bad key is refused
    (``ValidationFailed``) before anything is written."""
    now = now or utcnow()
    username, ip = _clear_key(scope, username, ip, kind)
    if scope == ADDRESS:
        kind = SIGN_IN
    cleared = db.session.execute(
        update(LoginAttempt)
        .where(*_counted(scope, username, ip, kind, now))
        .values(cleared_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    if cleared:
        _audit_clear(scope, username, ip, kind, cleared, now)
    return cleared


def _clear_key(
    scope: str, username: str | None, ip: str | None, kind: str
) -> tuple[str | None, str | None]:
    """The key to clear, normalised: (username, ip). Refused when incomplete or unknown."""
    errors = {}
    if scope not in SCOPES:
        errors["scope"] = _("Unknown kind of limit.")
    if kind not in KINDS:
        errors["kind"] = _("Unknown kind of attempt.")
    username = (username or "").strip().lower()[:USERNAME_MAX] or None
    ip = (ip or "").strip()[:IP_MAX] or None
    if scope in (PAIR, ACCOUNT) and not username:
        errors["username"] = _("An account is required.")
    if scope in (PAIR, ADDRESS) and not ip:
        errors["ip"] = _("An address is required.")
    if errors:
        raise ValidationFailed(_("Nothing was cleared."), errors)
    return username, ip


def _counted(scope: str, username: str | None, ip: str | None, kind: str, now: datetime) -> list:
    """The conditions selecting the failures the key counts now (within the window; for a
    pair, only those since its last success)."""
    since = now - current_app.config["LOGIN_THROTTLE_WINDOW"]
    where = [*_FAILED, LoginAttempt.at >= since]
    if scope == ADDRESS:
        return [*where, LoginAttempt.ip == ip, LoginAttempt.kind == SIGN_IN]
    where += [LoginAttempt.username == username, LoginAttempt.kind == kind]
    if scope == PAIR:
        where.append(LoginAttempt.ip == ip)
        last_ok = _last_success(username, ip, kind, since)
        if last_ok is not None:
            where.append(LoginAttempt.at > last_ok)  # only what the pair counts
    return where


def _audit_clear(
    scope: str, username: str | None, ip: str | None, kind: str, cleared: int, now: datetime
) -> None:
    """One audit entry for a clear: who cleared which key, and how many failures."""
    actor_id, label, actor_ip = current_actor()
    record_id = {
        PAIR: f"{username}@{ip}",
        ACCOUNT: f"account:{username}",
        ADDRESS: f"address:{ip}",
    }[scope]
    db.session.add(
        AuditLog(
            at=now,
            actor_id=actor_id,
            actor_label=label[:80],
            action="update",
            table_name=LoginAttempt.__tablename__,
            record_id=record_id[:60],
            changes={
                "scope": [None, scope],
                "username": [None, username],
                "ip": [None, ip],
                "kind": [None, kind],
                "failures": [cleared, 0],
                "cleared_at": [None, now.isoformat()],
            },
            ip=actor_ip,
        )
    )
