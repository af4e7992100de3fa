"""Which open work orders a building's tile names, and which ones residents are told about.

A steward should read "Elevator 2: passenger trapped" on the tile, not count chips: the worst
few open orders, most severe first. Residents see less: only equipment being out of order
(a fault of a device, critical or major), never a report, a sensor fault or who is on it.
The words themselves are the API's (`api.words`); this module only chooses the orders.
"""

from __future__ import annotations

from collections.abc import Iterable

from alerts.interface import Category, Severity
from alerts.orderstore.models import WorkOrder
from alerts.workorders import Source

SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}
"""critical < major < minor < warning: a lower rank is worse."""
PUBLIC_SEVERITIES = frozenset({Severity.CRITICAL, Severity.MAJOR})
PUBLIC_SOURCES = frozenset({Source.FAULT, Source.ROOT_CAUSE})


def _worst_first(order: WorkOrder) -> tuple[int, int, int, int]:
    active = order.source is not Source.REPORT and order.cleared_ms is None
    since = order.fault_started_ms if order.fault_started_ms is not None else order.created_ms
    return (SEVERITY_RANK.get(order.severity, len(SEVERITY_RANK)), 0 if active else 1, since,
            order.id)  # fmt: skip


def worst_problems(open_orders: Iterable[WorkOrder], *, limit: int) -> list[WorkOrder]:
    """At most `limit` of the open orders: the most severe first; among equals a fault still
    active before one that cleared, then the oldest. A plan's routine visit is not a problem
    (it does not colour the status either)."""
    problems = (o for o in open_orders if o.source is not Source.SCHEDULED)
    return sorted(problems, key=_worst_first)[:limit]


def public_outages(open_orders: Iterable[WorkOrder]) -> list[WorkOrder]:
    """The open orders residents may be told about: a device's equipment fault, critical or
    major, worst first. Reports (a resident's words), sensor faults and site incidents are
    not outages of a building's equipment."""
    return sorted(
        (
            o
            for o in open_orders
            if o.source in PUBLIC_SOURCES
            and o.severity in PUBLIC_SEVERITIES
            and o.category == Category.EQUIPMENT
            and o.device_id is not None
        ),
        key=_worst_first,
    )
