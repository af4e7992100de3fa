"""Service figures (`alerts.service`): what counts as a call answered and a car out of service."""

from __future__ import annotations

from alerts.interface import Severity
from alerts.service import service_figures
from alerts.workorders import Source, WorkOrderStatus
from tests.work_orders import MINUTE, T0, order

HOUR = 60 * MINUTE


def test_a_plans_routine_visit_is_neither_a_call_nor_downtime() -> None:
    trapped = order(
        1, responded_ms=T0 + 10 * MINUTE, resolved_ms=T0 + HOUR, cleared_ms=T0 + HOUR,
        status=WorkOrderStatus.RESOLVED,
    )  # fmt: skip
    visit = order(
        2, device_id="b03-u1-el1", rule_id="elevator.fortnightly", source=Source.SCHEDULED,
        severity=Severity.MAJOR, responded_ms=T0 + 3 * HOUR, fault_started_ms=None,
    )  # fmt: skip
    period = {"elevators": 2, "start_ms": T0, "end_ms": T0 + 4 * HOUR, "now_ms": T0 + 4 * HOUR}

    alone = service_figures("b03", [trapped], **period)
    with_visit = service_figures("b03", [trapped, visit], **period)

    assert with_visit == alone
    assert alone.work_orders == 1
    assert alone.elevator_availability == 1 - HOUR / (2 * 4 * HOUR)
    assert alone.mean_time_to_acknowledge_s == 600
