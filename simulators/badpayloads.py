"""Deliberately broken messages, each built to be rejected by the gateway for one reason.

`BAD_PAYLOADS[name]` makes (topic, payload) for a device; `EXPECTED_REASON[name]` is the
rejection reason (docs/protocol.md#rejections) a correct gateway gives it. The runner counts
what it sent by reason, so a test can check the gateway rejected exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import orjson

from facility.catalog import KINDS, FieldType
from facility.site import Device, Site, local_id
from facility.wire import device_topic, telemetry_topic

YEAR_MS = 365 * 86_400_000
FUTURE_MS = 2 * 86_400_000


@dataclass(frozen=True, slots=True)
class BadContext:
    site: Site
    device: Device
    ts_ms: int
    """The reading time the device would use now."""
    now_ms: int
    """The simulator's idea of the wall clock (for 'future')."""
    seq: int
    oversized_bytes: int
    number: int
    """A running number, to make every bad message distinct."""

    @property
    def topic(self) -> str:
        return device_topic(self.device, self.site.id)

    def field(self) -> str:
        """The device kind's first analog field."""
        spec = KINDS[self.device.kind]
        return next(f.name for f in spec.fields if f.type is FieldType.FLOAT)


Maker = Callable[[BadContext], tuple[str, bytes]]


def _reading(c: BadContext, **values: object) -> dict[str, object]:
    return {"ts": c.ts_ms, "seq": c.seq, **values}


def _malformed(c: BadContext) -> tuple[str, bytes]:
    return c.topic, b'{"ts": %d, "seq": %d, "' % (c.ts_ms, c.seq)


def _wrong_type(c: BadContext) -> tuple[str, bytes]:
    return c.topic, orjson.dumps(_reading(c, **{c.field(): "12.5"}))


def _nan(c: BadContext) -> tuple[str, bytes]:
    return c.topic, b'{"ts": %d, "seq": %d, "%s": NaN}' % (c.ts_ms, c.seq, c.field().encode())


def _inf(c: BadContext) -> tuple[str, bytes]:
    return c.topic, b'{"ts": %d, "seq": %d, "%s": Infinity}' % (
        c.ts_ms,
        c.seq,
        c.field().encode(),
    )


def _out_of_range(c: BadContext) -> tuple[str, bytes]:
    spec = KINDS[c.device.kind]
    f = spec.fields[spec.col(c.field())]
    return c.topic, orjson.dumps(_reading(c, **{f.name: f.max * 10 + 1000}))


def _future(c: BadContext) -> tuple[str, bytes]:
    ts = max(c.ts_ms, c.now_ms) + FUTURE_MS
    return c.topic, orjson.dumps({"ts": ts, "seq": c.seq, c.field(): 1.0})


def _ancient(c: BadContext) -> tuple[str, bytes]:
    return c.topic, orjson.dumps({"ts": c.ts_ms - YEAR_MS, "seq": c.seq, c.field(): 1.0})


def _oversized(c: BadContext) -> tuple[str, bytes]:
    one = orjson.dumps(_reading(c, **{c.field(): 1.0}))
    copies = c.oversized_bytes // (len(one) + 1) + 1
    return c.topic, b'{"readings":[' + b",".join([one] * copies) + b"]}"


def _unknown_device(c: BadContext) -> tuple[str, bytes]:
    ghost = f"ghost-{c.number}"
    d = c.device
    topic = telemetry_topic(d.site_id or c.site.id, local_id(d.building_id), d.kind, ghost)
    return topic, orjson.dumps(_reading(c, **{c.field(): 1.0}))


def _missing_ts(c: BadContext) -> tuple[str, bytes]:
    return c.topic, orjson.dumps({"seq": c.seq, c.field(): 1.0})


def _negative_seq(c: BadContext) -> tuple[str, bytes]:
    return c.topic, orjson.dumps({"ts": c.ts_ms, "seq": -1, c.field(): 1.0})


def _unknown_field(c: BadContext) -> tuple[str, bytes]:
    return c.topic, orjson.dumps(_reading(c, colour_temperature_k=4000))


def _not_object(c: BadContext) -> tuple[str, bytes]:
    return c.topic, orjson.dumps([c.ts_ms, c.seq, 1.0])


BAD_PAYLOADS: Final[MappingProxyType[str, Maker]] = MappingProxyType(
    {
        "malformed-json": _malformed,
        "wrong-type": _wrong_type,
        "nan": _nan,
        "infinity": _inf,
        "out-of-range": _out_of_range,
        "future-ts": _future,
        "ancient-ts": _ancient,
        "oversized": _oversized,
        "unknown-device": _unknown_device,
        "missing-ts": _missing_ts,
        "negative-seq": _negative_seq,
        "unknown-field": _unknown_field,
        "not-object": _not_object,
    }
)

EXPECTED_REASON: Final = MappingProxyType(
    {
        "malformed-json": "malformed_json",
        "wrong-type": "bad_type",
        "nan": "non_finite",
        "infinity": "non_finite",
        "out-of-range": "out_of_range",
        "future-ts": "ts_future",
        "ancient-ts": "ts_too_old",
        "oversized": "oversized",
        "unknown-device": "unknown_device",
        "missing-ts": "bad_timestamp",
        "negative-seq": "bad_seq",
        "unknown-field": "unknown_field",
        "not-object": "not_object",
    }
)
