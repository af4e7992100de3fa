"""The rules engine's state between batches: per kind and device the newest reading and when
silence counts (`KindState`); per rule and device its timers, open fault, last clear, past
episodes and window rings (`RuleState`). All of it is arrays indexed by device row, and all of
it is checkpointed (`alerts.rule_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alerts.interface import Rule
from alerts.rule_language import NEVER
from alerts.rule_windows import WindowState
from facility.batch import BoolArray, FloatArray, Int64Array


@dataclass(slots=True)
class RuleState:
    since_ms: Int64Array
    active: BoolArray
    reported: BoolArray
    """The fault as reported; differs from `active` only for repeat rules."""
    last_clear_ms: Int64Array
    occurrences: Int64Array
    """(devices, repeat count - 1): the times of the last episodes, oldest first."""
    windows: dict[str, WindowState] = field(default_factory=dict)
    clear_since_ms: Int64Array = field(default_factory=lambda: np.zeros(0, np.int64))
    """Since when an open fault's clear has held (`clear_for`); NEVER = not clearing."""

    @staticmethod
    def new(rule: Rule, devices: int) -> RuleState:
        width = max(rule.repeat.count - 1, 0) if rule.repeat else 0
        return RuleState(
            np.full(devices, NEVER, np.int64),
            np.zeros(devices, np.bool_),
            np.zeros(devices, np.bool_),
            np.full(devices, NEVER, np.int64),
            np.full((devices, width), NEVER, np.int64),
            {w.key: WindowState.new(w, devices) for w in rule.windows},
            np.full(devices, NEVER, np.int64),
        )


@dataclass(slots=True)
class KindState:
    last_ts: Int64Array
    last_values: FloatArray
    """Each device's newest reading (for delta / rate and the timer)."""
    last_present_ts: Int64Array
    """(devices, fields): when each field last had a value (for age(field)); kept up to date
    only for kinds whose rules read age(field)."""
    watch_from: Int64Array
    """Silence counts from max(last_ts, watch_from)."""
    params: dict[str, FloatArray] = field(default_factory=dict)
    """Each parameter the kind's rules read, per device, after the site's overrides."""
    rules: dict[str, RuleState] = field(default_factory=dict)

    def seen_ms(self) -> Int64Array:
        result: Int64Array = np.maximum(self.last_ts, self.watch_from)
        return result
