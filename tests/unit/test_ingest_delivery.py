"""Delivery: direct writes, the spool, 413 splits, refused points and retries, with fake writers."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from facility.batch import Batch, KindBatch
from facility.catalog import PUMP
from ingest.delivery import Delivery, DeliverySettings
from ingest.errors import (
    PayloadTooLargeError,
    SpoolError,
    StoreRejectedError,
    StoreUnavailableError,
)
from ingest.interface import RejectedPoints, WriteResult
from ingest.spool import Spool, decode_batch, encode_batch

FAST = DeliverySettings(
    max_points_per_write=1000, retry_min_s=0.0, retry_max_s=0.0, health_interval_s=0.01,
    drain_poll_s=0.01,
)  # fmt: skip


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
        self.up = True
        self.lock = threading.Lock()

    def write(self, batch: Batch) -> WriteResult:
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
            return WriteResult(len(batch))

    def ping(self) -> None:
        if not self.up:
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


def test_an_outage_spools_then_drains_everything(spool: Spool) -> None:
    writer = ScriptedWriter()
    writer.up = False
    delivery = Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST)
    for _ in range(5):
        delivery.handle(pump_batch(100))
    assert len(spool) == 5
    assert writer.written == []
    assert delivery.metrics.store_up is False
    delivery.start()
    try:
        writer.up = True
        done = threading.Event()
        for _ in range(500):
            if len(spool) == 0:
                done.set()
                break
            threading.Event().wait(0.01)
        assert done.is_set()
    finally:
        delivery.stop()
    assert sum(writer.written) == 500
    assert delivery.metrics.readings_spooled == 500


def test_while_the_spool_is_not_empty_new_batches_queue_behind_it(spool: Spool) -> None:
    writer = ScriptedWriter([StoreUnavailableError("timeout")])
    delivery = Delivery(writer, spool, on_rejected=lambda r: None, settings=FAST)
    delivery.handle(pump_batch(10))  # the store times out: spooled
    delivery.handle(pump_batch(10))  # the store is up again, but older data waits on disk
    assert len(spool) == 2
    assert writer.written == []


def test_the_spool_survives_a_restart_and_keeps_order(tmp_path: Path) -> None:
    first = Spool(tmp_path / "spool", max_bytes=10 << 20)
    first.append(pump_batch(3, first_ts=1000))
    first.append(pump_batch(4, first_ts=9000))
    first.close()
    reopened = Spool(tmp_path / "spool", max_bytes=10 << 20)
    assert len(reopened) == 2
    assert reopened.readings == 7
    found = reopened.oldest()
    assert found is not None
    segment, batch = found
    assert len(batch) == 3
    reopened.remove(segment)
    found = reopened.oldest()
    assert found is not None
    assert int(found[1].kinds["pump"].ts_ms[0]) == 9000
    reopened.close()


def test_a_spool_directory_in_use_by_another_gateway_is_refused(tmp_path: Path) -> None:
    """Two gateways on one spool would drain and delete each other's batches."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SPOOL, str(tmp_path / "spool")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"holding\n"
        with pytest.raises(SpoolError, match=rf"in use by another process \(pid {holder.pid}\)"):
            Spool(tmp_path / "spool", max_bytes=10 << 20)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # it exits, and its lock goes with it
        holder.wait(30)
        assert holder.stdout is not None
        holder.stdout.close()
    Spool(tmp_path / "spool", max_bytes=10 << 20).close()  # free again


HOLD_SPOOL = """
import sys
from pathlib import Path
from ingest.spool import Spool
spool = Spool(Path(sys.argv[1]), max_bytes=1 << 20)
print("holding", flush=True)
sys.stdin.read()
"""
ROOT = Path(__file__).resolve().parents[2]


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    size = len(encode_batch(pump_batch(100)))
    spool = Spool(tmp_path / "spool", max_bytes=size * 3 + size // 2)
    for i in range(5):
        spool.append(pump_batch(100, first_ts=i * 1_000_000))
    assert len(spool) == 3
    assert spool.dropped_readings == 200
    found = spool.oldest()
    assert found is not None
    assert int(found[1].kinds["pump"].ts_ms[0]) == 2_000_000
    spool.close()


def test_a_corrupt_segment_is_moved_aside_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=10 << 20)
    segment = spool.append(pump_batch(3))
    segment.path.write_bytes(b"not an npz file")
    assert spool.oldest() is None
    assert len(spool) == 0
    assert list((tmp_path / "spool").glob("*.corrupt"))
    spool.close()


def test_batches_round_trip_through_the_spool_codec() -> None:
    batch = pump_batch(5)
    again = decode_batch(encode_batch(batch))
    kb, back = batch.kinds["pump"], again.kinds["pump"]
    assert again.site_id == "s"
    np.testing.assert_array_equal(kb.ts_ms, back.ts_ms)
    np.testing.assert_array_equal(kb.values, back.values)
