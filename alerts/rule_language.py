"""Rule expressions: a small language over one device kind's fields, compiled to numpy.

An expression is parsed once with Python's `ast` and turned into a tree of numpy operations
(`alerts.rule_compiler`; what it reads: `alerts.rule_context`); nothing is ever passed to
`eval`. What is allowed (anything else is a `RuleSyntaxError` naming the column):

    numbers, true / false                      1.5, 20, true
    fields of the rule's kind                  suction_bar, running
    parameters                                 dry_run_suction_bar (see rule files)
    built-in per-device values                 heartbeat_s (the kind's heartbeat window)
    arithmetic                                 + - * / %   and unary -
    comparisons, chained                       a < b,  0 < x <= 5,  ==, !=
    logic                                      and, or, not
    functions                                  abs(x), min(a, b, ...), max(a, b, ...)
                                               rail(field)   the reading sits at the bottom or
                                                             top of the field's catalog range
    temporal                                   delta(field)  change since the device's
                                                              previous reading
                                               rate(field)   that change per second
                                               age()         seconds since the device last
                                                             reported (0 at a reading; grows
                                                             between readings, see the engine's
                                                             tick)
                                               age(field)    seconds since the field last had
                                                             a value
                                               stuck(field, "10m")
                                                             the field has read exactly the
                                                             same value for at least 10 min
                                                             (and in at least 3 readings)
    windows                                    count(cond, W)    readings in W where cond holds
                                               changes(x, W)     times x changed within W
                                               mean(x, W)        mean of x over W
                                               median(x, W)      median of x over W

A window W is a duration ("10m", "30s", "2h", "7d"; readings with ts in (t - W, t]) or a
whole number n (the device's last n readings). Window functions take two keywords:
`only=cond` records a reading in the window only where cond holds (e.g. only at elevator
stops), and `capacity=N` (default 64, at most 4096) bounds how many readings a time window
keeps per device: it never holds more than the newest N readings (a last-n window keeps
just its n; capacity must be at least n). Windows are
per-device ring buffers that the engine keeps between batches (and checkpoints).

A field the reading did not report is NaN: arithmetic with it gives NaN and every comparison
with NaN is false (`!=` too), so a missing field never fires a rule. In `and` / `or` / `not`,
a number is true when it is non-zero and not NaN. Window functions skip readings whose value
is NaN; `mean` / `median` of an empty window is NaN.
"""

from __future__ import annotations

import re

import numpy as np

from facility.batch import Array, BoolArray, FloatArray
from facility.errors import FacilityError

NEVER = np.iinfo(np.int64).min // 4
"""Timestamp of 'no such reading' in state arrays (far enough from int64's end to subtract)."""
DEFAULT_CAPACITY = 64
MAX_CAPACITY = 4096
STUCK_MIN_READINGS = 3
"""stuck() also needs this many equal readings in a row: two sparse readings that happen to
agree are not a flat line."""
SLOPE_MIN_READINGS = 3
"""slope() needs at least this many readings in its window (else NaN)."""
BUILTINS = ("heartbeat_s",)
"""Names every expression knows besides fields and parameters (per device)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(value: object) -> float | None:
    """Seconds from a number or a text like '30', '30s', '10m', '2h', '7d'; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match[1]) * _UNIT_S[match[2]]
    return None


class RuleSyntaxError(FacilityError):
    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        """1-based column in the expression text."""
        super().__init__(f"column {column}: {message}")


def truth(values: Array) -> BoolArray:
    """Non-zero and not NaN."""
    if values.dtype == np.bool_:
        return values
    if values.dtype != np.float64:
        values = values.astype(np.float64)
    result: BoolArray = (values != 0) & ~np.isnan(values)
    return result


def as_number(values: Array) -> FloatArray:
    """As float64, without a copy when it already is (operands are never written to)."""
    result: FloatArray = values.astype(np.float64, copy=False)
    return result
