"""The usual message parsed in C (`gateway/_json_rows.c`) straight into float64 rows.

msgspec's typed decode (`gateway.typed_readings`) makes a struct per reading and a Python
float per value, and turning those into the decoder's float table costs more than the parse;
together about 1 µs per reading of a 100-reading message, half the gateway's hot path. The C
parser writes each value as a double into one buffer, for every usual message of a kind in
one call: a known topic's payload of readings that name each of the kind's columns once with
plain values. It only ever accepts: a payload it does not take (anything unusual, good or
bad) goes to the decoder's other paths, which decide and name a rejection, so what is
accepted or rejected, and why, does not depend on whether it was built.

The extension is optional: where the package was installed without a C compiler, `COMPILED`
is False and the decoder takes msgspec's path for the same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

_rows: Callable[[list[bytes], tuple[bytes, ...]], tuple[bytes, bytes]] | None
try:
    from gateway._json_rows import rows as _rows
except ImportError:  # built without a C compiler: the decoder uses msgspec
    _rows = None

COMPILED = _rows is not None


def column_names(columns: Sequence[str]) -> tuple[bytes, ...]:
    """A kind's columns (`ts`, `seq`, then its fields) as the parser takes them."""
    return tuple(name.encode() for name in columns)


def usual_rows(
    payloads: list[bytes], columns: tuple[bytes, ...]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The readings of every usual payload as rows [ts, seq, field...] (null = NaN, booleans
    1 / 0), payload after payload; and per payload its number of rows, or -1 when it is not
    the usual message (no rows)."""
    if _rows is None:
        raise RuntimeError("gateway._json_rows is not built")
    data, counts = _rows(payloads, columns)
    table = np.frombuffer(data, np.float64).reshape(-1, len(columns))
    return table, np.frombuffer(counts, np.int64)
