"""Work-order rules that do not touch SQL: lifecycle, SLA targets, cool-down, assignment.

The store (`alerts.store`) asks this module what is allowed and what is due; keeping the rules
here lets them be read, configured and tested without a database.

Errors, as a tree:

    FacilityError
     └── WorkOrderError              anything a work-order operation refuses
          ├── WorkOrderNotFoundError      no work order with that id
          ├── InvalidTransitionError      the lifecycle does not allow from -> to
          ├── WorkOrderConflictError      the change would make a second open order of one fault
          │    └── FaultStillActiveError   resolving while the fault is on, unconfirmed
          └── WorkOrderInputError (+ValueError)  a missing reason, unknown code, team or date;
               └── UnknownTeamError             names the field it is about
    ValueError
     └── WorkOrderPolicyError        a bad setting; the message names it
"""

from __future__ import annotations

import bisect
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from facility.errors import FacilityError


class WorkOrderStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = WorkOrderStatus

TRANSITIONS: Final[Mapping[WorkOrderStatus, frozenset[WorkOrderStatus]]] = {
    S.OPEN: frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS, S.ON_HOLD, S.RESOLVED, S.CANCELLED}),
    S.ACKNOWLEDGED: frozenset({S.IN_PROGRESS, S.ON_HOLD, S.RESOLVED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.ON_HOLD, S.RESOLVED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.IN_PROGRESS, S.RESOLVED, S.CANCELLED}),
    # A fix that did not hold is reopened rather than filed again, so its history stays together.
    S.RESOLVED: frozenset({S.CLOSED, S.OPEN}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
"""Which status may follow which. Closed and cancelled are final: history is never rewritten."""

RESPONDED_STATUSES: Final = frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS, S.ON_HOLD, S.RESOLVED})
"""Reaching one of these the first time is the response the respond-by time asks for."""


class EventKind(StrEnum):
    """What an audit-history entry records."""

    CREATED = "created"
    TRANSITION = "transition"
    ASSIGNED = "assigned"
    COMMENT = "comment"
    CLEARED = "cleared"
    RECURRED = "recurred"
    """The fault came back while the order was open: annotated, not filed again."""
    REOPENED = "reopened"
    """The fault came back within the cool-down after the order was resolved."""
    ESCALATED = "escalated"
    ROOT_CAUSE = "root_cause"
    """A root-cause order was raised because this fault keeps coming back."""
    FINDING = "finding"
    """Another rule of the fault's family (the same cause) fired on the device: recorded on
    its open order, not filed apart."""


class Source(StrEnum):
    """Why a work order exists; one open order per source, device and rule."""

    FAULT = "fault"
    ROOT_CAUSE = "root_cause"
    REPORT = "report"
    SCHEDULED = "scheduled"
    """Preventive maintenance from a plan (`alerts.maintenance`): its rule_id is the plan's id."""


class ResolutionCode(StrEnum):
    """How an order was resolved: a fixed list, so the owners' figures can count by it."""

    REPAIRED = "repaired"
    PART_REPLACED = "part_replaced"
    ADJUSTED = "adjusted"
    RESET = "reset"
    CLEANED = "cleaned"
    EXTERNAL_CAUSE = "external_cause"
    """Power cut, vandalism, a utility's supply: nothing of ours was broken."""
    NO_FAULT_FOUND = "no_fault_found"
    FALSE_ALARM = "false_alarm"
    DUPLICATE = "duplicate"
    SELF_CLEARED = "self_cleared"
    """The condition went away by itself (a rule's auto-resolve uses this)."""
    MAINTENANCE_DONE = "maintenance_done"
    """The planned maintenance or test was carried out: a technician's record that completes
    a plan's period (`alerts.maintenance`)."""


NEEDS_REASON: Final = frozenset({S.ON_HOLD, S.CANCELLED, S.OPEN})
"""Holding, cancelling and reopening say why (the reason is the event's note)."""
AUTO_ASSIGN: Final = frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS})
"""Acknowledging or starting an unassigned order makes the actor its assignee."""
MAX_HOLD_MS: Final = 366 * 86_400_000
"""A hold's expected end is at most this far ahead (a typo of a year is refused)."""

SYSTEM_ACTOR: Final = "system"


class WorkOrderError(FacilityError):
    """A work-order operation was refused."""


class WorkOrderNotFoundError(WorkOrderError, LookupError):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"no work order {order_id}")
        self.order_id = order_id


class InvalidTransitionError(WorkOrderError):
    def __init__(self, order_id: int, from_status: str, to_status: str) -> None:
        known = from_status in WorkOrderStatus.__members__.values()
        allowed = sorted(TRANSITIONS[WorkOrderStatus(from_status)]) if known else []
        super().__init__(
            f"work order {order_id} cannot go from {str(from_status)!r} to {str(to_status)!r}"
            f" (allowed: {', '.join(allowed) or 'none, it is final'})"
        )
        self.order_id = order_id
        self.from_status = from_status
        self.to_status = to_status


class WorkOrderConflictError(WorkOrderError):
    """E.g. reopening an order while a newer order of the same fault is open."""


class FaultStillActiveError(WorkOrderConflictError):
    """Resolving an order whose fault has not cleared needs an explicit confirmation."""

    def __init__(self, order_id: int) -> None:
        super().__init__(
            f"the fault behind work order {order_id} is still active (it has not cleared);"
            " resolve it anyway only with confirm_active: true"
        )
        self.order_id = order_id


class WorkOrderInputError(WorkOrderError, ValueError):
    """What was asked for is incomplete or unknown; `field` names the part of the request."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownTeamError(WorkOrderInputError):
    def __init__(self, team: str, known: list[str]) -> None:
        super().__init__(f"no team {team!r} (known: {', '.join(known) or 'none'})", field="team")
        self.team = team


class WorkOrderPolicyError(ValueError):
    """A work-order setting is invalid; the message names the setting."""


def check_transition(order_id: int, from_status: str, to_status: str) -> WorkOrderStatus:
    """The target status if the lifecycle allows it, else `InvalidTransitionError`."""
    try:
        target = WorkOrderStatus(to_status)
        source = WorkOrderStatus(from_status)
    except ValueError:
        raise InvalidTransitionError(order_id, from_status, to_status) from None
    if target not in TRANSITIONS[source]:
        raise InvalidTransitionError(order_id, from_status, to_status)
    return target


# -- policy ------------------------------------------------------------------------------------

MINUTE_S: Final = 60
HOUR_S: Final = 3600
DAY_S: Final = 86_400


@dataclass(frozen=True, slots=True)
class SeverityPolicy:
    """What a fault of one severity promises: priority, SLA times, and its cool-down."""

    priority: int
    """1 is the most urgent."""
    respond_s: int
    """Someone must acknowledge (or start) within this time from the fault's start."""
    resolve_s: int
    """It must be resolved within this time from the fault's start."""
    cooldown_s: int
    """A recurrence this soon after resolution reopens the order: the fix did not hold."""


DEFAULT_SEVERITIES: Final[Mapping[str, SeverityPolicy]] = {
    # A trapped passenger or a dry-running pump: someone on the way within 15 minutes.
    "critical": SeverityPolicy(1, 15 * MINUTE_S, 4 * HOUR_S, DAY_S),
    "major": SeverityPolicy(2, 1 * HOUR_S, 1 * DAY_S, 3 * DAY_S),
    "minor": SeverityPolicy(3, 8 * HOUR_S, 3 * DAY_S, 7 * DAY_S),
    "warning": SeverityPolicy(4, 1 * DAY_S, 7 * DAY_S, 7 * DAY_S),
}


@dataclass(frozen=True, slots=True)
class AssignmentRule:
    """Orders of these kinds in buildings matching the pattern go to the team."""

    team: str
    kinds: frozenset[str] = frozenset()
    """Empty: any kind (also orders without a device)."""
    building: str = "*"
    """An fnmatch pattern over the building id, e.g. `b0*`."""

    def matches(self, kind: str | None, building_id: str) -> bool:
        if self.kinds and kind not in self.kinds:
            return False
        return fnmatch.fnmatchcase(building_id, self.building)


DEFAULT_ASSIGNMENT: Final = (
    AssignmentRule("lift-contractor", frozenset({"elevator"})),
    AssignmentRule("plumbing", frozenset({"pump"})),
    AssignmentRule("electrical", frozenset({"lighting"})),
    AssignmentRule("access-control", frozenset({"gate"})),
)


def fullest_window(starts: list[int], start: int, window_ms: int) -> tuple[int, int]:
    """The most episodes in any window (end - window_ms, end] that holds `start`, and that
    window's end (the newest episode it counts; `start` when it counts none).

    `starts` is sorted. Filed in time order this is the window ending at `start`; filed out of
    order (later episodes first) a later end can hold more.
    """
    best, best_end = 0, start
    first_end = bisect.bisect_left(starts, start)
    last_end = bisect.bisect_left(starts, start + window_ms)
    for end in starts[first_end:last_end]:
        inside = bisect.bisect_right(starts, end) - bisect.bisect_right(starts, end - window_ms)
        if inside > best:
            best, best_end = inside, end
    return best, best_end


@dataclass(frozen=True, slots=True)
class WorkOrderPolicy:
    """Every tunable of work orders. Built once at start-up; invalid values fail there."""

    severities: Mapping[str, SeverityPolicy] = field(
        default_factory=lambda: dict(DEFAULT_SEVERITIES)
    )
    assignment: tuple[AssignmentRule, ...] = DEFAULT_ASSIGNMENT
    """First match wins."""
    default_team: str | None = "maintenance"
    root_cause_after: int = 3
    """This many episodes of one rule on one device within the window raise a root-cause order."""
    root_cause_window_s: int = 30 * DAY_S

    def __post_init__(self) -> None:
        for name, sev in self.severities.items():
            where = f"work_orders.severities.{name}"
            if sev.priority < 1:
                raise WorkOrderPolicyError(f"{where}.priority must be >= 1, not {sev.priority}")
            if sev.respond_s <= 0 or sev.resolve_s <= 0:
                raise WorkOrderPolicyError(f"{where}: respond_s and resolve_s must be > 0")
            if sev.resolve_s < sev.respond_s:
                raise WorkOrderPolicyError(f"{where}.resolve_s must not be less than respond_s")
            if sev.cooldown_s < 0:
                raise WorkOrderPolicyError(f"{where}.cooldown_s must be >= 0")
        for i, rule in enumerate(self.assignment):
            if not rule.team.strip():
                raise WorkOrderPolicyError(f"work_orders.assignment[{i}].team must not be empty")
        if self.root_cause_after < 2:
            raise WorkOrderPolicyError("work_orders.root_cause_after must be >= 2")
        if self.root_cause_window_s <= 0:
            raise WorkOrderPolicyError("work_orders.root_cause_window_s must be > 0")

    def for_severity(self, severity: str) -> SeverityPolicy:
        """Unknown severities get the mildest configured terms rather than failing a fault."""
        found = self.severities.get(severity)
        if found is not None:
            return found
        return max(self.severities.values(), key=lambda s: s.priority, default=_FALLBACK)

    def team_for(self, kind: str | None, building_id: str) -> str | None:
        for rule in self.assignment:
            if rule.matches(kind, building_id):
                return rule.team
        return self.default_team

    def sla(self, severity: str, start_ms: int) -> tuple[int, int, int]:
        """(priority, respond_by_ms, resolve_by_ms), measured from the fault's start."""
        sev = self.for_severity(severity)
        return sev.priority, start_ms + sev.respond_s * 1000, start_ms + sev.resolve_s * 1000


_FALLBACK = SeverityPolicy(4, DAY_S, 7 * DAY_S, 7 * DAY_S)


def _int(raw: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkOrderPolicyError(f"{where}.{key} must be an integer, not {value!r}")
    return value


def policy_from_mapping(raw: Mapping[str, Any]) -> WorkOrderPolicy:
    """A policy from parsed TOML/JSON (the `[work_orders]` table); unknown keys are errors.

    Example:
        severities.critical = { priority = 1, respond_s = 900, resolve_s = 14400,
                                cooldown_s = 86400 }
        assignment = [{ team = "lifts-north", kinds = ["elevator"], building = "n*" }]
    """
    known = {"severities", "assignment", "default_team", "root_cause_after", "root_cause_window_s"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise WorkOrderPolicyError(f"work_orders: unknown setting(s) {', '.join(unknown)}")
    severities = dict(DEFAULT_SEVERITIES)
    for name, sev_raw in dict(raw.get("severities", {})).items():
        where = f"work_orders.severities.{name}"
        if not isinstance(sev_raw, Mapping):
            raise WorkOrderPolicyError(f"{where} must be a table")
        extra = sorted(set(sev_raw) - {"priority", "respond_s", "resolve_s", "cooldown_s"})
        if extra:
            raise WorkOrderPolicyError(f"{where}: unknown setting(s) {', '.join(extra)}")
        base = severities.get(name, _FALLBACK)
        severities[name] = SeverityPolicy(
            priority=_int(sev_raw, "priority", where, base.priority),
            respond_s=_int(sev_raw, "respond_s", where, base.respond_s),
            resolve_s=_int(sev_raw, "resolve_s", where, base.resolve_s),
            cooldown_s=_int(sev_raw, "cooldown_s", where, base.cooldown_s),
        )
    assignment: list[AssignmentRule] = []
    for i, rule_raw in enumerate(raw.get("assignment", [])):
        where = f"work_orders.assignment[{i}]"
        if not isinstance(rule_raw, Mapping) or not isinstance(rule_raw.get("team"), str):
            raise WorkOrderPolicyError(f"{where} needs a team (a string)")
        kinds = rule_raw.get("kinds", [])
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise WorkOrderPolicyError(f"{where}.kinds must be a list of strings")
        building = rule_raw.get("building", "*")
        if not isinstance(building, str):
            raise WorkOrderPolicyError(f"{where}.building must be a string pattern")
        assignment.append(AssignmentRule(rule_raw["team"], frozenset(kinds), building))
    default_team = raw.get("default_team", "maintenance")
    if default_team is not None and not isinstance(default_team, str):
        raise WorkOrderPolicyError("work_orders.default_team must be a string")
    return WorkOrderPolicy(
        severities=severities,
        assignment=tuple(assignment) if "assignment" in raw else DEFAULT_ASSIGNMENT,
        default_team=default_team or None,
        root_cause_after=_int(raw, "root_cause_after", "work_orders", 3),
        root_cause_window_s=_int(raw, "root_cause_window_s", "work_orders", 30 * DAY_S),
    )
