"""Referrals: one rule set behind the web form, the list upload and the JSON push.

A firm (matched by credit code) has at most one open case. Another bureau referring it becomes
a co-referrer; the same bureau referring it again is a duplicate. Firm details sent later update
the registry (audited) and never fork it.

Status: submitted -> assigned -> in_service (first contact) -> resolved (outcome) -> closed
(the referring bureau confirms); also rejected (finance office, with reason) and withdrawn
(the bureau, while nobody is assigned). Every change goes through :func:`_move`, which checks
the transition table and who may make it, and writes the timeline event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from models import (
    NEEDS,
    OPEN_STATUSES,
    OUTCOMES,
    AuditLog,
    Enterprise,
    Organisation,
    Referral,
    ReferralBureau,
    ReferralEvent,
    Township,
    User,
    WorkdayOverride,
    db,
    utcnow,
)

from .. import audit
from ..dbutil import BulkWriter, among, append_rows, chunks, is_postgresql, lock_intake, next_ids
from ..errors import Conflict, NotFound, ValidationFailed
from ..i18n import SHANGHAI
from ..permissions import get_scoped
from ..sizing import classify
from ..workdays import WorkdayCalendar
from . import firms as firm_service
from . import townships as township_service
from .labels import one_of
from .notifications import notify, users_with_role

MAX_ITEMS = 1000  # per API call; uploads are chunked by the caller
REFERRAL_FIELDS = ("needs", "amount_wan", "purpose", "note")

# (from, to) -> roles that may make the move. "system" moves are made by services on behalf
# of the advisor (first visit, outcome) and checked there.
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("submitted", "assigned"): ("finance_office",),
    ("assigned", "assigned"): ("finance_office",),  # reassignment
    ("in_service", "in_service"): ("finance_office",),  # reassignment after first contact
    ("submitted", "rejected"): ("finance_office",),
    ("submitted", "withdrawn"): ("bureau",),
    ("assigned", "in_service"): ("advisor",),
    ("in_service", "resolved"): ("advisor",),
    ("resolved", "closed"): ("bureau",),
}


def status_labels() -> dict[str, str]:
    return {
        "submitted": _("Submitted"),
        "assigned": _("Assigned"),
        "in_service": _("In service"),
        "resolved": _("Resolved"),
        "closed": _("Closed"),
        "rejected": _("Rejected"),
        "withdrawn": _("Withdrawn"),
    }


def need_labels() -> dict[str, str]:
    return {
        "financing": _("Financing"),
        "policy": _("Policy"),
        "guidance": _("Guidance"),
        "insurance": _("Insurance"),
    }


def outcome_labels() -> dict[str, str]:
    return {
        "financed": _("Financed"),
        "not_financed": _("Not financed"),
        "policy_delivered": _("Policy delivered"),
        "no_need": _("No financing need"),
        "declined": _("Declined by the firm"),
    }


def item_labels() -> dict[str, str]:
    labels = firm_service.field_labels()
    labels.update(
        {
            "needs": _("Needs"),
            "amount_wan": _("Amount needed (万元)"),
            "purpose": _("Purpose"),
            "note": _("Note"),
        }
    )
    return labels


# ----------------------------------------------------------------------------- validation
@dataclass
class CleanItem:
    firm: dict
    needs: list[str]
    amount_wan: Decimal | None
    purpose: str | None
    note: str | None
    warnings: dict[str, str] = field(default_factory=dict)


def _parse_needs(raw, label_keys: dict[str, str] | None = None) -> list[str] | None:
    """Needs from a JSON list, or a spreadsheet cell like "融资、政策" / "financing,policy"."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        parts = [
            p.strip()
            for p in raw.replace("，", ",")
            .replace("、", ",")
            .replace(";", ",")
            .replace("；", ",")
            .split(",")
        ]
    elif isinstance(raw, list | tuple):
        parts = [str(p).strip() for p in raw]
    else:
        return None
    aliases = {
        "融资": "financing",
        "贷款": "financing",
        "融资需求": "financing",
        "政策": "policy",
        "政策宣传": "policy",
        "政策咨询": "policy",
        "指导": "guidance",
        "发展指导": "guidance",
        "经营指导": "guidance",
        "保险": "insurance",
        "保险需求": "insurance",
    }
    labels = label_keys if label_keys is not None else {v: k for k, v in need_labels().items()}
    needs = []
    for part in parts:
        if not part:
            continue
        key = part.lower()
        key = aliases.get(part, labels.get(part, key))
        if key not in NEEDS:
            return None
        if key not in needs:
            needs.append(key)
    return needs


def clean_item(
    data: dict,
    *,
    may_override: bool = False,
    override_reason: str | None = None,
    labels: dict[str, str] | None = None,
    need_keys: dict[str, str] | None = None,
    townships: township_service.Matcher | None = None,
) -> tuple[CleanItem | None, dict[str, str]]:
    """Validate one referral item (the contract's ITEM). Returns (item, errors); the item
    carries its warnings (a township not on the city's list)."""
    labels = labels or item_labels()
    if not isinstance(data, dict):
        return None, {"item": _("Each item must be an object.")}
    firm_values, errors, _overridden, warnings = firm_service.clean_firm_fields(
        data,
        override_reason=override_reason,
        may_override=may_override,
        labels=labels,
        townships=townships,
    )
    needs = _parse_needs(data.get("needs"), need_keys)
    if needs is None:
        errors["needs"] = one_of(labels["needs"], need_labels().values())
    elif not needs:
        errors["needs"] = _("%(field)s: choose at least one.", field=labels["needs"])
    amount = None
    try:
        amount = firm_service.parse_wan(data.get("amount_wan"), labels["amount_wan"])
    except ValueError as exc:
        errors["amount_wan"] = str(exc)
    if needs and "financing" in needs and amount is None and "amount_wan" not in errors:
        errors["amount_wan"] = _(
            "%(field)s is required when financing is needed.", field=labels["amount_wan"]
        )
    if amount is not None and amount <= 0 and "amount_wan" not in errors:
        errors["amount_wan"] = _("%(field)s must be more than zero.", field=labels["amount_wan"])
    texts = {}
    for key, limit in (("purpose", 200), ("note", 2000)):
        value = data.get(key)
        text = firm_service.clean_text(value) if value is not None else ""
        if len(text) > limit:
            errors[key] = _(
                "%(field)s must be at most %(n)s characters.", field=labels[key], n=limit
            )
        texts[key] = text or None
    if errors:
        return None, errors
    return CleanItem(firm_values, needs, amount, texts["purpose"], texts["note"], warnings), {}


# ----------------------------------------------------------------------------- submission
@dataclass
class ItemResult:
    index: int
    status: str  # created | merged | duplicate | rejected
    referral_id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    credit_code: str | None = None
    warnings: dict[str, str] = field(default_factory=dict)


def _need_flags(needs: list[str]) -> dict[str, bool]:
    return {f"need_{n}": n in needs for n in NEEDS}


# A firm's fields a push may fill when empty, or propose when another organisation registered
# something else (every registry field but its key). ``township`` stands for the pair
# township_id / township_text.
_PROPOSABLE = tuple(f for f in firm_service.FIRM_FIELDS if f != "credit_code")
# The same fields as columns of a new firm's row.
_FIRM_UPDATE_FIELDS = tuple(
    c for f in _PROPOSABLE for c in (("township_id", "township_text") if f == "township" else (f,))
)


def submit(
    actor: User,
    items: list[dict],
    *,
    source: str = "api",
    upload_id: int | None = None,
    notify_office: bool = True,
    writer: BulkWriter | None = None,
) -> list[ItemResult]:
    """Validate and save a batch of referral items from one bureau user. Accepted items are
    saved even when others are rejected. Flushes; the caller commits once. A caller that
    submits one list in several chunks passes ``notify_office=False`` and calls
    :func:`notify_submitted` once at the end.

    ``writer``: such a caller may also pass one :class:`~advisors.dbutil.BulkWriter` for all
    its chunks; the new firms, cases, timeline events and their audit rows are then still being
    written when this returns (on PostgreSQL), and the caller must ``writer.wait()`` before it
    next uses the session. Without one, everything is written before this returns."""
    writes = writer or BulkWriter(background=False)
    if actor.role != "bureau" or actor.org_id is None:
        raise ValidationFailed(_("Only bureau users can refer firms."))
    results: list[ItemResult] = []
    clean: list[tuple[int, CleanItem]] = []
    first_row_of_code: dict[str, int] = {}
    labels = item_labels()  # once per call, not per item
    need_keys = {v: k for k, v in need_labels().items()}
    townships = township_service.Matcher.load()
    for index, data in enumerate(items):
        item, errors = clean_item(data, labels=labels, need_keys=need_keys, townships=townships)
        code = item.firm["credit_code"] if item else None
        if item and code in first_row_of_code:
            results.append(
                ItemResult(
                    index,
                    "duplicate",
                    None,
                    {
                        "credit_code": _(
                            "The same firm appears earlier in this list (item %(n)s).",
                            n=first_row_of_code[code] + 1,
                        )
                    },
                    code,
                )
            )
            continue
        if item is None:
            raw = data.get("credit_code") if isinstance(data, dict) else None
            results.append(ItemResult(index, "rejected", None, errors, raw))
            continue
        first_row_of_code[code] = index
        clean.append((index, item))
        results.append(ItemResult(index, "pending", None, {}, code, item.warnings))
    by_index = {r.index: r for r in results}
    if not clean:
        return results
    # The caller's previous chunk is still being written while the items above are checked
    # (anything they query waits for it); the lookups below must see it.
    writes.wait()
    lock_intake()  # one intake at a time from these look-ups to the commit

    now = utcnow()
    codes = [item.firm["credit_code"] for _i, item in clean]
    firms: dict[str, Enterprise] = {}
    for part in chunks(codes):
        for firm in db.session.execute(
            select(Enterprise).where(among(Enterprise.credit_code, part))
        ).scalars():
            firms[firm.credit_code] = firm
    open_cases: dict[int, Referral] = {}
    referrers: dict[int, set[int]] = {}
    firm_ids = [f.id for f in firms.values()]
    for part in chunks(firm_ids):
        for ref in db.session.execute(
            select(Referral).where(
                among(Referral.enterprise_id, part), Referral.status.in_(OPEN_STATUSES)
            )
        ).scalars():
            open_cases[ref.enterprise_id] = ref
        for rid, org_id in db.session.execute(
            select(ReferralBureau.referral_id, ReferralBureau.org_id)
            .join(Referral, Referral.id == ReferralBureau.referral_id)
            .where(among(Referral.enterprise_id, part), Referral.status.in_(OPEN_STATUSES))
        ):
            referrers.setdefault(rid, set()).add(org_id)

    # 1. Firms: known ones get what they lack (ORM, audited by the listener) and what differs
    # from another organisation's registration becomes a proposal; new ones go in in bulk.
    new_firm_rows = []
    proposals: dict[int, dict] = {}  # item index -> {field: proposed value}
    for index, item in clean:
        values = item.firm
        firm = firms.get(values["credit_code"])
        if firm is not None:
            proposed = _update_known_firm(
                firm, values, own=firm.registered_by_org_id == actor.org_id
            )
            if proposed:
                proposals[index] = proposed
        else:
            row = {k: values.get(k) for k in ("credit_code", *_FIRM_UPDATE_FIELDS)}
            row["size_class"] = classify(
                row["industry"], row["employees"], row["revenue_wan"], row["assets_wan"]
            )
            row["registered_by_org_id"] = actor.org_id
            row["created_at"] = row["updated_at"] = now
            row["version"] = 1
            new_firm_rows.append(row)
    db.session.flush()
    batches = []  # (table, rows) in the order they are written
    if new_firm_rows:
        batches += _insert_new_rows(Enterprise.__table__, new_firm_rows, "credit_code")
        batches.append((AuditLog.__table__, audit.bulk_insert_entries("enterprise", new_firm_rows)))
    firm_ids_by_code = {c: f.id for c, f in firms.items()}
    firm_ids_by_code.update({r["credit_code"]: r["id"] for r in new_firm_rows})
    firm_names = {c: f.name for c, f in firms.items()}
    firm_names.update({r["credit_code"]: r["name"] for r in new_firm_rows})

    # 2. Cases: new referral, co-referral, or duplicate.
    new_cases = []
    merged = []
    repeated = []  # (case, proposal) of this bureau's own open cases
    co_referred_from: dict[int, list[int]] = {}  # bureau org -> its cases co-referred now
    for index, item in clean:
        code = item.firm["credit_code"]
        enterprise_id = firm_ids_by_code[code]
        case = open_cases.get(enterprise_id)
        result = by_index[index]
        if case is None:
            new_cases.append((index, item, enterprise_id))
            continue
        if actor.org_id in referrers.get(case.id, set()):
            result.status = "duplicate"
            result.referral_id = case.id
            if index in proposals:
                repeated.append((case, proposals[index]))
            result.errors = {
                "credit_code": _(
                    "Your bureau already referred this firm (case %(id)s, %(status)s).",
                    id=case.id,
                    status=status_labels()[case.status],
                )
            }
            continue
        result.status = "merged"
        result.referral_id = case.id
        others = referrers.setdefault(case.id, set())
        for org_id in others:
            co_referred_from.setdefault(org_id, []).append(case.id)
        others.add(actor.org_id)
        merged.append((item, case, proposals.get(index)))

    if new_cases:
        rows = [
            {
                "enterprise_id": enterprise_id,
                "status": "submitted",
                **_need_flags(item.needs),
                "amount_wan": item.amount_wan,
                "purpose": item.purpose,
                "note": item.note,
                "org_id": actor.org_id,
                "created_by_id": actor.id,
                "source": source,
                "upload_id": upload_id,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for _index, item, enterprise_id in new_cases
        ]
        # One open case per firm, so a new case is found again by its firm.
        batches += _insert_new_rows(
            Referral.__table__, rows, "enterprise_id", Referral.status.in_(OPEN_STATUSES)
        )
        for row, (index, _item, _enterprise_id) in zip(rows, new_cases, strict=True):
            by_index[index].status = "created"
            by_index[index].referral_id = row["id"]
        bureau_rows = [
            {
                "referral_id": r["id"],
                "org_id": actor.org_id,
                "created_at": now,
                "created_by_id": actor.id,
                "needs": [n for n in NEEDS if r[f"need_{n}"]],
                "amount_wan": r["amount_wan"],
                "note": r["note"],
                "proposed": proposals.get(index),
            }
            for r, (index, _item, _enterprise_id) in zip(rows, new_cases, strict=True)
        ]
        actor_label = actor.display_name[:80]
        event_rows = [
            {
                "referral_id": r["id"],
                "at": now,
                "kind": "created",
                "status": "submitted",
                "actor_id": actor.id,
                "actor_label": actor_label,
                "note": None,
            }
            for r in rows
        ]
        batches.append((ReferralBureau.__table__, bureau_rows))
        batches.append((ReferralEvent.__table__, event_rows))
        batches.append((AuditLog.__table__, audit.bulk_insert_entries("referral", rows)))
        # The bureau links are audited like the flush listener records them (composite key).
        links = [{**b, "key": f"{b['referral_id']}/{b['org_id']}"} for b in bureau_rows]
        batches.append(
            (AuditLog.__table__, audit.bulk_insert_entries("referral_bureau", links, id_key="key"))
        )
    writes.start(batches)
    if not (
        merged
        or repeated
        or notify_office
        or db.session.new
        or db.session.dirty
        or db.session.deleted
    ):
        return results  # nothing else to write: the caller waits for the writer
    writes.wait()

    bureau_label = actor.org.short_name or actor.org.name
    for item, case, proposed in merged:
        db.session.add(
            ReferralBureau(
                referral_id=case.id,
                org_id=actor.org_id,
                created_by_id=actor.id,
                needs=item.needs,
                amount_wan=item.amount_wan,
                note=item.note,
                proposed=proposed,
            )
        )
        _event(case, "co_referred", actor, note=bureau_label)
        if case.advisor_id:
            notify(
                [case.advisor_id],
                "co_referred",
                referral_id=case.id,
                params={"bureau": bureau_label, "firm": firm_names[item.firm["credit_code"]]},
            )
    _keep_repeated_proposals(actor, repeated)
    _notify_co_referrals(actor, merged, co_referred_from, firm_names, office=notify_office)
    db.session.flush()

    if notify_office:
        notify_submitted(actor, sum(1 for r in results if r.status == "created"))
    return results


def _update_known_firm(firm: Enterprise, values: dict, *, own: bool) -> dict:
    """Apply a push's firm details to a registered firm: the registering organisation's own
    push updates it; anyone else's fills only empty fields, and a value that differs from the
    registration is returned as a proposal ``{field: value}`` (JSON-ready) for the finance
    office, never written over it."""
    proposed = {}
    for key in _PROPOSABLE:
        if key == "township":
            new_id, new_text = values.get("township_id"), values.get("township_text")
            if new_id is None and new_text is None:
                continue
            if (firm.township_id, firm.township_text) == (new_id, new_text):
                continue
            # Empty, or only text the office has not matched yet, may be filled by a listed one.
            if own or firm.township_id is None and (firm.township_text is None or new_id):
                firm.township_id, firm.township_text = new_id, new_text
            elif firm.township_id != new_id or new_text is not None:
                proposed["township"] = {"id": new_id, "text": new_text}
            continue
        value = values.get(key)
        current = getattr(firm, key)
        if value is None or current == value:
            continue
        if own or current is None or current == "":
            setattr(firm, key, value)
        else:
            proposed[key] = str(value) if isinstance(value, Decimal) else value
    return proposed


def proposal_value(key: str, value, townships: dict[int, str] | None = None) -> str:
    """A proposed (or current) firm value as the office reads it."""
    if value is None or value == "":
        return "—"
    if key == "township":
        if isinstance(value, dict):
            if value.get("id") is not None:
                return (townships or {}).get(value["id"], str(value["id"]))
            return value.get("text") or "—"
        return str(value)
    if key == "industry":
        from ..sizing import INDUSTRIES

        return _(INDUSTRIES[value]) if value in INDUSTRIES else str(value)
    return str(value)


def current_firm_value(firm: Enterprise, key: str):
    """The registry's value of a proposable field, shaped like a proposal's."""
    if key == "township":
        return {"id": firm.township_id, "text": firm.township_text}
    return getattr(firm, key)


def settle_proposal(
    actor: User, referral_id: int, org_code: str, key: str, accept: bool
) -> Enterprise:
    """The finance office accepts (writes to the registry, audited) or dismisses one field a
    bureau proposed for the firm of a case. Either way the proposal is gone."""
    if actor.role != "finance_office":
        raise Conflict(_("Only the finance office accepts proposed firm details."))
    referral = get_for(actor, referral_id)
    link = db.session.execute(
        select(ReferralBureau)
        .join(Organisation, Organisation.id == ReferralBureau.org_id)
        .where(
            ReferralBureau.referral_id == referral.id,
            func.lower(Organisation.code) == (org_code or "").lower(),
        )
    ).scalar_one_or_none()
    proposed = dict(link.proposed or {}) if link is not None else {}
    if key not in proposed:
        raise Conflict(_("This proposal was already settled."))
    value = proposed.pop(key)
    firm = db.session.get(Enterprise, referral.enterprise_id)
    if accept:
        _apply_proposal(firm, key, value)
    link.proposed = proposed or None
    db.session.flush()
    return firm


def _apply_proposal(firm: Enterprise, key: str, value) -> None:
    if key == "township":
        township_id = value.get("id") if isinstance(value, dict) else None
        if township_id is not None:
            township = db.session.get(Township, township_id)
            if township is None or not township.active:
                raise ValidationFailed(
                    _("That township is no longer on the list; match it on the townships page.")
                )
            firm.township_id, firm.township_text = township_id, None
        else:
            firm.township_id, firm.township_text = None, value.get("text")
        return
    if key in ("revenue_wan", "assets_wan"):
        value = Decimal(str(value))
    elif key == "employees":
        value = int(value)
    if key not in _PROPOSABLE:
        raise ValidationFailed(_("Please correct the marked fields."))
    setattr(firm, key, value)


def _keep_repeated_proposals(actor: User, repeated: list[tuple[Referral, dict]]) -> None:
    """A bureau sending its own open case again with other details: its proposal is updated."""
    for case, proposed in repeated:
        link = db.session.get(ReferralBureau, (case.id, actor.org_id))
        if link is not None:
            link.proposed = {**(link.proposed or {}), **proposed}


def _notify_co_referrals(
    actor: User,
    merged: list[tuple],
    co_referred_from: dict[int, list[int]],
    firm_names: dict[str, str],
    *,
    office: bool = True,
) -> None:
    """Each bureau that referred the firms first hears of the co-referrals once per call (who
    co-referred, how many, which when it is one); so does the finance office, unless the
    caller tells it once for a whole list (``office`` False: :func:`notify_submitted`)."""
    if not merged:
        return
    label = actor.org.short_name or actor.org.name
    item, case, _proposed = merged[0]
    first_firm = firm_names[item.firm["credit_code"]]
    if office:
        watchers = users_with_role("finance_office")
        if len(merged) == 1:
            notify(
                watchers,
                "co_referred",
                referral_id=case.id,
                params={"bureau": label, "firm": first_firm},
            )
        else:
            notify(watchers, "co_referred_many", params={"bureau": label, "count": len(merged)})
    names = {c.id: firm_names[i.firm["credit_code"]] for i, c, _p in merged}
    for org_id, case_ids in co_referred_from.items():
        bureau_users = users_with_role("bureau", org_id)
        if len(case_ids) == 1:
            notify(
                bureau_users,
                "co_referred",
                referral_id=case_ids[0],
                params={"bureau": label, "firm": names.get(case_ids[0]) or first_firm},
            )
        else:
            notify(
                bureau_users, "co_referred_many", params={"bureau": label, "count": len(case_ids)}
            )


def _insert_new_rows(table, rows: list[dict], key: str, *where) -> list[tuple]:
    """New rows of ``table``: sets each row's ``"id"``. On PostgreSQL the ids are drawn from the
    table's sequence and the rows are returned as a batch for the writer (nothing to read
    back); elsewhere they are inserted now by executemany (Core: the ORM bulk path splits
    batches on NULL patterns, and SQLite cannot return ids in parameter order) and the ids read
    back by ``key``, which is unique among the table's rows matching ``where``."""
    if is_postgresql():
        for row, new_id in zip(rows, next_ids(table, len(rows)), strict=True):
            row["id"] = new_id
        return [(table, rows)]
    column = table.c[key]
    ids = {}
    for part in chunks(rows):
        append_rows(table, part)
        ids.update(
            db.session.execute(
                select(column, table.c.id).where(column.in_([r[key] for r in part]), *where)
            ).all()
        )
    for row in rows:
        row["id"] = ids[row[key]]
    return []


def notify_submitted(actor: User, created: int, merged: int = 0) -> None:
    """Tell the finance office and the central bank, once, that new referrals have arrived; and
    the finance office how many firms of a list were already open (co-referrals)."""
    label = actor.org.short_name or actor.org.name
    if created:
        office = users_with_role("finance_office") + users_with_role("pboc")
        notify(office, "referrals_submitted", params={"bureau": label, "count": created})
    if merged:
        notify(
            users_with_role("finance_office"),
            "co_referred_many",
            params={"bureau": label, "count": merged},
        )


def counts(results: list[ItemResult]) -> dict[str, int]:
    out = {"created": 0, "merged": 0, "duplicate": 0, "rejected": 0}
    for r in results:
        out[r.status] = out.get(r.status, 0) + 1
    return out


# ----------------------------------------------------------------------------- transitions
def _event(
    referral: Referral,
    kind: str,
    actor: User | None,
    *,
    note: str | None = None,
    advisor_id: int | None = None,
) -> None:
    db.session.add(
        ReferralEvent(
            referral_id=referral.id,
            kind=kind,
            status=referral.status,
            actor_id=actor.id if actor else None,
            actor_label=(actor.display_name if actor else "system")[:80],
            advisor_id=advisor_id,
            note=(note or None) and note[:500],
        )
    )


def _move(
    referral: Referral,
    to: str,
    actor: User,
    kind: str,
    note: str | None = None,
    advisor_id: int | None = None,
) -> None:
    allowed = TRANSITIONS.get((referral.status, to))
    if allowed is None or actor.role not in allowed:
        raise Conflict(
            _(
                "A case in status %(status)s cannot be moved to %(to)s by you.",
                status=status_labels()[referral.status],
                to=status_labels()[to],
            )
        )
    referral.status = to
    _event(referral, kind, actor, note=note, advisor_id=advisor_id)


def get_for(actor: User, referral_id: int) -> Referral:
    referral = get_scoped(Referral, actor, referral_id)
    if referral is None:
        raise NotFound(_("The page or record was not found."))
    return referral


def _check_version(referral: Referral, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != referral.version:
        raise Conflict(_("This case was changed by someone else since you opened it."))


def _firm_name(referral: Referral) -> str:
    return db.session.scalar(select(Enterprise.name).where(Enterprise.id == referral.enterprise_id))


def _referrer_user_ids(referral: Referral) -> list[int]:
    return list(
        db.session.execute(
            select(User.id)
            .join(ReferralBureau, ReferralBureau.org_id == User.org_id)
            .where(
                ReferralBureau.referral_id == referral.id,
                User.role == "bureau",
                User.active.is_(True),
            )
        ).scalars()
    )


def _liaison_ids(advisor: User) -> list[int]:
    return users_with_role("liaison", advisor.org_id) if advisor.org_id else []


def calendar() -> WorkdayCalendar:
    overrides = dict(
        db.session.execute(select(WorkdayOverride.day, WorkdayOverride.is_workday)).all()
    )
    return WorkdayCalendar(overrides)


def today() -> date:
    return datetime.now(SHANGHAI).date()


def sla_days() -> int:
    return int(current_app.config.get("FIRST_CONTACT_WORKING_DAYS", 5))


def assign(
    actor: User,
    referral_ids: list[int],
    advisor_username: str,
    *,
    note: str | None = None,
    expected_version: int | None = None,
) -> list[Referral]:
    """Assign (or reassign) one or many cases to an advisor."""
    if actor.role != "finance_office":
        raise Conflict(_("Only the finance office assigns cases."))
    username = (advisor_username or "").strip().lower() if isinstance(advisor_username, str) else ""
    advisor = (
        db.session.execute(
            select(User).where(func.lower(User.username) == username)
        ).scalar_one_or_none()
        if username.isprintable()  # PostgreSQL refuses NUL in text
        else None
    )
    if advisor is None or advisor.role != "advisor" or not advisor.active:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"advisor": _("No active advisor with that username.")},
        )
    if not referral_ids:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"referrals": _("Select at least one case.")}
        )
    cal = calendar()
    due = cal.add_workdays(today(), sla_days())
    done = []
    for rid in referral_ids:
        referral = get_for(actor, rid)
        if len(referral_ids) == 1:
            _check_version(referral, expected_version)
        if referral.advisor_id == advisor.id:
            raise ValidationFailed(
                _("Please correct the marked fields."),
                {
                    "advisor": _(
                        "Case %(id)s is already assigned to %(name)s.",
                        id=referral.id,
                        name=advisor.display_name,
                    )
                },
            )
        previous = referral.advisor_id
        target = "in_service" if referral.status == "in_service" else "assigned"
        _move(
            referral,
            target,
            actor,
            "reassigned" if previous else "assigned",
            note=note,
            advisor_id=advisor.id,
        )
        referral.advisor_id = advisor.id
        referral.assigned_at = utcnow()
        if referral.first_contact_on is None:
            referral.first_contact_due = due
        firm = _firm_name(referral)
        notify(
            [advisor.id, *_liaison_ids(advisor)],
            "assigned",
            referral_id=referral.id,
            params={"firm": firm, "advisor": advisor.display_name},
        )
        notify(
            _referrer_user_ids(referral),
            "assigned",
            referral_id=referral.id,
            params={"firm": firm, "advisor": advisor.display_name},
        )
        if previous:
            old = db.session.get(User, previous)
            notify(
                [previous],
                "unassigned",
                referral_id=referral.id,
                params={"firm": firm, "advisor": old.display_name if old else ""},
            )
        done.append(referral)
    db.session.flush()
    return done


def reject(
    actor: User, referral_id: int, reason: str, expected_version: int | None = None
) -> Referral:
    reason = firm_service.clean_text(reason or "")
    if len(reason) < 2:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"reason": _("Give the reason the bureau will see.")},
        )
    referral = get_for(actor, referral_id)
    _check_version(referral, expected_version)
    _move(referral, "rejected", actor, "rejected", note=reason)
    referral.rejected_reason = reason[:500]
    notify(
        _referrer_user_ids(referral),
        "rejected",
        referral_id=referral.id,
        params={"firm": _firm_name(referral), "reason": reason[:200]},
    )
    db.session.flush()
    return referral


def withdraw(actor: User, referral_id: int, expected_version: int | None = None) -> Referral:
    """A bureau withdraws its referral while nobody is assigned. With co-referrers the case
    stays open for them; only this bureau stops following it."""
    referral = get_for(actor, referral_id)
    _check_version(referral, expected_version)
    if actor.role != "bureau":
        raise Conflict(_("Only a referring bureau can withdraw its referral."))
    if referral.status != "submitted":
        raise Conflict(_("A case can be withdrawn only before it is assigned."))
    rows = (
        db.session.execute(select(ReferralBureau).where(ReferralBureau.referral_id == referral.id))
        .scalars()
        .all()
    )
    bureau_label = actor.org.short_name or actor.org.name
    if len(rows) > 1:
        mine = next(r for r in rows if r.org_id == actor.org_id)
        db.session.delete(mine)
        if referral.org_id == actor.org_id:
            referral.org_id = next(r.org_id for r in rows if r.org_id != actor.org_id)
        _event(referral, "co_withdrawn", actor, note=bureau_label)
    else:
        _move(referral, "withdrawn", actor, "withdrawn")
    notify(
        users_with_role("finance_office"),
        "withdrawn",
        referral_id=referral.id,
        params={"bureau": bureau_label, "firm": _firm_name(referral)},
    )
    db.session.flush()
    return referral


def record_first_contact(actor: User, referral: Referral, on: date) -> None:
    """Called by the visit service when the assigned advisor logs the first visit."""
    if referral.advisor_id != actor.id:
        raise NotFound(_("The page or record was not found."))
    if referral.first_contact_on is None or on < referral.first_contact_on:
        referral.first_contact_on = on
    if referral.status == "assigned":
        _move(referral, "in_service", actor, "first_contact")
        notify(
            _referrer_user_ids(referral),
            "first_contact",
            referral_id=referral.id,
            params={"firm": _firm_name(referral), "advisor": actor.display_name},
        )
    db.session.flush()


def record_outcome(
    actor: User, referral: Referral, result: str, amount_wan: Decimal | None, note: str | None
) -> None:
    """The assigned advisor records the outcome; the referring bureaus are asked to confirm."""
    if referral.advisor_id != actor.id:
        raise NotFound(_("The page or record was not found."))
    errors = {}
    if result not in OUTCOMES:
        errors["result"] = _("Choose an outcome.")
    if result == "financed" and (amount_wan is None or amount_wan <= 0):
        errors["amount_wan"] = _("Give the amount financed (万元).")
    if result == "declined" and not (note or "").strip():
        errors["note"] = _("Give the reason the firm declined.")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), errors)
    _move(referral, "resolved", actor, "resolved", note=note)
    referral.outcome_result = result
    referral.outcome_amount_wan = amount_wan if result == "financed" else None
    referral.outcome_note = (note or "").strip()[:500] or None
    referral.resolved_at = utcnow()
    notify(
        _referrer_user_ids(referral),
        "resolved",
        referral_id=referral.id,
        params={"firm": _firm_name(referral), "outcome": result},
    )
    db.session.flush()


def confirm_outcome(
    actor: User,
    referral_id: int,
    satisfaction: int | None,
    comment: str | None,
    expected_version: int | None = None,
) -> Referral:
    """A referring bureau confirms the outcome, closing the case, with the firm's satisfaction."""
    referral = get_for(actor, referral_id)
    _check_version(referral, expected_version)
    if satisfaction is None or not 1 <= int(satisfaction) <= 5:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"satisfaction": _("Satisfaction must be from 1 to 5.")},
        )
    comment = firm_service.clean_text(comment or "")
    if len(comment) > 500:
        raise ValidationFailed(
            _("Please correct the marked fields."),
            {"comment": _("At most %(n)s characters.", n=500)},
        )
    _move(referral, "closed", actor, "closed", note=comment or None)
    referral.satisfaction = int(satisfaction)
    referral.satisfaction_comment = comment or None
    referral.closed_at = utcnow()
    notify(
        users_with_role("finance_office") + ([referral.advisor_id] if referral.advisor_id else []),
        "closed",
        referral_id=referral.id,
        params={"bureau": actor.org.short_name or actor.org.name, "firm": _firm_name(referral)},
    )
    db.session.flush()
    return referral


def bureaus_of(referral_ids: list[int]) -> dict[int, list[str]]:
    """Referring bureau codes per case, in one query."""
    out: dict[int, list[str]] = {rid: [] for rid in referral_ids}
    for part in chunks(referral_ids):
        for rid, code in db.session.execute(
            select(ReferralBureau.referral_id, Organisation.code)
            .join(Organisation, Organisation.id == ReferralBureau.org_id)
            .where(ReferralBureau.referral_id.in_(part))
            .order_by(ReferralBureau.created_at)
        ):
            out[rid].append(code)
    return out
