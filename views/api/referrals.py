"""API: referrals — the bureau push, the scoped list and detail, assignment.

Every route is thin: parse the body -> call the referral rule set (the same one the web form and
the list upload use) -> commit once -> JSON. A list page costs a fixed number of queries whatever
its size: the referrals with their firm, then one query each for the referring bureaus, the
advisors, the timelines and the working-day calendar.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from decimal import Decimal

from flask import jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.exc import StaleDataError

from advisors.dbutil import chunks
from advisors.i18n import SHANGHAI
from advisors.params import MAX_ID, parse_id, parse_int
from advisors.permissions import allow, scoped
from advisors.services import referrals as service
from advisors.services import sla
from advisors.services.firms import clean_text
from advisors.services.labels import one_of
from models import ROLES, STATUSES, Organisation, Referral, ReferralEvent, User, db

from .._http import api_error
from . import bad_request, bp

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_NOT_JSON = object()


# ----------------------------------------------------------------------------- helpers
def _body():
    """The request body parsed as JSON whatever its content type, or ``_NOT_JSON``."""
    try:
        return json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
        return _NOT_JSON


def _money(value: Decimal | None) -> str | None:
    """万元 as a plain decimal string without trailing zeros: 100.1 -> "100.1", 800 -> "800"."""
    if value is None:
        return None
    return format(value.normalize(), "f")


def _iso(dt: datetime | None) -> str | None:
    """A stored UTC timestamp as ISO 8601 in Asia/Shanghai (with its +08:00 offset)."""
    return dt.astimezone(SHANGHAI).isoformat(timespec="seconds") if dt is not None else None


def _day(d) -> str | None:
    return d.isoformat() if d is not None else None


def encode_cursor(created_at: datetime, referral_id: int) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{referral_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The position a cursor points after. Raises ValueError for anything we did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        stamp, sep, rid = raw.partition("|")
        referral_id = parse_id(rid)
        if not sep or referral_id is None:
            raise ValueError("bad cursor")
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None:
            raise ValueError("bad cursor")
        at = at.astimezone(UTC)
    except (ValueError, OverflowError, binascii.Error) as exc:
        raise ValueError("bad cursor") from exc
    return at, referral_id


# ----------------------------------------------------------------------------- REFERRAL
def _with_enterprise(user: User):
    stmt = select(Referral).join(Referral.enterprise).options(contains_eager(Referral.enterprise))
    return scoped(Referral, user, stmt)


def _serialise(referrals: list[Referral]) -> list[dict]:
    """REFERRAL objects for a page of cases whose firm is loaded: a fixed number of queries."""
    if not referrals:
        return []
    ids = [r.id for r in referrals]
    bureaus = service.bureaus_of(ids)
    advisor_ids = sorted({r.advisor_id for r in referrals if r.advisor_id})
    advisors: dict[int, tuple[str, str | None]] = {}
    for part in chunks(advisor_ids):
        for uid, username, org_code in db.session.execute(
            select(User.id, User.username, Organisation.code)
            .outerjoin(Organisation, Organisation.id == User.org_id)
            .where(User.id.in_(part))
        ):
            advisors[uid] = (username, org_code)
    timelines: dict[int, list[dict]] = {rid: [] for rid in ids}
    for part in chunks(ids):
        for event in db.session.execute(
            select(
                ReferralEvent.referral_id,
                ReferralEvent.at,
                ReferralEvent.kind,
                ReferralEvent.status,
                ReferralEvent.actor_label,
                ReferralEvent.note,
            )
            .where(ReferralEvent.referral_id.in_(part))
            .order_by(ReferralEvent.referral_id, ReferralEvent.at, ReferralEvent.id)
        ):
            timelines[event.referral_id].append(
                {
                    "at": _iso(event.at),
                    "status": event.status,
                    "by": event.actor_label,
                    "note": event.note,
                    "kind": event.kind,
                }
            )
    cal = service.calendar()
    today = service.today()
    out = []
    for r in referrals:
        firm = r.enterprise
        username, institution = advisors.get(r.advisor_id, (None, None))
        outcome = None
        if r.outcome_result is not None:
            outcome = {
                "result": r.outcome_result,
                "amount_wan": _money(r.outcome_amount_wan),
                "note": r.outcome_note,
            }
        out.append(
            {
                "id": r.id,
                "status": r.status,
                "enterprise": {
                    "credit_code": firm.credit_code,
                    "name": firm.name,
                    "industry": firm.industry,
                    "size_class": firm.size_class,
                    "township": _township(firm),
                },
                "referrers": bureaus.get(r.id, []),
                "advisor": username,
                "needs": r.needs,
                "amount_wan": _money(r.amount_wan),
                "created_at": _iso(r.created_at),
                "timeline": timelines[r.id],
                "outcome": outcome,
                # Extensions
                "institution": institution,
                "purpose": r.purpose,
                "note": r.note,
                "rejected_reason": r.rejected_reason,
                "assigned_at": _iso(r.assigned_at),
                "first_contact_due": _day(r.first_contact_due),
                "first_contact_on": _day(r.first_contact_on),
                "sla": sla.flag(r.status, r.first_contact_due, r.first_contact_on, today, cal),
                "version": r.version,
            }
        )
    return out


def _township(firm) -> dict | None:
    if firm.township is not None:
        return {"code": firm.township.code, "name": firm.township.name, "matched": True}
    if firm.township_text:
        return {"code": None, "name": firm.township_text, "matched": False}
    return None


def _one(user: User, referral_id: int) -> dict | None:
    if not 0 < referral_id <= MAX_ID:
        return None
    found = db.session.execute(_with_enterprise(user).where(Referral.id == referral_id)).scalar()
    return _serialise([found])[0] if found is not None else None


def _unicode_ok(value) -> bool:
    """False when a string anywhere in ``value`` holds a lone surrogate: JSON can spell one
    ("\\ud800"), but it is not text any database can store."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


def _bad_unicode(label: str) -> str:
    return _("%(field)s contains characters that are not valid Unicode.", field=label)


_TEXT_ONLY = ("credit_code", "industry")
_TEXT_OR_NUMBER = ("name", "address", "contact_name", "contact_phone", "purpose", "note")


def _shape_errors(item) -> dict[str, str]:
    """Values the rule set cannot read, caught before it runs: it expects text for the credit
    code and the industry, text (or a number, e.g. a phone) for the other text fields — never
    a list, object or boolean, which it would store as their Python spelling — and a name,
    code, any other text, or a number (a code sent as one) for the township."""
    if not isinstance(item, dict):
        return {}
    labels = service.item_labels()
    errors = {
        key: _bad_unicode(labels[key])
        for key, value in item.items()
        if key in labels and not _unicode_ok(value)
    }
    for key in (*_TEXT_ONLY, *_TEXT_OR_NUMBER):
        value = item.get(key)
        if key in errors:
            continue
        allowed = (str,) if key in _TEXT_ONLY else (str, int, float)
        if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
            errors[key] = _("%(field)s must be text.", field=labels[key])
    township = item.get("township")
    if "township" not in errors and not (
        township is None or isinstance(township, str) or type(township) is int
    ):
        errors["township"] = _(
            "%(field)s must be a township name or code.", field=labels["township"]
        )
    return errors


def _not_found():
    return api_error(404, "not_found", _("The page or record was not found."))


# ----------------------------------------------------------------------------- routes
@bp.route("/referrals", methods=["POST"])
@allow("bureau")
def submit_referrals():
    body = _body()
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return bad_request({"items": _('Send a JSON object {"items": [...]} with a list.')})
    if not 1 <= len(items) <= service.MAX_ITEMS:
        return bad_request(
            {"items": _("Send from 1 to %(n)s items per call.", n=service.MAX_ITEMS)}
        )
    # Items the rule set cannot read go in as None, which it rejects (keeping every index);
    # their result then names each bad field, plus whatever else is wrong with the item.
    unreadable = {i: errs for i, item in enumerate(items) if (errs := _shape_errors(item))}
    readable = [None if i in unreadable else item for i, item in enumerate(items)]
    try:
        results = service.submit(current_user._get_current_object(), readable, source="api")
        for result in results:
            if result.index in unreadable:
                errs = unreadable[result.index]
                rest = {k: v for k, v in items[result.index].items() if k not in errs}
                result.errors = {**service.clean_item(rest)[1], **errs}
        db.session.commit()
    except (IntegrityError, StaleDataError):
        # Another submission for the same firm committed first (one open case per firm), or
        # changed the firm's record while this batch was updating it.
        db.session.rollback()
        return api_error(
            409,
            "conflict",
            _("Another submission for the same firm arrived at the same moment; send it again."),
        )
    return jsonify(
        {
            "results": [
                {
                    "index": r.index,
                    "status": r.status,
                    "referral_id": r.referral_id,
                    "errors": r.errors if r.status != "created" else {},
                    "warnings": r.warnings,
                }
                for r in results
            ],
            "counts": service.counts(results),
        }
    )


@bp.route("/referrals", methods=["GET"])
@allow(*ROLES)  # every role has a referral scope (bureau, advisor, liaison narrower)
def list_referrals():
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        return bad_request({"status": one_of(_("Status"), service.status_labels().values())})
    raw_limit = args.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit not in (None, ""):
        limit = parse_int(raw_limit, 1, MAX_LIMIT)
        if limit is None:
            return bad_request(
                {"limit": _("Limit must be a whole number from 1 to %(n)s.", n=MAX_LIMIT)}
            )
    stmt = _with_enterprise(current_user._get_current_object())
    if status:
        stmt = stmt.where(Referral.status == status)
    cursor = args.get("cursor")
    if cursor:
        try:
            after = decode_cursor(cursor)
        except ValueError:
            return bad_request(
                {"cursor": _("This cursor is not valid; start from the first page.")}
            )
        stmt = stmt.where(tuple_(Referral.created_at, Referral.id) < after)
    rows = list(
        db.session.execute(
            stmt.order_by(Referral.created_at.desc(), Referral.id.desc()).limit(limit + 1)
        ).scalars()
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return jsonify({"items": _serialise(page), "next_cursor": next_cursor})


@bp.route("/referrals/<int:referral_id>")
@allow(*ROLES)
def referral_detail(referral_id: int):
    data = _one(current_user._get_current_object(), referral_id)
    return jsonify(data) if data is not None else _not_found()


@bp.route("/referrals/<int:referral_id>/assign", methods=["POST"])
@allow("finance_office")
def assign_referral(referral_id: int):
    body = _body()
    if not isinstance(body, dict):
        return bad_request({"advisor": _('Send a JSON object {"advisor": "<username>"}.')})
    advisor = body.get("advisor")
    if not isinstance(advisor, str) or not clean_text(advisor):
        return bad_request({"advisor": _("Give the advisor's username.")})
    if not _unicode_ok(advisor):
        return bad_request({"advisor": _bad_unicode(_("Advisor"))})
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        return bad_request({"note": _("The note must be text.")})
    if not _unicode_ok(note):
        return bad_request({"note": _bad_unicode(_("Note"))})
    note = clean_text(note or "") or None
    if note is not None and len(note) > 500:
        return bad_request({"note": _("At most %(n)s characters.", n=500)})
    version = body.get("version")
    if version is not None and (type(version) is not int or not 0 < version <= MAX_ID):
        return bad_request({"version": _("The version must be a whole number.")})
    if not 0 < referral_id <= MAX_ID:
        return _not_found()
    actor = current_user._get_current_object()
    try:
        service.assign(
            actor, [referral_id], clean_text(advisor), note=note, expected_version=version
        )
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        return api_error(
            409, "conflict", _("This case was changed by someone else since you opened it.")
        )
    return jsonify(_one(actor, referral_id))
