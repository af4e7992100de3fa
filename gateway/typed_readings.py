"""The usual message decoded typed (msgspec): readings straight into slotted structs.

A message whose readings each report every field of its kind as a plain value (the usual
case) is decoded by a per-kind msgspec decoder into structs instead of dicts: no dict and no
key strings per reading, about a third of orjson's time, and `attrgetter` + `np.fromiter`
turn them into the float64 table as `itemgetter` did for dicts. Anything else (a field
missing, an unknown key, a string, nesting, a bad `ts`) fails the typed decode and takes the
decoder's general path (orjson, then the per-reading checks), which names the reason; so what
is accepted or rejected, and why, does not depend on which path a message took.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from facility.catalog import KindSpec
from facility.wire import READINGS_KEY

BATCHED_PREFIX = b'{"' + READINGS_KEY.encode() + b'":['


class TypedKind:
    """One kind's typed decoders: a one-reading message and a batched one, full readings."""

    __slots__ = ("_batched", "_columns", "_many", "_single", "width")

    def __init__(self, spec: KindSpec) -> None:
        fields: list[tuple[str, Any]] = [("ts", int), ("seq", int)]
        fields += [(name, float | bool | None) for name in spec.field_names]
        reading = msgspec.defstruct(
            f"{spec.name}_reading", fields, forbid_unknown_fields=True, gc=False
        )
        message = msgspec.defstruct(
            f"{spec.name}_message", [(READINGS_KEY, list[reading])],  # type: ignore[valid-type]
            forbid_unknown_fields=True, gc=False,
        )  # fmt: skip
        self._single = msgspec.json.Decoder(reading)
        self._many = msgspec.json.Decoder(list[reading])  # type: ignore[valid-type]
        self._batched = msgspec.json.Decoder(message)
        self.width = len(fields)
        self._columns = attrgetter(*(name for name, _ in fields))

    def readings(self, payload: bytes) -> list[Any] | None:
        """The payload's readings as structs, or None when it is not the usual message.

        Besides the types, the payload must hold exactly two quotes per key (a duplicate key
        would decode, the last one winning). One count is enough: the types admit no nested
        object, array or string value, and a key outside the struct fails, so each `{`, `[`
        or quote the decoder accepted is a reading's, the readings array's or a known key's."""
        if payload.startswith(BATCHED_PREFIX):
            try:
                readings: list[Any] = getattr(self._batched.decode(payload), READINGS_KEY)
            except msgspec.MsgspecError:
                return None
            count = len(readings)
            if not count or payload.count(b'"') != 2 * (count * self.width + 1):
                return None
            return readings
        if payload.count(b'"') != 2 * self.width:
            return None
        try:
            return [self._single.decode(payload)]
        except msgspec.MsgspecError:
            return None

    def singles(self, payloads: Sequence[bytes]) -> list[Any] | None:
        """One-reading payloads decoded together, as one JSON array: one call, not one per
        message; None unless every one is the usual message (then each goes on its own).

        As in `readings`, the quotes are counted (a duplicate key would decode, the last one
        winning): each payload that decodes into a reading has at least two per key, so a
        total of exactly that many means none has more. Nesting and strings fail the types;
        a payload of two objects shows in the count of readings, and one that is not a whole
        value (`}]`, a trailing comma, nothing) breaks the array."""
        count = len(payloads)
        joined = b"[" + b",".join(payloads) + b"]"
        if joined.count(b'"') != 2 * self.width * count:
            return None
        try:
            readings: list[Any] = self._many.decode(joined)
        except msgspec.MsgspecError:
            return None
        return readings if len(readings) == count else None

    def table(self, readings: Sequence[Any]) -> npt.NDArray[np.float64]:
        """[ts, seq, field...] per reading; a null (not reported) is NaN."""
        count = len(readings)
        try:  # the values straight from the structs: no list of rows in between
            flat = np.fromiter(
                chain.from_iterable(map(self._columns, readings)),
                np.float64,
                count=count * self.width,
            )
        except TypeError:  # a null somewhere: the slower conversion
            nan = float("nan")
            flat = np.fromiter(
                (
                    nan if v is None else v
                    for v in chain.from_iterable(map(self._columns, readings))
                ),
                np.float64,
                count=count * self.width,
            )
        return flat.reshape(count, self.width)


def original_reading(payload: bytes, reading: Any) -> dict[str, Any]:
    """The reading as the message wrote it (its keys in their order), for a rejection's
    excerpt: rejections are rare, so the payload is parsed again to find it. `reading`: a
    struct of the typed path, or the reading's place in its message (the C parser's rows)."""
    doc = orjson.loads(payload)
    if READINGS_KEY not in doc:
        return dict(doc)
    if isinstance(reading, (int, np.integer)):
        found: dict[str, Any] = doc[READINGS_KEY][int(reading)]
        return found
    wanted = msgspec.structs.asdict(reading)
    return next((r for r in doc[READINGS_KEY] if r == wanted), wanted)
