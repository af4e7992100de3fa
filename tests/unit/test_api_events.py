"""Live updates: the event hub, the change monitor, and the SSE stream over a real server,
filtered by what the user may see. (The feed in the database, and several monitors on one
database: tests/unit/test_api_feed.py.)"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from alerts.interface import Severity
from alerts.status import building_status
from api.events import Event, EventHub
from api.monitor import ChangeMonitor
from facility.site import Site
from tests.api_support import T0, Api, new_store, open_order, running_api, seen
from tests.fakes import FakeClock


def test_the_hub_delivers_what_each_subscriber_accepts() -> None:
    async def scenario() -> tuple[list[str], list[str], bool]:
        hub = EventHub()
        b03 = hub.subscribe(lambda e: e.building_id == "b03")
        everything = hub.subscribe(lambda e: True)
        hub.publish(Event(1, "work_order", "b01", {"n": 1}))
        hub.publish(Event(2, "work_order", "b03", {"n": 2}))
        # From another thread, as the change monitor does.
        third = Event(3, "building_status", "b03", {"n": 3})
        thread = threading.Thread(target=hub.publish, args=(third,))
        thread.start()
        thread.join()
        seen_b03, seen_all = [], []
        while (event := await b03.get(0.05)) is not None:
            seen_b03.append(f"{event.type}:{event.building_id}")
        while (event := await everything.get(0.05)) is not None:
            seen_all.append(f"{event.type}:{event.building_id}")
        b03.close()
        everything.close()
        return seen_b03, seen_all, hub.subscribers == 0

    seen_b03, seen_all, unsubscribed = asyncio.run(scenario())
    assert seen_b03 == ["work_order:b03", "building_status:b03"]
    assert seen_all == ["work_order:b01", "work_order:b03", "building_status:b03"]
    assert unsubscribed


def test_a_subscriber_that_falls_behind_is_dropped_not_buffered() -> None:
    async def scenario() -> tuple[int, bool]:
        hub = EventHub(max_queue=3)
        slow = hub.subscribe(lambda e: True)
        for i in range(10):
            hub.publish(Event(i, "work_order", "b01", {"n": i}))
        await asyncio.sleep(0.01)
        got = 0
        while await slow.get(0.01) is not None:
            got += 1
        return got, slow.overflowed and slow.closed

    got, dropped = asyncio.run(scenario())
    assert got == 2  # what fitted before the overflow; then the end of the stream
    assert dropped


def test_an_event_is_one_sse_message() -> None:
    event = Event(1, "work_order", "b03", {"work_order_id": 7})
    assert event.sse() == (
        b'id: 1\nevent: work_order\ndata: {"type":"work_order","work_order_id":7}\n\n'
    )


class RecordingHub(EventHub):
    def __init__(self) -> None:
        super().__init__()
        self.published_events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, event: Event) -> None:
        self.published_events.append((event.type, event.building_id, dict(event.data)))
        super().publish(event)


@pytest.fixture
def api(demo_site: Site, tmp_path: Path) -> Iterator[Api]:
    clock = FakeClock(T0)
    store = new_store(f"sqlite:///{tmp_path / 'wo.sqlite3'}", clock)
    with running_api(demo_site, store, clock, sse_keepalive_s=0.2) as api:
        yield api


def test_the_monitor_publishes_work_order_events_and_status_changes(api: Api) -> None:
    hub = RecordingHub()
    published = hub.published_events
    monitor = ChangeMonitor(api.site, api.store, hub, clock_ms=api.clock)
    for d in api.site.building_by_id["b03"].devices:
        seen(api.store, api.site, d.id, T0)
    assert monitor.poll_once() == 0  # the first round only looks
    order = open_order(api.store, api.site, "b03-u1-el2")
    assert monitor.poll_once() == 3
    kinds = [(t, b) for t, b, _ in published]
    assert kinds == [("work_order", "b03"), ("device_status", "b03"), ("building_status", "b03")]
    created, device, building = (d for _, _, d in published)
    assert (created["event"], created["work_order_id"], created["status"]) == (
        "created",
        order,
        "open",
    )
    assert (device["device_id"], device["previous"], device["status"]) == (
        "b03-u1-el2",
        "ok",
        "alarm",
    )
    assert (building["previous"], building["status"], building["open_work_orders"]) == (
        "ok",
        "alarm",
        1,
    )

    published.clear()
    api.clock.now = T0 + 121_000  # every b03 device silent past its heartbeat
    monitor.poll_once()
    statuses = {d["device_id"]: d["status"] for t, _, d in published if t == "device_status"}
    assert set(statuses.values()) == {"offline"}
    assert "b03-u1-el2" not in statuses  # still alarm: the open order wins
    assert monitor.poll_once() == 0  # nothing changed since


def test_the_monitors_statuses_are_those_of_the_status_rollup(api: Api) -> None:
    """The monitor computes statuses with numpy; `alerts.status` is the reference."""
    rng = random.Random(3)
    site, store = api.site, api.store
    for device in site.devices:
        if rng.random() < 0.8:
            seen(store, site, device.id, T0 - rng.randrange(0, 200_000))
    for device in rng.sample(list(site.devices), 30):
        open_order(store, site, device.id, severity=rng.choice(list(Severity)))
    store.create_report(
        site_id=site.id, building_id="b07", unit_id=None, device_id=None, kind=None,
        description="water in the basement", severity=Severity.CRITICAL,
    )  # fmt: skip
    devices, buildings = ChangeMonitor(site, store, EventHub(), clock_ms=api.clock).evaluate(T0)
    states = store.device_states()
    orders = store.open_work_orders()
    for building in site.buildings:
        mine = [o for o in orders if o.building_id == building.id]
        expected = building_status(building, states, mine, T0)
        assert buildings[building.id] == expected.status, building.id
        for ds in expected.devices:
            assert devices[ds.device.id] == ds.status, ds.device.id
    assert buildings["b07"] == "alarm"


class Server:
    """The app on a loopback port in a thread (SSE needs a real server to stream)."""

    def __init__(self, app: Any) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]})

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            threading.Event().wait(0.02)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def read_events(lines: Iterator[str], until: str) -> list[dict[str, Any]]:
    """Data of the events read until one of type `until` (keep-alives skipped)."""
    events = []
    for line in lines:
        if line.startswith("data: "):
            data = orjson.loads(line.removeprefix("data: "))
            events.append(data)
            if data["type"] == until:
                return events
    raise AssertionError(f"the stream ended before a {until!r} event: {events}")


def test_the_stream_delivers_events_and_leaves_out_foreign_buildings(api: Api) -> None:
    monitor = api.app.state.monitor
    for device_id in ("b03-u1-el2", "b01-u1-el1"):
        seen(api.store, api.site, device_id, T0)
    monitor.poll_once()
    steward = api.headers("steward")
    dispatcher = api.headers("dispatcher")
    with Server(api.app) as server, httpx.Client(timeout=10) as http:
        base = f"http://127.0.0.1:{server.port}/api/v1/events"
        with (
            http.stream("GET", base, headers=steward) as mine,
            http.stream("GET", base, headers=dispatcher) as everyone,
        ):
            assert mine.status_code == everyone.status_code == 200
            assert mine.headers["content-type"].startswith("text/event-stream")
            mine_lines, all_lines = mine.iter_lines(), everyone.iter_lines()
            assert read_events(mine_lines, "ready") == [{"type": "ready", "user": "steward"}]
            read_events(all_lines, "ready")

            foreign = open_order(api.store, api.site, "b01-u1-el1")
            monitor.poll_once()
            own = open_order(api.store, api.site, "b03-u1-el2")
            monitor.poll_once()

            events = read_events(mine_lines, "building_status")
            assert {e["building_id"] for e in events} == {"b03"}
            assert [e["work_order_id"] for e in events if e["type"] == "work_order"] == [own]
            assert events[-1]["status"] == "alarm"

            events = read_events(all_lines, "building_status")  # b01's, first
            assert events[0]["work_order_id"] == foreign
            assert events[-1]["building_id"] == "b01"

            # The token runs out: the stream says so and ends.
            api.clock.now = T0 + 901_000
            tail = read_events(mine_lines, "token_expired")
            assert tail[-1] == {"type": "token_expired"}
            assert [line for line in mine_lines if line] == []  # and the stream ended


def test_a_reconnecting_stream_gets_the_events_it_missed_or_a_reset(api: Api) -> None:
    monitor = api.app.state.monitor
    seen(api.store, api.site, "b03-u1-el2", T0)
    monitor.poll_once()
    steward = api.headers("steward")
    with Server(api.app) as server, httpx.Client(timeout=10) as http:
        base = f"http://127.0.0.1:{server.port}/api/v1/events"
        with http.stream("GET", base, headers=steward) as first:
            lines = first.iter_lines()
            read_events(lines, "ready")
            open_order(api.store, api.site, "b03-u1-el2")
            monitor.poll_once()
            before = _events_with_ids(lines, "building_status")
        # While it was away: an order in a foreign building, and one in its own.
        open_order(api.store, api.site, "b01-u1-el1")
        own = open_order(api.store, api.site, "b03-u2-el1")
        monitor.poll_once()
        resumed = {**steward, "Last-Event-ID": str(before[0][0])}
        with http.stream("GET", base, headers=resumed) as again:
            lines = again.iter_lines()
            read_events(lines, "ready")
            after = _events_with_ids(lines, "work_order")
        assert after[: len(before) - 1] == before[1:]  # what it had not seen, once
        missed = [data for _, data in after[len(before) - 1 :]]
        assert {e["building_id"] for e in missed} == {"b03"}
        assert missed[-1]["work_order_id"] == own
        with http.stream("GET", base, headers={**steward, "Last-Event-ID": "999999"}) as lost:
            assert [e["type"] for e in read_events(lost.iter_lines(), "reset")] == [
                "ready",
                "reset",
            ]
        bad = http.get(base, headers={**steward, "Last-Event-ID": "yesterday"})
        assert bad.status_code == 422


def _events_with_ids(lines: Iterator[str], until: str) -> list[tuple[int, dict[str, Any]]]:
    """(id, data) of the events read until one of type `until`."""
    events, last_id = [], -1
    for line in lines:
        if line.startswith("id: "):
            last_id = int(line.removeprefix("id: "))
        elif line.startswith("data: "):
            data = orjson.loads(line.removeprefix("data: "))
            events.append((last_id, data))
            if data["type"] == until:
                return events
    raise AssertionError(f"the stream ended before a {until!r} event: {events}")


def test_the_stream_needs_a_token(api: Api) -> None:
    assert api.client.get("/api/v1/events").status_code == 401
    bad = api.client.get("/api/v1/events", params={"access_token": "forged"})
    assert bad.status_code == 401


def test_a_token_in_the_url_is_refused_unless_allowed(
    api: Api, demo_site: Site, tmp_path: Path
) -> None:
    """Tokens stay out of URLs (and logs): `?access_token=` is an opt-in fallback."""
    token = api.headers("steward")["Authorization"].removeprefix("Bearer ")
    refused = api.client.get("/api/v1/events", params={"access_token": token})
    assert refused.status_code == 401
    clock = FakeClock(T0)
    store = new_store(f"sqlite:///{tmp_path / 'query.sqlite3'}", clock)
    with running_api(demo_site, store, clock, token_in_query=True) as allowed:
        token = allowed.headers("steward")["Authorization"].removeprefix("Bearer ")
        with Server(allowed.app) as server, httpx.Client(timeout=10) as http:
            url = f"http://127.0.0.1:{server.port}/api/v1/events"
            with http.stream("GET", url, params={"access_token": token}) as stream:
                assert stream.status_code == 200
                assert read_events(stream.iter_lines(), "ready")[0]["user"] == "steward"
