"""Derived fields kept true on every ORM write, whichever service made it."""

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from models import Enterprise

from .sizing import classify

_FIGURES = ("industry", "employees", "revenue_wan", "assets_wan")


def refresh_size_class(firm: Enterprise) -> None:
    """The SME size class is derived from the figures, never typed by hand."""
    firm.size_class = classify(firm.industry, firm.employees, firm.revenue_wan, firm.assets_wan)


@event.listens_for(Session, "before_flush")
def _recompute_derived(session: Session, flush_context, instances) -> None:
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Enterprise):
            state = inspect(obj)
            if obj in session.new or any(state.attrs[f].history.has_changes() for f in _FIGURES):
                refresh_size_class(obj)
