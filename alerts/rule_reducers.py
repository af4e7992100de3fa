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
from facility.batch import BoolArray, FloatArray, IntpArray

EMPTY_VALUE: Final = {
    "count": 0.0, "changes": 0.0, "mean": np.nan, "median": np.nan, "stuck": 0.0, "slope": np.nan,
}  # fmt: skip
"""A window function's value over an empty window."""


def slope(seconds: FloatArray, values: FloatArray) -> FloatArray:
    """Per row, the least-squares slope (change per second) of values over time, NaN padding
    empty slots; NaN with fewer than SLOPE_MIN_READINGS readings or all at one time."""
    return _fit(seconds, values, ~np.isnan(values))


def _fit(seconds: FloatArray, values: FloatArray, ok: BoolArray) -> FloatArray:
    """`slope` of the slots where `ok`; the others are ignored whatever they hold."""
    n = ok.sum(axis=1)
    size = np.maximum(n, 1)
    mean_s = np.where(ok, seconds, 0.0).sum(axis=1) / size
    mean_v = np.where(ok, values, 0.0).sum(axis=1) / size
    ds = np.where(ok, seconds - mean_s[:, None], 0.0)
    dv = np.where(ok, values - mean_v[:, None], 0.0)
    sxx = (ds * ds).sum(axis=1)
    sxy = (ds * dv).sum(axis=1)
    fit = (n >= SLOPE_MIN_READINGS) & (sxx > 0)
    result: FloatArray = np.where(fit, sxy / np.where(fit, sxx, 1.0), np.nan)
    return result


SLOPE_CHUNK_SLOTS: Final = 1 << 16
"""Window slots laid out at once (rows x width, 512 KiB per float temporary): slope's ~20
temporaries then stay in the cache instead of streaming through memory, which halved the
trend rules' time against laying out a whole 10k batch (best of 2**12 .. 2**18 measured). The
sums are per row, so chunking changes no result."""


def window_slopes(
    flat_s: FloatArray, flat_val: FloatArray, start: IntpArray, end: IntpArray
) -> FloatArray:
    """`slope` over each span [start, end) of the flat entries, side by side as wide as the
    longest span. Only spans with SLOPE_MIN_READINGS entries or more can have a slope, so only
    their rows are laid out (a trend's `only=` keeps most windows short); every row keeps the
    width of the longest span, so each slope is summed exactly as if all rows were laid out."""
    result: FloatArray = np.full(len(start), np.nan)
    width = max(int((end - start).max()) if len(start) else 0, 1)
    fits = true_rows(end - start >= SLOPE_MIN_READINGS)
    if not len(fits):
        return result
    offsets = np.arange(width)[None, :]
    step = max(SLOPE_CHUNK_SLOTS // width, 1)
    for at in range(0, len(fits), step):  # a few chunks: each one's temporaries stay in cache
        rows = fits[at : at + step]
        index = start[rows, None] + offsets
        take = np.minimum(index, len(flat_val) - 1)
        values = flat_val[take]
        ok = (index < end[rows, None]) & ~np.isnan(values)
        result[rows] = _fit(flat_s[take], values, ok)
    return result


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


def reduce_rows(function: str, window: FloatArray, *, padded: bool = False) -> FloatArray:
    """The window function over each row of `window`, entries oldest first, NaN = empty slot
    (the valid entries of a ring are its newest, so they sit together at the row's end).

    A mean is summed the same way whatever the batches, so a threshold on it never depends
    on them: a last-n window always has the same width and place in its row, so a plain row
    sum; windows padded to the longest (time windows) are summed in order, oldest first."""
    if function == "mean" and not padded:
        total = window.sum(axis=1)
        size = np.full(len(window), window.shape[1])
        partial = true_rows(np.isnan(total))  # an empty slot (or inf - inf): sum what is there
        if len(partial):
            some = window[partial]
            present = ~np.isnan(some)
            total[partial] = np.where(present, some, 0.0).sum(axis=1)
            size[partial] = present.sum(axis=1)
        full: FloatArray = np.where(size > 0, total / np.maximum(size, 1), np.nan)
        return full
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
