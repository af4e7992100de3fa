"""Window functions over windows already laid out: each row of a matrix, or each span of a
flat array, is one reading's window (entries oldest first, NaN = empty slot).

`alerts.rule_windows` lays the windows out from the rings and the batch; these reduce them,
each in a fixed order, so a result never depends on how readings were batched.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from alerts.rule_language import SLOPE_MIN_READINGS
from alerts.rule_rows import true_rows
from facility.batch import BoolArray, FloatArray, Int64Array, IntpArray

EMPTY_VALUE: Final = {
    "count": 0.0, "changes": 0.0, "mean": np.nan, "median": np.nan, "stuck": 0.0, "slope": np.nan,
}  # fmt: skip
"""A window function's value over an empty window."""


def window_slopes(
    flat_ms: Int64Array,
    flat_val: FloatArray,
    used: BoolArray,
    origin: IntpArray,
    start: IntpArray,
    end: IntpArray,
) -> FloatArray:
    """The least-squares slope (change per second) over each span [start, end) of the flat
    entries (every slot of a span an entry); NaN with fewer than SLOPE_MIN_READINGS entries or
    all at one time.

    From prefix sums of time, value, time², and time times value: a few passes over the slots
    whatever the spans' width, where fitting each span on its own costs its width (a 15-minute
    trend window holds up to 256 entries at every reading). Times and values are measured from
    `origin` (per slot, a slot of its own device group: a span never leaves its group, so the
    origin cancels) to keep the sums small (tests hold them to 1e-8 of a two-pass fit);
    slots not `used` (empty ring slots, never inside a span) count as zero. Whether a span has
    any spread in time is decided on the integer times, not on a rounded sum. A span whose
    centred sums would keep too few digits is fitted in two passes instead."""
    x = np.where(used, (flat_ms - flat_ms[origin]) / 1000.0, 0.0)
    y = np.where(used, flat_val - flat_val[origin], 0.0)
    sums = np.zeros((4, len(x) + 1))
    sums[0, 1:] = x
    sums[1, 1:] = y
    np.multiply(x, x, out=sums[2, 1:])
    np.multiply(x, y, out=sums[3, 1:])
    np.cumsum(sums, axis=1, out=sums)
    sx, sy, sxx, sxy = sums[:, end] - sums[:, start]
    count = end - start
    size = np.maximum(count, 1)
    centred_xx = sxx - sx * sx / size
    centred_xy = sxy - sx * sy / size
    fit = count >= SLOPE_MIN_READINGS
    spans = true_rows(fit)
    fit[spans] = flat_ms[end[spans] - 1] > flat_ms[start[spans]]
    fit &= centred_xx > 0
    result: FloatArray = np.where(fit, centred_xy / np.where(fit, centred_xx, 1.0), np.nan)
    # The sums run on over every group before: a span far into the layout reads them as the
    # difference of two large numbers. Where that leaves its centred sum of squares fewer than
    # ten good digits (entries a millisecond apart), fit it in two passes instead.
    poor = true_rows(fit & ~(centred_xx > 1e-6 * sums[2, end]))
    if len(poor):
        result[poor] = _two_pass_slopes(flat_ms, flat_val, start[poor], end[poor])
    return result


def _two_pass_slopes(
    flat_ms: Int64Array, flat_val: FloatArray, start: IntpArray, end: IntpArray
) -> FloatArray:
    """The least-squares slope over each span fitted in two passes (means first), the spans
    side by side, padded to the longest: for the few the prefix sums would get wrong."""
    count = end - start
    index = start[:, None] + np.arange(int(count.max()))[None, :]
    inside = index < end[:, None]
    index = np.minimum(index, len(flat_ms) - 1)
    x = np.where(inside, (flat_ms[index] - flat_ms[start][:, None]) / 1000.0, 0.0)
    y = np.where(inside, flat_val[index], 0.0)
    dx = np.where(inside, x - (x.sum(axis=1) / count)[:, None], 0.0)
    dy = np.where(inside, y - (y.sum(axis=1) / count)[:, None], 0.0)
    xx = (dx * dx).sum(axis=1)
    slopes: FloatArray = np.where(xx > 0, (dx * dy).sum(axis=1) / np.where(xx > 0, xx, 1.0), np.nan)
    return slopes


def counted(
    function: str,
    flat_val: FloatArray,
    start: IntpArray,
    end: IntpArray,
) -> FloatArray:
    """count or changes over each span [start, end) of `flat_val` (NaN = empty slot), by
    prefix sums of whole numbers, which are exact; a change pairs a slot with the one before
    it, both inside the span."""
    valid = ~np.isnan(flat_val)
    data = np.zeros(len(flat_val))
    if function == "changes":
        data[1:] = (flat_val[1:] != flat_val[:-1]) & valid[1:] & valid[:-1]
        start = np.minimum(start + 1, end)
    else:
        data[:] = (flat_val != 0) & valid
    prefix = np.zeros(len(flat_val) + 1)
    np.cumsum(data, out=prefix[1:])
    total: FloatArray = prefix[end] - prefix[start]
    return total


def reduce_rows(function: str, window: FloatArray) -> FloatArray:
    """The window function over each row of `window`, entries oldest first, NaN = empty slot
    (a row's valid entries sit together: a ring's newest, at its end; a time window's, before
    its padding).

    A mean is summed one value after another, oldest first (a running sum, not numpy's
    pairwise row sum), so it is the same whatever the batches and the same as the C walk of
    windows (alerts/_windows.c) gives."""
    valid = ~np.isnan(window)
    size = valid.sum(axis=1)
    if function == "count":
        counted: FloatArray = ((window != 0) & valid).sum(axis=1).astype(np.float64)
        return counted
    if function == "changes":
        pairs = valid[:, 1:] & valid[:, :-1]
        changed: FloatArray = ((window[:, 1:] != window[:, :-1]) & pairs).sum(axis=1)
        return changed.astype(np.float64)
    if function == "mean":
        total = np.cumsum(np.where(valid, window, 0.0), axis=1)[:, -1]
        mean: FloatArray = np.where(size > 0, total / np.maximum(size, 1), np.nan)
        return mean
    ordered = np.sort(window, axis=1)  # NaN sorts last
    rows = np.arange(len(window))
    lo = ordered[rows, np.maximum((size - 1) // 2, 0)]
    hi = ordered[rows, np.minimum(size // 2, window.shape[1] - 1)]
    median: FloatArray = np.where(size > 0, (lo + hi) / 2, np.nan)
    return median
