"""Decode MQTT telemetry messages into a columnar `Batch`, rejecting bad input by reason.

Each message is parsed once (orjson). Messages whose readings hold plain values only (the usual
case, told by C-level counts over the payload) are not looked at reading by reading: all their
readings of one kind go into one float64 table by `itemgetter` + `np.fromiter` at the end of the
call (`gateway.decode_rows`). Everything after that (ranges, integrality, timestamp skew) is
checked on arrays. A bad message or reading never raises: it becomes a `Rejection` with its
reason and a truncated excerpt (`gateway.rejections`), and the rest of the batch goes on.

A topic is routed by (site, device id as in the topic) through `Site.by_topic`, once per topic:
a portfolio's decoder takes every estate's telemetry, each device on its own row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from operator import methodcaller
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from facility.batch import Batch, BoolArray, KindBatch
from facility.catalog import KINDS, KindSpec
from facility.site import Site, local_id
from facility.wire import READINGS_KEY, device_topic, parse_topic
from gateway import json_rows
from gateway.decode_rows import (
    MAX_EXACT_INT,
    CompiledPart,
    KindRows,
    Layout,
    Table,
    check_readings,
    table,
)
from gateway.rejections import (
    EXCERPT_BYTES,
    DecodeResult,
    DecoderLimits,
    Message,
    RawMessage,
    Rejection,
    RejectReason,
    excerpt,
)
from gateway.typed_readings import BATCHED_PREFIX, TypedKind, original_reading

__all__ = [
    "EXCERPT_BYTES",
    "DecodeResult",
    "Decoder",
    "DecoderLimits",
    "Message",
    "RawMessage",
    "RejectReason",
    "Rejection",
    "excerpt",
]

_DICT_ONLY = frozenset({dict})
_UNPARSED = object()
"""A payload not parsed yet (`None` is a parsed JSON null)."""
_KIND_SHIFT = 32
_INDEX_MASK = (1 << _KIND_SHIFT) - 1
_BATCHED = methodcaller("startswith", BATCHED_PREFIX)
SINGLES_CHUNK = 64
"""When one-reading messages of a kind do not decode together, they are tried again this many
at a time, so one bad message costs its chunk the per-message path, not the whole batch."""


class Decoder:
    def __init__(
        self, site: Site, limits: DecoderLimits | None = None, *, compiled: bool | None = None
    ) -> None:
        """`compiled`: parse the usual message in C (`gateway.json_rows`); default: when it
        is built."""
        self.site = site
        self.limits = limits or DecoderLimits()
        if compiled and not json_rows.COMPILED:
            raise RuntimeError("gateway._json_rows is not built (no C compiler at install)")
        self.compiled = json_rows.COMPILED if compiled is None else compiled
        self._routes: dict[str, tuple[KindSpec, int]] = {}
        self._route_codes: dict[str, int] = {}
        """The known topics again, as kind code << _KIND_SHIFT | device row, for `map`."""
        self._kind_names = list(KINDS)
        self._ordinal_shift = self.limits.max_payload_bytes.bit_length()
        """A reading's ordinal (its place in receive order across a kind's parts) is its
        message's number shifted by this, plus its place in the message: a reading takes
        more than a byte, so a message holds fewer readings than 2 ** shift."""
        self._site_ids = tuple(s.id for s in site.sites)
        """The sites whose telemetry this decoder takes: a portfolio's parts, or the site."""
        self._known_sites = frozenset(self._site_ids)
        self._layouts = {name: Layout.of(spec) for name, spec in KINDS.items()}
        self._typed = {name: TypedKind(spec) for name, spec in KINDS.items()}
        self._columns = {
            name: json_rows.column_names(layout.columns) for name, layout in self._layouts.items()
        }
        for device in site.devices:  # every device's own topic is known from the start
            self._route(device_topic(device, site.id))

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
        if parsed.site not in self._known_sites:
            known = ", ".join(map(repr, self._site_ids))
            expected = f"one of {known}" if len(self._site_ids) > 1 else known
            return RejectReason.UNKNOWN_SITE, f"site {parsed.site!r} is not {expected}"
        device = self.site.by_topic.get((parsed.site, parsed.device))
        if (
            device is None
            or device.kind != parsed.kind
            or local_id(device.building_id) != parsed.building
        ):
            return (
                RejectReason.UNKNOWN_DEVICE,
                f"no {parsed.kind} {parsed.device!r} in building {parsed.building!r} "
                f"of site {parsed.site!r}",
            )
        route = (KINDS[device.kind], device.kind_index)
        self._routes[topic] = route
        code = self._kind_names.index(device.kind) << _KIND_SHIFT | device.kind_index
        self._route_codes[topic] = code
        return route

    def decode(self, messages: Sequence[RawMessage], *, now_ms: int) -> DecodeResult:
        rows: dict[str, KindRows] = {}
        rejections: list[Rejection] = []
        routes, limit = self._routes, self.limits.max_payload_bytes
        typed = self._typed
        shift = self._ordinal_shift
        take = self._take_usual if self.compiled else self._take_singles
        for number in take(messages, rows):
            message = messages[number]
            ordinal = number << shift
            payload = message.payload
            route = routes.get(message.topic)
            if route is not None and len(payload) <= limit:
                # The usual message, inline: a known topic, every field a plain value, decoded
                # typed (`gateway.typed_readings`); anything else takes `_decode_message`.
                got = typed[route[0].name].readings(payload)
                if got is not None:
                    part = self._kind_rows(rows, route[0]).typed
                    count = len(got)
                    part.readings.extend(got)
                    part.device.extend(repeat(route[1], count))
                    part.message.extend(repeat(number, count))
                    part.order.extend(range(ordinal, ordinal + count))
                    continue
            self._decode_message(message, number, ordinal, rows, rejections)
        kinds: dict[str, KindBatch] = {}
        starts: list[int] = []
        for name, collected in rows.items():
            rows_table = table(collected, messages, rejections, typed[name])
            kb, started = self._validate(collected.spec, rows_table, messages, rejections, now_ms)
            if len(kb):
                kinds[name] = kb
                starts.append(started)
        return DecodeResult(Batch(self.site.id, kinds, max(starts, default=None)), rejections)

    def _usual(self, messages: Sequence[RawMessage]) -> tuple[npt.NDArray[np.int64], BoolArray]:
        """Per message its route code (kind << _KIND_SHIFT | device row; -1: not a known
        topic), and whether it may be the usual message (a known topic, not oversized)."""
        count = len(messages)
        routed = np.fromiter(
            map(self._route_codes.get, [m.topic for m in messages], repeat(-1, count)),
            np.int64,
            count,
        )
        usual = routed >= 0
        sizes = np.fromiter(map(len, [m.payload for m in messages]), np.intp, count)
        usual &= sizes <= self.limits.max_payload_bytes
        return routed, usual

    def _by_kind(
        self, routed: npt.NDArray[np.int64], usual: BoolArray
    ) -> Iterator[tuple[str, npt.NDArray[np.intp]]]:
        """Each kind with usual messages, and their numbers (taken as the loop gets to the
        kind: the caller may unmark messages of the kinds before it)."""
        kinds = routed >> _KIND_SHIFT
        for code in np.flatnonzero(np.bincount(kinds[usual], minlength=1)).tolist():
            yield self._kind_names[code], np.flatnonzero(usual & (kinds == code))

    def _take_usual(self, messages: Sequence[RawMessage], rows: dict[str, KindRows]) -> list[int]:
        """Parse the usual messages, one-reading and batched alike, a kind at a time in one
        call in C (`gateway.json_rows`) into each kind's `compiled` rows; the numbers of the
        other messages, in order, for the per-message loop."""
        count = len(messages)
        if not self._route_codes or not count:
            return list(range(count))
        routed, usual = self._usual(messages)
        for name, numbers in self._by_kind(routed, usual):
            payloads = [messages[i].payload for i in numbers.tolist()]
            table, counts = json_rows.usual_rows(payloads, self._columns[name])
            taken = counts >= 0
            usual[numbers[~taken]] = False
            per_message = counts[taken]
            if not len(per_message):
                continue
            message = np.repeat(numbers[taken], per_message)
            first = np.cumsum(per_message) - per_message
            position = np.arange(len(message)) - np.repeat(first, per_message)
            part = CompiledPart(
                np.repeat(routed[numbers[taken]] & _INDEX_MASK, per_message),
                message,
                (message << self._ordinal_shift) + position,
                position,
            )
            self._kind_rows(rows, KINDS[name]).compiled.append((table, part))
        rest: list[int] = np.flatnonzero(~usual).tolist()
        return rest

    def _take_singles(self, messages: Sequence[RawMessage], rows: dict[str, KindRows]) -> list[int]:
        """Decode the usual one-reading messages (a known topic, one reading of plain values)
        a kind at a time in one call (`TypedKind.singles`) into each kind's `singles`; the
        numbers of the other messages, in order, for the per-message loop.

        A device at 1 Hz sends one reading a message: this takes the per-message Python work
        (a decode call, four appends) out of the gateway's most common message; what is left
        per message runs in C (`map` over the topics and payloads)."""
        count = len(messages)
        if not self._route_codes or not count:
            return list(range(count))
        payloads = [m.payload for m in messages]
        routed, usual = self._usual(messages)
        usual &= ~np.fromiter(map(_BATCHED, payloads), np.bool_, count)
        for name, numbers in self._by_kind(routed, usual):
            typed, part = self._typed[name], self._kind_rows(rows, KINDS[name]).singles
            chosen = list(map(payloads.__getitem__, numbers.tolist()))
            chunks = [(slice(None), typed.singles(chosen))]
            if chunks[0][1] is None and len(chosen) > SINGLES_CHUNK:
                cuts = [slice(i, i + SINGLES_CHUNK) for i in range(0, len(chosen), SINGLES_CHUNK)]
                chunks = [(cut, typed.singles(chosen[cut])) for cut in cuts]
            for cut, readings in chunks:
                taken = numbers[cut]
                if readings is None:  # someone's message is not the usual one
                    usual[taken] = False
                    continue
                part.readings.extend(readings)
                part.device.extend((routed[taken] & _INDEX_MASK).tolist())
                part.message.extend(taken.tolist())
                part.order.extend((taken << self._ordinal_shift).tolist())
        rest: list[int] = np.flatnonzero(~usual).tolist()
        return rest

    def _kind_rows(self, rows: dict[str, KindRows], spec: KindSpec) -> KindRows:
        collected = rows.get(spec.name)
        if collected is None:
            collected = rows[spec.name] = KindRows(spec, self._layouts[spec.name])
        return collected

    def _decode_message(
        self,
        message: RawMessage,
        number: int,
        ordinal: int,
        rows: dict[str, KindRows],
        rejections: list[Rejection],
        doc: object = _UNPARSED,
    ) -> None:
        """Collect one message's readings, the first at `ordinal`. `doc` is the payload
        already parsed, or `_UNPARSED`."""
        topic, payload = message.topic, message.payload

        def reject(reason: RejectReason, detail: str) -> None:
            rejections.append(Rejection(reason, topic, detail, excerpt(payload)))

        if len(payload) > self.limits.max_payload_bytes:
            return reject(
                RejectReason.OVERSIZED,
                f"{len(payload)} bytes > max_payload_bytes {self.limits.max_payload_bytes}",
            )
        route = self._route(topic)
        if isinstance(route[0], RejectReason):
            return reject(route[0], str(route[1]))
        spec, device = route[0], int(route[1])
        if doc is _UNPARSED:
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
        collected = self._kind_rows(rows, spec)
        if READINGS_KEY not in doc:  # one reading: kept whole when it has plain values only
            if (
                payload.count(b'"') == 2 * len(doc)
                and payload.count(b"{") == 1
                and b"[" not in payload
            ):
                collected.whole.add(doc, device, number, ordinal)
                return None
            return check_readings([doc], device, number, ordinal, topic, collected, rejections)
        readings = doc[READINGS_KEY]
        if type(readings) is not list or len(doc) != 1:
            return reject(
                RejectReason.NOT_OBJECT,
                f"a batched payload is {{{READINGS_KEY!r}: [reading, ...]}} and nothing else",
            )
        if not readings:
            return reject(RejectReason.NO_FIELDS, "the message has no readings")
        if not self._clean(payload, readings):
            return check_readings(readings, device, number, ordinal, topic, collected, rejections)
        count = len(readings)
        whole = collected.whole
        whole.readings.extend(readings)
        whole.device.extend(repeat(device, count))
        whole.message.extend(repeat(number, count))
        whole.order.extend(range(ordinal, ordinal + count))
        return None

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

    def _validate(
        self,
        spec: KindSpec,
        rows: Table,
        messages: Sequence[RawMessage],
        rejections: list[Rejection],
        now_ms: int,
    ) -> tuple[KindBatch, int]:
        """The kind's valid readings, and the latest time at which one message's valid
        readings begin (`Batch.message_start_ms`; any value when there are none)."""
        table = rows.table
        if not len(table):
            return KindBatch.empty(spec), 0
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
            for row in np.flatnonzero(fresh).tolist():  # only rejected rows: rare
                message = messages[int(rows.message[row])]
                reading = rows.readings[row]
                if not isinstance(reading, dict):  # a struct, or a place in the message
                    reading = original_reading(message.payload, reading)
                rejections.append(
                    self._row_rejection(spec, message.topic, reading, reason, values[row])
                )
            bad |= mask
        if not bad.any():
            kb = KindBatch(spec, rows.device, ts, seq, np.asfortranarray(values))
            return kb, _latest_message_start(rows.message, ts)
        good = ~bad
        kb = KindBatch(
            spec, rows.device[good], ts[good], seq[good], np.asfortranarray(values[good])
        )
        return kb, _latest_message_start(rows.message[good], ts[good])

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


def _latest_message_start(message: npt.NDArray[np.intp], ts: npt.NDArray[np.int64]) -> int:
    """The latest of the messages' oldest readings (rows are usually in receive order, each
    message's rows together; the exact path may put them otherwise)."""
    if not len(ts):
        return 0
    if len(message) > 1 and bool((message[1:] < message[:-1]).any()):
        order = np.argsort(message, kind="stable")
        message, ts = message[order], ts[order]
    edges = np.flatnonzero(message[1:] != message[:-1]) + 1
    return int(np.minimum.reduceat(ts, np.concatenate(([0], edges))).max())
