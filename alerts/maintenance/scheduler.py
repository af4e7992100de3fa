"""The maintenance scheduler: a periodic job that turns plans coming due into work orders and
keeps the telemetry that shows a plan's test passing.

Each round, for every (plan, device) of the site:

- tracking starts (once: the first process to write it wins);
- telemetry plans: the device's newest reading (`device_state`), if it shows the test passing,
  is kept as evidence, the newest per interval;
- plans done by technicians: when the next due time is within `lead_ms` and no order of the
  plan is open on the device, one scheduled order is created, due at that time. The database
  gate (`alerts.orderstore.scheduled`) makes this safe on every API replica at once.

Telemetry plans make no orders: a failed or missing self-test is already a fault the rules
raise (`elevator.alarm_self_test`, offline); the logbook shows them overdue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from alerts.maintenance.plans import Evidence, Plan, PlanSet
from alerts.maintenance.schedule import comes_due, next_due_ms
from alerts.orderstore.scheduled import NewScheduledOrder, TechnicianRecord, TelemetryPass
from alerts.store import WorkOrderStore
from facility.clock import Clock, now_ms
from facility.site import Device, Site

log = logging.getLogger(__name__)
PASS_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class SchedulerRound:
    created: int
    """Scheduled orders this round made."""
    passes: int
    """Telemetry passes it saw."""


def passed_value(plan: Plan, value: object) -> float | None:
    """The reading's value of the plan's field if it shows the test passed, else None."""
    if plan.passed is None or not isinstance(value, (int, float)):  # a bool is an int
        return None
    number = float(value)
    return number if abs(number - plan.passed) <= PASS_TOLERANCE else None


def last_record(
    records: Sequence[TechnicianRecord], plan: Plan, device_id: str
) -> TechnicianRecord | None:
    """The newest record that completes the plan on the device (`records` newest first)."""
    return next(
        (
            r
            for r in records
            if r.plan_id == plan.id and r.device_id == device_id and r.code in plan.done_codes
        ),
        None,
    )


class MaintenanceScheduler:
    def __init__(
        self,
        site: Site,
        store: WorkOrderStore,
        plans: PlanSet,
        *,
        lead_ms: int,
        clock_ms: Clock = now_ms,
    ) -> None:
        self.site = site
        self.store = store
        self.plans = plans
        self.lead_ms = lead_ms
        self.clock_ms = clock_ms

    def run_once(self) -> SchedulerRound:
        now = self.clock_ms()
        pairs = self.plans.pairs(self.site)
        self.store.start_tracking(((p.id, d.id) for p, d in pairs), now)
        passes = self._record_passes([(p, d) for p, d in pairs if p.evidence is Evidence.TELEMETRY])
        created = self._schedule([(p, d) for p, d in pairs if p.evidence is Evidence.RECORD], now)
        if created:
            log.info("maintenance: %d scheduled work order(s) created", created)
        return SchedulerRound(created=created, passes=passes)

    def _record_passes(self, pairs: Sequence[tuple[Plan, Device]]) -> int:
        if not pairs:
            return 0
        states = self.store.device_states({d.id for _, d in pairs})
        found: list[TelemetryPass] = []
        for plan, device in pairs:
            state = states.get(device.id)
            if state is None or plan.field is None:
                continue
            value = passed_value(plan, state.values.get(plan.field))
            if value is not None:
                found.append(TelemetryPass(plan.id, device.id, state.last_seen_ms, value))
        self.store.record_passes(found, {p.id: p.every_ms for p in self.plans.plans})
        return len(found)

    def _schedule(self, pairs: Sequence[tuple[Plan, Device]], now: int) -> int:
        if not pairs:
            return 0
        device_ids = sorted({d.id for _, d in pairs})
        since = self.store.tracked_since(device_ids)
        records = self.store.technician_records(device_ids, until_ms=now)
        states = self.store.plan_order_states(device_ids)
        created = 0
        for plan, device in pairs:
            state = states.get((plan.id, device.id))
            if state is not None and state.open_order_id is not None:
                continue
            done = last_record(records, plan, device.id)
            due = next_due_ms(
                plan,
                device.id,
                last_done_ms=None if done is None else done.done_ms,
                since_ms=since.get((plan.id, device.id), now),
            )
            if not comes_due(due, now, self.lead_ms):
                continue
            order_id = self.store.create_scheduled_order(
                NewScheduledOrder(
                    site_id=device.site_id or self.site.id,  # its estate, in a portfolio
                    plan_id=plan.id,
                    device_id=device.id,
                    building_id=device.building_id,
                    unit_id=device.unit_id,
                    kind=device.kind,
                    title=f"{plan.title}: {device.name}",
                    severity=str(plan.severity),
                    due_ms=due,
                    after_order_id=0 if state is None else state.newest_finished_id,
                    note=_note(plan, due, done),
                )
            )
            created += order_id is not None
        return created


def _note(plan: Plan, due_ms: int, done: TechnicianRecord | None) -> str:
    due = datetime.fromtimestamp(due_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    last = (
        "never done under this plan" if done is None else f"last: work order {done.work_order_id}"
    )
    codes = ", ".join(sorted(plan.done_codes))
    return f"plan {plan.id}, due {due} ({last}); when done, resolve it with code {codes}"
