"""What a notification channel must do: turn a notice into an HTTP request, judge the reply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from alerts.store import WorkOrder


@dataclass(frozen=True, slots=True)
class Notice:
    """One work-order event worth telling someone about."""

    event_id: int
    """The audit-history row: the delivery key (receivers can de-duplicate on it)."""
    event: str
    """`created`, `reopened`, `escalated` or `root_cause`."""
    at_ms: int
    note: str | None
    order: WorkOrder
    building_name: str
    unit_name: str | None
    device_name: str | None
    url: str | None
    """Where the order opens in the dashboard, if a public address is configured."""
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Outcome(Enum):
    SENT = "sent"
    RETRY = "retry"
    """The receiver is down, busy or rate-limiting: try the same notice again later."""
    FAILED = "failed"
    """The receiver refused this notice for good (bad key, bad body): count it and move on."""


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    detail: str = ""


class Channel(Protocol):
    """One destination. Building a request and judging its reply are pure, hence testable."""

    @property
    def name(self) -> str: ...

    def request(self, notice: Notice, now_ms: int) -> Request: ...

    def verdict(self, status: int, body: bytes) -> Verdict: ...
