"""Request and response schemas of the API, in one place.

Request bodies forbid unknown fields (no mass assignment: a client cannot set `status`,
`team` or `severity` where the route does not take them). Text a client sends matches `LINE` (one
line: no control character) or `TEXT` (tab and line breaks allowed): any other control character
is a 422 here rather than an error wherever the text goes next (a database, a log line, a
notification). Lone surrogates never get this far (`api.http.limits` refuses them as JSON).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

LINE: Final = "^[^\\x00-\\x1f\\x7f]*$"
"""Text on one line: no control character."""
TEXT: Final = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"
"""Text that may have several lines: tab, line feed and carriage return allowed."""

StatusName = Literal["ok", "unknown", "warning", "offline", "alarm"]
WorkOrderStatus = Literal[
    "open", "acknowledged", "in_progress", "on_hold", "resolved", "closed", "cancelled"
]
Severity = Literal["critical", "major", "minor", "warning"]
Kind = Literal["elevator", "lighting", "gate", "pump"]
RoleName = Literal["admin", "dispatcher", "technician", "steward"]
Value = bool | int | float | str

Id = Annotated[str, StringConstraints(pattern=LINE, min_length=1, max_length=64)]
Name = Annotated[
    str, StringConstraints(pattern=LINE, strip_whitespace=True, min_length=1, max_length=64)
]
Note = Annotated[str, StringConstraints(pattern=TEXT, max_length=2000)]
Assignee = Annotated[str, StringConstraints(pattern=LINE, min_length=1, max_length=128)]
MAX_MS: Final = 2**53
"""The largest time in ms a client may send (a JavaScript number is exact up to it)."""
ResolutionCode = Literal[
    "repaired", "part_replaced", "adjusted", "reset", "cleaned", "external_cause",
    "no_fault_found", "false_alarm", "duplicate", "self_cleared", "maintenance_done",
]  # fmt: skip
"""`alerts.workorders.ResolutionCode` (a test keeps the two the same)."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- auth and users ----------------------------------------------------------------------------


class LoginIn(_In):
    username: Annotated[str, StringConstraints(pattern=LINE, min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(pattern=LINE, min_length=1, max_length=256)]


class UserOut(BaseModel):
    username: str
    display_name: str
    role: RoleName
    team: str | None
    buildings: list[str]
    sites: list[str] = []
    """Whole sites the user is limited to (a steward: sees too); [] = none."""


class UserAdminOut(UserOut):
    disabled: bool
    backoff_clients: int = 0
    """Client addresses that must wait before trying this account again (unlock clears)."""
    backoff_until_ms: int | None = None
    """Until when the last of them waits."""


NewPassword = Annotated[str, StringConstraints(pattern=LINE, min_length=8, max_length=256)]


class UserIn(_In):
    username: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")]
    password: NewPassword
    role: RoleName
    display_name: Annotated[str, StringConstraints(pattern=LINE, max_length=128)] | None = None
    team: Name | None = None
    buildings: Annotated[list[Id], Field(max_length=1000)] = []
    sites: Annotated[list[Id], Field(max_length=1000)] = []
    """Whole sites: a steward sees every building of them; a dispatcher or technician is
    limited to them (a regional desk)."""


class BuildingsIn(_In):
    buildings: Annotated[list[Id], Field(min_length=1, max_length=1000)]


class SitesIn(_In):
    sites: Annotated[list[Id], Field(max_length=1000)]
    """[]: no limit by site (a steward then needs buildings)."""


class PasswordIn(_In):
    """A password an admin sets for a user (one who forgot theirs)."""

    password: NewPassword


class PasswordChangeIn(_In):
    """A user's own new password, with the current one as proof."""

    current_password: Annotated[str, StringConstraints(pattern=LINE, min_length=1, max_length=256)]
    new_password: NewPassword


class RoleIn(_In):
    role: RoleName
    team: Name | None = None
    """A technician's team (kept when a technician stays one and none is given)."""
    buildings: Annotated[list[Id], Field(max_length=1000)] | None = None
    """A steward's buildings (kept when a steward stays one and none are given)."""
    sites: Annotated[list[Id], Field(max_length=1000)] | None = None
    """The sites the user is limited to (kept unless given; an admin has none)."""


class UnlockOut(BaseModel):
    username: str
    cleared: int
    """Clients whose failed logins on the account were forgotten."""


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in_s: int
    expires_at_ms: int
    session_ends_at_ms: int
    """The session's absolute end: no refresh goes past it (log in again then)."""
    user: UserOut


# -- site --------------------------------------------------------------------------------------


class DeviceOut(BaseModel):
    id: str
    name: str
    kind: str
    building_id: str
    unit_id: str


class FieldOut(BaseModel):
    name: str
    type: str
    unit: str
    min: float
    max: float
    labels: list[str]


class DeviceDetailOut(DeviceOut):
    heartbeat_s: float
    fields: list[FieldOut]


class DevicePage(BaseModel):
    items: list[DeviceOut]
    total: int
    limit: int
    offset: int


class UnitOut(BaseModel):
    id: str
    name: str
    building_id: str
    devices: list[DeviceOut]


class BuildingRef(BaseModel):
    id: str
    name: str


class BuildingOut(BuildingRef):
    units: list[UnitOut]


class SiteSummaryOut(BaseModel):
    id: str
    name: str
    timezone: str
    buildings: int
    """How many of its buildings the user sees."""
    status: StatusName = "ok"
    """The worst status of those buildings."""
    open_work_orders: int = 0
    """Open orders of those buildings (and of the site as a whole)."""


class SiteOut(BaseModel):
    id: str
    name: str
    timezone: str
    buildings: list[BuildingRef]


class ReportCodeOut(BaseModel):
    unit_id: str
    building_id: str
    code: str
    report_path: str


# -- status ------------------------------------------------------------------------------------


class DeviceStatusOut(BaseModel):
    id: str
    name: str
    kind: str
    unit_id: str
    status: StatusName
    last_seen_ms: int | None
    values: dict[str, Value]
    open_work_orders: list[int]


class ProblemOut(BaseModel):
    """One of a building's worst open orders, in words (`api.words`)."""

    work_order_id: int
    device_id: str | None
    kind: str | None
    severity: Severity
    source: str
    status: WorkOrderStatus
    since_ms: int
    text: dict[str, str]
    """Language ("en", "zh-CN") -> "Elevator 2: passenger trapped"."""


class BuildingSummaryOut(BaseModel):
    id: str
    name: str
    site_id: str = ""
    site_name: str = ""
    status: StatusName
    counts: dict[str, dict[str, int]]
    open_work_orders: int
    open_reports: int = 0
    """Of the open orders, residents' reports."""
    problems: list[ProblemOut] = []
    """The worst few open orders, most severe first."""


class BuildingStatusOut(BuildingSummaryOut):
    devices: list[DeviceStatusOut]


class ActiveFaultOut(BaseModel):
    work_order_id: int
    rule_id: str | None
    severity: str
    title: str
    fault_started_ms: int | None


# -- work orders -------------------------------------------------------------------------------


class WorkOrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: str
    """The site of the order's building (a portfolio's estate)."""
    site_name: str = ""
    building_id: str
    unit_id: str | None
    device_id: str | None
    kind: str | None
    rule_id: str | None
    severity: str
    category: str
    title: str
    title_zh: str | None = None
    """The title in 中文 (null: only the English one exists, e.g. an order from before 0010)."""
    status: str
    source: str
    priority: int
    fault_started_ms: int | None
    detected_ms: int | None
    created_ms: int
    updated_ms: int
    cleared_ms: int | None
    respond_by_ms: int | None
    resolve_by_ms: int | None
    responded_ms: int | None
    resolved_ms: int | None
    closed_ms: int | None
    team: str | None
    assignee: str | None
    escalation_level: int
    recurrences: int
    parent_id: int | None
    hold_reason: str | None
    hold_until_ms: int | None
    resolution_code: str | None
    overdue: bool
    fault_active: bool
    """A fault order whose condition has not cleared: resolving it needs `confirm_active`."""
    time_to_respond_s: float | None
    """Fault start to the first response (acknowledge, start, hold or resolve)."""
    time_to_repair_s: float | None
    """Fault start to resolution: the SLA clock stops here."""


class WorkOrderPage(BaseModel):
    items: list[WorkOrderOut]
    total: int
    limit: int
    offset: int


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    work_order_id: int
    at_ms: int
    actor: str
    event: str
    from_status: str | None
    to_status: str | None
    note: str | None
    code: str | None
    """A resolution's code."""
    due_ms: int | None
    """A hold's expected end."""


class BucketOut(BaseModel):
    start_ms: int
    mean: float
    min: float
    max: float
    count: int


class SeriesOut(BaseModel):
    field: str
    unit: str
    points: list[tuple[int, float]] | None = None
    buckets: list[BucketOut] | None = None


class TrendOut(BaseModel):
    start_ms: int
    end_ms: int
    interval_s: int
    series: list[SeriesOut]


class WorkOrderDetailOut(WorkOrderOut):
    history: list[EventOut]
    comments: list[EventOut]
    trend: TrendOut | None


class DeviceStatusDetailOut(BaseModel):
    id: str
    name: str
    kind: str
    building_id: str
    unit_id: str
    status: StatusName
    online: bool | None
    last_seen_ms: int | None
    heartbeat_s: float
    values: dict[str, Value]
    active_faults: list[ActiveFaultOut]
    open_work_orders: list[WorkOrderOut]


class HistoryOut(BaseModel):
    device_id: str
    kind: str
    start_ms: int
    end_ms: int
    interval_s: int | None
    series: list[SeriesOut]


class TransitionIn(_In):
    to: WorkOrderStatus
    note: Note | None = None
    """The reason (needed to hold, cancel or reopen) or the resolution's note."""
    hold_until_ms: Annotated[int, Field(ge=0, le=MAX_MS)] | None = None
    """To hold: when work is expected to go on (in the future, at most 366 days ahead)."""
    resolution_code: ResolutionCode | None = None
    """To resolve: how (a fixed list)."""
    confirm_active: bool = False
    """To resolve an order whose fault is still active: yes, really."""


class AssignIn(_In):
    assignee: Assignee | None
    team: Name | None = None
    note: Note | None = None


class CommentIn(_In):
    text: Annotated[
        str, StringConstraints(pattern=TEXT, strip_whitespace=True, min_length=1, max_length=4000)
    ]


class TeamIn(_In):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class AssigneeOut(BaseModel):
    username: str
    display_name: str
    role: RoleName
    team: str | None


class MaintenanceOrderOut(WorkOrderOut):
    actions: list[EventOut]
    """Who did what, oldest first."""


class MaintenanceOut(BaseModel):
    start_ms: int
    end_ms: int
    orders: int
    """Orders created in the range (`items` is one page of them)."""
    faults: int
    """Fault episodes that began on the device(s) in the range."""
    mean_time_to_respond_s: float | None
    mean_time_to_repair_s: float | None
    items: list[MaintenanceOrderOut]
    limit: int
    offset: int


# -- reports and figures -----------------------------------------------------------------------


class ReportIn(_In):
    code: Annotated[
        str, StringConstraints(pattern=LINE, strip_whitespace=True, min_length=1, max_length=64)
    ]
    description: Annotated[
        str, StringConstraints(pattern=TEXT, strip_whitespace=True, min_length=5, max_length=2000)
    ]
    device_id: Id | None = None
    contact: (
        Annotated[str, StringConstraints(pattern=LINE, strip_whitespace=True, max_length=200)]
        | None
    ) = None


class ReportOut(BaseModel):
    work_order_id: int
    status: str
    building_id: str
    unit_id: str | None


class SlaOut(BaseModel):
    respond_met: int
    respond_missed: int
    resolve_met: int
    resolve_missed: int
    compliant: int
    breached: int
    pending: int
    compliance: float | None


class ServiceFiguresOut(BaseModel):
    building_id: str
    start_ms: int
    end_ms: int
    work_orders: int
    reports: int
    mean_time_to_acknowledge_s: float | None
    mean_time_to_resolve_s: float | None
    sla: SlaOut
    elevator_availability: float | None
    faults_by_kind: dict[str, int]


class HealthOut(BaseModel):
    status: Literal["ok"]
    site: str
