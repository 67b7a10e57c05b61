"""Users and advisor profiles."""

from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import func, select

from models import (
    ROLE_ORG_TYPES,
    ROLES,
    AdvisorProfile,
    AdvisorSpecialty,
    Organisation,
    Township,
    User,
    db,
)

from .. import passwords, security
from ..dbutil import chunks
from ..errors import ValidationFailed
from ..labels import labels, one_of
from ..sizing import INDUSTRIES

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,60}$")
MIN_PASSWORD = passwords.MIN_LENGTH


def find_user(username: str) -> User | None:
    return db.session.execute(
        select(User).where(func.lower(User.username) == (username or "").strip().lower())
    ).scalar_one_or_none()


def usernames_with_org(user_ids) -> dict[int, tuple[str, str | None]]:
    """User id -> (username, their organisation's code or None), one query per chunk of ids
    (the API names the advisor and institution of a page of cases or visits)."""
    found: dict[int, tuple[str, str | None]] = {}
    for part in chunks(sorted({i for i in user_ids if i})):
        for uid, username, code in db.session.execute(
            select(User.id, User.username, Organisation.code)
            .outerjoin(Organisation, Organisation.id == User.org_id)
            .where(User.id.in_(part))
        ):
            found[uid] = (username, code)
    return found


def password_problem(password: str, username: str = "", names=()) -> str | None:
    """Length, variety, common passwords, the user's own names: ``advisors/passwords.py``."""
    return passwords.password_problem(password, username, names)


_MAX_LENGTHS = {"display_name": 60, "phone": 30, "email": 120, "title": 60}


def _check_lengths(errors: dict, **values) -> None:
    for key, value in values.items():
        if value and len(value.strip()) > _MAX_LENGTHS[key]:
            errors[key] = _("At most %(n)s characters.", n=_MAX_LENGTHS[key])


def _check_role_org(
    role: str, org: Organisation | None, errors: dict, current_org_id: int | None = None
) -> None:
    if role not in ROLES:
        errors["role"] = one_of(_("Role"), labels("role").values())
        return
    allowed = ROLE_ORG_TYPES[role]
    if allowed is None:
        return
    if org is None:
        errors.setdefault("org", _("This role needs an organisation."))
    elif org.type not in allowed:
        errors["org"] = _(
            "A user with role %(role)s must belong to an organisation of type %(types)s.",
            role=role,
            types=" / ".join(allowed),
        )
    elif not org.active and org.id != current_org_id:
        # A user may stay in (and be edited in) an org deactivated after they joined it.
        errors["org"] = _("The organisation is deactivated.")


def create_user(
    *,
    username: str,
    password: str,
    role: str,
    org: Organisation | None = None,
    org_code: str | None = None,
    display_name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    must_change_password: bool = False,
) -> User:
    """``must_change_password``: the password is one an administrator gave (the web admin);
    the user must choose their own at first sign-in. Not for the CLI's first admin."""
    errors: dict[str, str] = {}
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        errors["username"] = _("Username must be 3-60 letters, digits, '.', '-' or '_'.")
    elif find_user(username) is not None:
        errors["username"] = _("The username %(u)s is already taken.", u=username)
    problem = password_problem(password, username, (display_name, email))
    if problem:
        errors["password"] = problem
    _check_lengths(errors, display_name=display_name, phone=phone, email=email)
    if org is None and org_code:
        from .orgs import find_org

        org = find_org(org_code)
        if org is None:
            errors["org"] = _("No organisation with code %(code)s.", code=org_code)
    _check_role_org(role, org, errors)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    user = User(
        username=username,
        display_name=(display_name or "").strip() or username,
        password_hash=security.hash_password(password),
        role=role,
        org_id=org.id if org is not None and ROLE_ORG_TYPES[role] is not None else None,
        phone=(phone or "").strip() or None,
        email=(email or "").strip() or None,
        active=True,
        must_change_password=bool(must_change_password),
    )
    db.session.add(user)
    db.session.flush()
    if role == "advisor":
        db.session.add(AdvisorProfile(user_id=user.id))
        db.session.flush()
    return user


def update_user(
    user: User,
    *,
    display_name: str,
    role: str,
    org: Organisation | None,
    phone: str | None,
    email: str | None,
    active: bool,
) -> User:
    errors: dict[str, str] = {}
    if not (display_name or "").strip():
        errors["display_name"] = _("Display name is required.")
    _check_lengths(errors, display_name=display_name, phone=phone, email=email)
    _check_role_org(role, org, errors, current_org_id=user.org_id)
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    user.display_name = display_name.strip()
    user.role = role
    user.org_id = org.id if org is not None and ROLE_ORG_TYPES[role] is not None else None
    user.phone = (phone or "").strip() or None
    user.email = (email or "").strip() or None
    if role == "advisor" and db.session.get(AdvisorProfile, user.id) is None:
        db.session.add(AdvisorProfile(user_id=user.id))
    if user.active and not active:
        deactivate_user(user)
    else:
        user.active = bool(active)
    db.session.flush()
    return user


def deactivate_user(user: User) -> None:
    """Deactivation ends every session and API token of the user at once."""
    user.active = False
    security.revoke_all_sessions(user, "deactivated")
    security.revoke_all_tokens(user)
    profile = db.session.get(AdvisorProfile, user.id)
    if profile is not None:
        profile.accepting = False
    db.session.flush()


def set_password(
    user: User, password: str, keep_token: str | None = None, *, temporary: bool = False
) -> int:
    """Set a new password: signs out the user's other sessions (all but ``keep_token``) and
    revokes every API token. ``temporary``: an administrator gave it, so the user must choose
    their own at next sign-in; otherwise the user chose it and that requirement ends.
    Returns how many API tokens were revoked."""
    problem = password_problem(password, user.username, (user.display_name, user.email))
    if problem:
        raise ValidationFailed(problem, {"new_password": problem})
    security.change_password(user, password, keep_token=keep_token)
    revoked = security.revoke_all_tokens(user)
    user.must_change_password = bool(temporary)
    if temporary:
        # An administrator gave a new password, usually because the user was stuck: the
        # account's sign-in delays end with it.
        from .. import throttling

        throttling.clear(throttling.ACCOUNT, user.username, None)
    db.session.flush()
    return revoked


def update_advisor_profile(
    profile: AdvisorProfile,
    *,
    title: str | None,
    capacity: int | None,
    accepting: bool,
    specialties: list[str],
    township_ids: list[int],
    note: str | None = None,
) -> AdvisorProfile:
    errors = {}
    _check_lengths(errors, title=title)
    if capacity is None or capacity < 0 or capacity > 500:
        errors["capacity"] = _("Capacity must be a whole number from 0 to 500.")
    bad = [s for s in specialties if s not in INDUSTRIES]
    if bad:
        errors["specialties"] = _("Unknown industries: %(items)s.", items=", ".join(bad))
    townships = []
    if township_ids:
        townships = list(
            db.session.execute(select(Township).where(Township.id.in_(township_ids))).scalars()
        )
        if len(townships) != len(set(township_ids)):
            errors["townships"] = _("Unknown township selected.")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    profile.title = (title or "").strip() or None
    profile.capacity = capacity
    profile.accepting = bool(accepting)
    profile.note = (note or "").strip() or None
    profile.townships = townships
    wanted = set(specialties)
    for row in list(profile.specialty_rows):
        if row.industry not in wanted:
            profile.specialty_rows.remove(row)
    have = {row.industry for row in profile.specialty_rows}
    for industry in sorted(wanted - have):
        profile.specialty_rows.append(AdvisorSpecialty(user_id=profile.user_id, industry=industry))
    db.session.flush()
    return profile
