"""Wall-clock time in the unit the whole system uses: integer milliseconds since the epoch."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""Something that says what time it is, in ms; tests pass a fake one."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000
