"""An in-process event hub: publishers (any thread) -> subscribers (asyncio, one per SSE
stream), each with a filter saying what its user may see.

A subscriber that falls behind by more than its queue is dropped (its stream ends, the client
reconnects and reloads) rather than holding memory or slowing the publisher. The hub keeps the
last `replay` events, so a client that reconnects with the id of the last event it saw
(`Last-Event-ID`) gets what it missed; when they are no longer all kept (or the hub restarted
and its ids with it), the client is told to reload instead.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    """`work_order`, `building_status` or `device_status`."""
    building_id: str
    data: Mapping[str, Any]

    def sse(self) -> bytes:
        """The event as one Server-Sent Events message."""
        payload = orjson.dumps({"type": self.type, **self.data})
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (self.id, self.type.encode(), payload)


Accept = Callable[[Event], bool]


class Subscription:
    def __init__(
        self, hub: EventHub, accept: Accept, loop: asyncio.AbstractEventLoop, max_queue: int
    ) -> None:
        self._hub = hub
        self.accept = accept
        self._loop = loop
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(max_queue)
        self.overflowed = False
        self.closed = False

    def _offer(self, event: Event | None) -> None:
        """Runs in the subscriber's loop."""
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.closed = True
            self._queue.get_nowait()  # make room for the end marker
            self._queue.put_nowait(None)

    def deliver(self, event: Event | None) -> None:
        """From any thread."""
        try:
            self._loop.call_soon_threadsafe(self._offer, event)
        except RuntimeError:  # the loop is gone: so is the stream
            self.closed = True

    async def get(self, timeout_s: float) -> Event | None:
        """The next event, or None after `timeout_s` with nothing (or when closed)."""
        if self.closed and self._queue.empty():
            return None
        try:
            event = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None
        if event is None:
            self.closed = True
        return event

    def close(self) -> None:
        self.closed = True
        self._hub.unsubscribe(self)


class EventHub:
    def __init__(
        self, *, max_queue: int = 1000, replay: int = 1000, first_id: int | None = None
    ) -> None:
        self.max_queue = max_queue
        if first_id is None:
            # Ids start from the wall clock (ms x 1000), so a restarted server's ids are above
            # any the last one gave out: a client's Last-Event-ID from before the restart is
            # then seen as too old to replay (reset), never taken for one of the new ids.
            first_id = time.time_ns() // 1_000_000 * 1000
        self._ids = itertools.count(first_id)
        self._last_id = first_id - 1
        self._recent: deque[Event] = deque(maxlen=replay)
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self.published = 0

    def subscribe(self, accept: Accept) -> Subscription:
        """From a coroutine: the subscription delivers into the running loop."""
        subscription, _ = self.resume(accept, None)
        return subscription

    def resume(
        self, accept: Accept, after_id: int | None
    ) -> tuple[Subscription, list[Event] | None]:
        """Subscribe, and the accepted events published after `after_id` (all of them, or None
        when some are no longer kept). Both under one lock, so no event falls in between."""
        sub = Subscription(self, accept, asyncio.get_running_loop(), self.max_queue)
        with self._lock:
            self._subscribers.add(sub)
            missed = self._since(after_id)
        if missed is None:
            return sub, None
        return sub, [event for event in missed if accept(event)]

    def _since(self, after_id: int | None) -> list[Event] | None:
        if after_id is None or after_id == self._last_id:
            return []
        if after_id > self._last_id:
            return None  # an id this server never gave out (its clock was set back?)
        if not self._recent or self._recent[0].id > after_id + 1:
            return None  # some of what was missed is no longer kept, or it is from before a restart
        return [event for event in self._recent if event.id > after_id]

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, type_: str, building_id: str, data: Mapping[str, Any]) -> Event:
        """Send an event to every subscriber that accepts it; safe from any thread."""
        with self._lock:
            event = Event(next(self._ids), type_, building_id, data)
            self._last_id = event.id
            self._recent.append(event)
            subscribers = list(self._subscribers)
            self.published += 1
        for sub in subscribers:
            if not sub.closed and sub.accept(event):
                sub.deliver(event)
        return event

    def close(self) -> None:
        """End every stream (at shutdown)."""
        with self._lock:
            subscribers = list(self._subscribers)
            self._subscribers.clear()
        for sub in subscribers:
            sub.deliver(None)
