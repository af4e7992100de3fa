"""When a plan is next due on a device, and what that makes its status: plain arithmetic the
scheduler and the logbook share, so both agree on every due time.

A plan's interval runs from its last done time (rolling, as the lift regulations count it: at
most 15 days between two visits). A device never done under a plan is due one interval after
tracking began for telemetry plans (the device must report a pass within it); for plans done
by technicians the first visits are spread over the first interval (a stable offset per
device), so a new site does not get every job on day one.
"""

from __future__ import annotations

import zlib
from enum import StrEnum

from alerts.maintenance.plans import Evidence, Plan


class ComplianceStatus(StrEnum):
    DONE = "done"
    """Done within the interval, and not due again within the lead time."""
    DUE = "due"
    """Due within the lead time (a scheduled order exists for record plans), or never done."""
    OVERDUE = "overdue"
    """Past its due time without being done."""


def first_due_ms(plan: Plan, device_id: str, since_ms: int) -> int:
    if plan.evidence is Evidence.TELEMETRY:
        return since_ms + plan.every_ms
    offset = zlib.crc32(f"{plan.id}/{device_id}".encode()) % plan.every_ms
    return since_ms + offset


def next_due_ms(plan: Plan, device_id: str, *, last_done_ms: int | None, since_ms: int) -> int:
    if last_done_ms is not None:
        return last_done_ms + plan.every_ms
    return first_due_ms(plan, device_id, since_ms)


def status_at(next_due: int, at_ms: int, lead_ms: int, *, ever_done: bool) -> ComplianceStatus:
    if at_ms > next_due:
        return ComplianceStatus.OVERDUE
    if at_ms >= next_due - lead_ms or not ever_done:
        return ComplianceStatus.DUE
    return ComplianceStatus.DONE


def comes_due(next_due: int, now_ms: int, lead_ms: int) -> bool:
    """The scheduler's test: the plan's next due time is within the lead time (or past)."""
    return now_ms >= next_due - lead_ms
