"""Fakes at the seams, shared by the tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from alerts.rule_context import RuleContext
from facility.batch import BoolArray
from gateway.mqtt import InboundMessage


class FakeClock:
    """A clock the test sets: `clock.now` ms since the epoch."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class MessageList:
    """The gateway's message source (the MQTT seam) over prepared messages: records the acks,
    and sets `stop` once every message is acked, so a pipelined gateway runs to the end."""

    def __init__(
        self, messages: Sequence[InboundMessage], stop: threading.Event, *, one_batch: bool = False
    ) -> None:
        self.pending = list(messages)
        self.total = len(self.pending)
        self.acked: list[int] = []
        self.stop = stop
        self.one_batch = one_batch
        """Hand out a batch only once the one before it is acked (a broker whose in-flight
        window is one batch): every batch reaches the rules on its own, never together with
        the next (`Gateway._evaluate`), for tests of what one batch does."""
        self._taken = 0
        self._acked = threading.Condition()

    def take(self, max_messages: int, timeout_s: float, max_bytes: int = 0) -> list[InboundMessage]:
        if self.one_batch:
            with self._acked:
                if not self._acked.wait_for(
                    lambda: len(self.acked) >= self._taken, max(timeout_s, 0.01)
                ):
                    return []
        taken, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        self._taken += len(taken)
        if not taken:
            self.stop.wait(max(timeout_s, 0.01))  # no busy loop while the last acks come
        return taken

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        with self._acked:
            self.acked.extend(m.mid for m in messages)
            self._acked.notify_all()
        if len(self.acked) >= self.total:
            self.stop.set()


class RuleBugError(ValueError):
    """What a buggy rule function raises."""


class PoisonedCondition:
    """A rule function with a bug: holds where `field` > `above`, and raises on any batch with
    a reading of `field` at or over `poison`, as a rule might on input its author never saw."""

    def __init__(self, field: str, *, above: float, poison: float) -> None:
        self.field = field
        self.above = above
        self.poison = poison
        self.calls = 0

    def __call__(self, context: RuleContext) -> BoolArray:
        self.calls += 1
        values = context.column(self.field)
        if bool((values >= self.poison).any()):
            raise RuleBugError(f"{self.field} {float(np.nanmax(values)):g} is off the scale")
        result: BoolArray = values > self.above
        return result


class DatabaseOutage:
    """The work-order database going away: while `down`, every statement on the engine fails
    as the driver fails when the server is gone (OperationalError)."""

    def __init__(self, engine: Engine) -> None:
        self.down = False
        self.refused = 0
        event.listen(engine, "before_cursor_execute", self._execute)

    def _execute(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.down:
            self.refused += 1
            raise OperationalError(statement, params, ConnectionError("database down (test)"))
