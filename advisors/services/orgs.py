"""Organisations."""

from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import func, select

from models import ORG_TYPES, Organisation, User, db

from ..errors import ValidationFailed
from ..labels import labels, one_of

CODE_RE = re.compile(r"^[A-Za-z0-9_-]{2,40}$")


def find_org(code: str) -> Organisation | None:
    return db.session.execute(
        select(Organisation).where(func.lower(Organisation.code) == (code or "").strip().lower())
    ).scalar_one_or_none()


def _validate(code: str, name: str, type_: str, existing: Organisation | None = None) -> dict:
    errors = {}
    code = (code or "").strip()
    name = (name or "").strip()
    if not CODE_RE.match(code):
        errors["code"] = _("Code must be 2-40 letters, digits, '-' or '_'.")
    else:
        other = find_org(code)
        if other is not None and other is not existing:
            errors["code"] = _("An organisation with code %(code)s already exists.", code=code)
    if not name:
        errors["name"] = _("Name is required.")
    elif len(name) > 120:
        errors["name"] = _("Name must be at most 120 characters.")
    if type_ not in ORG_TYPES:
        errors["type"] = one_of(_("Type"), labels("org_type").values())
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    return {"code": code, "name": name, "type": type_}


def _check_short_name(short_name: str | None) -> None:
    if short_name and len(short_name.strip()) > 40:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"short_name": _("At most %(n)s characters.", n=40)},
        )


def create_org(code: str, name: str, type: str, short_name: str | None = None) -> Organisation:
    values = _validate(code, name, type)
    _check_short_name(short_name)
    org = Organisation(**values, short_name=(short_name or "").strip() or None, active=True)
    db.session.add(org)
    db.session.flush()
    return org


def update_org(
    org: Organisation, *, code: str, name: str, type: str, short_name: str | None, active: bool
) -> Organisation:
    values = _validate(code, name, type, existing=org)
    _check_short_name(short_name)
    if type != org.type and org.id is not None:
        members = db.session.scalar(select(func.count()).where(User.org_id == org.id))
        if members:
            raise ValidationFailed(
                _("Please correct the marked fields."),
                {"type": _("The type cannot change while the organisation has users.")},
            )
    org.code, org.name, org.type = values["code"], values["name"], values["type"]
    org.short_name = (short_name or "").strip() or None
    org.active = bool(active)
    db.session.flush()
    return org
