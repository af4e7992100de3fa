"""The compliance logbook of a building: for each device and maintenance plan, when it was last
done and what shows it, when it is next due, and whether it is done, due or overdue.

`compliance_for` is a plain function over the store, so the API's logbook and the owners'
report compute the same thing. Evidence is either telemetry (a reading that showed the plan's
test passing: kept by the scheduler, and the device's newest reading) or a technician's record
(a scheduled order of the plan resolved with one of its done codes: who, when, which order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from alerts.maintenance.plans import Evidence, Plan, PlanSet
from alerts.maintenance.schedule import ComplianceStatus, next_due_ms, status_at
from alerts.maintenance.scheduler import passed_value
from alerts.orderstore.models import DeviceState
from alerts.orderstore.scheduled import PairKey, PlanOrderState, TechnicianRecord, TelemetryPass
from facility.site import Device, Site

MAX_HISTORY = 100
"""Done entries listed per row, newest first (the range may hold more)."""


class ComplianceSource(Protocol):
    """What the logbook reads from the order store (`WorkOrderStore`)."""

    def tracked_since(self, device_ids: Sequence[str]) -> dict[PairKey, int]: ...

    def telemetry_passes(
        self, device_ids: Sequence[str], *, until_ms: int
    ) -> list[TelemetryPass]: ...

    def technician_records(
        self, device_ids: Sequence[str], *, until_ms: int
    ) -> list[TechnicianRecord]: ...

    def device_states(self, device_ids: Iterable[str] | None = None) -> dict[str, DeviceState]: ...

    def plan_order_states(self, device_ids: Sequence[str]) -> dict[PairKey, PlanOrderState]: ...


@dataclass(frozen=True, slots=True)
class DoneEvidence:
    """What shows that a plan's work was done, and when."""

    done_ms: int
    evidence: Evidence
    field: str | None = None
    """Telemetry: the field that reported the test, and ..."""
    value: float | None = None
    """... its value at `done_ms`."""
    work_order_id: int | None = None
    """A technician's record: the scheduled order resolved, ..."""
    by: str | None = None
    """... who resolved it, and ..."""
    code: str | None = None
    """... with which resolution code."""


@dataclass(frozen=True, slots=True)
class ComplianceRow:
    plan: Plan
    device: Device
    status: ComplianceStatus
    last_done: DoneEvidence | None
    """The newest evidence at or before the logbook's time; None: never done (as tracked)."""
    next_due_ms: int
    tracked_since_ms: int | None
    """When the scheduler began tracking the plan on the device; None: not yet."""
    open_order_id: int | None
    """The plan's open scheduled order on the device, if any."""
    done: tuple[DoneEvidence, ...]
    """Evidence within the range, newest first (telemetry: the newest pass per interval)."""


def compliance_for(
    store: ComplianceSource,
    site: Site,
    plans: PlanSet,
    building_id: str,
    *,
    at_ms: int,
    start_ms: int,
    lead_ms: int,
) -> list[ComplianceRow]:
    """The building's logbook as of `at_ms`, with the evidence from `start_ms` on.

    A device untracked so far (the scheduler has not run since it or the plan appeared)
    counts from `at_ms`.
    """
    building = site.building_by_id[building_id]
    pairs = plans.pairs(site, building.devices)
    device_ids = sorted({d.id for _, d in pairs})
    if not device_ids:
        return []
    since = store.tracked_since(device_ids)
    passes = store.telemetry_passes(device_ids, until_ms=at_ms)
    records = store.technician_records(device_ids, until_ms=at_ms)
    states = store.device_states(device_ids)
    orders = store.plan_order_states(device_ids)
    rows: list[ComplianceRow] = []
    for plan, device in pairs:
        if plan.evidence is Evidence.TELEMETRY:
            history = _telemetry(plan, device, passes, states.get(device.id), at_ms)
        else:
            history = _records(plan, device, records)
        last = history[0] if history else None
        tracked = since.get((plan.id, device.id))
        due = next_due_ms(
            plan,
            device.id,
            last_done_ms=None if last is None else last.done_ms,
            since_ms=tracked if tracked is not None else at_ms,
        )
        state = orders.get((plan.id, device.id))
        rows.append(
            ComplianceRow(
                plan=plan,
                device=device,
                status=status_at(due, at_ms, lead_ms, ever_done=last is not None),
                last_done=last,
                next_due_ms=due,
                tracked_since_ms=tracked,
                open_order_id=None if state is None else state.open_order_id,
                done=tuple(e for e in history if e.done_ms >= start_ms)[:MAX_HISTORY],
            )
        )
    return rows


def _telemetry(
    plan: Plan,
    device: Device,
    passes: Sequence[TelemetryPass],
    state: DeviceState | None,
    at_ms: int,
) -> list[DoneEvidence]:
    """Recorded passes, and the newest reading if it shows one too; newest first."""
    found = [
        DoneEvidence(p.done_ms, Evidence.TELEMETRY, field=plan.field, value=p.value)
        for p in passes
        if p.plan_id == plan.id and p.device_id == device.id
    ]
    if state is not None and plan.field is not None and state.last_seen_ms <= at_ms:
        value = passed_value(plan, state.values.get(plan.field))
        newest_kept = found[0].done_ms if found else None
        if value is not None and (newest_kept is None or state.last_seen_ms > newest_kept):
            same_period = newest_kept is not None and (
                newest_kept // plan.every_ms == state.last_seen_ms // plan.every_ms
            )
            current = DoneEvidence(
                state.last_seen_ms, Evidence.TELEMETRY, field=plan.field, value=value
            )
            found = [current, *(found[1:] if same_period else found)]
    return found


def _records(plan: Plan, device: Device, records: Sequence[TechnicianRecord]) -> list[DoneEvidence]:
    """The technicians' records that complete the plan on the device, newest first."""
    return [
        DoneEvidence(
            r.done_ms, Evidence.RECORD, work_order_id=r.work_order_id, by=r.by, code=r.code
        )
        for r in records
        if r.plan_id == plan.id and r.device_id == device.id and r.code in plan.done_codes
    ]
