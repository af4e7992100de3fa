"""What a rule is: a vectorised condition over one kind's readings, held for a while.

A condition takes a `RuleContext` (a time-ordered `KindBatch`, the devices' parameters and
previous readings) and returns one boolean per reading. It must be pure numpy; a missing field
(NaN) must make it false. Conditions are compiled from rule files (`alerts.rule_compiler`; the
language: `alerts.rule_language`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from alerts.rule_context import RuleContext
from alerts.rule_windows import WindowSpec
from facility.batch import BoolArray, FloatArray

Condition = Callable[[RuleContext], BoolArray]
Value = Callable[[RuleContext], FloatArray]
"""A number per reading (a title value)."""
DEFAULT_GAP_S = 1800.0


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class Category(StrEnum):
    EQUIPMENT = "equipment"
    SENSOR = "sensor"
    """The measurement is wrong (flat-lined, pinned at a rail), not the equipment."""
    SITE = "site"
    """The whole site (a site incident), not one device."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a rule may open a fault, in the site's local time (an open fault is kept outside)."""

    minutes: tuple[tuple[int, int], ...] = ()
    """[start, end) minutes of the local day; an end before its start runs past midnight.
    Empty = all day."""
    weekdays: frozenset[int] = frozenset(range(7))
    """0 = Monday."""

    @property
    def always(self) -> bool:
        return not self.minutes and len(self.weekdays) == 7


@dataclass(frozen=True, slots=True)
class Repeat:
    """The fault opens only when the condition's episodes come `count` times within `within_s`."""

    count: int
    within_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: str
    kind: str
    severity: Severity
    title: str
    """Shown on the work order; `{device}` is replaced by the device's name."""
    title_zh: str = ""
    """The same in 中文 (empty: the English title stands for both)."""
    condition: Condition
    for_s: float = 0.0
    """The condition must hold this long (by reading timestamps) before the fault opens."""
    category: Category = Category.EQUIPMENT
    description: str = ""
    params: frozenset[str] = frozenset()
    """Parameters the condition reads; the engine builds a per-device array for each."""
    temporal: bool = False
    """The condition reads the devices' previous readings (delta, rate)."""
    clear: Condition | None = None
    """A separate condition that ends the fault (hysteresis); default: `condition` is false."""
    repeat: Repeat | None = None
    schedule: Schedule = Schedule()
    auto_resolve: bool = False
    """A clear resolves the work order (not only notes the clear on it)."""
    cooldown_s: float = 0.0
    """After a clear, the same fault on the same device opens again only this much later."""
    windows: tuple[WindowSpec, ...] = ()
    """Window functions of `condition` and `clear`: the engine keeps their state per device."""
    timed: bool = False
    """Uses age(): evaluated on the engine's timer (`tick`) as well as at readings."""
    hold: Condition | None = None
    """What keeps an episode going once `condition` has started it (the car still stuck for
    an entrapment the alarm button started): while it holds, the episode neither ends nor
    restarts its `for` timer, and a clear does not count."""
    clear_for_s: float = 0.0
    """A clear must hold this long (by reading time) before the fault clears."""
    title_values: tuple[tuple[str, Value], ...] = ()
    """Named numbers the title may show, evaluated at detection (e.g. minutes to a limit)."""
    asset: str = ""
    """The type of shared asset (site file `[[assets]]`, e.g. break_tank) this rule's faults
    belong to: a device that observes one reports the asset's fault, one for all observers."""
    family: str = ""
    """Rules of one family (warning -> major -> critical on one signal, or findings of one
    cause) share one open work order per device: a more severe one escalates it."""
    gap_s: float = DEFAULT_GAP_S
    """An episode that begins sooner than this after the last clear is the same event coming
    back (a flap): recurrence (root-cause orders, `repeat`) counts only episodes apart."""
