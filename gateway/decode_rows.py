"""A decode call's readings per kind, and how they become one float64 table.

Readings from structurally clean messages are kept whole and converted in bulk at the end
(`itemgetter` + `np.fromiter`); the others, and a bulk that turns out irregular, take the exact
path, where each reading is checked on its own and a bad one is named by its reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from facility.catalog import KindSpec
from facility.wire import RESERVED_KEYS
from gateway.rejections import RawMessage, Rejection, RejectReason, excerpt
from gateway.typed_readings import TypedKind


class Part:
    """Readings collected during a decode call, each with its device, message and ordinal."""

    __slots__ = ("device", "message", "order", "readings", "rows")

    def __init__(self) -> None:
        self.readings: list[Any] = []
        """Dicts (orjson), or structs in a kind's `typed` part (`gateway.typed_readings`)."""
        self.device: list[int] = []
        self.message: list[int] = []
        self.order: list[int] = []
        self.rows: list[list[Any]] = []
        """[ts, seq, field...] per reading; only the exact path fills it (one list each)."""

    def pick(self, rows: list[int]) -> Part:
        part = Part()
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


@dataclass(frozen=True, slots=True)
class CompiledPart:
    """Rows the C parser made (`gateway.json_rows`), as arrays: each row's device, message,
    ordinal and place in its message (what a rejection's excerpt is found by)."""

    device: npt.NDArray[np.int64]
    message: npt.NDArray[np.int64]
    order: npt.NDArray[np.int64]
    readings: npt.NDArray[np.int64]


class KindRows:
    """One kind's readings: `singles` from the usual one-reading messages and `typed` from the
    usual batched ones, as structs; `whole` from other structurally clean messages, converted
    in bulk at the end; `checked` already through the per-reading checks, as row lists."""

    __slots__ = ("checked", "compiled", "layout", "singles", "spec", "typed", "whole")

    def __init__(self, spec: KindSpec, layout: Layout) -> None:
        self.spec = spec
        self.layout = layout
        self.compiled: list[tuple[npt.NDArray[np.float64], CompiledPart]] = []
        """Rows the C parser made, per call."""
        self.singles = Part()
        self.typed = Part()
        self.whole = Part()
        self.checked = Part()


_NUMBER_TYPES = (int, float, bool)
_INT_ONLY = frozenset({int})
_TS = itemgetter("ts")
_SEQ = itemgetter("seq")
MAX_EXACT_INT = 2**53
"""Rows travel as float64 until split; ts and seq above this would not survive exactly."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Per kind: the keys a reading may have, the row columns, their defaults."""

    allowed: frozenset[str]
    columns: tuple[str, ...]
    defaults: tuple[object, ...]
    every_column: Callable[[dict[str, Any]], tuple[Any, ...]]
    """Picks all columns of a reading that reports every field (KeyError otherwise)."""

    @staticmethod
    def of(spec: KindSpec) -> Layout:
        columns = ("ts", "seq", *spec.field_names)
        return Layout(
            frozenset(spec.field_names) | RESERVED_KEYS,
            columns,
            (None, None, *([math.nan] * len(spec.fields))),
            itemgetter(*columns),
        )


@dataclass(frozen=True, slots=True)
class Table:
    """One kind's readings that passed the per-message checks, as arrays, in receive order."""

    table: npt.NDArray[np.float64]
    """[ts, seq, field...] per reading; NaN = not reported."""
    device: npt.NDArray[np.int32]
    message: npt.NDArray[np.intp]
    readings: Sequence[Any] | npt.NDArray[np.int64]
    """Each row's reading: a dict, a struct of the typed path, or its place in its message
    when the C parser made the row (`original_reading`)."""


def check_readings(
    readings: list[Any],
    device: int,
    number: int,
    ordinal: int,
    topic: str,
    collected: KindRows,
    rejections: list[Rejection],
) -> None:
    """The exact path: each reading checked on its own, a bad one named by its reason; the
    ones kept take the ordinals from `ordinal` on, in order."""
    index = collected.spec.index
    layout = collected.layout
    checked = collected.checked
    for reading in readings:
        problem = check_reading(reading, index)
        if problem is not None:
            reason, detail = problem
            rejections.append(Rejection(reason, topic, detail, excerpt(orjson.dumps(reading))))
            continue
        checked.add(reading, device, number, ordinal)
        checked.rows.append(list(map(reading.get, layout.columns, layout.defaults)))
        ordinal += 1


def check_reading(reading: object, index: Mapping[str, int]) -> tuple[RejectReason, str] | None:
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


def table(
    collected: KindRows,
    messages: Sequence[RawMessage],
    rejections: list[Rejection],
    typed: TypedKind | None = None,
) -> Table:
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
            bulk = _bulk(layout, whole.readings)
            if bulk is None:  # not regular after all: every reading the exact way
                exact = list(range(len(collected.whole.readings)))
    for i in exact:
        number = collected.whole.message[i]
        check_readings(
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
    parts: list[tuple[npt.NDArray[np.float64], Part | CompiledPart]] = list(collected.compiled)
    if typed is not None:
        parts += [
            (typed.table(p.readings), p) for p in (collected.singles, collected.typed) if p.readings
        ]
    if bulk is not None:
        parts.append((bulk, whole))
    if checked.rows:
        parts.append((np.array(checked.rows, dtype=np.float64).reshape(-1, width), checked))
    if not parts:
        return Table(np.empty((0, width)), np.empty(0, np.int32), np.empty(0, np.intp), [])
    if len(parts) == 1:
        table, part = parts[0]
        return Table(
            table,
            np.array(part.device, dtype=np.int32),
            np.array(part.message, dtype=np.intp),
            part.readings,
        )
    order = np.argsort(
        np.concatenate([np.array(p.order, dtype=np.intp) for _, p in parts]), kind="stable"
    )
    readings = [r for _, p in parts for r in p.readings]
    return Table(
        np.concatenate([t for t, _ in parts])[order],
        np.concatenate([np.array(p.device, dtype=np.int32) for _, p in parts])[order],
        np.concatenate([np.array(p.message, dtype=np.intp) for _, p in parts])[order],
        list(map(readings.__getitem__, order.tolist())),
    )


def _bulk(layout: Layout, readings: list[dict[str, Any]]) -> npt.NDArray[np.float64] | None:
    """Readings that each have as many keys as there are columns, or None if any does not
    have exactly the columns' keys or has a `ts` or `seq` that is not an integer."""
    count = len(readings) * len(layout.columns)
    try:  # a missing key (an unknown one in its place) raises KeyError
        if frozenset(map(type, map(_TS, readings))) != _INT_ONLY:
            return None
        if frozenset(map(type, map(_SEQ, readings))) != _INT_ONLY:
            return None
        flat = np.fromiter(
            chain.from_iterable(map(layout.every_column, readings)), np.float64, count=count
        )
    except (KeyError, TypeError, ValueError):
        return None
    return flat.reshape(len(readings), len(layout.columns))
