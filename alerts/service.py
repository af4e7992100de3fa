"""Service figures of a building over a period, from its work orders (no SQL here).

- mean time to acknowledge / to resolve: from the fault's start (a report's filing) to the
  first response / to the resolution, over the orders created in the period;
- SLA compliance: of the orders created in the period whose outcome is known, the share that
  met both their respond-by and resolve-by times (one still open past a deadline has missed it);
- elevator availability: 1 - the elevator-time under an open critical or major elevator order
  (from the fault's start until it cleared, was resolved or closed), over the building's
  elevators and the period (up to now);
- faults by kind: orders raised by rules (source `fault`) created in the period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from alerts.store import WorkOrder
from alerts.workorders import Source

_DOWN_SEVERITIES = frozenset({"critical", "major"})


@dataclass(frozen=True, slots=True)
class SlaFigures:
    respond_met: int = 0
    respond_missed: int = 0
    resolve_met: int = 0
    resolve_missed: int = 0
    compliant: int = 0
    breached: int = 0
    pending: int = 0

    @property
    def compliance(self) -> float | None:
        decided = self.compliant + self.breached
        return self.compliant / decided if decided else None


@dataclass(frozen=True, slots=True)
class ServiceFigures:
    building_id: str
    start_ms: int
    end_ms: int
    work_orders: int
    reports: int
    mean_time_to_acknowledge_s: float | None
    mean_time_to_resolve_s: float | None
    sla: SlaFigures
    elevator_availability: float | None
    faults_by_kind: dict[str, int] = field(default_factory=dict)


def _start(order: WorkOrder) -> int:
    return order.fault_started_ms if order.fault_started_ms is not None else order.created_ms


def _mean_s(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) / 1000 if values else None


def _deadline(done_ms: int | None, due_ms: int | None, now_ms: int) -> bool | None:
    """True met, False missed, None not known yet (or no deadline)."""
    if due_ms is None:
        return None
    if done_ms is not None:
        return done_ms <= due_ms
    return False if now_ms > due_ms else None


def sla_figures(orders: Iterable[WorkOrder], now_ms: int) -> SlaFigures:
    counts: Counter[str] = Counter()
    for o in orders:
        respond = _deadline(o.responded_ms, o.respond_by_ms, now_ms)
        resolve = _deadline(o.resolved_ms, o.resolve_by_ms, now_ms)
        for name, outcome in (("respond", respond), ("resolve", resolve)):
            if outcome is not None:
                counts[f"{name}_{'met' if outcome else 'missed'}"] += 1
        if respond is False or resolve is False:
            counts["breached"] += 1
        elif respond and resolve:
            counts["compliant"] += 1
        else:
            counts["pending"] += 1
    return SlaFigures(**counts)


def _downtime_ms(orders: Iterable[WorkOrder], start_ms: int, end_ms: int) -> int:
    """Elevator-time (summed over elevators) under an open critical/major order in the period;
    overlapping orders of one elevator count once."""
    by_device: dict[str, list[tuple[int, int]]] = {}
    for o in orders:
        if o.kind != "elevator" or o.device_id is None or o.severity not in _DOWN_SEVERITIES:
            continue
        if o.source == Source.REPORT:
            continue
        ends = [t for t in (o.cleared_ms, o.resolved_ms, o.closed_ms) if t is not None]
        lo, hi = max(_start(o), start_ms), min(min(ends, default=end_ms), end_ms)
        if hi > lo:
            by_device.setdefault(o.device_id, []).append((lo, hi))
    total = 0
    for spans in by_device.values():
        spans.sort()
        cur_lo, cur_hi = spans[0]
        for lo, hi in spans[1:]:
            if lo > cur_hi:
                total += cur_hi - cur_lo
                cur_lo, cur_hi = lo, hi
            else:
                cur_hi = max(cur_hi, hi)
        total += cur_hi - cur_lo
    return total


def service_figures(
    building_id: str,
    orders: Sequence[WorkOrder],
    *,
    elevators: int,
    start_ms: int,
    end_ms: int,
    now_ms: int,
) -> ServiceFigures:
    """Figures for [start_ms, end_ms); `orders` are the building's orders alive in it
    (`WorkOrderStore.orders_for_period`). A plan's routine visit is not a call to answer nor
    an elevator out of service: scheduled orders count in the compliance figures instead."""
    orders = [o for o in orders if o.source != Source.SCHEDULED]
    created = [o for o in orders if start_ms <= o.created_ms < end_ms]
    to_ack = [o.responded_ms - _start(o) for o in created if o.responded_ms is not None]
    to_resolve = [o.resolved_ms - _start(o) for o in created if o.resolved_ms is not None]
    until = min(end_ms, now_ms)
    availability: float | None = None
    if elevators > 0 and until > start_ms:
        down = _downtime_ms(orders, start_ms, until)
        availability = 1.0 - down / (elevators * (until - start_ms))
    kinds = Counter(o.kind or "none" for o in created if o.source == Source.FAULT)
    return ServiceFigures(
        building_id=building_id,
        start_ms=start_ms,
        end_ms=end_ms,
        work_orders=len(created),
        reports=sum(o.source == Source.REPORT for o in created),
        mean_time_to_acknowledge_s=_mean_s([max(0, t) for t in to_ack]),
        mean_time_to_resolve_s=_mean_s([max(0, t) for t in to_resolve]),
        sla=sla_figures(created, now_ms),
        elevator_availability=availability,
        faults_by_kind=dict(sorted(kinds.items())),
    )
