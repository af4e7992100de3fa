"""Delivery with fake writers: direct writes, 413 splits, refused points, outages drained behind
live batches, a hung store given up on, back-pressure from a full spool."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import PUMP
from facility.errors import SinkBusyError
from facility.prometheus import render
from ingest.delivery import Delivery, DeliverySettings
from ingest.errors import PayloadTooLargeError, StoreRejectedError, StoreUnavailableError
from ingest.interface import RejectedPoints, WriteResult
from ingest.spool import Spool
from ingest.spool_codec import encode_record

FAST = DeliverySettings(
    max_points_per_write=1000, retry_min_s=0.0, retry_max_s=0.0, health_interval_s=0.01,
    drain_poll_s=0.01, backpressure_wait_s=0.05,
)  # fmt: skip
DEADLINE_S = 10.0
"""Bound on waiting for a background thread; the tests assert what happens, not how fast."""


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def pump_batch(readings: int, *, first_ts: int = 1_790_000_000_000) -> Batch:
    values = np.full((readings, len(PUMP.fields)), np.nan)
    values[:, PUMP.col("suction_bar")] = np.arange(readings) / 100
    kb = KindBatch(
        PUMP,
        np.zeros(readings, np.int32),
        first_ts + np.arange(readings, dtype=np.int64) * 1000,
        np.arange(1, readings + 1, dtype=np.int64),
        values,
    )
    return Batch("s", {"pump": kb})


class ScriptedWriter:
    """Answers each write with the next scripted outcome, then succeeds; records what it got."""

    name = "scripted"

    def __init__(self, outcomes: Sequence[Exception | WriteResult] = (), *, max_points: int = 0):
        self.outcomes = list(outcomes)
        self.max_points = max_points
        self.written: list[int] = []
        self.first_ts: list[int] = []
        self.up = True
        self.hung = threading.Event()
        """While set, writes wait (a SIGSTOPped store) and pings fail (the probe's timeout)."""
        self.lock = threading.Lock()

    def write(self, batch: Batch) -> WriteResult:
        while self.hung.is_set():
            time.sleep(0.01)
        with self.lock:
            if not self.up:
                raise StoreUnavailableError("down")
            if self.max_points and len(batch) > self.max_points:
                raise PayloadTooLargeError("too large", status=413)
            if self.outcomes:
                outcome = self.outcomes.pop(0)
                if isinstance(outcome, Exception):
                    raise outcome
                self.written.append(outcome.written)
                return outcome
            self.written.append(len(batch))
            self.first_ts.append(min(int(kb.ts_ms.min()) for kb in batch))
            return WriteResult(len(batch))

    def ping(self) -> None:
        if not self.up or self.hung.is_set():
            raise StoreUnavailableError("down")

    def close(self) -> None:
        pass


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool", max_bytes=10 << 20)
    yield spool
    spool.close()


def test_a_healthy_store_is_written_directly(spool: Spool) -> None:
    writer = ScriptedWriter()
    Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST).handle(pump_batch(10))
    assert writer.written == [10]
    assert len(spool) == 0


def test_large_batches_are_cut_and_a_413_splits_in_halves(spool: Spool) -> None:
    writer = ScriptedWriter(max_points=300)
    delivery = Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST)
    delivery.handle(pump_batch(2500))
    assert sum(writer.written) == 2500
    assert max(writer.written) <= 300
    assert delivery.metrics.points_written == 2500


def test_refused_points_go_to_on_rejected_and_are_not_retried(spool: Spool) -> None:
    refused: list[RejectedPoints] = []
    partial = WriteResult(7, (RejectedPoints("field_type_conflict", "conflict", 3, "pump,..."),))
    writer = ScriptedWriter([partial, StoreRejectedError("bad request", status=422)])
    delivery = Delivery(writer, spool, on_rejected=refused.extend, settings=FAST)
    delivery.handle(pump_batch(10))
    delivery.handle(pump_batch(4))
    assert [(r.reason, r.count) for r in refused] == [
        ("field_type_conflict", 3),
        ("store_rejected", 4),
    ]
    assert delivery.metrics.points_rejected == 7
    assert len(spool) == 0


def started(delivery: Delivery) -> Delivery:
    delivery.start()
    return delivery


def test_an_outage_spools_then_drains_in_merged_writes(spool: Spool) -> None:
    writer = ScriptedWriter()
    writer.up = False
    delivery = Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST)
    for i in range(25):
        delivery.handle(pump_batch(100, first_ts=i * 1_000_000))
    assert spool.readings == 2500
    assert writer.written == []
    assert delivery.metrics.store_up is False
    started(delivery)
    try:
        writer.up = True
        eventually(lambda: len(spool) == 0, "the spool to drain")
    finally:
        delivery.stop()
    assert sorted(writer.written) == [500, 1000, 1000]  # 25 spooled batches, three writes
    assert sorted(writer.first_ts) == [0, 10_000_000, 20_000_000]
    assert delivery.metrics.readings_spooled == delivery.metrics.readings_drained == 2500


def test_live_batches_go_direct_while_the_backlog_drains_behind(spool: Spool) -> None:
    writer = ScriptedWriter([StoreUnavailableError("timeout")])
    delivery = Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST)
    delivery.handle(pump_batch(10, first_ts=0))  # the store times out: spooled
    assert len(spool) == 1
    delivery.handle(pump_batch(10, first_ts=5_000_000))  # store down: spooled, not tried
    assert writer.written == []
    delivery._probe()  # the store answers again
    delivery.handle(pump_batch(10, first_ts=9_000_000))  # live: straight to the store
    assert writer.first_ts == [9_000_000]
    assert len(spool) == 2  # the backlog is the drainer's
    started(delivery)
    try:
        eventually(lambda: len(spool) == 0, "the spool to drain")
    finally:
        delivery.stop()
    assert sorted(writer.first_ts) == [0, 9_000_000]  # the drainer merged both records
    assert sum(writer.written) == 30


def test_a_hung_store_is_given_up_on_so_acks_go_on(spool: Spool) -> None:
    writer = ScriptedWriter()
    delivery = started(Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST))
    try:
        writer.hung.set()
        delivery.handle(pump_batch(10))  # returns once the probe finds the store hung
        assert delivery.metrics.store_up is False
        assert delivery.metrics.writes_abandoned == 1
        assert spool.readings == 10
        delivery.handle(pump_batch(10, first_ts=7_000_000))  # down: spooled at once
        writer.hung.clear()
        eventually(lambda: len(spool) == 0, "the spool to drain")
    finally:
        delivery.stop()
    assert delivery.metrics.store_up is True
    assert sum(writer.written) >= 20  # the abandoned write may land too: the same points


def test_a_full_spool_holds_the_batch_unacked_and_drops_nothing(tmp_path: Path) -> None:
    size = len(encode_record(pump_batch(100)))
    spool = Spool(tmp_path / "spool", max_bytes=size * 2 + size // 2)
    writer = ScriptedWriter()
    writer.up = False
    delivery = Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST)
    try:
        delivery.handle(pump_batch(100, first_ts=0))
        delivery.handle(pump_batch(100, first_ts=1_000_000))
        with pytest.raises(SinkBusyError):
            delivery.handle(pump_batch(100, first_ts=2_000_000))
        assert delivery.metrics.spool_full is True
        assert delivery.metrics.backpressure_s > 0
        assert spool.dropped_readings == 0
        writer.up = True
        delivery._probe()
        delivery.handle(pump_batch(100, first_ts=2_000_000))  # the gateway's retry: direct
        assert delivery.metrics.spool_full is False
        started(delivery)
        eventually(lambda: len(spool) == 0, "the spool to drain")
    finally:
        delivery.stop()
    assert sum(writer.written) == 300
    assert sorted(writer.first_ts) == [0, 2_000_000]


def test_drop_oldest_keeps_acking_and_counts_what_it_dropped(tmp_path: Path) -> None:
    size = len(encode_record(pump_batch(100)))
    spool = Spool(tmp_path / "spool", max_bytes=size * 4 + size // 2, when_full="drop-oldest")
    writer = ScriptedWriter()
    writer.up = False
    delivery = Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST)
    for i in range(8):
        delivery.handle(pump_batch(100, first_ts=i * 1_000_000))
    assert spool.dropped_readings > 0
    assert spool.readings + spool.dropped_readings == 800
    text = render(delivery.prometheus())
    assert f"facility_readings_dropped_total {spool.dropped_readings}" in text
    spool.close()


def test_the_drainer_does_not_sit_out_its_backoff_once_the_store_answers(spool: Spool) -> None:
    slow = DeliverySettings(
        max_points_per_write=1000, retry_min_s=60.0, retry_max_s=60.0, health_interval_s=0.01,
        drain_poll_s=0.01,
    )  # fmt: skip
    writer = ScriptedWriter()
    writer.up = False
    delivery = Delivery(writer, spool, on_rejected=lambda r: None, settings=slow)
    delivery.handle(pump_batch(100))
    started(delivery)
    try:
        writer.up = True
        writer.outcomes = [StoreUnavailableError("still starting")]  # the first drain write fails
        eventually(lambda: len(spool) == 0, "the spool to drain")  # well before 30-90 s
    finally:
        delivery.stop()
    assert writer.written == [100]
