"""The plain packet path: paho-mqtt's public API only, for any paho release the fast path was
not written against.

Every PUBLISH goes through paho's own reader and `on_message`; acks are paho's `ack()` one by
one (`manual_ack=True`), sent when the gateway says the batch is durable, in receive order.
Publishing keeps the fast path's promises with paho's `publish()`: at most `max_inflight`
unacknowledged, kept while the broker is away and resent after a reconnect, in order. paho
resends its unacknowledged messages when the CONNACK arrives but would send a message
published in between ahead of them, so new messages wait in `_held` while the connection is
down and after a reconnect until the resent ones are acknowledged.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqtt.interface import PathClient, PathName, check_publish_args


class PlainClient(PathClient):
    name: ClassVar[PathName] = "plain"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._changed = threading.Condition()
        self._held: collections.deque[tuple[str, bytes, int]] = collections.deque()
        """Published, not yet handed to paho: the connection is down or paho is resending."""
        self._in_flight: dict[int, int] = {}
        """Packet id -> QoS of the messages handed to paho and not yet acknowledged."""
        self._early: set[int] = set()
        """Acknowledged before `publish()` returned their packet id to us."""
        self._up = False
        self._open = False
        """Up, and nothing from before the last reconnect still in flight: new ones may go."""
        self._releasing = False
        self._handing = 0
        """Taken from `_held` by `_release`, not yet in `_in_flight`."""
        super().__init__(*args, **kwargs)
        self.max_inflight_messages_set(0)  # ours is the limit; paho would queue out of order
        self.on_publish = self._paho_published

    def link_up(self) -> None:
        with self._changed:
            self._up = True
            self._open = not self._in_flight
        self._release()  # nothing to resend: go (paho's thread, so no write from here)

    def link_down(self) -> None:
        with self._changed:
            self._up = self._open = False
            for mid in [mid for mid, qos in self._in_flight.items() if qos == 0]:
                del self._in_flight[mid]  # QoS 0 is not resent: it is lost with the connection
            self._changed.notify_all()

    def _paho_published(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        with self._changed:
            if self._in_flight.pop(mid, None) is None:
                self._early.add(mid)
            if reason_code.is_failure:
                self.refused += 1
            if self._up and not self._open and not self._in_flight:
                self._open = True  # what paho resent is acknowledged: the held ones may go
            self._changed.notify_all()
        self._release()

    def _release(self) -> None:
        """Hand the held messages to paho, in order, from one thread at a time; never under
        `_changed` (paho calls `_paho_published` holding its own lock)."""
        while True:
            with self._changed:
                if self._releasing or not self._open or not self._held:
                    return
                self._releasing = True
                run = list(self._held)
                self._held.clear()
                self._handing = len(run)
            try:
                for topic, payload, qos in run:
                    mid = self.publish(topic, payload, qos).mid
                    with self._changed:
                        self._handing -= 1
                        if mid in self._early:
                            self._early.discard(mid)
                        else:
                            self._in_flight[mid] = qos
                        self._changed.notify_all()
            finally:
                with self._changed:
                    self._releasing = False
                    self._handing = 0

    def publish_many(
        self, messages: Sequence[tuple[str, bytes]], qos: int, max_inflight: int, timeout_s: float
    ) -> None:
        check_publish_args(qos, max_inflight)
        step = max(1, max_inflight // 4)
        for first in range(0, len(messages), step):
            run = messages[first : first + step]
            with self._changed:
                if qos and not self._changed.wait_for(
                    lambda: self._unacked() + len(run) <= max_inflight,  # noqa: B023
                    timeout_s,
                ):
                    raise TimeoutError(
                        f"{self._unacked()} messages unacknowledged for {timeout_s:g} s"
                    )
                if qos == 0 and not self._up:
                    continue  # QoS 0 while away is dropped
                self._held.extend((topic, payload, qos) for topic, payload in run)
            self._release()

    def _unacked(self) -> int:
        return len(self._held) + self._handing + len(self._in_flight)

    def unacked(self) -> int:
        with self._changed:
            return self._unacked()

    def wait_acked(self, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._unacked() == 0, timeout_s)

    def ack_many(self, mids: Sequence[int]) -> None:
        for mid in mids:
            self.ack(mid, 1)
