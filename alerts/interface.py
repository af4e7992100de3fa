"""What a rule is: a vectorised condition over one kind's readings, held for a while.

A condition takes a `RuleContext` (a time-ordered `KindBatch`, the devices' parameters and
previous readings) and returns one boolean per reading. It must be pure numpy; a missing field
(NaN) must make it false. Conditions are compiled from rule files (`alerts.rule_language`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from alerts.rule_language import RuleContext
from facility.batch import BoolArray

Condition = Callable[[RuleContext], BoolArray]


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class Category(StrEnum):
    EQUIPMENT = "equipment"
    SENSOR = "sensor"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: str
    kind: str
    severity: Severity
    title: str
    """Shown on the work order; `{device}` is replaced by the device's name."""
    condition: Condition
    for_s: float = 0.0
    """The condition must hold this long (by reading timestamps) before the fault opens."""
    category: Category = Category.EQUIPMENT
    description: str = ""
    params: frozenset[str] = frozenset()
    """Parameters the condition reads; the engine builds a per-device array for each."""
    temporal: bool = False
    """The condition reads the devices' previous readings (delta, rate)."""
