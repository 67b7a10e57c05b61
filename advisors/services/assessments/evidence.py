"""Evidence: what produced each metric of one advisor's row — per metric, the rubric's rule and
weights and the records that counted (visits, cases, financing applications, risk reports,
ratings), through the record scopes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from models import (
    AssessmentRow,
    Enterprise,
    FeedbackLink,
    FinancingApplication,
    Organisation,
    Referral,
    RiskReport,
    User,
    Visit,
    VisitPolicy,
    db,
)

from ... import labels as vocab
from ... import periods as periods_module
from ...dbutil import among
from ...errors import NotFound
from ...permissions import scoped
from ...scoring import rules
from ...scoring.rubric import AVERAGE, FIRM_FIRST, applicable_factor, scale_for_period
from .aggregates import LOG_ON_TIME_DAYS, NOT_WORK_STATUSES
from .raw import _CONTEXT, CENT
from .reading import _shanghai_day, metric_values, period_head, row_scope
from .rubrics import _spec_of

RECORD_CAP = 200  # breakdown records per metric


def _capped(stmt, order) -> tuple[list, int]:
    """Up to RECORD_CAP rows of ``stmt`` and the total it would give (one query)."""
    rows = db.session.execute(
        stmt.add_columns(func.count().over().label("total_rows")).order_by(*order).limit(RECORD_CAP)
    ).all()
    return rows, (rows[0].total_rows if rows else 0)


def breakdown(actor: User, period_key: str, advisor_id: int) -> list[dict]:
    """What produced each metric of one advisor's row: per metric ``{key, label, source, raw,
    points, applicable, no_data, weight, effective_weight, cap, rule, rule_label, records,
    total}`` (``applicable`` False and ``points`` None: no data, and the rubric says "not
    applicable" — its weight is spread over the others, whose ``effective_weight`` says how
    much each then counts); ``records`` are the visits,
    cases, financing applications, risk reports and ratings that counted (each
    ``{kind, id, referral_id, date, firm, counted, value, note}``), at most 200 per metric,
    ``total`` how many there are. Same scope as :func:`get_view`; records go through the
    record scopes (a liaison does not see the advisor's risk reports, only their count)."""
    period, assessment, rubric = period_head(actor, period_key)
    scope = row_scope(actor, assessment)
    if isinstance(advisor_id, bool) or not isinstance(advisor_id, int):
        raise NotFound(_("The page or record was not found."))
    row = db.session.execute(
        select(AssessmentRow.metrics).where(
            AssessmentRow.assessment_id == assessment.id,
            AssessmentRow.advisor_id == advisor_id,
            scope,
        )
    ).first()
    if row is None:
        raise NotFound(_("The page or record was not found."))
    spec = _spec_of(rubric)
    stored = metric_values(row.metrics)
    records = _Records(actor, period, advisor_id, spec.case_rating)
    scaled = scale_for_period(spec, period.kind)
    left_out = [key for key, value in stored.items() if value.points is None]
    factor = applicable_factor(scaled, left_out)
    return [_metric_line(m, stored.get(m.key), factor, records) for m in scaled.metrics]


def _metric_line(m, value, factor: Decimal | None, records: _Records) -> dict:
    """One metric of :func:`breakdown`: its stored value, its rule and weights, its records."""
    applicable = value is None or value.points is not None
    effective = None
    if applicable and factor is not None:
        effective = (m.weight * factor).quantize(CENT, context=_CONTEXT)
    items, total = records.for_metric(m.key)
    try:
        rule_label = str(rules.get(m.rule).label)
    except rules.UnknownRuleError:
        rule_label = m.rule
    return {
        "key": m.key,
        "label": m.display_label(),
        "source": m.display_source(),
        "raw": value.raw if value else None,
        "points": value.points if value else None,
        "applicable": applicable,
        "no_data": m.no_data,
        "weight": m.weight,
        # The weight it counts with: the weights of metrics that do not apply are
        # spread over those that do (the same as the weight when all apply).
        "effective_weight": effective,
        "cap": m.cap,
        "rule": m.rule,
        "rule_label": rule_label,
        "params": dict(m.params),
        "records": items,
        "total": total,
    }


def _half(value: Decimal) -> str:
    return format(value.normalize(), "f")


class _Records:
    """The records behind one advisor's metrics in a period, through the record scopes."""

    def __init__(
        self,
        actor: User,
        period: periods_module.Period,
        advisor_id: int,
        case_rating: str = FIRM_FIRST,
    ):
        self.actor = actor
        self.period = period
        self.advisor_id = advisor_id
        self.case_rating = case_rating
        self.first, self.last = period.first_day, period.last_day
        self.start, self.end = period.utc_bounds()
        self.role_labels = vocab.labels("visit_role")

    def for_metric(self, key: str) -> tuple[list[dict], int]:
        method = getattr(self, f"_{key}", None)
        if method is None:
            return [], 0
        return method()

    # --- visits
    def _visits(self, *conditions, counted=None, value=None, note=None):
        tools = (
            select(func.count())
            .where(VisitPolicy.visit_id == Visit.id)
            .correlate(Visit)
            .scalar_subquery()
            .label("tools")
        )
        stmt = scoped(
            Visit,
            self.actor,
            select(
                Visit.id,
                Visit.referral_id,
                Visit.visited_on,
                Visit.role_policy,
                Visit.role_guidance,
                Visit.role_financing,
                Visit.role_information,
                Visit.log_delay_days,
                tools,
                Enterprise.name.label("firm"),
            ).join(Enterprise, Enterprise.id == Visit.enterprise_id),
        ).where(
            Visit.advisor_id == self.advisor_id,
            Visit.visited_on >= self.first,
            Visit.visited_on <= self.last,
            *conditions,
        )
        rows, total = _capped(stmt, (Visit.visited_on, Visit.id))
        return [
            {
                "kind": "visit",
                "id": r.id,
                "referral_id": r.referral_id,
                "date": r.visited_on,
                "firm": r.firm,
                "counted": counted(r) if counted else True,
                "value": value(r) if value else None,
                "note": note(r) if note else "",
            }
            for r in rows
        ], total

    def _roles(self, r) -> list[str]:
        return [label for key, label in self.role_labels.items() if getattr(r, f"role_{key}")]

    def _visits_logged(self):
        return self._visits(
            value=lambda r: len(self._roles(r)), note=lambda r: "、".join(self._roles(r))
        )

    def _policy_promotion(self):
        return self._visits(
            Visit.role_policy,
            value=lambda r: r.tools,
            note=lambda r: ngettext(
                "%(num)s policy tool explained", "%(num)s policy tools explained", r.tools
            ),
        )

    def _logs_on_time(self):
        return self._visits(
            counted=lambda r: r.log_delay_days <= LOG_ON_TIME_DAYS,
            value=lambda r: r.log_delay_days,
            note=lambda r: ngettext(
                "Logged %(num)s day after the visit",
                "Logged %(num)s days after the visit",
                r.log_delay_days,
            ),
        )

    def _info_reports(self):
        visits, n_visits = self._visits(
            Visit.role_information, note=lambda r: self.role_labels["information"]
        )
        labels = vocab.labels("risk_type")
        stmt = scoped(
            RiskReport,
            self.actor,
            select(
                RiskReport.id,
                RiskReport.referral_id,
                RiskReport.reported_at,
                RiskReport.risk_type,
                Enterprise.name.label("firm"),
            ).join(Enterprise, Enterprise.id == RiskReport.enterprise_id),
        ).where(
            RiskReport.reporter_id == self.advisor_id,
            RiskReport.reported_at >= self.start,
            RiskReport.reported_at < self.end,
        )
        rows, n_risks = _capped(stmt, (RiskReport.reported_at, RiskReport.id))
        risks = [
            {
                "kind": "risk_report",
                "id": r.id,
                "referral_id": r.referral_id,
                "date": _shanghai_day(r.reported_at),
                "firm": r.firm,
                "counted": True,
                "value": None,
                "note": labels.get(r.risk_type, r.risk_type),
            }
            for r in rows
        ]
        merged = sorted(visits + risks, key=lambda x: (x["date"], x["kind"], x["id"]))
        return merged[:RECORD_CAP], n_visits + n_risks

    # --- cases
    def _cases(self, *conditions, date_of, counted, value, note):
        stmt = scoped(
            Referral,
            self.actor,
            select(
                Referral.id,
                Referral.assigned_at,
                Referral.first_contact_due,
                Referral.first_contact_on,
                Referral.closed_at,
                Referral.satisfaction,
                Enterprise.name.label("firm"),
            ).join(Enterprise, Enterprise.id == Referral.enterprise_id),
        ).where(
            Referral.advisor_id == self.advisor_id,
            Referral.assigned_at < self.end,
            *conditions,
        )
        rows, total = _capped(stmt, (Referral.assigned_at, Referral.id))
        return [
            {
                "kind": "referral",
                "id": r.id,
                "referral_id": r.id,
                "date": date_of(r),
                "firm": r.firm,
                "counted": counted(r),
                "value": value(r),
                "note": note(r),
            }
            for r in rows
        ], total

    def _visit_coverage(self):
        def note(r):
            if r.first_contact_on is not None and r.first_contact_on <= self.last:
                return _("First visited on %(day)s", day=r.first_contact_on.isoformat())
            return _("Not visited by %(day)s", day=self.last.isoformat())

        return self._cases(
            Referral.status.notin_(NOT_WORK_STATUSES),
            date_of=lambda r: _shanghai_day(r.assigned_at),
            counted=lambda r: r.first_contact_on is not None and r.first_contact_on <= self.last,
            value=lambda r: r.first_contact_on,
            note=note,
        )

    def _first_contact_on_time(self):
        def on_time(r):
            return r.first_contact_on is not None and r.first_contact_on <= r.first_contact_due

        def note(r):
            if r.first_contact_on is None:
                return _("Due %(due)s; no visit yet", due=r.first_contact_due.isoformat())
            return _(
                "Due %(due)s; first visited on %(day)s",
                due=r.first_contact_due.isoformat(),
                day=r.first_contact_on.isoformat(),
            )

        return self._cases(
            Referral.status.notin_(NOT_WORK_STATUSES),
            Referral.first_contact_due >= self.first,
            Referral.first_contact_due <= self.last,
            date_of=lambda r: r.first_contact_due,
            counted=on_time,
            value=lambda r: r.first_contact_on,
            note=note,
        )

    # --- financing
    def _financing(self, *conditions):
        fa = FinancingApplication
        lender = aliased(Organisation)
        stmt = scoped(
            fa,
            self.actor,
            select(
                fa.id,
                fa.referral_id,
                fa.enterprise_id,
                fa.disbursed_on,
                fa.disbursed_amount_wan,
                fa.first_loan,
                Enterprise.name.label("firm"),
                lender.name.label("lender"),
            )
            .join(Enterprise, Enterprise.id == fa.enterprise_id)
            .outerjoin(lender, lender.id == fa.lender_id),
        ).where(
            fa.advisor_id == self.advisor_id,
            fa.disbursed_on >= self.first,
            fa.disbursed_on <= self.last,
            *conditions,
        )
        rows, total = _capped(stmt, (fa.disbursed_on, fa.id))
        return [
            {
                "kind": "financing",
                "id": r.id,
                "referral_id": r.referral_id,
                "date": r.disbursed_on,
                "firm": r.firm,
                "counted": True,
                "value": r.disbursed_amount_wan,
                "note": " · ".join(
                    p for p in (r.lender, _("First loan") if r.first_loan else None) if p
                ),
            }
            for r in rows
        ], total

    def _firms_financed(self):
        return self._financing()

    def _amount_disbursed(self):
        return self._financing()

    def _first_loans(self):
        return self._financing(FinancingApplication.first_loan)

    # --- ratings
    def _satisfaction(self):
        """The ratings given in the period — the firm's (feedback links answered) and the
        bureau's (cases closed with a satisfaction) —, each marked counted or not by the
        rubric's rule for a case rated twice (:func:`.aggregates._rating_parts`), with why."""
        links, closed = self._rating_links(), self._closed_rated()
        firm_latest, bureau = self._ratings_of_cases(links, closed)
        average = self.case_rating == AVERAGE
        records = [self._link_record(r, firm_latest, bureau, average) for r in links]
        records += [self._closed_record(r, firm_latest, average) for r in closed]
        merged = sorted(records, key=lambda x: (x["date"], x["kind"], x["id"]))
        total = len(merged)
        if len(links) > RECORD_CAP or len(closed) > RECORD_CAP:
            total = self._rating_total()
        return merged[:RECORD_CAP], total

    def _rating_links(self) -> list:
        """The firm's ratings given in the period (feedback links answered)."""
        fl = FeedbackLink
        return db.session.execute(
            scoped(
                Referral,
                self.actor,
                select(
                    fl.id,
                    fl.referral_id,
                    fl.used_at,
                    fl.rating,
                    Enterprise.name.label("firm"),
                )
                .join(Referral, Referral.id == fl.referral_id)
                .join(Enterprise, Enterprise.id == Referral.enterprise_id),
            )
            .where(
                fl.advisor_id == self.advisor_id,
                fl.used_at >= self.start,
                fl.used_at < self.end,
                fl.rating.is_not(None),
            )
            .order_by(fl.used_at, fl.id)
            .limit(RECORD_CAP + 1)
        ).all()

    def _closed_rated(self) -> list:
        """The cases the bureau closed in the period with a satisfaction."""
        return db.session.execute(
            scoped(
                Referral,
                self.actor,
                select(
                    Referral.id,
                    Referral.closed_at,
                    Referral.satisfaction,
                    Enterprise.name.label("firm"),
                ).join(Enterprise, Enterprise.id == Referral.enterprise_id),
            )
            .where(
                Referral.advisor_id == self.advisor_id,
                Referral.closed_at >= self.start,
                Referral.closed_at < self.end,
                Referral.satisfaction.is_not(None),
            )
            .order_by(Referral.closed_at, Referral.id)
            .limit(RECORD_CAP + 1)
        ).all()

    def _ratings_of_cases(self, links, closed):
        """(the firm's latest rating of each of these cases by the period's end: case ->
        (at, link id, rating); the bureau's rating of these cases as it stands at the period's
        end: case -> satisfaction)."""
        fl = FeedbackLink
        case_ids = {r.referral_id for r in links} | {r.id for r in closed}
        firm_latest: dict[int, tuple[datetime, int, int]] = {}
        bureau: dict[int, int] = {r.id: r.satisfaction for r in closed}
        if not case_ids:
            return firm_latest, bureau
        for rid, link_id, at, rating in db.session.execute(
            select(fl.referral_id, fl.id, fl.used_at, fl.rating).where(
                among(fl.referral_id, sorted(case_ids)),
                fl.advisor_id == self.advisor_id,
                fl.used_at < self.end,
                fl.rating.is_not(None),
            )
        ):
            if rid not in firm_latest or (at, link_id) > firm_latest[rid][:2]:
                firm_latest[rid] = (at, link_id, rating)
        for rid, satisfaction in db.session.execute(
            select(Referral.id, Referral.satisfaction).where(
                among(Referral.id, sorted({r.referral_id for r in links})),
                Referral.advisor_id == self.advisor_id,
                Referral.closed_at < self.end,
                Referral.satisfaction.is_not(None),
            )
        ):
            bureau[rid] = satisfaction
        return firm_latest, bureau

    def _link_record(self, r, firm_latest: dict, bureau: dict, average: bool) -> dict:
        latest = firm_latest.get(r.referral_id)
        counted = latest is not None and latest[1] == r.id
        if not counted:
            note = _("Not counted: a later rating of the same case by the firm counts.")
        elif average and r.referral_id in bureau:
            b = bureau[r.referral_id]
            note = _(
                "Rated by the firm; averaged with the bureau's %(bureau)s: the case counts "
                "%(value)s.",
                bureau=b,
                value=_half(Decimal(r.rating + b) / 2),
            )
        else:
            note = _("Rated by the firm through a feedback link")
        return {
            "kind": "rating",
            "id": r.id,
            "referral_id": r.referral_id,
            "date": _shanghai_day(r.used_at),
            "firm": r.firm,
            "counted": counted,
            "value": r.rating,
            "note": note,
        }

    def _closed_record(self, r, firm_latest: dict, average: bool) -> dict:
        latest = firm_latest.get(r.id)
        counted, note = self._closed_counted(r, latest, average)
        return {
            "kind": "referral",
            "id": r.id,
            "referral_id": r.id,
            "date": _shanghai_day(r.closed_at),
            "firm": r.firm,
            "counted": counted,
            "value": r.satisfaction,
            "note": note,
        }

    def _closed_counted(self, r, latest, average: bool) -> tuple[bool, str]:
        """Whether the bureau's rating of a case closed in the period counts, and why."""
        if latest is None:
            return True, _("Confirmed by the referring bureau when it closed the case")
        firm_in_period = latest[0] >= self.start
        if average and not firm_in_period:
            return True, _(
                "Confirmed by the bureau; averaged with the firm's %(firm)s of %(day)s: the "
                "case counts %(value)s.",
                firm=latest[2],
                day=_shanghai_day(latest[0]).isoformat(),
                value=_half(Decimal(r.satisfaction + latest[2]) / 2),
            )
        if average:
            return False, _("Counted with the firm's rating of the same case (averaged).")
        return False, _(
            "Not counted: the firm rated this case itself (%(firm)s on %(day)s), and "
            "the firm's own rating counts.",
            firm=latest[2],
            day=_shanghai_day(latest[0]).isoformat(),
        )

    def _rating_total(self) -> int:
        fl = FeedbackLink
        n_links = db.session.scalar(
            scoped(
                Referral,
                self.actor,
                select(func.count()).select_from(fl).join(Referral, Referral.id == fl.referral_id),
            ).where(
                fl.advisor_id == self.advisor_id,
                fl.used_at >= self.start,
                fl.used_at < self.end,
                fl.rating.is_not(None),
            )
        )
        n_cases = db.session.scalar(
            scoped(Referral, self.actor, select(func.count()).select_from(Referral)).where(
                Referral.advisor_id == self.advisor_id,
                Referral.closed_at >= self.start,
                Referral.closed_at < self.end,
                Referral.satisfaction.is_not(None),
            )
        )
        return (n_links or 0) + (n_cases or 0)
