"""The in-process event hub: the events this process reads from the live-updates feed
(`api.feed`, in the shared database) -> subscribers (asyncio, one per SSE stream), each with a
filter saying what its user may see.

A subscriber that falls behind by more than its queue is dropped (its stream ends, the client
reconnects and reloads) rather than holding memory or slowing the publisher. Events keep the
feed's ids, so a client that reconnects to any process with the id of the last event it saw
(`Last-Event-ID`) is replayed from the feed, not from this process's memory.
"""

from __future__ import annotations

import asyncio
import threading
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
    def __init__(self, *, max_queue: int = 1000) -> None:
        self.max_queue = max_queue
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self.published = 0

    def subscribe(self, accept: Accept) -> Subscription:
        """From a coroutine: the subscription delivers into the running loop."""
        sub = Subscription(self, accept, asyncio.get_running_loop(), self.max_queue)
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, event: Event) -> None:
        """Send an event to every subscriber that accepts it; safe from any thread."""
        with self._lock:
            subscribers = list(self._subscribers)
            self.published += 1
        for sub in subscribers:
            if not sub.closed and sub.accept(event):
                sub.deliver(event)

    def close(self) -> None:
        """End every stream (at shutdown, or when this process fell behind the feed: its
        clients reconnect and are replayed, or told to reload)."""
        with self._lock:
            subscribers = list(self._subscribers)
            self._subscribers.clear()
        for sub in subscribers:
            sub.deliver(None)
