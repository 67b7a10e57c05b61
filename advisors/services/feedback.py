"""Firm feedback without an account: one-time links (and their QR codes) and the rating itself.

Once a case is resolved (or closed) its advisor, a referring bureau, the finance office or an
admin makes a link for the firm. The link carries a random token; only its SHA-256 digest is
stored, so the link is shown once, when it is made, and a leaked database gives nobody a usable
link. A new link for a case revokes the case's earlier unused ones. The link expires after
``FEEDBACK_LINK_DAYS`` days, works once, and shows the firm nothing but its own name and the
rating form.

The firm's rating (1-5, optional comment) is written with one conditional UPDATE (still unused,
not revoked, not expired), so two tabs or a replayed request record it once. The advisor whose
service is rated is notified. The assessment reads ``feedback_link`` directly.

The link is built on ``PUBLIC_BASE_URL``, the address the public reaches the app at (staff work
on the intranet; the firm opens the link from WeChat). Unset, the caller's own address is used,
which only suits development: :func:`public_base_problem` says so to admins.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update

from models import Enterprise, FeedbackLink, Referral, User, db, utcnow

from .. import audit
from ..errors import Conflict, DomainError, NotFound, ValidationFailed
from ..security import digest
from . import firms as firm_service
from .notifications import notify
from .referrals import get_for

RATEABLE = ("resolved", "closed")
# Who may see, make and revoke a case's links (each within their scope of cases: the advisor
# assigned, the bureaus that referred it).
CREATOR_ROLES = ("admin", "finance_office", "advisor", "bureau")
COMMENT_MAX = 500
DEFAULT_DAYS = 14
# secrets.token_urlsafe(32) gives 43 characters of [A-Za-z0-9_-]; anything else is not ours.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,100}$", re.ASCII)
AUDIT_LABEL = "firm feedback"


class LinkGone(DomainError):
    """The link was real but can no longer be used: ``reason`` is expired, used or revoked."""

    status = 410
    code = "gone"

    def __init__(self, reason: str):
        messages = {
            "expired": _("This feedback link has expired."),
            "used": _("This feedback link has already been used. Thank you for your feedback."),
            "revoked": _("This feedback link is no longer valid."),
        }
        super().__init__(messages[reason])
        self.reason = reason


def link_days() -> int:
    try:
        days = int(current_app.config.get("FEEDBACK_LINK_DAYS", DEFAULT_DAYS))
    except (TypeError, ValueError):
        days = DEFAULT_DAYS
    return days if days > 0 else DEFAULT_DAYS


def status_of(link: FeedbackLink, now: datetime | None = None) -> str:
    """active | used | revoked | expired (a used link stays "used" whatever happens later)."""
    now = now or utcnow()
    if link.used_at is not None:
        return "used"
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= now:
        return "expired"
    return "active"


# ----------------------------------------------------------------------------- the public address
def _normalised_base(raw) -> str | None:
    """``raw`` as ``scheme://host[:port][/path]`` without a trailing slash, or None unless it
    is a plain http(s) address (no user, query or fragment)."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text or any(c.isspace() for c in text):
        return None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return None
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
    ):
        return None
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


def public_base_url() -> str | None:
    """``PUBLIC_BASE_URL`` (normalised), or None when it is unset or unusable."""
    return _normalised_base(current_app.config.get("PUBLIC_BASE_URL"))


def public_base_problem() -> str | None:
    """What an admin is told about ``PUBLIC_BASE_URL``: None when it is a usable address."""
    raw = current_app.config.get("PUBLIC_BASE_URL")
    if not (raw.strip() if isinstance(raw, str) else ""):
        return _(
            "PUBLIC_BASE_URL is not set: firms' feedback links and QR codes use the address "
            "the person making them opened the app at, which a firm outside the intranet "
            "cannot reach. Set it to the public address of the app (for example "
            "https://jrb.example.gov.cn) and restart."
        )
    if public_base_url() is None:
        return _(
            "PUBLIC_BASE_URL is not an http:// or https:// address (%(value)s): feedback links "
            "use the address the person making them opened the app at instead.",
            value=raw.strip()[:100],
        )
    return None


def link_url(path: str, fallback_base: str) -> str:
    """The address the firm opens: the app path ``path`` (``/feedback/r/<token>``) under
    ``PUBLIC_BASE_URL``, or under ``fallback_base`` (the caller's own address) when unset."""
    base = public_base_url() or fallback_base.rstrip("/")
    return base + "/" + path.lstrip("/")


def _not_found() -> NotFound:
    return NotFound(_("The page or record was not found."))


# ----------------------------------------------------------------------------- staff side
def _case_for(actor: User, referral_id: int) -> Referral:
    """The case, when it is in the actor's scope and the actor's role may handle its links."""
    if actor.role not in CREATOR_ROLES:
        raise _not_found()
    return get_for(actor, referral_id)


def _rated(referral_id: int) -> FeedbackLink | None:
    return db.session.execute(
        select(FeedbackLink)
        .where(FeedbackLink.referral_id == referral_id, FeedbackLink.used_at.is_not(None))
        .order_by(FeedbackLink.used_at.desc(), FeedbackLink.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _reason(referral: Referral, rated: int | None) -> str | None:
    if rated is not None:
        return _("The firm has already rated this case (%(rating)s of 5).", rating=rated)
    if referral.status not in RATEABLE:
        return _("A feedback link can be made once the case is resolved or closed.")
    if referral.advisor_id is None:
        return _("The case has no advisor whose service could be rated.")
    return None


def why_not(referral: Referral) -> str | None:
    """Why no link can be made for this case now, or None when one can. One rating per case:
    once the firm has rated, no new link (the assessment counts each case once)."""
    rated = _rated(referral.id)
    return _reason(referral, rated.rating if rated is not None else None)


def create_link(actor: User, referral_id: int) -> tuple[FeedbackLink, str]:
    """A new one-time link for a resolved or closed case: (the row, the token). The token is
    not stored and cannot be shown again. Earlier unused links of the case are revoked."""
    referral = _case_for(actor, referral_id)
    reason = why_not(referral)
    if reason is not None:
        raise Conflict(reason)
    now = utcnow()
    for earlier in db.session.execute(
        select(FeedbackLink).where(
            FeedbackLink.referral_id == referral.id,
            FeedbackLink.used_at.is_(None),
            FeedbackLink.revoked_at.is_(None),
        )
    ).scalars():
        earlier.revoked_at = now
    token = secrets.token_urlsafe(32)
    link = FeedbackLink(
        referral_id=referral.id,
        advisor_id=referral.advisor_id,
        token_hash=digest(token),
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + timedelta(days=link_days()),
    )
    db.session.add(link)
    db.session.flush()
    return link, token


def revoke(actor: User, link_id: int) -> FeedbackLink:
    """Withdraw a link that has not been used. Revoking a revoked or expired link changes
    nothing; a used link keeps its rating (409)."""
    link = db.session.get(FeedbackLink, link_id)
    if link is None:
        raise _not_found()
    _case_for(actor, link.referral_id)  # scope: NotFound outside it
    if link.used_at is not None:
        raise Conflict(_("The firm has already used this link; its rating stays."))
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        db.session.flush()
    return link


def referral_id_of(link_id: int) -> int | None:
    """The case a link was made for (None for no such link)."""
    link = db.session.get(FeedbackLink, link_id)
    return link.referral_id if link is not None else None


@dataclass
class LinkLine:
    id: int
    status: str
    created_at: datetime
    created_by: str | None
    expires_at: datetime
    revoked_at: datetime | None
    used_at: datetime | None
    rating: int | None
    comment: str | None


@dataclass
class CaseLinks:
    referral: Referral
    firm_name: str
    advisor_name: str | None
    links: list[LinkLine]
    may_create: bool
    why_not: str | None


@dataclass(frozen=True)
class FirmRating:
    rating: int
    comment: str | None
    at: datetime


def firm_rating(referral_id: int) -> FirmRating | None:
    """The firm's own rating of the case (given through its feedback link), or None. One
    query; the caller has checked the scope."""
    link = _rated(referral_id)
    if link is None or link.rating is None:
        return None
    return FirmRating(link.rating, link.comment, link.used_at)


def links_for(actor: User, referral_id: int) -> CaseLinks:
    """The case's links, newest first, with their status (NotFound outside the scope)."""
    referral = _case_for(actor, referral_id)
    firm_name = db.session.scalar(
        select(Enterprise.name).where(Enterprise.id == referral.enterprise_id)
    )
    advisor_name = (
        db.session.scalar(select(User.display_name).where(User.id == referral.advisor_id))
        if referral.advisor_id
        else None
    )
    now = utcnow()
    lines = [
        LinkLine(
            id=link.id,
            status=status_of(link, now),
            created_at=link.created_at,
            created_by=by,
            expires_at=link.expires_at,
            revoked_at=link.revoked_at,
            used_at=link.used_at,
            rating=link.rating,
            comment=link.comment,
        )
        for link, by in db.session.execute(
            select(FeedbackLink, User.display_name)
            .outerjoin(User, User.id == FeedbackLink.created_by_id)
            .where(FeedbackLink.referral_id == referral.id)
            .order_by(FeedbackLink.created_at.desc(), FeedbackLink.id.desc())
        ).all()
    ]
    rated = next((line.rating for line in lines if line.status == "used"), None)
    reason = _reason(referral, rated)
    return CaseLinks(referral, firm_name, advisor_name, lines, reason is None, reason)


# ----------------------------------------------------------------------------- public side
def _find(token) -> FeedbackLink:
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        raise _not_found()
    link = db.session.execute(
        select(FeedbackLink).where(FeedbackLink.token_hash == digest(token))
    ).scalar_one_or_none()
    if link is None:
        raise _not_found()
    return link


def lookup(token) -> FeedbackLink:
    """The link of a token that can still be used. NotFound for an unknown or altered token;
    LinkGone (410) for a real one that has expired, been used or been revoked."""
    link = _find(token)
    state = status_of(link)
    if state != "active":
        raise LinkGone(state)
    return link


def firm_name(link: FeedbackLink) -> str:
    """The one thing about the case the public page shows."""
    return db.session.scalar(
        select(Enterprise.name)
        .join(Referral, Referral.enterprise_id == Enterprise.id)
        .where(Referral.id == link.referral_id)
    )


def field_labels() -> dict[str, str]:
    return {"rating": _("Rating"), "comment": _("Comment")}


def clean_rating(rating, comment) -> tuple[int, str | None]:
    """(rating 1-5, comment or None), or ValidationFailed naming each bad field."""
    labels = field_labels()
    errors = {}
    value = None
    if isinstance(rating, bool):
        rating = None
    if isinstance(rating, int):
        value = rating
    elif isinstance(rating, str):
        raw = rating.strip()
        if raw.isascii() and raw.isdigit() and len(raw) <= 2:
            value = int(raw)
    if value is None or not 1 <= value <= 5:
        errors["rating"] = _(
            "%(field)s: choose a whole number from 1 to 5.", field=labels["rating"]
        )
    text = firm_service.clean_text(comment) if comment is not None else ""
    if len(text) > COMMENT_MAX:
        errors["comment"] = _(
            "%(field)s must be at most %(n)s characters.", field=labels["comment"], n=COMMENT_MAX
        )
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return value, text or None


def submit_rating(token, rating, comment, *, ip: str | None = None) -> FeedbackLink:
    """Record the firm's rating once. The token is checked first (NotFound / LinkGone), then the
    input (ValidationFailed). The audit trail names the firm's feedback (and the address it came
    from, when given), not whoever may be signed in. Flushes; the caller commits."""
    link = lookup(token)
    value, text = clean_rating(rating, comment)
    now = utcnow()
    with audit.acting_as(label=AUDIT_LABEL, ip=(ip or "")[:64] or None):
        done = db.session.execute(
            update(FeedbackLink)
            .where(
                FeedbackLink.id == link.id,
                FeedbackLink.used_at.is_(None),
                FeedbackLink.revoked_at.is_(None),
                FeedbackLink.expires_at > now,
            )
            .values(used_at=now, rating=value, comment=text)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:
            # Another request got there first (or the link lapsed meanwhile): say which.
            db.session.expire(link)
            state = status_of(link, now)
            raise LinkGone(state if state != "active" else "used")
        audit.record_bulk(
            "update",
            FeedbackLink.__tablename__,
            [
                (
                    link.id,
                    {
                        "used_at": [None, now],
                        "rating": [None, value],
                        **({"comment": [None, text]} if text else {}),
                    },
                )
            ],
        )
        db.session.expire(link)
        name = firm_name(link)
        if link.advisor_id is not None:
            notify(
                [link.advisor_id],
                "feedback_received",
                referral_id=link.referral_id,
                params={"firm": name, "rating": value},
            )
        db.session.flush()
    return link
