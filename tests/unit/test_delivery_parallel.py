"""Delivery over several store connections: a device keeps its connection and its order, a part
that fails is spooled and drained later with nothing lost, refused points are dead-lettered,
and one connection behaves as before."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import GATE, PUMP, KindSpec
from facility.errors import SinkBusyError
from ingest.delivery import Delivery
from ingest.errors import StoreRejectedError, StoreUnavailableError
from ingest.interface import RejectedPoints, WriteResult
from ingest.lanes import lane_of, split
from ingest.spool import Lease, Spool
from ingest.spool_codec import encode_record
from tests.unit.test_ingest_delivery import FAST, eventually, started

Reading = tuple[str, int, int]
"""(kind, device row, timestamp)."""


class Store:
    """What every connection wrote, in order, and how many wrote at once (thread-safe)."""

    def __init__(self, connections: int, *, delay_s: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.log: list[tuple[int, Reading]] = []
        self.script: dict[int, list[Exception | WriteResult]] = defaultdict(list)
        self.up = True
        self.hung: set[int] = set()
        self.delay_s = delay_s
        self.active = self.most_active = 0
        self.connections = [Connection(self, i) for i in range(connections)]

    def readings(self) -> list[Reading]:
        with self.lock:
            return [reading for _, reading in self.log]

    def by_device(self) -> dict[tuple[str, int], list[tuple[int, int]]]:
        """(kind, device) -> [(connection, ts)] in the order written."""
        out: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
        with self.lock:
            for connection, (kind, device, ts) in self.log:
                out[kind, device].append((connection, ts))
        return out


class Connection:
    name = "fake"

    def __init__(self, store: Store, index: int) -> None:
        self.store = store
        self.index = index

    def write(self, batch: Batch) -> WriteResult:
        store = self.store
        with store.lock:
            store.active += 1
            store.most_active = max(store.most_active, store.active)
        try:
            time.sleep(store.delay_s)
            while self.index in store.hung:
                time.sleep(0.005)
            with store.lock:
                if not store.up:
                    raise StoreUnavailableError("down")
                script = store.script[self.index]
                outcome = script.pop(0) if script else WriteResult(len(batch))
                if isinstance(outcome, Exception):
                    raise outcome
                for kb in batch:
                    for device, ts in zip(kb.device.tolist(), kb.ts_ms.tolist(), strict=True):
                        store.log.append((self.index, (kb.kind.name, device, ts)))
                return outcome
        finally:
            with store.lock:
                store.active -= 1

    def ping(self) -> None:
        if not self.store.up or self.store.hung:
            raise StoreUnavailableError("down")

    def close(self) -> None:
        pass


def kind_batch(kind: KindSpec, devices: np.ndarray, ts: np.ndarray) -> KindBatch:
    values = np.full((len(devices), len(kind.fields)), np.nan)
    values[:, 0] = 1.0
    return KindBatch(kind, devices.astype(np.int32), ts.astype(np.int64),
                     np.arange(len(devices), dtype=np.int64), values)  # fmt: skip


def fleet_batch(tick: int, devices: int = 40, per_device: int = 3) -> Batch:
    """`per_device` readings of every device of two kinds, interleaved, from tick `tick`."""
    rows = np.tile(np.arange(devices), per_device)
    ts = tick * 10_000 + np.repeat(np.arange(per_device), devices) * 1000
    return Batch("s", {"pump": kind_batch(PUMP, rows, ts), "gate": kind_batch(GATE, rows, ts)})


def every_reading(batches: list[Batch]) -> list[Reading]:
    return [
        (kb.kind.name, d, t)
        for b in batches
        for kb in b
        for d, t in zip(kb.device.tolist(), kb.ts_ms.tolist(), strict=True)
    ]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool", max_bytes=10 << 20)
    yield spool
    spool.close()


def test_a_batch_splits_by_a_stable_device_hash() -> None:
    batch = fleet_batch(0, devices=200)
    parts = split(batch, 3)
    assert [lane for lane, _ in parts] == [0, 1, 2]
    assert sorted(every_reading([p for _, p in parts])) == sorted(every_reading([batch]))
    for lane, part in parts:
        for kb in part:
            assert (lane_of(kb, 3) == lane).all()
            assert np.all(np.diff(kb.ts_ms[kb.device == kb.device[0]]) > 0)  # order kept
            assert 40 < len(np.unique(kb.device)) < 100  # spread about evenly
    assert split(batch, 1) == [(0, batch)]


def test_each_device_keeps_one_connection_and_its_order(spool: Spool) -> None:
    store = Store(3, delay_s=0.002)
    delivery = Delivery(store.connections, spool, on_rejected=lambda r: None, settings=FAST)
    batches = [fleet_batch(tick) for tick in range(40)]
    try:
        for batch in batches:
            delivery.handle(batch)
    finally:
        delivery.stop()
    assert sorted(store.readings()) == sorted(every_reading(batches))
    assert len(spool) == 0
    used = set()
    for (kind, device), writes in store.by_device().items():
        connections = {c for c, _ in writes}
        assert len(connections) == 1, f"{kind} {device} went through {connections}"
        used |= connections
        stamps = [ts for _, ts in writes]
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == len(stamps)
    assert used == {0, 1, 2}
    assert store.most_active > 1  # the parts were written at once


def test_a_failed_part_is_spooled_and_drained_later_with_nothing_lost(spool: Spool) -> None:
    store = Store(2)
    store.script[1] = [StoreUnavailableError("connection reset")]
    delivery = Delivery(store.connections, spool, on_rejected=lambda r: None, settings=FAST)
    batch = fleet_batch(0)
    lost_part = dict(split(batch, 2))[1]
    delivery.handle(batch)  # returns: one part written, the other spooled
    assert spool.readings == len(lost_part)
    assert sorted(store.readings()) == sorted(every_reading([dict(split(batch, 2))[0]]))
    assert delivery.metrics.write_failures == 1
    assert delivery.metrics.store_up is False
    started(delivery)
    try:
        eventually(lambda: len(spool) == 0, "the spool to drain")
        delivery.handle(fleet_batch(1))
    finally:
        delivery.stop()
    assert sorted(store.readings()) == sorted(every_reading([batch, fleet_batch(1)]))
    for writes in store.by_device().values():  # the drainer used the device's connection too
        assert len({c for c, _ in writes}) == 1
    assert delivery.metrics.readings_spooled == delivery.metrics.readings_drained


def test_a_hung_connection_s_part_is_given_up_and_spooled(spool: Spool) -> None:
    store = Store(2)
    delivery = started(
        Delivery(store.connections, spool, on_rejected=lambda r: None, settings=FAST)
    )
    batch = fleet_batch(0)
    try:
        store.hung.add(0)
        delivery.handle(batch)  # returns once the probe finds the store hung
        assert delivery.metrics.writes_abandoned == 1
        assert spool.readings == len(dict(split(batch, 2))[0])
        store.hung.clear()
        eventually(lambda: len(spool) == 0, "the spool to drain")
    finally:
        delivery.stop()
    assert set(store.readings()) == set(every_reading([batch]))  # some maybe twice: harmless


def test_a_full_spool_after_a_partial_write_holds_the_batch_and_loses_nothing(
    tmp_path: Path,
) -> None:
    filler = fleet_batch(99)
    spool = Spool(tmp_path / "spool", max_bytes=len(encode_record(filler)) + 16)
    spool.append(filler)  # the spool is full
    store = Store(2)
    store.script[0] = [StoreUnavailableError("busy")]
    delivery = Delivery(store.connections, spool, on_rejected=lambda r: None, settings=FAST)
    batch = fleet_batch(0)
    with pytest.raises(SinkBusyError):  # part 1 written, part 0 has no room: unacked
        delivery.handle(batch)
    assert sorted(store.readings()) == sorted(every_reading([dict(split(batch, 2))[1]]))
    delivery._probe()
    delivery.handle(batch)  # the gateway's retry: both parts written (part 1 twice, harmless)
    delivery.stop()
    assert set(store.readings()) == set(every_reading([batch]))
    assert spool.readings == len(filler)
    spool.close()


def test_refused_points_are_dead_lettered_per_part(spool: Spool) -> None:
    refused: list[RejectedPoints] = []
    store = Store(2)
    batch = fleet_batch(0)
    parts = dict(split(batch, 2))
    conflict = RejectedPoints("field_type_conflict", "conflict", 2, "pump,...")
    store.script[0] = [WriteResult(len(parts[0]) - 2, (conflict,))]
    store.script[1] = [StoreRejectedError("bad request", status=422)]
    delivery = Delivery(store.connections, spool, on_rejected=refused.extend, settings=FAST)
    delivery.handle(batch)
    delivery.stop()
    assert sorted((r.reason, r.count) for r in refused) == [
        ("field_type_conflict", 2),
        ("store_rejected", len(parts[1])),
    ]
    assert delivery.metrics.points_rejected == 2 + len(parts[1])
    assert len(spool) == 0  # refused points are never retried
    assert delivery.metrics.store_up is True


def test_one_connection_writes_the_batch_whole_as_before(spool: Spool) -> None:
    store = Store(1)
    seen: list[Batch] = []
    connection = store.connections[0]
    original = connection.write

    def write(batch: Batch) -> WriteResult:
        seen.append(batch)
        return original(batch)

    connection.write = write  # type: ignore[method-assign]
    delivery = Delivery([connection], spool, on_rejected=lambda r: None, settings=FAST)
    batch = fleet_batch(0)
    delivery.handle(batch)
    delivery.stop()
    assert len(seen) == 1
    assert seen[0] is batch  # not split, not copied


def test_a_batch_handled_while_stopping_is_spooled(spool: Spool) -> None:
    store = Store(2)
    delivery = Delivery(store.connections, spool, on_rejected=lambda r: None, settings=FAST)
    for lane in delivery.lanes:
        lane.close()  # what stop() does
    delivery.handle(fleet_batch(0))
    assert spool.readings == len(fleet_batch(0))
    assert store.readings() == []


class TakesSpool(Spool):
    """The spool, recording the first reading's timestamp of every lease the drainer takes."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, max_bytes=10 << 20)
        self.taken: list[int] = []

    def take(self, max_readings: int, timeout_s: float = 0.0, *, after: Lease | None = None
             ) -> Lease | None:  # fmt: skip
        lease = super().take(max_readings, timeout_s, after=after)
        if lease is not None:
            self.taken.append(min(int(kb.ts_ms.min()) for kb in lease.batch))
        return lease


class GatedConnection(Connection):
    """Writes wait for `gate`; the store answers its probe meanwhile (it is busy, not down)."""

    def __init__(self, store: Store, index: int, gate: threading.Event) -> None:
        super().__init__(store, index)
        self.gate = gate

    def write(self, batch: Batch) -> WriteResult:
        with self.store.lock:
            self.store.active += 1
        try:
            assert self.gate.wait(10)
        finally:
            with self.store.lock:
                self.store.active -= 1
        return super().write(batch)


def test_the_drainer_reads_the_next_write_while_the_store_takes_one(tmp_path: Path) -> None:
    spool = TakesSpool(tmp_path / "spool")
    batches = [fleet_batch(tick, devices=100, per_device=5) for tick in range(6)]  # 1000 each
    for batch in batches:
        spool.append(batch)
    store, gate = Store(1), threading.Event()
    connection = GatedConnection(store, 0, gate)
    delivery = Delivery([connection], spool, on_rejected=lambda r: None, settings=FAST)
    started(delivery)
    try:
        eventually(lambda: store.active == 1, "the first backlog write to reach the store")
        # the store holds the first write, and the next one is already read and queued
        eventually(lambda: len(spool.taken) == 2, "the next lease to be taken")
        assert spool.taken == [0, 10_000]
        assert store.readings() == []
        gate.set()
        eventually(lambda: len(spool) == 0, "the spool to drain")
    finally:
        gate.set()
        delivery.stop()
    assert store.readings() == every_reading(batches)  # each once, in the spool's order
    assert spool.taken == [tick * 10_000 for tick in range(6)]
    assert delivery.metrics.readings_drained == 6 * 1000
    spool.close()


def test_a_failed_write_in_the_drain_loses_nothing_and_keeps_leases_in_order(
    spool: Spool,
) -> None:
    batches = [fleet_batch(tick, devices=100, per_device=5) for tick in range(8)]
    for batch in batches:
        spool.append(batch)
    store = Store(2)
    # the second write of each connection fails: the drain backs off and takes it again
    store.script[0] = [WriteResult(0), StoreUnavailableError("reset")]
    store.script[1] = [WriteResult(0), StoreUnavailableError("reset")]
    delivery = Delivery(store.connections, spool, on_rejected=lambda r: None, settings=FAST)
    started(delivery)
    try:
        eventually(lambda: len(spool) == 0, "the spool to drain")
    finally:
        delivery.stop()
    written = store.readings()
    assert set(written) == set(every_reading(batches))  # nothing lost (some written twice)
    assert delivery.metrics.readings_drained == len(every_reading(batches))
    assert delivery.metrics.write_failures >= 1
    for writes in store.by_device().values():  # each device through one connection
        assert len({c for c, _ in writes}) == 1


def test_a_connection_goes_on_with_the_next_batch_while_the_other_still_writes(
    spool: Spool,
) -> None:
    """`begin` queues a batch's parts before the batch ahead is durable: connection 1 writes
    batch 2's part while connection 0 is still held on batch 1's; each device keeps its
    connection and its order, and each batch is durable once `finish` returns."""
    store = Store(2)
    delivery = Delivery(store.connections, spool, on_rejected=lambda r: None, settings=FAST)
    first, second = fleet_batch(0), fleet_batch(1)
    store.hung.add(0)
    try:
        begun = [delivery.begin(first), delivery.begin(second)]
        wanted = set(every_reading([dict(split(second, 2))[1]]))
        eventually(lambda: wanted <= set(store.readings()), "batch 2's part on connection 1")
        assert not set(every_reading([dict(split(first, 2))[0]])) & set(store.readings())
        store.hung.clear()
        delivery.finish(first, begun[0])
        delivery.finish(second, begun[1])
    finally:
        delivery.stop()
    assert sorted(store.readings()) == sorted(every_reading([first, second]))
    for (kind, device), writes in store.by_device().items():
        assert len({connection for connection, _ in writes}) == 1, (kind, device)
        assert [ts for _, ts in writes] == sorted(ts for _, ts in writes), (kind, device)
    assert len(spool) == 0


def test_parts_begun_before_the_store_went_down_are_spooled_when_finished(spool: Spool) -> None:
    """The store fails between `begin` and `finish`: what was begun and not written is
    spooled by `finish` (nothing lost), and a batch begun while the store is known to be
    down is spooled whole."""
    store = Store(2)
    delivery = Delivery(store.connections, spool, on_rejected=lambda r: None, settings=FAST)
    first, second = fleet_batch(0), fleet_batch(1)
    store.hung.add(0)
    begun = delivery.begin(first)
    assert begun is not None
    store.up = False  # connection 1's part fails; connection 0's is held
    delivery._probe()  # the health probe finds the store down
    assert delivery.begin(second) is None  # down: nothing is queued on the connections
    store.hung.clear()
    delivery.finish(first, begun)
    delivery.finish(second, None)
    delivery.stop()
    assert spool.readings == len(first) + len(second)
    assert delivery.metrics.readings_spooled == len(first) + len(second)
