"""Window functions walked device by device in C (alerts/_windows.c): the calls and the
new states they return, in the shape `alerts.rule_windows.evaluate_window` and
`commit_windows` use. Where the package was installed without a C compiler `COMPILED` is
False and the numpy layouts of alerts/rule_windows.py compute the same.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Final

import numpy as np

from alerts.rule_language import SLOPE_MIN_READINGS, STUCK_MIN_READINGS
from alerts.rule_rows import Rows
from facility.batch import BoolArray, FloatArray, Int64Array

if TYPE_CHECKING:
    from alerts.rule_windows import WindowSpec, WindowState, WindowUpdate

_walked: ModuleType | None
try:  # built from alerts/_windows.c where the package was installed with a C compiler
    import alerts._windows as _walked
except ImportError:  # pragma: no cover - the numpy paths compute the same
    _walked = None

COMPILED: Final = _walked is not None
"""Whether the C walk of windows is built (without it, the numpy paths give the same bits)."""
WALKED_FUNCTIONS: Final = {"count": 0, "changes": 1, "mean": 2, "median": 3, "slope": 4}
"""The last-n and time window functions the walk knows, by its code for them."""


def _row_arrays(rows: Rows, values: FloatArray) -> tuple[object, Int64Array, FloatArray]:
    """The rows' devices, times and the window's values as the C walk borrows them."""
    return (
        np.ascontiguousarray(rows.device),
        np.ascontiguousarray(rows.ts_ms, np.int64),
        np.ascontiguousarray(values, np.float64),
    )


def walked_window(
    spec: WindowSpec,
    rows: Rows,
    state: WindowState,
    updates: dict[str, WindowUpdate],
    values: FloatArray,
    only: BoolArray | None,
) -> FloatArray:
    """A last-n or time window walked device by device in C (alerts/_windows.c): the same
    values and rings as the numpy layout (a slope nearly: its prefix sums start from an entry of
    the window, not of the layout), without the layout's per-batch cost."""
    assert _walked is not None
    result = np.empty(len(rows))
    args = (
        *_row_arrays(rows, values),
        None if only is None else np.ascontiguousarray(only, np.bool_),
        state.ts,
        state.values,
    )
    width = state.ts.shape[1]
    code = WALKED_FUNCTIONS[spec.function]
    current: FloatArray | None = None
    if spec.last_n is not None:
        devices, ring_ts, ring_val, now = _walked.last_n(code, *args, state.current, result)
        current = np.frombuffer(now, np.float64)
    else:
        devices, ring_ts, ring_val = _walked.time_window(
            code, int(spec.window_ms or 0), SLOPE_MIN_READINGS, *args, result
        )
    if len(devices):
        updates[spec.key] = (
            "ring",
            np.frombuffer(devices, np.int64),
            np.frombuffer(ring_ts, np.int64).reshape(-1, width),
            np.frombuffer(ring_val, np.float64).reshape(-1, width),
            current,
        )
    return result


def walked_stuck(
    spec: WindowSpec,
    rows: Rows,
    state: WindowState,
    updates: dict[str, WindowUpdate],
    values: FloatArray,
) -> FloatArray:
    """stuck() walked device by device in C, as `rule_windows._stuck` computes it."""
    assert _walked is not None
    result = np.empty(len(rows))
    devices, run_value, run_start, run_count = _walked.stuck(
        int(spec.window_ms or 0),
        STUCK_MIN_READINGS,
        *_row_arrays(rows, values),
        state.run_value,
        state.run_start,
        state.run_count,
        result,
    )
    updates[spec.key] = (
        "stuck",
        np.frombuffer(devices, np.int64),
        np.frombuffer(run_value, np.float64),
        np.frombuffer(run_start, np.int64),
        np.frombuffer(run_count, np.int64),
    )
    return result
