"""Decode MQTT telemetry messages into a columnar `Batch`, rejecting bad input by reason.

Each message is parsed once (orjson) and each reading's values are read once into a row list;
everything after that (ranges, integrality, timestamp skew) is checked on arrays. A bad message
or reading never raises: it becomes a `Rejection` with its reason and a truncated excerpt, and
the rest of the batch goes on.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Protocol

import numpy as np
import orjson

from facility.batch import Batch, KindBatch
from facility.catalog import KINDS, KindSpec
from facility.site import Site
from facility.wire import READINGS_KEY, RESERVED_KEYS, parse_topic

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
    max_future_skew_s: float = 300.0
    max_age_s: float = 30 * 86400.0


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


class _KindRows:
    """Rows collected for one kind during a decode call: [ts, seq, field...] per reading."""

    __slots__ = ("device", "rows", "source", "spec")

    def __init__(self, spec: KindSpec) -> None:
        self.spec = spec
        self.device: list[int] = []
        self.rows: list[Any] = []
        self.source: list[tuple[str, object]] = []


_NUMBER_TYPES = (int, float, bool)
_INT_ONLY = frozenset({int})
_DICT_ONLY = frozenset({dict})
MAX_EXACT_INT = 2**53
"""Rows travel as float64 until split; ts and seq above this would not survive exactly."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """Per kind: the keys a reading may have, the row columns, their defaults."""

    allowed: frozenset[str]
    columns: tuple[str, ...]
    defaults: tuple[object, ...]
    every_column: Callable[[dict[str, Any]], tuple[Any, ...]]
    """Picks all columns of a reading that reports every field (KeyError otherwise)."""

    @staticmethod
    def of(spec: KindSpec) -> _Layout:
        columns = ("ts", "seq", *spec.field_names)
        return _Layout(
            frozenset(spec.field_names) | RESERVED_KEYS,
            columns,
            (None, None, *([math.nan] * len(spec.fields))),
            itemgetter(*columns),
        )


class Decoder:
    def __init__(self, site: Site, limits: DecoderLimits | None = None) -> None:
        self.site = site
        self.limits = limits or DecoderLimits()
        self._routes: dict[str, tuple[KindSpec, int]] = {}
        self._layouts = {name: _Layout.of(spec) for name, spec in KINDS.items()}

    def _route(self, topic: str) -> tuple[KindSpec, int] | tuple[RejectReason, str]:
        cached = self._routes.get(topic)
        if cached is not None:
            return cached
        parsed = parse_topic(topic)
        if parsed is None:
            return (
                RejectReason.BAD_TOPIC,
                "not facility/v1/{site}/{building}/{kind}/{device}/telemetry",
            )
        if parsed.site != self.site.id:
            return RejectReason.UNKNOWN_SITE, f"site {parsed.site!r} is not {self.site.id!r}"
        device = self.site.by_id.get(parsed.device)
        if device is None or device.kind != parsed.kind or device.building_id != parsed.building:
            return (
                RejectReason.UNKNOWN_DEVICE,
                f"no {parsed.kind} {parsed.device!r} in building {parsed.building!r}",
            )
        route = (KINDS[device.kind], device.kind_index)
        self._routes[topic] = route
        return route

    def decode(self, messages: Sequence[RawMessage], *, now_ms: int) -> DecodeResult:
        rows: dict[str, _KindRows] = {}
        rejections: list[Rejection] = []
        for message in messages:
            self._decode_message(message, rows, rejections)
        kinds: dict[str, KindBatch] = {}
        for name, collected in rows.items():
            kb = self._validate(collected, rejections, now_ms)
            if len(kb):
                kinds[name] = kb
        return DecodeResult(Batch(self.site.id, kinds), rejections)

    def _decode_message(
        self, message: RawMessage, rows: dict[str, _KindRows], rejections: list[Rejection]
    ) -> None:
        topic, payload = message.topic, message.payload

        def reject(reason: RejectReason, detail: str, source: bytes | str = payload) -> None:
            rejections.append(Rejection(reason, topic, detail, excerpt(source)))

        if len(payload) > self.limits.max_payload_bytes:
            reject(
                RejectReason.OVERSIZED,
                f"{len(payload)} bytes > max_payload_bytes {self.limits.max_payload_bytes}",
            )
            return
        route = self._route(topic)
        if isinstance(route[0], RejectReason):
            reject(route[0], str(route[1]))
            return
        spec, device_index = route[0], int(route[1])
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            if b"NaN" in payload or b"Infinity" in payload:
                reject(RejectReason.NON_FINITE, "NaN and Infinity are not valid JSON numbers")
            else:
                reject(RejectReason.MALFORMED_JSON, str(exc))
            return
        if not isinstance(doc, dict):
            reject(
                RejectReason.NOT_OBJECT, f"payload is a JSON {type(doc).__name__}, not an object"
            )
            return
        if READINGS_KEY in doc:
            readings = doc[READINGS_KEY]
            if not isinstance(readings, list) or len(doc) != 1:
                reject(
                    RejectReason.NOT_OBJECT,
                    f"a batched payload is {{{READINGS_KEY!r}: [reading, ...]}} and nothing else",
                )
                return
        else:
            readings = [doc]
        if not readings:
            reject(RejectReason.NO_FIELDS, "the message has no readings")
            return
        collected = rows.get(spec.name)
        if collected is None:
            collected = rows[spec.name] = _KindRows(spec)
        layout = self._layouts[spec.name]
        batched = int(READINGS_KEY in doc)
        if self._take_whole_message(
            payload, batched, readings, layout, device_index, topic, collected
        ):
            return
        index = spec.index
        for reading in readings:
            problem = self._check_reading(reading, index)
            if problem is not None:
                reason, detail = problem
                rejections.append(Rejection(reason, topic, detail, excerpt(orjson.dumps(reading))))
                continue
            collected.device.append(device_index)
            collected.rows.append(list(map(reading.get, layout.columns, layout.defaults)))
            collected.source.append((topic, reading))

    @staticmethod
    def _take_whole_message(
        payload: bytes,
        batched: int,
        readings: list[Any],
        layout: _Layout,
        device: int,
        topic: str,
        collected: _KindRows,
    ) -> bool:
        """Accept a well-formed message with whole-message checks made of C-level calls.

        The common case (every reading an object of known fields with integer ts and seq and
        numeric values) costs no Python loop over fields; anything else returns False and the
        message goes through the per-reading checks, which name the exact reason.

        No string values: the payload holds exactly two quotes per key. No nested arrays or
        objects: with no strings, every bracket in the payload is structural, so their count
        is known. What is left (numbers, booleans, null = not reported) converts to float64.
        """
        if frozenset(map(type, readings)) != _DICT_ONLY:
            return False
        lengths = frozenset(map(len, readings))
        if payload.count(b'"') != 2 * (sum(map(len, readings)) + batched):
            return False
        if payload.count(b"{") != len(readings) + batched or payload.count(b"[") != batched:
            return False
        rows: list[Any]
        if lengths == {len(layout.columns)}:  # every field reported: the usual reading
            try:
                rows = list(map(layout.every_column, readings))
            except KeyError:  # as many keys, but not the right ones
                return False
        else:
            if not layout.allowed.issuperset(chain.from_iterable(readings)):
                return False
            if min(lengths) <= len(RESERVED_KEYS):
                return False
            rows = [list(map(r.get, layout.columns, layout.defaults)) for r in readings]
        if frozenset(map(type, map(itemgetter(0), rows))) != _INT_ONLY:
            return False
        if frozenset(map(type, map(itemgetter(1), rows))) != _INT_ONLY:
            return False
        collected.rows.extend(rows)
        collected.device.extend(repeat(device, len(rows)))
        collected.source.extend(zip(repeat(topic), readings, strict=False))
        return True

    @staticmethod
    def _check_reading(
        reading: object, index: Mapping[str, int]
    ) -> tuple[RejectReason, str] | None:
        if not isinstance(reading, dict):
            return RejectReason.NOT_OBJECT, "a reading must be a JSON object"
        ts = reading.get("ts")
        if type(ts) is not int:
            return (
                RejectReason.BAD_TIMESTAMP,
                f"'ts' must be an integer of ms since epoch, got {ts!r}",
            )
        seq = reading.get("seq")
        if type(seq) is not int or not 0 <= seq < MAX_EXACT_INT:
            return RejectReason.BAD_SEQ, f"'seq' must be a non-negative integer, got {seq!r}"
        if len(reading) == len(RESERVED_KEYS):
            return RejectReason.NO_FIELDS, "the reading has no fields besides ts and seq"
        for key, value in reading.items():
            if key in RESERVED_KEYS:
                continue
            if key not in index:
                return RejectReason.UNKNOWN_FIELD, f"unknown field {key!r}"
            if value is not None and not isinstance(value, _NUMBER_TYPES):
                return (
                    RejectReason.BAD_TYPE,
                    f"field {key!r} must be a number or boolean, got {value!r}",
                )
        return None

    def _validate(self, rows: _KindRows, rejections: list[Rejection], now_ms: int) -> KindBatch:
        spec = rows.spec
        if not rows.device:
            return KindBatch.empty(spec)
        table = np.array(rows.rows, dtype=np.float64).reshape(
            len(rows.device), 2 + len(spec.fields)
        )
        bad_seq = (table[:, 1] < 0) | (table[:, 1] >= MAX_EXACT_INT)
        bad_ts = np.abs(table[:, 0]) >= MAX_EXACT_INT
        ts = np.where(bad_ts, 0, table[:, 0]).astype(np.int64)
        seq = np.where(bad_seq, 0, table[:, 1]).astype(np.int64)
        values = table[:, 2:]
        present = ~np.isnan(values)
        outside = present & ((values < spec.min) | (values > spec.max))
        fractional = present & spec.integral & (values != np.floor(values))
        ts_future = ts > now_ms + int(self.limits.max_future_skew_s * 1000)
        ts_old = ts < now_ms - int(self.limits.max_age_s * 1000)
        no_fields = ~present.any(axis=1)  # every field null
        reasons = (
            (no_fields, RejectReason.NO_FIELDS),
            (bad_ts, RejectReason.BAD_TIMESTAMP),
            (bad_seq, RejectReason.BAD_SEQ),
            (np.any(fractional, axis=1), RejectReason.BAD_TYPE),
            (np.any(outside, axis=1), RejectReason.OUT_OF_RANGE),
            (ts_future, RejectReason.TS_FUTURE),
            (ts_old, RejectReason.TS_TOO_OLD),
        )
        bad = np.zeros(len(ts), dtype=np.bool_)
        for mask, reason in reasons:
            fresh = mask & ~bad
            for row in np.flatnonzero(fresh):  # only rejected rows: rare, never the bulk
                rejections.append(self._row_rejection(rows, int(row), reason, values, outside))
            bad |= mask
        good = ~bad
        return KindBatch(
            spec,
            np.array(rows.device, dtype=np.int32)[good],
            ts[good],
            seq[good],
            np.ascontiguousarray(values[good]),
        )

    def _row_rejection(
        self,
        rows: _KindRows,
        row: int,
        reason: RejectReason,
        values: np.ndarray,
        outside: np.ndarray,
    ) -> Rejection:
        topic, reading = rows.source[row]
        spec = rows.spec
        if reason is RejectReason.OUT_OF_RANGE:
            col = int(np.flatnonzero(outside[row])[0])
            f = spec.fields[col]
            detail = (
                f"{f.name}={values[row, col]:g} outside [{f.min:g}, {f.max:g}] {f.unit}".rstrip()
            )
        elif reason is RejectReason.BAD_TYPE:
            detail = "an integer, boolean or enumeration field has a fractional value"
        elif reason is RejectReason.TS_FUTURE:
            skew = self.limits.max_future_skew_s
            detail = f"ts {rows.rows[row][0]} is more than {skew:g} s ahead"
        elif reason is RejectReason.TS_TOO_OLD:
            detail = f"ts {rows.rows[row][0]} is older than {self.limits.max_age_s:g} s"
        elif reason is RejectReason.NO_FIELDS:
            detail = "every field of the reading is null"
        elif reason is RejectReason.BAD_SEQ:
            detail = f"'seq' {rows.rows[row][1]} is outside [0, 2**53)"
        else:
            detail = f"'ts' {rows.rows[row][0]} is not a plausible time in ms"
        return Rejection(reason, topic, detail, excerpt(orjson.dumps(reading)))
