"""What the decoder hands back besides the batch: rejections by reason, and the message types.

Every bad message or reading becomes a `Rejection` (reason, topic, detail, a truncated excerpt)
instead of an exception, so one bad device never stops a batch (docs/protocol.md, Rejections).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from facility.batch import Batch

EXCERPT_BYTES = 200
"""How much of a rejected payload is kept and logged."""


class RejectReason(StrEnum):
    OVERSIZED = "oversized"
    BAD_TOPIC = "bad_topic"
    UNKNOWN_SITE = "unknown_site"
    UNKNOWN_DEVICE = "unknown_device"
    MALFORMED_JSON = "malformed_json"
    NON_FINITE = "non_finite"
    NOT_OBJECT = "not_object"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_SEQ = "bad_seq"
    NO_FIELDS = "no_fields"
    UNKNOWN_FIELD = "unknown_field"
    BAD_TYPE = "bad_type"
    OUT_OF_RANGE = "out_of_range"
    TS_FUTURE = "ts_future"
    TS_TOO_OLD = "ts_too_old"


class RawMessage(Protocol):
    """What the decoder needs of a message: the MQTT consumer's messages already are one."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Message:
    """A plain message, for tools and tests that do not come through MQTT."""

    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    topic: str
    detail: str
    excerpt: str
    readings: int = 1
    """How many readings this rejection stands for (1, or unknown = 1 for a whole message)."""


@dataclass(frozen=True, slots=True)
class DecoderLimits:
    max_payload_bytes: int = 256 * 1024
    """Larger messages are rejected (dead-lettered as too large)."""
    max_future_skew_s: float = 300.0
    """Readings stamped further ahead of the gateway's clock are rejected."""
    max_age_s: float = 30 * 86400.0
    """Readings older than this are rejected."""


@dataclass(slots=True)
class DecodeResult:
    batch: Batch
    rejections: list[Rejection] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(str(r.reason) for r in self.rejections)


def excerpt(payload: bytes | str) -> str:
    text = (
        payload
        if isinstance(payload, str)
        else payload[: EXCERPT_BYTES * 2].decode("utf-8", errors="replace")
    )
    return text if len(text) <= EXCERPT_BYTES else text[:EXCERPT_BYTES] + "..."
