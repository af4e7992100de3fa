"""The live-updates feed in the database, on SQLite and PostgreSQL: one writer at a time under
a lease, ids in order, bounded by count and age, replays that never leave a hole; and two
change monitors on one database (two API processes) announcing every change once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from alerts.store import WorkOrderStore
from api.events import Event, EventHub
from api.feed import Collect, LiveFeed, NewEvent
from api.monitor import ChangeMonitor
from db.engine import make_engine
from db.migrate import migrate
from db.schema import live_events, live_feed
from facility.site import Site
from tests.api_support import T0, Api, new_store, open_order, running_api, seen
from tests.fakes import FakeClock
from tests.unit.test_api_events import Server, read_events
from tests.unit.test_api_events import _events_with_ids as events_with_ids


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def events(n: int, building: str = "b03") -> list[NewEvent]:
    return [NewEvent("work_order", building, {"n": i}) for i in range(n)]


def writes(items: list[NewEvent], cursor: int | None = None) -> Collect:
    """What a monitor writes: `items`, and the audit cursor to save."""
    return lambda _saved: (items, cursor)


def test_one_process_writes_at_a_time_and_another_takes_over_when_the_lease_runs_out(
    engine: Engine,
) -> None:
    a = LiveFeed(engine, owner="a", lease_ms=5_000)
    b = LiveFeed(engine, owner="b", lease_ms=5_000)
    assert a.lease(T0).may_write  # nobody holds it yet
    assert b.lease(T0).may_write
    assert a.write(T0, writes(events(2), cursor=7)) == 2
    assert not b.lease(T0 + 1_000).may_write
    assert not a.lease(T0 + 1_000).renew_due  # 4 s of 5 left
    assert a.lease(T0 + 3_000).renew_due  # 2 s left
    assert b.write(T0 + 1_000, writes(events(5))) is None  # a holds it: nothing written
    assert a.write(T0 + 4_000, writes(events(1), cursor=8)) == 1  # renewed to T0 + 9 s
    assert b.write(T0 + 8_000, writes(events(5))) is None
    saved: list[int | None] = []

    def collect(cursor: int | None) -> tuple[list[NewEvent], int | None]:
        saved.append(cursor)
        return events(1, "b05"), 9

    assert b.write(T0 + 9_001, collect) == 1  # a stalled past its lease: b takes over
    assert saved == [8]  # ... from where a stopped
    assert a.write(T0 + 9_002, writes(events(5))) is None  # and a, back, writes nothing
    ids = [e.id for e in a.after(0)]
    assert len(ids) == 4
    assert ids == sorted(ids)
    assert [e.building_id for e in a.after(0)] == ["b03"] * 3 + ["b05"]
    b.release()
    assert a.write(T0 + 9_003, writes(events(1))) == 1  # handed back: taken at once


def test_after_a_long_silence_the_next_writer_starts_from_now(engine: Engine) -> None:
    """Every API process down for longer than the feed keeps events: the audit backlog of that
    time is in the lists, not copied into the feed (where it would be pruned anyway)."""
    saved: list[int | None] = []

    def collect(cursor: int | None) -> tuple[list[NewEvent], int | None]:
        saved.append(cursor)
        return [], 7

    a = LiveFeed(engine, owner="a", keep_ms=60_000)
    a.write(T0, collect)
    a.release()
    LiveFeed(engine, owner="b", keep_ms=60_000).write(T0 + 1_000, collect)  # a handover
    LiveFeed(engine, owner="c", keep_ms=60_000).write(T0 + 120_000, collect)  # b died, long ago
    assert saved == [None, 7, None]


def test_writers_racing_for_the_lease_write_once(db_url: str) -> None:
    """Eight processes' monitors (own engines) try to write at the same moment: one does."""
    engines = [make_engine(db_url) for _ in range(8)]
    migrate(engines[0])
    results: list[int | None] = []
    barrier = threading.Barrier(len(engines))

    def write(i: int) -> None:
        feed = LiveFeed(engines[i], owner=f"p{i}")
        barrier.wait()
        results.append(feed.write(T0, writes(events(3))))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(engines))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results, key=str) == [3] + [None] * (len(engines) - 1)
        with engines[0].connect() as conn:
            assert conn.execute(select(func.count()).select_from(live_events)).scalar() == 3
    finally:
        for e in engines:
            e.dispose()


def test_the_feed_keeps_a_bounded_window_and_a_replay_never_has_a_hole(engine: Engine) -> None:
    feed = LiveFeed(engine, owner="a", keep=5, keep_ms=60_000)
    assert feed.replay(0) == []  # an empty feed: nothing missed
    feed.write(T0, writes(events(4)))
    first = feed.after(0)
    assert feed.replay(first[1].id) == first[2:]
    assert feed.replay(first[-1].id) == []
    feed.write(T0 + 1_000, writes(events(4)))  # 8 written, 5 kept
    kept = feed.after(0)
    assert len(kept) == 5
    assert kept[0].id == first[-1].id  # the oldest three went
    assert feed.replay(first[0].id) is None  # what came after it is no longer all there
    assert feed.replay(kept[0].id - 1) == kept  # the last one pruned: nothing after it was
    assert feed.replay(kept[0].id - 2) is None
    assert feed.replay(kept[0].id) == kept[1:]
    assert feed.replay(kept[-1].id + 1) is None  # never given out (another database's?)
    assert feed.replay(10**15) is None  # an id of the in-memory hub of older releases
    # Age: nothing written for a minute, and the next write (or the periodic prune) drops it.
    feed.write(T0 + 70_000, writes([]))
    assert feed.after(0) == []
    assert feed.newest_id() == kept[-1].id  # pruned, but ids go on from there
    assert feed.replay(kept[-1].id) == []
    assert feed.replay(kept[0].id) is None
    feed.write(T0 + 71_000, writes(events(1)))
    assert feed.after(kept[-1].id)[0].id > kept[-1].id  # never an id given out before


def test_a_reader_following_the_feed_gets_every_event_once_in_order(engine: Engine) -> None:
    writer, reader = LiveFeed(engine, owner="w"), LiveFeed(engine, owner="r")
    cursor = reader.newest_id()
    got: list[Event] = []
    for round_ in range(5):
        writer.write(T0 + round_, writes(events(round_ + 1)))
        batch = reader.after(cursor, limit=3)
        while batch:
            got += batch
            cursor = batch[-1].id
            batch = reader.after(cursor, limit=3)
    assert len(got) == 15
    assert [e.id for e in got] == sorted({e.id for e in got})


# -- two API processes' change monitors on one database ------------------------------------


class Process:
    """What one `facility api` process has: its own engine, hub, feed and monitor."""

    def __init__(self, site: Site, url: str, clock: FakeClock, name: str) -> None:
        self.store = WorkOrderStore(make_engine(url), clock_ms=clock)
        self.hub = Recorder()
        feed = LiveFeed(self.store.engine, owner=name, lease_ms=5_000)
        self.monitor = ChangeMonitor(site, self.store, self.hub, clock_ms=clock, feed=feed)


class Recorder(EventHub):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.closed = 0

    def publish(self, event: Event) -> None:
        self.events.append(event)
        super().publish(event)

    def close(self) -> None:
        self.closed += 1
        super().close()


@pytest.fixture
def two(demo_site: Site, db_url: str) -> Iterator[tuple[Process, Process, FakeClock]]:
    clock = FakeClock(T0)
    new_store(db_url, clock).engine.dispose()  # migrated
    a, b = (Process(demo_site, db_url, clock, name) for name in ("a", "b"))
    try:
        yield a, b, clock
    finally:
        a.store.engine.dispose()
        b.store.engine.dispose()


def test_two_monitors_announce_each_change_once_and_both_deliver_it(
    two: tuple[Process, Process, FakeClock],
) -> None:
    a, b, clock = two
    site = a.monitor.site
    for device in site.building_by_id["b03"].devices:
        seen(a.store, site, device.id, T0)
    assert a.monitor.poll_once() == 0  # a starts first: it writes the feed
    assert b.monitor.poll_once() == 0
    order = open_order(b.store, site, "b03-u1-el2")  # through b (an API request, say)
    clock.now += 1_000
    b.monitor.poll_once()  # b only follows: nothing new yet
    a.monitor.poll_once()
    b.monitor.poll_once()
    assert [e.type for e in a.hub.events] == ["work_order", "device_status", "building_status"]
    assert b.hub.events == a.hub.events  # the same events, the same ids, on both
    assert a.hub.events[0].data["work_order_id"] == order
    for _ in range(3):  # nothing changes: nothing more, however often either looks
        clock.now += 1_000
        a.monitor.poll_once()
        b.monitor.poll_once()
    assert len(a.hub.events) == len(b.hub.events) == 3


def test_a_takeover_announces_what_changed_once_with_the_right_previous(
    two: tuple[Process, Process, FakeClock],
) -> None:
    a, b, clock = two
    site = a.monitor.site
    for device in site.building_by_id["b03"].devices:
        seen(a.store, site, device.id, T0)
    a.monitor.poll_once()
    b.monitor.poll_once()
    open_order(a.store, site, "b03-u1-el2")
    clock.now += 1_000
    a.monitor.poll_once()  # announces the order and the alarm; then a dies (no release)
    first = len(a.hub.events)
    assert first == 3
    open_order(a.store, site, "b03-u2-el1")  # while nobody writes the feed
    clock.now += 2_000
    b.monitor.poll_once()  # a's lease still runs: b delivers a's events, writes nothing
    assert b.hub.events == a.hub.events
    clock.now += 5_000  # a's lease ran out
    b.monitor.poll_once()
    new = b.hub.events[first:]
    orders = [e.data["work_order_id"] for e in new if e.type == "work_order"]
    assert len(orders) == 1  # the order made while nobody wrote, once; the first not again
    devices = [(e.data["device_id"], e.data["previous"], e.data["status"]) for e in new
               if e.type == "device_status"]  # fmt: skip
    assert ("b03-u2-el1", "ok", "alarm") in devices
    assert all(device != "b03-u1-el2" for device, _, _ in devices)  # announced by a already
    building = [e.data for e in new if e.type == "building_status"]
    assert building == []  # b03 was already announced as alarm by a


def test_a_follower_hands_every_event_written_by_the_writer_to_its_subscribers(
    two: tuple[Process, Process, FakeClock],
) -> None:
    a, b, clock = two
    site = a.monitor.site
    a.monitor.poll_once()
    b.monitor.poll_once()
    for i, device in enumerate(list(site.devices)[:40]):
        open_order(a.store, site, device.id)
        if i % 7 == 0:
            clock.now += 1_000
            a.monitor.poll_once()
            b.monitor.poll_once()
    clock.now += 1_000
    a.monitor.poll_once()
    b.monitor.poll_once()
    made = [e.data["work_order_id"] for e in a.hub.events if e.type == "work_order"]
    assert len(made) == len(set(made)) == 40
    assert b.hub.events == a.hub.events


# -- the stream: replays from the feed, on any replica; bad Last-Event-IDs ---------------


@pytest.mark.parametrize("last_event_id", ["yesterday", "-1", "1.5", "9" * 30, str(2**63), "0x10"])
def test_a_malformed_last_event_id_is_a_422(api: Api, last_event_id: str) -> None:
    headers = {**api.headers("steward"), "Last-Event-ID": last_event_id}
    response = api.client.get("/api/v1/events", headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]


def test_a_reconnect_to_another_replica_replays_what_was_missed(
    demo_site: Site, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    with (
        running_api(demo_site, new_store(url, clock), clock, sse_keepalive_s=0.2) as one,
        running_api(
            demo_site, new_store(url, clock), clock, sse_keepalive_s=0.2, users=False
        ) as other,
    ):
        steward = one.headers("steward")
        one.app.state.monitor.poll_once()
        other.app.state.monitor.poll_once()
        with (
            Server(one.app) as first,
            Server(other.app) as second,
            httpx.Client(timeout=10) as http,
        ):
            with http.stream(
                "GET", f"http://127.0.0.1:{first.port}/api/v1/events", headers=steward
            ) as stream:
                lines = stream.iter_lines()
                read_events(lines, "ready")
                open_order(one.store, demo_site, "b03-u1-el2")
                one.app.state.monitor.poll_once()
                seen_events = events_with_ids(lines, "building_status")
            last_id = seen_events[-1][0]
            open_order(one.store, demo_site, "b01-u1-el1")  # not the steward's
            missed = open_order(one.store, demo_site, "b05-u1-el1")
            clock.now += 1_000
            one.app.state.monitor.poll_once()
            other.app.state.monitor.poll_once()
            resumed = {**steward, "Last-Event-ID": str(last_id)}
            with http.stream(
                "GET", f"http://127.0.0.1:{second.port}/api/v1/events", headers=resumed
            ) as again:
                lines = again.iter_lines()
                read_events(lines, "ready")
                replayed = events_with_ids(lines, "building_status")
            old_hub_id = {**steward, "Last-Event-ID": str(T0 * 1000)}  # an id of old releases
            with http.stream(
                "GET", f"http://127.0.0.1:{second.port}/api/v1/events", headers=old_hub_id
            ) as old:
                assert [e["type"] for e in read_events(old.iter_lines(), "reset")] == [
                    "ready",
                    "reset",
                ]
    ids = [i for i, _ in replayed]
    assert ids == sorted(set(ids))
    assert ids[0] > last_id
    assert {data["building_id"] for _, data in replayed} == {"b05"}
    orders = [d["work_order_id"] for _, d in replayed if d["type"] == "work_order"]
    assert orders == [missed]


def test_an_idle_writer_renews_its_lease_only_when_half_of_it_is_gone(
    two: tuple[Process, Process, FakeClock],
) -> None:
    """Nothing to announce: no write transaction each round (SQLite's write lock is shared with
    the gateway), only a renewal every half lease."""
    a, _b, clock = two

    def lease_until() -> int:
        with a.store.engine.connect() as conn:
            return int(conn.execute(select(live_feed.c.lease_until_ms)).scalar_one())

    a.monitor.poll_once()
    assert lease_until() == T0 + 5_000
    clock.now += 1_000
    a.monitor.poll_once()
    clock.now += 1_000
    a.monitor.poll_once()
    assert lease_until() == T0 + 5_000  # two quiet rounds: not written
    clock.now += 1_000
    a.monitor.poll_once()
    assert lease_until() == T0 + 8_000  # 2 s of 5 left: renewed
    open_order(a.store, a.monitor.site, "b03-u1-el2")
    clock.now += 1_000
    assert a.monitor.poll_once() >= 1  # something to announce: written at once
    assert lease_until() == T0 + 9_000


def test_a_process_that_fell_behind_the_window_ends_its_streams(
    two: tuple[Process, Process, FakeClock],
) -> None:
    a, b, _clock = two
    a.monitor.poll_once()
    b.monitor.poll_once()
    small = LiveFeed(a.store.engine, owner="a", keep=5)  # a's lease, a tiny window
    small.write(T0 + 1, writes(events(3)))
    b.monitor.poll_once()  # b keeps up
    assert (len(b.hub.events), b.hub.closed) == (3, 0)
    small.write(T0 + 2, writes(events(20)))  # b stalls meanwhile: 18 of them are pruned
    b.monitor.poll_once()
    assert b.hub.closed == 1  # its streams end: their clients reconnect and reload
    assert len(b.hub.events) == 3 + 5  # it goes on from what is kept
    small.write(T0 + 3, writes(events(1)))
    b.monitor.poll_once()
    assert b.hub.closed == 1
