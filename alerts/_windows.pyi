"""Types of alerts/_windows.c (built only with a C compiler)."""

from typing import Any

NEVER: int

def last_n(
    function: int,
    device: Any,
    ts: Any,
    values: Any,
    only: Any | None,
    ring_ts: Any,
    ring_val: Any,
    current: Any,
    result: Any,
) -> tuple[bytearray, bytearray, bytearray, bytearray]: ...
def time_window(
    function: int,
    window_ms: int,
    min_readings: int,
    device: Any,
    ts: Any,
    values: Any,
    only: Any | None,
    ring_ts: Any,
    ring_val: Any,
    result: Any,
) -> tuple[bytearray, bytearray, bytearray]: ...
def stuck(
    window_ms: int,
    min_readings: int,
    device: Any,
    ts: Any,
    values: Any,
    run_value: Any,
    run_start: Any,
    run_count: Any,
    result: Any,
) -> tuple[bytearray, bytearray, bytearray, bytearray]: ...
