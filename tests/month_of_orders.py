"""A simulated month of the demo estate's work orders, filed through the order store as the
gateway and the people on the board would: faults of the default rule pack on random devices
(`open_for_faults`, clears), acknowledged, started, held, resolved and closed by staff after
random delays, residents' reports; some left open. Seeded: the same month every time.

Telemetry for a month at 1 Hz would take hours to simulate; the report reads only orders.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts.faults import FaultCleared
from alerts.rule_faults import rule_fault
from alerts.rules import default_rule_set
from alerts.store import WorkOrderStore
from alerts.workorders import InvalidTransitionError, ResolutionCode
from facility.catalog import KINDS
from facility.site import Site
from tests.fakes import FakeClock

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
CODES = [c.value for c in ResolutionCode if c is not ResolutionCode.SELF_CLEARED]


@dataclass
class _Schedule:
    """Steps to run at their times, in time order (the store stamps them with the clock)."""

    steps: list[tuple[int, int, Callable[[], None]]] = field(default_factory=list)

    def at(self, ms: int, step: Callable[[], None]) -> None:
        self.steps.append((ms, len(self.steps), step))


def simulate_month(
    store: WorkOrderStore,
    site: Site,
    clock: FakeClock,
    *,
    start_ms: int,
    days: int,
    faults_per_day: int = 4,
    reports_per_day: float = 0.5,
    seed: int = 14,
) -> int:
    """File and work the orders of `days` days from `start_ms`; the number of faults and
    reports filed (a fault on a device with an open order of its rule goes onto that order)."""
    rng = random.Random(seed)
    rules = [r for r in default_rule_set().rules if not r.id.startswith("sensor.")]
    schedule = _Schedule()
    filed: dict[int, int] = {}  # the n-th fault -> its order id

    def file_fault(n: int, rule_index: int, device_id: str, started: int) -> None:
        rule, device = rules[rule_index], site.by_id[device_id]
        kind = KINDS[device.kind]
        fault = rule_fault(rule, device, None, kind, [0.0] * len(kind.fields), started, started, ())
        store.open_for_faults(site.id, [fault])
        (order,) = store.list_work_orders(device_id=device_id, limit=1)
        filed[n] = order.id

    def step(n: int, to: str, **kwargs: object) -> Callable[[], None]:
        def run() -> None:
            order = store.get(filed[n])
            if order.status in ("closed", "cancelled") or (to != "closed" and order.status == to):
                return
            actor = "dispatcher" if to in ("closed", "cancelled") else "tech"
            # The order may have taken another fault meanwhile and moved on: nothing to do.
            with contextlib.suppress(InvalidTransitionError):
                store.transition(filed[n], to, actor=actor, **kwargs)  # type: ignore[arg-type]

        return run

    count = 0
    for day in range(days):
        for _ in range(faults_per_day):
            rule_index = rng.randrange(len(rules))
            devices = site.by_kind[rules[rule_index].kind]
            device = rng.choice(devices).id
            started = start_ms + day * DAY + rng.randrange(DAY - 4 * HOUR)
            n = count
            count += 1
            schedule.at(started, functools.partial(file_fault, n, rule_index, device, started))
            fate = rng.random()
            if fate < 0.1:
                continue  # nobody answers: still open at the end, past its deadlines
            acknowledged = started + rng.randrange(2 * MINUTE, 3 * HOUR)
            schedule.at(acknowledged, step(n, "acknowledged"))
            if fate < 0.15:
                schedule.at(acknowledged + HOUR, step(n, "cancelled", note="duplicate call"))
                continue
            cleared = acknowledged + rng.randrange(10 * MINUTE, 6 * HOUR)
            rule_id = rules[rule_index].id
            clear = FaultCleared(rule_id=rule_id, device_id=device, cleared_ms=cleared)
            schedule.at(cleared, functools.partial(store.record_clears, [clear]))
            resolved = cleared + rng.randrange(5 * MINUTE, 30 * HOUR)
            code = rng.choice(CODES)
            schedule.at(resolved, step(n, "resolved", resolution_code=code, confirm_active=True))
            if fate > 0.5:
                schedule.at(resolved + rng.randrange(HOUR, 2 * DAY), step(n, "closed"))
        if rng.random() < reports_per_day:
            unit = rng.choice([u for b in site.buildings for u in b.units])
            at = start_ms + day * DAY + rng.randrange(DAY - 4 * HOUR)
            n = count
            count += 1

            def report(
                n: int = n, unit_id: str = unit.id, building_id: str = unit.building_id
            ) -> None:
                order = store.create_report(
                    site_id=site.id, building_id=building_id, unit_id=unit_id, device_id=None,
                    kind=None, description="the lift in our unit makes a grinding noise",
                )  # fmt: skip
                filed[n] = order.id

            schedule.at(at, report)
            if rng.random() < 0.7:
                answered = at + rng.randrange(30 * MINUTE, 10 * HOUR)
                schedule.at(answered, step(n, "in_progress"))
                code = rng.choice(["repaired", "no_fault_found", "adjusted"])
                done = answered + rng.randrange(HOUR, 2 * DAY)
                schedule.at(done, step(n, "resolved", resolution_code=code))
    for at, _, run in sorted(schedule.steps, key=lambda s: (s[0], s[1])):
        clock.now = at
        run()
    return count
