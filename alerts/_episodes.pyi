"""Types of alerts/_episodes.c (built only with a C compiler)."""

from typing import Any

NEVER: int
_Out = bytearray

def episodes(
    for_ms: int,
    clear_for_ms: int,
    gap_ms: int,
    device: Any,
    ts: Any,
    eff: Any,
    clear: Any,
    allowed: Any | None,
    since_ms: Any,
    clear_since_ms: Any,
    active: Any,
    reported: Any,
    last_clear_ms: Any,
) -> tuple[_Out, _Out, _Out, _Out, _Out, _Out, _Out, _Out, _Out]: ...
