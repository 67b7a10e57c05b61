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

from .. import bulk, clock
from .. import labels as vocab
from ..dbutil import among, chunks, lock_intake
from ..errors import Conflict, NotFound, ValidationFailed
from ..permissions import get_scoped
from ..workdays import WorkdayCalendar
from . import firms as firm_service
from . import townships as township_service
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
    labels = (
        label_keys if label_keys is not None else {v: k for k, v in vocab.labels("need").items()}
    )
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
        errors["needs"] = vocab.one_of(labels["needs"], vocab.labels("need").values())
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
    writer: bulk.BulkWriter | None = None,
) -> list[ItemResult]:
    """Validate and save a batch of referral items from one bureau user. Accepted items are
    saved even when others are rejected. Flushes; the caller commits once. A caller that
    submits one list in several chunks passes ``notify_office=False`` and calls
    :func:`notify_submitted` once at the end.

    New firms, cases, bureau links and timeline events are written in bulk
    (:mod:`advisors.bulk`). ``writer``: a caller submitting a list in chunks may pass one
    :class:`~advisors.bulk.BulkWriter` (from :func:`advisors.bulk.writing`) for all of them;
    those rows are then still being written when this returns (on PostgreSQL), and the caller
    must ``writer.wait()`` before it next uses the session. Without one, everything is written
    before this returns."""
    if actor.role != "bureau" or actor.org_id is None:
        raise ValidationFailed(_("Only bureau users can refer firms."))
    if writer is not None:
        return _submit(actor, items, source, upload_id, notify_office, writer)
    with bulk.writing(background=False, pause_gc=False) as writes:
        return _submit(actor, items, source, upload_id, notify_office, writes)


def _submit(
    actor: User,
    items: list[dict],
    source: str,
    upload_id: int | None,
    notify_office: bool,
    writes: bulk.BulkWriter,
) -> list[ItemResult]:
    results, clean = _check_items(items)
    if not clean:
        return results
    # The caller's previous chunk is still being written while the items above are checked
    # (anything they query waits for it); the lookups below must see it.
    writes.wait()
    lock_intake()  # one intake at a time from these look-ups to the commit
    intake = _Intake(actor, writes, {r.index: r for r in results})
    intake.look_up([item.firm["credit_code"] for _i, item in clean])
    new_firms = intake.settle_firms(clean)
    db.session.flush()
    intake.add_new_firms(new_firms)
    intake.add_new_cases(intake.sort_cases(clean), source, upload_id)
    writes.write()
    session = db.session
    if not (
        intake.merged
        or intake.repeated
        or notify_office
        or session.new
        or session.dirty
        or session.deleted
    ):
        return results  # nothing else to write: the caller waits for the writer
    writes.wait()
    intake.save_co_referrals()
    _keep_repeated_proposals(actor, intake.repeated)
    _notify_co_referrals(
        actor, intake.merged, intake.co_referred_from, intake.firm_names, office=notify_office
    )
    db.session.flush()
    if notify_office:
        notify_submitted(actor, sum(1 for r in results if r.status == "created"))
    return results


def _check_items(items: list[dict]) -> tuple[list[ItemResult], list[tuple[int, CleanItem]]]:
    """Every item checked (its result ``pending`` when it may be saved, else ``rejected`` or a
    ``duplicate`` of an earlier item of the list), and the items that may be saved."""
    results: list[ItemResult] = []
    clean: list[tuple[int, CleanItem]] = []
    first_index_of_code: dict[str, int] = {}
    labels = item_labels()  # once per call, not per item
    need_keys = {v: k for k, v in vocab.labels("need").items()}
    townships = township_service.Matcher.load()
    for index, data in enumerate(items):
        item, errors = clean_item(data, labels=labels, need_keys=need_keys, townships=townships)
        result = _checked(index, data, item, errors, first_index_of_code)
        results.append(result)
        if result.status == "pending":
            first_index_of_code[result.credit_code] = index
            clean.append((index, item))
    return results, clean


def _checked(
    index: int, data, item: CleanItem | None, errors: dict, first_index_of_code: dict[str, int]
) -> ItemResult:
    if item is None:
        raw = data.get("credit_code") if isinstance(data, dict) else None
        return ItemResult(index, "rejected", None, errors, raw)
    code = item.firm["credit_code"]
    if code in first_index_of_code:
        message = _(
            "The same firm appears earlier in this list (item %(n)s).",
            n=first_index_of_code[code] + 1,
        )
        return ItemResult(index, "duplicate", None, {"credit_code": message}, code)
    return ItemResult(index, "pending", None, {}, code, item.warnings)


def _known_firms(codes: list[str]) -> dict[str, Enterprise]:
    firms: dict[str, Enterprise] = {}
    for part in chunks(codes):
        for firm in db.session.execute(
            select(Enterprise).where(among(Enterprise.credit_code, part))
        ).scalars():
            firms[firm.credit_code] = firm
    return firms


def _open_cases(firm_ids: list[int]) -> tuple[dict[int, Referral], dict[int, set[int]]]:
    """The open cases of these firms (by firm id) and their referring bureaus (by case id)."""
    open_cases: dict[int, Referral] = {}
    referrers: dict[int, set[int]] = {}
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
    return open_cases, referrers


@dataclass
class _Intake:
    """One call of :func:`submit` once its items are checked: the known firms and open cases it
    decides on, and what it decided (the steps run in the order of their methods)."""

    actor: User
    writes: bulk.BulkWriter
    by_index: dict[int, ItemResult]
    now: datetime = field(default_factory=utcnow)
    firms: dict[str, Enterprise] = field(default_factory=dict)  # known, by credit code
    open_cases: dict[int, Referral] = field(default_factory=dict)  # by firm id
    referrers: dict[int, set[int]] = field(default_factory=dict)  # case id -> bureau orgs
    proposals: dict[int, dict] = field(default_factory=dict)  # item index -> {field: value}
    firm_ids: dict[str, int] = field(default_factory=dict)  # by credit code
    firm_names: dict[str, str] = field(default_factory=dict)  # by credit code
    merged: list[tuple] = field(default_factory=list)  # (item, case, proposal)
    repeated: list[tuple] = field(default_factory=list)  # (case, proposal): our own open cases
    co_referred_from: dict[int, list[int]] = field(default_factory=dict)  # org -> cases

    def look_up(self, codes: list[str]) -> None:
        self.firms = _known_firms(codes)
        self.open_cases, self.referrers = _open_cases([f.id for f in self.firms.values()])

    def settle_firms(self, clean: list[tuple[int, CleanItem]]) -> list[dict]:
        """Known firms get what they lack (ORM, audited by the listener) and what differs from
        another organisation's registration becomes a proposal; the rows of new ones are
        returned."""
        new_rows = []
        for index, item in clean:
            values = item.firm
            firm = self.firms.get(values["credit_code"])
            if firm is None:
                new_rows.append(self._firm_row(values))
                continue
            own = firm.registered_by_org_id == self.actor.org_id
            proposed = _update_known_firm(firm, values, own=own)
            if proposed:
                self.proposals[index] = proposed
        return new_rows

    def _firm_row(self, values: dict) -> dict:
        row = {k: values.get(k) for k in ("credit_code", *_FIRM_UPDATE_FIELDS)}
        row["registered_by_org_id"] = self.actor.org_id
        row["created_at"] = row["updated_at"] = self.now
        row["version"] = 1
        return row  # its size class is derived by the bulk writer

    def add_new_firms(self, rows: list[dict]) -> None:
        self.writes.add_new(Enterprise.__table__, rows, "credit_code")
        self.firm_ids = {c: f.id for c, f in self.firms.items()}
        self.firm_ids.update({r["credit_code"]: r["id"] for r in rows})
        self.firm_names = {c: f.name for c, f in self.firms.items()}
        self.firm_names.update({r["credit_code"]: r["name"] for r in rows})

    def sort_cases(self, clean: list[tuple[int, CleanItem]]) -> list[tuple]:
        """Each item a new case (returned: (index, item, firm id)), a co-referral of an open
        case, or a duplicate of this bureau's own open case."""
        new_cases = []
        for index, item in clean:
            enterprise_id = self.firm_ids[item.firm["credit_code"]]
            case = self.open_cases.get(enterprise_id)
            if case is None:
                new_cases.append((index, item, enterprise_id))
            elif self.actor.org_id in self.referrers.get(case.id, set()):
                self._repeat(index, case)
            else:
                self._co_refer(index, item, case)
        return new_cases

    def _repeat(self, index: int, case: Referral) -> None:
        result = self.by_index[index]
        result.status, result.referral_id = "duplicate", case.id
        if index in self.proposals:
            self.repeated.append((case, self.proposals[index]))
        result.errors = {
            "credit_code": _(
                "Your bureau already referred this firm (case %(id)s, %(status)s).",
                id=case.id,
                status=vocab.labels("referral_status")[case.status],
            )
        }

    def _co_refer(self, index: int, item: CleanItem, case: Referral) -> None:
        result = self.by_index[index]
        result.status, result.referral_id = "merged", case.id
        others = self.referrers.setdefault(case.id, set())
        for org_id in others:
            self.co_referred_from.setdefault(org_id, []).append(case.id)
        others.add(self.actor.org_id)
        self.merged.append((item, case, self.proposals.get(index)))

    def add_new_cases(self, new_cases: list[tuple], source: str, upload_id: int | None) -> None:
        """The new cases, each with its bureau link and its "created" event."""
        if not new_cases:
            return
        rows = [self._case_row(item, firm_id, source, upload_id) for _i, item, firm_id in new_cases]
        # One open case per firm, so a new case is found again by its firm.
        self.writes.add_new(
            Referral.__table__, rows, "enterprise_id", Referral.status.in_(OPEN_STATUSES)
        )
        indexes = [index for index, _item, _firm_id in new_cases]
        for row, index in zip(rows, indexes, strict=True):
            self.by_index[index].status = "created"
            self.by_index[index].referral_id = row["id"]
        links = [
            self._link_row(r, self.proposals.get(i)) for r, i in zip(rows, indexes, strict=True)
        ]
        self.writes.add(ReferralBureau.__table__, links)
        label = self.actor.display_name[:80]
        self.writes.add(ReferralEvent.__table__, [self._created_event(r, label) for r in rows])

    def _case_row(self, item: CleanItem, firm_id: int, source: str, upload_id) -> dict:
        actor, now = self.actor, self.now
        return {
            "enterprise_id": firm_id,
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

    def _link_row(self, case: dict, proposed: dict | None) -> dict:
        return {
            "referral_id": case["id"],
            "org_id": self.actor.org_id,
            "created_at": self.now,
            "created_by_id": self.actor.id,
            "needs": [n for n in NEEDS if case[f"need_{n}"]],
            "amount_wan": case["amount_wan"],
            "note": case["note"],
            "proposed": proposed,
        }

    def _created_event(self, case: dict, actor_label: str) -> dict:
        return {
            "referral_id": case["id"],
            "at": self.now,
            "kind": "created",
            "status": "submitted",
            "actor_id": self.actor.id,
            "actor_label": actor_label,
            "note": None,
        }

    def save_co_referrals(self) -> None:
        """This bureau joins the open cases it co-refers (ORM: audited by the listener)."""
        actor = self.actor
        bureau_label = actor.org.short_name or actor.org.name
        for item, case, proposed in self.merged:
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
                firm = self.firm_names[item.firm["credit_code"]]
                notify(
                    [case.advisor_id],
                    "co_referred",
                    referral_id=case.id,
                    params={"bureau": bureau_label, "firm": firm},
                )


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
                status=vocab.labels("referral_status")[referral.status],
                to=vocab.labels("referral_status")[to],
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
    advisor = _active_advisor(advisor_username)
    if not referral_ids:
        raise ValidationFailed(
            _("Please correct the marked fields."), {"referrals": _("Select at least one case.")}
        )
    due = calendar().add_workdays(clock.today(), sla_days())
    done = []
    for rid in referral_ids:
        referral = get_for(actor, rid)
        if len(referral_ids) == 1:
            _check_version(referral, expected_version)
        _assign_one(actor, referral, advisor, note, due)
        done.append(referral)
    db.session.flush()
    return done


def _active_advisor(username) -> User:
    """The active advisor with this username (any case), else a field error."""
    username = (username or "").strip().lower() if isinstance(username, str) else ""
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
    return advisor


def _assign_one(actor: User, referral: Referral, advisor: User, note, due: date) -> None:
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
    kind = "reassigned" if previous else "assigned"
    _move(referral, target, actor, kind, note=note, advisor_id=advisor.id)
    referral.advisor_id = advisor.id
    referral.assigned_at = utcnow()
    if referral.first_contact_on is None:
        referral.first_contact_due = due
    _notify_assigned(referral, advisor, previous)


def _notify_assigned(referral: Referral, advisor: User, previous: int | None) -> None:
    """The advisor and their liaisons, the referring bureaus, and the advisor it was taken
    from."""
    firm = _firm_name(referral)
    params = {"firm": firm, "advisor": advisor.display_name}
    notify([advisor.id, *_liaison_ids(advisor)], "assigned", referral_id=referral.id, params=params)
    notify(_referrer_user_ids(referral), "assigned", referral_id=referral.id, params=params)
    if previous:
        old = db.session.get(User, previous)
        notify(
            [previous],
            "unassigned",
            referral_id=referral.id,
            params={"firm": firm, "advisor": old.display_name if old else ""},
        )


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
