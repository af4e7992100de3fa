"""Fault episodes the engine found, turned from masks into a few records per batch."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.interface import Category, Severity


@dataclass(frozen=True, slots=True)
class FaultOpened:
    rule_id: str
    kind: str
    device_id: str
    building_id: str
    unit_id: str
    severity: Severity
    category: Category
    title: str
    started_ms: int
    """When the condition began to hold (the episode's start), by reading time."""
    detected_ms: int
    """The reading at which it had held long enough."""
    observed_by: tuple[str, ...] = ()
    """For a fault of a shared asset (`device_id` is the asset's id): the devices that saw it."""
    family_rules: tuple[str, ...] = ()
    """The ids of the rules of this rule's family (empty: none): their faults on one device
    share one open work order, a more severe one escalating it."""
    flap: bool = False
    """It began within the rule's `gap` of the last clear: the same physical event coming
    back, not a recurrence (root-cause orders and `repeat` do not count it)."""
    title_zh: str | None = None
    """The title in 中文, when the rule has one."""
    site_id: str = ""
    """The site the fault is on: in a portfolio the device's own site ("" = the filer's)."""


@dataclass(frozen=True, slots=True)
class FaultCleared:
    rule_id: str
    device_id: str
    cleared_ms: int
    auto_resolve: bool = False
    family_rules: tuple[str, ...] = ()
    """The rule's family: the clear is reported once no rule of it is open on the device,
    and ends the family's order whichever of its rules that order follows."""
    """The rule asks for its work order to be resolved on this clear."""
