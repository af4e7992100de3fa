from typing import Literal, overload

@overload
def lines(
    keys: list[bytes],
    device: object,
    ts: object,
    values: object,
    fields: tuple[tuple[bytes, int], ...],
    joined: Literal[False] = ...,
    /,
) -> list[bytes]: ...
@overload
def lines(
    keys: list[bytes],
    device: object,
    ts: object,
    values: object,
    fields: tuple[tuple[bytes, int], ...],
    joined: Literal[True],
    /,
) -> tuple[bytes, int]: ...
