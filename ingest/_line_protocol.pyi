def lines(
    keys: list[bytes],
    device: object,
    ts: object,
    values: object,
    fields: tuple[tuple[bytes, int], ...],
    /,
) -> list[bytes]: ...
