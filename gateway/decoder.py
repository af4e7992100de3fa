"""Decode MQTT telemetry messages into a columnar `Batch`, rejecting bad input by reason.

Each message is parsed once (orjson). Messages whose readings hold plain values only (the usual
case, told by C-level counts over the payload) are not looked at reading by reading: all their
readings of one kind go into one float64 table by `itemgetter` + `np.fromiter` at the end of the
call. Everything after that (ranges, integrality, timestamp skew) is checked on arrays. A bad
message or reading never raises: it becomes a `Rejection` with its reason and a truncated
excerpt, and the rest of the batch goes on.
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
import numpy.typing as npt
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


class _Part:
    """Readings collected during a decode call, each with its device, message and ordinal."""

    __slots__ = ("device", "message", "order", "readings", "rows")

    def __init__(self) -> None:
        self.readings: list[dict[str, Any]] = []
        self.device: list[int] = []
        self.message: list[int] = []
        self.order: list[int] = []
        self.rows: list[list[Any]] = []
        """[ts, seq, field...] per reading; only the exact path fills it (one list each)."""

    def pick(self, rows: list[int]) -> _Part:
        part = _Part()
        part.readings = [self.readings[i] for i in rows]
        part.device = [self.device[i] for i in rows]
        part.message = [self.message[i] for i in rows]
        part.order = [self.order[i] for i in rows]
        return part

    def add(self, reading: dict[str, Any], device: int, message: int, order: int) -> None:
        self.readings.append(reading)
        self.device.append(device)
        self.message.append(message)
        self.order.append(order)


class _KindRows:
    """One kind's readings: `whole` from structurally clean messages, converted in bulk at the
    end; `checked` already through the per-reading checks, as row lists."""

    __slots__ = ("checked", "layout", "spec", "whole")

    def __init__(self, spec: KindSpec, layout: _Layout) -> None:
        self.spec = spec
        self.layout = layout
        self.whole = _Part()
        self.checked = _Part()


_NUMBER_TYPES = (int, float, bool)
_INT_ONLY = frozenset({int})
_DICT_ONLY = frozenset({dict})
_TS = itemgetter("ts")
_SEQ = itemgetter("seq")
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


@dataclass(frozen=True, slots=True)
class _Table:
    """One kind's readings that passed the per-message checks, as arrays, in receive order."""

    table: npt.NDArray[np.float64]
    """[ts, seq, field...] per reading; NaN = not reported."""
    device: npt.NDArray[np.int32]
    message: npt.NDArray[np.intp]
    readings: list[dict[str, Any]]


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
        ordinal = 0
        for number, message in enumerate(messages):
            ordinal = self._decode_message(message, number, ordinal, rows, rejections)
        kinds: dict[str, KindBatch] = {}
        for name, collected in rows.items():
            table = self._table(collected, messages, rejections)
            kb = self._validate(collected.spec, table, messages, rejections, now_ms)
            if len(kb):
                kinds[name] = kb
        return DecodeResult(Batch(self.site.id, kinds), rejections)

    def _decode_message(
        self,
        message: RawMessage,
        number: int,
        ordinal: int,
        rows: dict[str, _KindRows],
        rejections: list[Rejection],
    ) -> int:
        """Collect one message's readings; returns the next reading ordinal."""
        topic, payload = message.topic, message.payload

        def reject(reason: RejectReason, detail: str) -> int:
            rejections.append(Rejection(reason, topic, detail, excerpt(payload)))
            return ordinal

        if len(payload) > self.limits.max_payload_bytes:
            return reject(
                RejectReason.OVERSIZED,
                f"{len(payload)} bytes > max_payload_bytes {self.limits.max_payload_bytes}",
            )
        route = self._route(topic)
        if isinstance(route[0], RejectReason):
            return reject(route[0], str(route[1]))
        spec, device = route[0], int(route[1])
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            if b"NaN" in payload or b"Infinity" in payload:
                return reject(
                    RejectReason.NON_FINITE, "NaN and Infinity are not valid JSON numbers"
                )
            return reject(RejectReason.MALFORMED_JSON, str(exc))
        if type(doc) is not dict:
            return reject(
                RejectReason.NOT_OBJECT, f"payload is a JSON {type(doc).__name__}, not an object"
            )
        collected = rows.get(spec.name)
        if collected is None:
            collected = rows[spec.name] = _KindRows(spec, self._layouts[spec.name])
        if READINGS_KEY not in doc:  # one reading: kept whole when it has plain values only
            if (
                payload.count(b'"') == 2 * len(doc)
                and payload.count(b"{") == 1
                and b"[" not in payload
            ):
                collected.whole.add(doc, device, number, ordinal)
                return ordinal + 1
            return self._check_readings(
                [doc], device, number, ordinal, topic, collected, rejections
            )
        readings = doc[READINGS_KEY]
        if type(readings) is not list or len(doc) != 1:
            return reject(
                RejectReason.NOT_OBJECT,
                f"a batched payload is {{{READINGS_KEY!r}: [reading, ...]}} and nothing else",
            )
        if not readings:
            return reject(RejectReason.NO_FIELDS, "the message has no readings")
        if not self._clean(payload, readings):
            return self._check_readings(
                readings, device, number, ordinal, topic, collected, rejections
            )
        count = len(readings)
        whole = collected.whole
        whole.readings.extend(readings)
        whole.device.extend(repeat(device, count))
        whole.message.extend(repeat(number, count))
        whole.order.extend(range(ordinal, ordinal + count))
        return ordinal + count

    @staticmethod
    def _clean(payload: bytes, readings: list[Any]) -> bool:
        """Whether a batched message holds objects of plain values only, by C-level calls.

        Every reading is an object; the payload holds exactly two quotes per key (no string
        values); and, with no strings, every bracket is structural, so nothing is nested.
        What is left in the readings (numbers, booleans, null) converts to float64 in bulk.
        """
        if frozenset(map(type, readings)) != _DICT_ONLY:
            return False
        if payload.count(b'"') != 2 * (sum(map(len, readings)) + 1):
            return False
        return payload.count(b"{") == len(readings) + 1 and payload.count(b"[") == 1

    def _check_readings(
        self,
        readings: list[Any],
        device: int,
        number: int,
        ordinal: int,
        topic: str,
        collected: _KindRows,
        rejections: list[Rejection],
    ) -> int:
        """The exact path: each reading checked on its own, a bad one named by its reason."""
        index = collected.spec.index
        layout = collected.layout
        checked = collected.checked
        for reading in readings:
            problem = self._check_reading(reading, index)
            if problem is not None:
                reason, detail = problem
                rejections.append(Rejection(reason, topic, detail, excerpt(orjson.dumps(reading))))
                continue
            checked.add(reading, device, number, ordinal)
            checked.rows.append(list(map(reading.get, layout.columns, layout.defaults)))
            ordinal += 1
        return ordinal

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

    def _table(
        self,
        collected: _KindRows,
        messages: Sequence[RawMessage],
        rejections: list[Rejection],
    ) -> _Table:
        """The kind's readings as one float64 table, whole readings converted in bulk.

        A reading that reports every field is read by one `itemgetter` into a tuple and all of
        them go through `np.fromiter` at once (null becomes NaN, booleans 1.0 / 0.0); `ts` and
        `seq` must be integers. Readings that report only some fields, or a bulk that is not
        regular after all, take the exact path, which names the reason of each bad reading.
        """
        layout, whole = collected.layout, collected.whole
        bulk: npt.NDArray[np.float64] | None = None
        exact: list[int] = []
        if whole.readings:
            lengths = np.fromiter(map(len, whole.readings), np.intp, count=len(whole.readings))
            full = lengths == len(layout.columns)
            if not full.all():  # readings with some fields: one by one
                exact = np.flatnonzero(~full).tolist()
                whole = whole.pick(np.flatnonzero(full).tolist())
            if whole.readings:
                bulk = self._bulk(layout, whole.readings)
                if bulk is None:  # not regular after all: every reading the exact way
                    exact = list(range(len(collected.whole.readings)))
        for i in exact:
            number = collected.whole.message[i]
            self._check_readings(
                [collected.whole.readings[i]],
                collected.whole.device[i],
                number,
                collected.whole.order[i],
                messages[number].topic,
                collected,
                rejections,
            )
        width = len(layout.columns)
        checked = collected.checked
        parts: list[tuple[npt.NDArray[np.float64], _Part]] = []
        if bulk is not None:
            parts.append((bulk, whole))
        if checked.rows:
            parts.append((np.array(checked.rows, dtype=np.float64).reshape(-1, width), checked))
        if not parts:
            return _Table(np.empty((0, width)), np.empty(0, np.int32), np.empty(0, np.intp), [])
        if len(parts) == 1:
            table, part = parts[0]
            return _Table(
                table,
                np.array(part.device, dtype=np.int32),
                np.array(part.message, dtype=np.intp),
                part.readings,
            )
        order = np.argsort(
            np.concatenate([np.array(p.order, dtype=np.intp) for _, p in parts]), kind="stable"
        )
        readings = [r for _, p in parts for r in p.readings]
        return _Table(
            np.concatenate([t for t, _ in parts])[order],
            np.concatenate([np.array(p.device, dtype=np.int32) for _, p in parts])[order],
            np.concatenate([np.array(p.message, dtype=np.intp) for _, p in parts])[order],
            list(map(readings.__getitem__, order.tolist())),
        )

    @staticmethod
    def _bulk(layout: _Layout, readings: list[dict[str, Any]]) -> npt.NDArray[np.float64] | None:
        """Readings that each have as many keys as there are columns, or None if any does not
        have exactly the columns' keys or has a `ts` or `seq` that is not an integer."""
        if frozenset(map(type, map(_TS, readings))) != _INT_ONLY:
            return None  # also a missing key: KeyError is caught below
        if frozenset(map(type, map(_SEQ, readings))) != _INT_ONLY:
            return None
        count = len(readings) * len(layout.columns)
        try:
            flat = np.fromiter(
                chain.from_iterable(map(layout.every_column, readings)), np.float64, count=count
            )
        except (KeyError, TypeError, ValueError):
            return None
        return flat.reshape(len(readings), len(layout.columns))

    def _validate(
        self,
        spec: KindSpec,
        rows: _Table,
        messages: Sequence[RawMessage],
        rejections: list[Rejection],
        now_ms: int,
    ) -> KindBatch:
        table = rows.table
        if not len(table):
            return KindBatch.empty(spec)
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
                topic = messages[int(rows.message[row])].topic
                rejections.append(
                    self._row_rejection(spec, topic, rows.readings[row], reason, values[row])
                )
            bad |= mask
        if not bad.any():
            return KindBatch(spec, rows.device, ts, seq, np.asfortranarray(values))
        good = ~bad
        return KindBatch(
            spec, rows.device[good], ts[good], seq[good], np.asfortranarray(values[good])
        )

    def _row_rejection(
        self,
        spec: KindSpec,
        topic: str,
        reading: dict[str, Any],
        reason: RejectReason,
        values: npt.NDArray[np.float64],
    ) -> Rejection:
        if reason is RejectReason.OUT_OF_RANGE:
            outside = ~np.isnan(values) & ((values < spec.min) | (values > spec.max))
            col = int(np.flatnonzero(outside)[0])
            f = spec.fields[col]
            detail = f"{f.name}={values[col]:g} outside [{f.min:g}, {f.max:g}] {f.unit}".rstrip()
        elif reason is RejectReason.BAD_TYPE:
            detail = "an integer, boolean or enumeration field has a fractional value"
        elif reason is RejectReason.TS_FUTURE:
            skew = self.limits.max_future_skew_s
            detail = f"ts {reading.get('ts')} is more than {skew:g} s ahead"
        elif reason is RejectReason.TS_TOO_OLD:
            detail = f"ts {reading.get('ts')} is older than {self.limits.max_age_s:g} s"
        elif reason is RejectReason.NO_FIELDS:
            detail = "every field of the reading is null"
        elif reason is RejectReason.BAD_SEQ:
            detail = f"'seq' {reading.get('seq')} is outside [0, 2**53)"
        else:
            detail = f"'ts' {reading.get('ts')} is not a plausible time in ms"
        return Rejection(reason, topic, detail, excerpt(orjson.dumps(reading)))
